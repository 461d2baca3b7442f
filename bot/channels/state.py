"""Channel state that must outlive a restart, shared by the channels: de-duplication for now.

A platform redelivers an update it thinks we missed (Telegram after a non-2xx or a timeout, for
up to a day; Zalo on its own schedule). An in-memory set forgets everything on restart, so a
redelivery after a restart was handled twice. ``SeenIds`` is the narrow interface the channels
use; ``SqliteSeenIds`` is the embedded default, a file shared by every process on one host
(``CHANNEL_STATE_DB``, default ``var/channel_state.db``). Several Rasa replicas on several hosts
need a shared server instead: a Redis ``SET key 1 NX EX <retention>`` implements the same
``seen_before`` in one call and slots in behind the same Protocol.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

from bot.settings import ROOT

logger = logging.getLogger(__name__)

STATE_DB_ENV = "CHANNEL_STATE_DB"
DEFAULT_STATE_DB = ROOT / "var" / "channel_state.db"
# Telegram keeps an unconfirmed update for 24 hours; three days covers that with room to spare.
DEFAULT_RETENTION_SECONDS = 3 * 24 * 3600.0
DEFAULT_PRUNE_EVERY_SECONDS = 3600.0
BUSY_TIMEOUT_SECONDS = 5.0

Clock = Callable[[], float]
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_ids (
    channel TEXT NOT NULL,
    item_id TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (channel, item_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_ids_seen_at ON seen_ids (seen_at);
"""
# One statement, so "insert if new" is atomic across coroutines, threads and processes. A row
# older than the retention counts as new (it is refreshed), even before pruning deletes it.
_RECORD = """
INSERT INTO seen_ids (channel, item_id, seen_at) VALUES (?, ?, ?)
ON CONFLICT (channel, item_id) DO UPDATE SET seen_at = excluded.seen_at
WHERE seen_ids.seen_at < ?
"""
_PRUNE = "DELETE FROM seen_ids WHERE seen_at < ?"


class StateUnavailable(Exception):
    """The state store could not be read or written; the caller should not guess."""


class SeenIds(Protocol):
    """Which platform ids a channel has already handled."""

    async def seen_before(self, channel: str, item_id: str) -> bool:
        """Record ``item_id`` for ``channel``; ``True`` if it was already recorded.

        Raises ``StateUnavailable`` when the store cannot answer.
        """
        ...

    async def aclose(self) -> None: ...


def state_db_path(env: Mapping[str, str] | None = None) -> Path:
    """``CHANNEL_STATE_DB`` if set, else ``var/channel_state.db`` under the project root."""
    env = os.environ if env is None else env
    configured = env.get(STATE_DB_ENV)
    return Path(configured) if configured else DEFAULT_STATE_DB


class SqliteSeenIds:
    """``SeenIds`` in one SQLite table (WAL mode), opened on first use.

    Every call runs on the store's own single worker thread: a commit is usually tens of
    microseconds, but it can wait for another process's write lock (up to the busy timeout) or
    for the disk during a WAL checkpoint, and that must not stall the event loop. One thread
    also keeps the connection in the thread that made it and serialises our writes without a
    lock. ``synchronous=NORMAL``: a committed id survives a crash of the process; a power loss
    may forget the last few, which at worst lets one redelivery through.
    """

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        prune_every_seconds: float = DEFAULT_PRUNE_EVERY_SECONDS,
        clock: Clock = time.time,
    ) -> None:
        self.path = Path(path) if path is not None else state_db_path()
        self.retention_seconds = retention_seconds
        self.prune_every_seconds = prune_every_seconds
        self.clock = clock
        self._next_prune = float("-inf")  # the first call prunes what expired while we were down
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None

    async def seen_before(self, channel: str, item_id: str) -> bool:
        now = self.clock()
        prune = now >= self._next_prune
        if prune:
            self._next_prune = now + self.prune_every_seconds
        return await self._run(self._record, channel, item_id, now, prune)

    async def aclose(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._close)
        finally:
            executor.shutdown(wait=False)

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="channel-state")
        call = functools.partial(function, *args)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except (sqlite3.Error, OSError) as exc:
            raise StateUnavailable(f"{self.path}: {type(exc).__name__}: {exc}") from exc

    # The methods below run on the store's thread only.

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None
            )
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.executescript(_SCHEMA)
            except sqlite3.Error:
                connection.close()
                raise
            self._connection = connection
            logger.debug("channel state: opened %s", self.path)
        return self._connection

    def _record(self, channel: str, item_id: str, now: float, prune: bool) -> bool:
        connection = self._connect()
        expired_before = now - self.retention_seconds
        if prune:
            deleted = connection.execute(_PRUNE, (expired_before,)).rowcount
            if deleted:
                logger.debug("channel state: %s expired ids pruned", deleted)
        changed = connection.execute(_RECORD, (channel, item_id, now, expired_before)).rowcount
        return changed == 0

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def default_seen_ids() -> SeenIds:
    """The store a channel uses unless it is given one: SQLite at ``state_db_path()``."""
    return SqliteSeenIds(state_db_path())
