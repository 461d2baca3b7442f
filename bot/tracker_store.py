"""Rasa's SQL tracker store with personal data redacted before it is written, and a retention.

Configured in bot/endpoints*.yml as ``type: bot.tracker_store.RedactingTrackerStore`` with the
SQL store's usual keys (``dialect``, ``db``, ``url``...) plus ``retention_days``. Same code for
SQLite on a laptop and PostgreSQL shared by several replicas. What is redacted, and why the
conversation still works: docs/PRIVACY.md.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import (
    SQLTrackerStore,
    TrackerEventDiffEngine,
    create_engine_kwargs,
)
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

from bot.privacy import redact_event

logger = logging.getLogger(__name__)

DAY = 86400.0
PURGE_EVERY_SECONDS = 3600.0


class RedactingTrackerStore(SQLTrackerStore):
    """Writes every event redacted (bot/privacy.py); deletes conversations idle for too long."""

    def __init__(
        self,
        domain: Domain | None = None,
        host: str | None = None,
        event_broker: EventBroker | None = None,
        retention_days: int | str | None = 30,
        **kwargs: Any,
    ) -> None:
        super().__init__(domain=domain, host=host, event_broker=event_broker, **kwargs)
        self.retention_days = float(retention_days or 0)
        self._last_purge = 0.0
        engine: sa.engine.Engine = self.engine  # type: ignore[has-type]
        if engine.dialect.name == "sqlite":
            # SQLAlchemy 1.4 opens a new SQLite connection per session (NullPool): keep a few.
            engine.dispose()
            pooled = sa.create_engine(
                engine.url, poolclass=QueuePool, connect_args={"check_same_thread": False}
            )
            _write_ahead(pooled)
            self.engine = pooled
            self.sessionmaker = sessionmaker(bind=pooled)
        elif engine.dialect.name == "postgresql":
            # A connection is checked before use: after PostgreSQL restarts, the pool's dead
            # connections are replaced instead of failing one request each. Pool size from
            # SQL_POOL_SIZE / SQL_MAX_OVERFLOW (the launcher sizes them for several replicas).
            engine.dispose()
            checked = sa.create_engine(
                engine.url, pool_pre_ping=True, **create_engine_kwargs(engine.url)
            )
            self.engine = checked
            self.sessionmaker = sessionmaker(bind=checked)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Like SQLTrackerStore.save, but each new event is redacted first (broker included)."""
        if self.event_broker is not None:
            old = await self.retrieve(tracker.sender_id)
            new_events = TrackerEventDiffEngine.event_difference(old, tracker)
            for event in new_events:
                self.event_broker.publish({"sender_id": tracker.sender_id, **_redacted(event)})
        with self.session_scope() as session:
            for event in self._additional_events(session, tracker):
                data = _redacted(event)
                session.add(
                    self.SQLEvent(
                        sender_id=tracker.sender_id,
                        type_name=event.type_name,
                        timestamp=data.get("timestamp"),
                        intent_name=data.get("parse_data", {})
                        .get("intent", {})
                        .get(INTENT_NAME_KEY),
                        action_name=data.get("name"),
                        data=json.dumps(data),
                    )
                )
            session.commit()
        self.purge_if_due()

    def purge_if_due(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if self.retention_days <= 0 or now - self._last_purge < PURGE_EVERY_SECONDS:
            return
        self._last_purge = now
        try:
            deleted = self.purge(now - self.retention_days * DAY)
        except sa.exc.SQLAlchemyError:
            logger.exception("retention: purge failed; will try again in an hour")
            return
        if deleted:
            logger.info(
                "retention: deleted %d conversations idle for %g days", deleted, self.retention_days
            )

    def purge(self, cutoff: float) -> int:
        """Delete every conversation whose last event is older than ``cutoff`` (epoch seconds)."""
        event = self.SQLEvent
        stale = (
            sa.select(event.sender_id)
            .group_by(event.sender_id)
            .having(sa.func.max(event.timestamp) < cutoff)
        )
        with self.session_scope() as session:
            senders = [row[0] for row in session.execute(stale)]
            for start in range(0, len(senders), 500):
                batch = senders[start : start + 500]
                session.execute(sa.delete(event).where(event.sender_id.in_(batch)))
            session.commit()
        return len(senders)


def _write_ahead(engine: sa.engine.Engine) -> None:
    """SQLite in write-ahead mode, synced at checkpoints: a commit no longer waits for the disk
    (an fsync per message was the tracker store's largest cost); a crash of the machine may
    lose the last messages, never the file's consistency."""

    @sa.event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def _redacted(event: Event) -> dict[str, Any]:
    return redact_event(event.as_dict())
