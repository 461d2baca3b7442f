"""Tables of the portal sandbox. Texts the citizen reads are stored as {"vi": ..., "en": ...}."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Date, String
from sqlalchemy.orm import declarative_base

# Typed as Any: SQLAlchemy 1.4 has no stubs for the declarative base (2.0 has DeclarativeBase).
Base: Any = declarative_base()


class Dossier(Base):
    """A dossier (hồ sơ) filed on the portal, found by its code."""

    __tablename__ = "dossiers"

    code = Column(String(40), primary_key=True)
    owner_id_number = Column(String(12), nullable=False, index=True)
    owner_name = Column(String(200), nullable=False)
    procedure_id = Column(String(60), nullable=False)
    procedure_name = Column(JSON, nullable=False)
    agency = Column(JSON, nullable=False)
    status = Column(String(30), nullable=False)
    submitted_on = Column(Date, nullable=False)
    updated_on = Column(Date, nullable=False)
    due_on = Column(Date, nullable=True)
    missing_documents = Column(JSON, nullable=False)  # {"vi": [...], "en": [...]}
    supplement_deadline = Column(Date, nullable=True)
    refusal_reason = Column(JSON, nullable=True)
    pickup = Column(JSON, nullable=True)
    next_step = Column(JSON, nullable=False)
