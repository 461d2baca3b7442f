"""Tables of the content store: responses and their versions, staff, sessions, the audit log,
and one counter that every process polls to learn that something was published."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import declarative_base

# Typed as Any: SQLAlchemy 1.4 has no stubs for the declarative base (2.0 has DeclarativeBase).
Base: Any = declarative_base()

DRAFT = "draft"
SUBMITTED = "submitted"
PUBLISHED = "published"
# A draft or submission replaced by a rollback or withdrawn is kept for the record.
DISCARDED = "discarded"
STATES = (DRAFT, SUBMITTED, PUBLISHED, DISCARDED)


class Response(Base):
    """A reply by its domain name (`utter_greet`); what citizens get is its live version."""

    __tablename__ = "responses"

    id = Column(Integer, primary_key=True, autoincrement=True)
    name = Column(String(200), nullable=False, unique=True)
    domain_file = Column(String(200), nullable=True)  # where the seed came from (core.yml)
    live_version_id = Column(Integer, nullable=True)
    # The open draft or submission (at most one at a time), else None.
    working_version_id = Column(Integer, nullable=True)
    # Accent-folded name and texts of the live and working versions (search by words).
    search_text = Column(Text, nullable=False, default="")
    created_at = Column(Float, nullable=False)


class Version(Base):
    """One state of a reply's wording. Published versions are never changed or deleted."""

    __tablename__ = "versions"

    id = Column(Integer, primary_key=True, autoincrement=True)
    response_id = Column(Integer, ForeignKey("responses.id"), nullable=False)
    number = Column(Integer, nullable=False)  # 1, 2, ... per response
    state = Column(String(20), nullable=False)
    content = Column(JSON, nullable=False)  # console/rasa_format.py describes it
    based_on = Column(Integer, nullable=True)  # number of the version it was made from
    rollback_of = Column(Integer, nullable=True)  # number of the version it republishes
    authors = Column(JSON, nullable=False, default=list)  # emails of everyone who edited it
    created_by = Column(String(320), nullable=False)
    created_at = Column(Float, nullable=False)
    updated_at = Column(Float, nullable=False)
    submitted_by = Column(String(320), nullable=True)
    submitted_at = Column(Float, nullable=True)
    published_by = Column(String(320), nullable=True)
    published_at = Column(Float, nullable=True)
    note = Column(Text, nullable=True)  # the reviewer's reason when sending back

    __table_args__ = (Index("ux_versions_response_number", "response_id", "number", unique=True),)


class User(Base):
    __tablename__ = "users"

    id = Column(Integer, primary_key=True, autoincrement=True)
    email = Column(String(320), nullable=False, unique=True)
    password_hash = Column(String(200), nullable=False)  # argon2id, never the password
    role = Column(String(20), nullable=False)
    created_at = Column(Float, nullable=False)
    disabled_at = Column(Float, nullable=True)


class StaffSession(Base):
    """A signed-in staff member; only a keyed hash of the bearer token is stored."""

    __tablename__ = "staff_sessions"

    token_hash = Column(String(64), primary_key=True)
    user_id = Column(Integer, ForeignKey("users.id"), nullable=False)
    created_at = Column(Float, nullable=False)
    expires_at = Column(Float, nullable=False)


class AuditEntry(Base):
    """Who did what to which reply, when. Never holds conversation contents."""

    __tablename__ = "audit_log"

    id = Column(Integer, primary_key=True, autoincrement=True)
    at = Column(Float, nullable=False)
    actor = Column(String(320), nullable=False)  # an email, or "system:domain"
    action = Column(String(40), nullable=False)
    target = Column(String(200), nullable=True)  # e.g. response:utter_greet
    version = Column(Integer, nullable=True)
    detail = Column(JSON, nullable=True)

    __table_args__ = (
        Index("ix_audit_target_at", "target", "at"),
        Index("ix_audit_actor_action_at", "actor", "action", "at"),
    )


class Counter(Base):
    """`published`: raised in the same transaction as every publish; polled every second."""

    __tablename__ = "counters"

    name = Column(String(40), primary_key=True)
    value = Column(Integer, nullable=False, default=0)
