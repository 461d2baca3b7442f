"""Tables of the identity sandbox: citizens, verifications, failed attempts, locks, SMS outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Float, Index, Integer, String, Text
from sqlalchemy.orm import declarative_base

# Typed as Any: SQLAlchemy 1.4 has no stubs for the declarative base (2.0 has DeclarativeBase).
Base: Any = declarative_base()


class Citizen(Base):
    """A person in the (sample) population database."""

    __tablename__ = "citizens"

    id_number = Column(String(12), primary_key=True)
    full_name = Column(String(200), nullable=False)
    phone = Column(String(20), nullable=False)


class Verification(Base):
    """One one-time code sent to a citizen; only an HMAC of the code is stored."""

    __tablename__ = "verifications"

    id = Column(String(64), primary_key=True)
    id_number = Column(String(12), nullable=False)
    code_hash = Column(String(64), nullable=False)
    created_at = Column(Float, nullable=False)
    expires_at = Column(Float, nullable=False)
    used_at = Column(Float, nullable=True)
    superseded_at = Column(Float, nullable=True)

    __table_args__ = (Index("ix_verifications_id_number_created", "id_number", "created_at"),)


class FailedAttempt(Base):
    """A wrong code; counted per ID number across verifications within the lockout window."""

    __tablename__ = "failed_attempts"

    id = Column(Integer, primary_key=True, autoincrement=True)
    id_number = Column(String(12), nullable=False, index=True)
    verification_id = Column(String(64), nullable=False)
    at = Column(Float, nullable=False)


class Lock(Base):
    """An ID number that may not verify until `locked_until`."""

    __tablename__ = "locks"

    id_number = Column(String(12), primary_key=True)
    locked_until = Column(Float, nullable=False)


class SmsOutbox(Base):
    """The sandbox's "SMS gateway": messages are written here instead of being sent."""

    __tablename__ = "sms_outbox"

    id = Column(Integer, primary_key=True, autoincrement=True)
    phone = Column(String(20), nullable=False, index=True)
    text = Column(Text, nullable=False)
    code = Column(String(6), nullable=False)
    sent_at = Column(Float, nullable=False)
