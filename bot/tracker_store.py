"""Rasa's SQL tracker store with personal data redacted before it is written, and a retention.

Configured in bot/endpoints*.yml as ``type: bot.tracker_store.RedactingTrackerStore`` with the
SQL store's usual keys (``dialect``, ``db``, ``url``...) plus ``retention_days``. Same code for
SQLite on a laptop and PostgreSQL shared by several replicas. What is redacted, and why the
conversation still works: docs/PRIVACY.md.

Each process keeps the latest session of its recent conversations as events (redacted, as the
database holds them), checked against the database by one indexed query at every read: the row
count and the highest row id of the conversation. Unchanged, the tracker is rebuilt from the
kept events; rows appended by another process (another Sanic worker or replica) are read and
appended; anything else (a new session, a deletion) reads the session again, as Rasa does.
Reading and decoding every event of the session at every message was a tenth of Rasa's CPU
(docs/PERFORMANCE.md).
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import (
    SQLTrackerStore,
    TrackerEventDiffEngine,
    create_engine_kwargs,
)
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

from bot.privacy import redact_event

logger = logging.getLogger(__name__)

DAY = 86400.0
PURGE_EVERY_SECONDS = 3600.0
CACHED_CONVERSATIONS = 500  # per process; a bench conversation's session is ~60 events
CACHE_SECONDS = 600.0  # an entry older than this is read again in full


@dataclass
class _Session:
    """What the database holds for one conversation, as of the last read or write here."""

    rows: int  # the conversation's rows, every session
    last_id: int
    events: list[Event]  # the latest session's, as ``retrieve`` returns them
    at: float


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
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
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

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The latest session, like SQLTrackerStore.retrieve, from the kept events if current."""
        with self.session_scope() as session:
            kept = self._current(session, sender_id)
        if kept is None or not kept.events or self.domain is None:
            return None
        return DialogueStateTracker.from_events(
            sender_id, list(kept.events), slots=self.domain.slots
        )

    def _state(self, session: Any, sender_id: str) -> tuple[int, int]:
        event = self.SQLEvent
        rows, last_id = session.execute(
            sa.select(sa.func.count(event.id), sa.func.max(event.id)).where(
                event.sender_id == sender_id
            )
        ).one()
        return int(rows), int(last_id or 0)

    def _current(self, session: Any, sender_id: str) -> _Session | None:
        """The conversation's latest session as the database has it now, kept for next time."""
        rows, last_id = self._state(session, sender_id)
        kept = self._sessions.pop(sender_id, None)
        if rows == 0:
            return None
        now = time.monotonic()
        if kept is not None and now - kept.at > CACHE_SECONDS:
            kept = None
        if kept is not None and (kept.rows, kept.last_id) != (rows, last_id):
            kept = self._appended(session, sender_id, kept, rows, last_id)
        if kept is None:
            found = self._event_query(session, sender_id, fetch_events_from_all_sessions=False)
            kept = _Session(rows, last_id, _decoded(row.data for row in found.all()), now)
        self._keep(sender_id, kept)
        return kept

    def _appended(
        self, session: Any, sender_id: str, kept: _Session, rows: int, last_id: int
    ) -> _Session | None:
        """Rows another process appended to the kept session, or None to read it all again."""
        if rows <= kept.rows:
            return None
        event = self.SQLEvent
        new = session.execute(
            sa.select(event.type_name, event.data)
            .where(event.sender_id == sender_id, event.id > kept.last_id)
            .order_by(event.id)
        ).all()
        if len(new) != rows - kept.rows or any(
            row.type_name == SessionStarted.type_name for row in new
        ):
            return None
        return _Session(rows, last_id, kept.events + _decoded(row.data for row in new), kept.at)

    def _keep(self, sender_id: str, kept: _Session) -> None:
        self._sessions[sender_id] = kept
        while len(self._sessions) > CACHED_CONVERSATIONS:
            self._sessions.popitem(last=False)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Like SQLTrackerStore.save, but each new event is redacted first (broker included)."""
        if self.event_broker is not None:
            old = await self.retrieve(tracker.sender_id)
            new_events = TrackerEventDiffEngine.event_difference(old, tracker)
            for event in new_events:
                self.event_broker.publish({"sender_id": tracker.sender_id, **_redacted(event)})
        sender_id = tracker.sender_id
        with self.session_scope() as session:
            kept = self._current(session, sender_id)
            stored = 0 if kept is None else len(kept.events)
            rows = []
            for event in list(tracker.events)[stored:]:
                data = _redacted(event)
                rows.append(
                    self.SQLEvent(
                        sender_id=sender_id,
                        type_name=event.type_name,
                        timestamp=data.get("timestamp"),
                        intent_name=data.get("parse_data", {})
                        .get("intent", {})
                        .get(INTENT_NAME_KEY),
                        action_name=data.get("name"),
                        data=json.dumps(data),
                    )
                )
            session.add_all(rows)
            session.flush()  # gives the rows their ids
            # Read before the commit, which expires the rows: each read after it is a SELECT.
            written = [(int(row.id), row.type_name, row.data) for row in rows]
            session.commit()
            self._sessions.pop(sender_id, None)
            if (
                kept is not None
                and written
                and all(type_name != SessionStarted.type_name for _, type_name, _ in written)
            ):
                self._keep(
                    sender_id,
                    _Session(
                        kept.rows + len(written),
                        max(row_id for row_id, _, _ in written),
                        kept.events + _decoded(data for _, _, data in written),
                        kept.at,
                    ),
                )
            elif kept is not None and not written:
                self._keep(sender_id, kept)
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


def _decoded(data: Any) -> list[Event]:
    """Events as Rasa's SQL store makes them from its rows' JSON."""
    from rasa.shared.core.events import deserialise_events

    return deserialise_events([json.loads(text) for text in data])
