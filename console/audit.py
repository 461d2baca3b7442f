"""The audit log: who signed in, changed, submitted, published, rolled back or viewed what."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console.models import AuditEntry

SYSTEM_DOMAIN = "system:domain"  # the import of bot/domain/*.yml


def record(
    session: Session,
    actor: str,
    action: str,
    target: str | None = None,
    version: int | None = None,
    detail: dict[str, Any] | None = None,
    now: float | None = None,
) -> None:
    """Added to the caller's transaction: the entry exists exactly when the change does."""
    session.add(
        AuditEntry(
            at=time.time() if now is None else now,
            actor=actor[:320],
            action=action,
            target=target,
            version=version,
            detail=detail,
        )
    )


def count_since(session: Session, actor: str, action: str, since: float) -> int:
    query = select(func.count(AuditEntry.id)).where(
        AuditEntry.actor == actor[:320], AuditEntry.action == action, AuditEntry.at >= since
    )
    return int(session.execute(query).scalar_one())


def entries(
    session: Session, target: str | None = None, actor: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if target is not None:
        query = query.where(AuditEntry.target == target)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    return [
        {
            "at": e.at,
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "version": e.version,
            "detail": e.detail,
        }
        for e in session.execute(query).scalars()
    ]
