"""Rasa's Redis lock store, made safe for several replicas.

Rasa 3.6's ``RedisLockStore`` keeps a conversation's ticket lock as one JSON value and changes
it by GET, change in Python, SET. Two replicas issuing a ticket at the same moment both read the
same lock and both write it back with "their" next number: they hold the same ticket, handle
the same conversation at once, and one of their tracker writes is lost (measured: 16
concurrent messages to one conversation on two replicas lost events in half the runs,
tests/e2e/test_scaled.py). Here every change of a lock is one optimistic Redis transaction
(WATCH the key, read, MULTI, write, EXEC; retried when another replica changed it meanwhile),
so tickets are unique and a lock is never deleted under a ticket just issued.

Configured in bot/endpoints.scaled.yml as ``type: bot.lock_store.AtomicRedisLockStore`` with
the same keys as Rasa's ``redis`` lock store.

``SQLiteLockStore`` is the same for the processes of one machine without Redis: the embedded
stack's Sanic workers (RASA_WORKERS, bot/endpoints.yml). Every change of a lock is one SQLite
transaction begun IMMEDIATE (the database's write lock taken before the read), in a file next
to the tracker store's.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

T = TypeVar("T")
# A lock whose every ticket has expired is useless; Redis drops the key a little later still.
KEY_GRACE_SECONDS = 60


class _AtomicTickets:
    """Rasa's ticket changes, each made by one atomic ``_change`` of the stored lock."""

    def _change(
        self,
        conversation_id: str,
        change: Callable[[TicketLock | None], tuple[bool, T]],
        *,
        create: bool = False,
        lifetime: float = LOCK_LIFETIME,
    ) -> T:
        """Apply ``change`` to the stored lock atomically (None if there is none, unless
        ``create``: then a new one); it returns (keep, result): the lock it changed is saved if
        ``keep``, else it is deleted."""
        raise NotImplementedError

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def issue(lock: TicketLock | None) -> tuple[bool, int]:
            assert lock is not None  # create=True
            return True, lock.issue_ticket(lock_lifetime)

        try:
            return self._change(conversation_id, issue, create=True, lifetime=lock_lifetime)
        except (redis.RedisError, sqlite3.Error) as e:
            raise LockError(f"Error while acquiring lock. Error:\n{e}") from e

    def update_lock(self, conversation_id: str) -> None:
        def drop_expired(lock: TicketLock | None) -> tuple[bool, None]:
            if lock is None:
                return False, None
            lock.remove_expired_tickets()
            return True, None

        self._change(conversation_id, drop_expired)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        def remove(lock: TicketLock | None) -> tuple[bool, None]:
            if lock is None:
                return False, None
            lock.remove_ticket_for(ticket_number)
            return True, None

        self._change(conversation_id, remove)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Remove our ticket and, in the same transaction, the lock if nobody else waits."""

        def remove(lock: TicketLock | None) -> tuple[bool, None]:
            if lock is None:
                return False, None
            lock.remove_ticket_for(ticket_number)
            return lock.is_someone_waiting(), None

        self._change(conversation_id, remove)


class AtomicRedisLockStore(_AtomicTickets, RedisLockStore):
    def __init__(
        self, endpoint_config: EndpointConfig | None = None, host: str = "localhost", **kwargs: Any
    ) -> None:
        # Rasa builds a lock store named by its module path from the endpoint's config alone.
        if endpoint_config is not None:
            host = endpoint_config.url or host
            kwargs = {**endpoint_config.kwargs, **kwargs}
            kwargs.pop("type", None)
        super().__init__(host=host, **kwargs)

    def _change(
        self,
        conversation_id: str,
        change: Callable[[TicketLock | None], tuple[bool, T]],
        *,
        create: bool = False,
        lifetime: float = LOCK_LIFETIME,
    ) -> T:
        key = self.key_prefix + conversation_id
        with self.red.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    lock = TicketLock.from_dict(json.loads(raw)) if raw else None
                    if lock is None and create:
                        lock = TicketLock(conversation_id)
                    keep, result = change(lock)
                    pipe.multi()
                    if keep and lock is not None:
                        pipe.set(key, lock.dumps(), ex=int(lifetime) + KEY_GRACE_SECONDS)
                    else:
                        pipe.delete(key)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue  # another replica changed this lock meanwhile: read it again


class SQLiteLockStore(_AtomicTickets, LockStore):
    def __init__(
        self, endpoint_config: EndpointConfig | None = None, path: str | None = None
    ) -> None:
        if endpoint_config is not None:
            path = path or endpoint_config.kwargs.get("path")
        if not path:
            raise LockError("the SQLite lock store needs a path")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self._local = threading.local()
        with self._connection() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS locks (conversation_id TEXT PRIMARY KEY, data TEXT)"
            )

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def _change(
        self,
        conversation_id: str,
        change: Callable[[TicketLock | None], tuple[bool, T]],
        *,
        create: bool = False,
        lifetime: float = LOCK_LIFETIME,
    ) -> T:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT data FROM locks WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
            lock = TicketLock.from_dict(json.loads(row[0])) if row else None
            if lock is None and create:
                lock = TicketLock(conversation_id)
            keep, result = change(lock)
            if keep and lock is not None:
                db.execute(
                    "INSERT OR REPLACE INTO locks (conversation_id, data) VALUES (?, ?)",
                    (conversation_id, lock.dumps()),
                )
            else:
                db.execute("DELETE FROM locks WHERE conversation_id = ?", (conversation_id,))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    def get_lock(self, conversation_id: str) -> TicketLock | None:
        row = (
            self._connection()
            .execute("SELECT data FROM locks WHERE conversation_id = ?", (conversation_id,))
            .fetchone()
        )
        return TicketLock.from_dict(json.loads(row[0])) if row else None

    def delete_lock(self, conversation_id: str) -> None:
        self._change(conversation_id, lambda lock: (False, None))

    def save_lock(self, lock: TicketLock) -> None:
        self._change(lock.conversation_id, lambda _: (True, None), create=True)
