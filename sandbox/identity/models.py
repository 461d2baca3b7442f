"""Tables of the identity sandbox: citizens, verifications, failed attempts, locks, SMS outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Column, Float, Index, Integer, String, Text
from sqlalchemy.orm import declarative_base

# Typed as Any: SQLAlchemy 1.4 has no stubs for the declarative base (2.0 has DeclarativeBase).
Base: Any = declarative_base()

# `client_ref` of requests that give none: they all share this one bucket.
SHARED_CLIENT_REF = ""

SCOPE_CONVERSATION = "conversation"
SCOPE_ID_NUMBER = "id_number"


class Citizen(Base):
    """A person in the (sample) population database."""

    __tablename__ = "citizens"

    id_number = Column(String(12), primary_key=True)
    full_name = Column(String(200), nullable=False)
    phone = Column(String(20), nullable=False)


class Verification(Base):
    """One one-time code, for one ID number, asked for by one conversation (`client_ref`).

    Only an HMAC of the code is stored. A decoy (ID number not in the population database)
    has no code at all: it is there so that the answers cannot tell it from a real one.
    """

    __tablename__ = "verifications"

    id = Column(String(64), primary_key=True)
    id_number = Column(String(12), nullable=False)
    client_ref = Column(String(128), nullable=False)
    decoy = Column(Boolean, nullable=False)
    code_hash = Column(String(64), nullable=True)
    attempts = Column(Integer, nullable=False, default=0)
    created_at = Column(Float, nullable=False)
    expires_at = Column(Float, nullable=False)
    used_at = Column(Float, nullable=True)
    superseded_at = Column(Float, nullable=True)

    __table_args__ = (
        Index("ix_verifications_id_number_created", "id_number", "created_at"),
        Index("ix_verifications_client_ref_created", "client_ref", "created_at"),
    )


class FailedAttempt(Base):
    """A wrong code: counted per conversation and per ID number within their windows."""

    __tablename__ = "failed_attempts"

    id = Column(Integer, primary_key=True, autoincrement=True)
    id_number = Column(String(12), nullable=False)
    client_ref = Column(String(128), nullable=False)
    verification_id = Column(String(64), nullable=False)
    at = Column(Float, nullable=False)

    __table_args__ = (
        Index("ix_failed_attempts_id_number_at", "id_number", "at"),
        Index("ix_failed_attempts_client_ref_at", "client_ref", "at"),
    )


class Lock(Base):
    """The latest lock of a conversation or an ID number; kept after it ends for the back-off.

    `level` is 1 for a first lock and grows by one for each further lock that starts within
    `LOCKOUT_MEMORY_SECONDS` of the previous one's end; a lock lasts
    `LOCKOUT_SECONDS * 2 ** (level - 1)`, at most `LOCKOUT_MAX_SECONDS`.
    """

    __tablename__ = "locks"

    scope = Column(String(16), primary_key=True)  # SCOPE_CONVERSATION or SCOPE_ID_NUMBER
    key = Column(String(128), primary_key=True)  # the client_ref or the ID number
    level = Column(Integer, nullable=False)
    started_at = Column(Float, nullable=False)
    locked_until = Column(Float, nullable=False)


class SmsOutbox(Base):
    """The sandbox's "SMS gateway": messages are written here instead of being sent.

    Written in sandbox mode only; with sandbox mode off no code is stored anywhere.
    """

    __tablename__ = "sms_outbox"

    id = Column(Integer, primary_key=True, autoincrement=True)
    phone = Column(String(20), nullable=False, index=True)
    text = Column(Text, nullable=False)
    code = Column(String(6), nullable=False)
    sent_at = Column(Float, nullable=False)
