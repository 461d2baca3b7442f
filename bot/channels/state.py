"""Channel state that must outlive a restart and be shared by every Rasa replica.

What a channel keeps between two messages of a conversation:

- de-duplication: a platform redelivers an update it thinks we missed (Telegram after a non-2xx
  or a timeout, for up to a day; Zalo on its own schedule), so each platform id is recorded once
  (``seen_before``), kept ``DEFAULT_RETENTION_SECONDS`` (3 days);
- short-lived values with a time to live (``put``/``get``/``pop``): Zalo's numbered choices
  (until the next message, at most a day), Telegram's long button payloads (7 days) and a chat's
  ``/lang`` choice (30 days).

``ChannelState`` is the narrow interface the channels use, with two implementations chosen by
one setting, read in one place (``default_channel_state``):

- ``SHARED_STATE_URL`` unset: ``SqliteChannelState``, the embedded default, one file shared by
  every process on one host (``CHANNEL_STATE_DB``, default ``var/channel_state.db``);
- ``SHARED_STATE_URL=redis://[:password@]host:port/db``: ``RedisChannelState``, shared by
  replicas on several hosts (``SET NX EX`` for an id, ``SET PX``/``GET``/``GETDEL`` for values).

Either raises ``StateUnavailable`` when it cannot answer (file unreadable, Redis down or slow);
the webhooks then answer 503 so the platform delivers again, and the next call tries afresh (a
Redis back up is used again without a restart). Values hold button payloads and language codes,
no message text; keys hold platform ids (Telegram chat id, Zalo user id), as the tracker store
does.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.settings import ROOT

logger = logging.getLogger(__name__)

STATE_DB_ENV = "CHANNEL_STATE_DB"
SHARED_STATE_ENV = "SHARED_STATE_URL"
DEFAULT_STATE_DB = ROOT / "var" / "channel_state.db"
# Telegram keeps an unconfirmed update for 24 hours; three days covers that with room to spare.
DEFAULT_RETENTION_SECONDS = 3 * 24 * 3600.0
DEFAULT_PRUNE_EVERY_SECONDS = 3600.0
BUSY_TIMEOUT_SECONDS = 5.0
# A webhook must answer within a few seconds (Zalo: about 2): a Redis that does not answer in
# this long counts as down for this call.
REDIS_TIMEOUT_SECONDS = 1.5
REDIS_KEY_PREFIX = "civic:channel:"
REDIS_SCHEMES = ("redis", "rediss", "unix")

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
CREATE TABLE IF NOT EXISTS channel_values (
    channel TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (channel, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS channel_values_expires_at ON channel_values (expires_at);
"""
# One statement, so "insert if new" is atomic across coroutines, threads and processes. A row
# older than the retention counts as new (it is refreshed), even before pruning deletes it.
_RECORD = """
INSERT INTO seen_ids (channel, item_id, seen_at) VALUES (?, ?, ?)
ON CONFLICT (channel, item_id) DO UPDATE SET seen_at = excluded.seen_at
WHERE seen_ids.seen_at < ?
"""
_PRUNE = "DELETE FROM seen_ids WHERE seen_at < ?"
_PUT = """
INSERT INTO channel_values (channel, key, value, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (channel, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
"""
_GET = "SELECT value FROM channel_values WHERE channel = ? AND key = ? AND expires_at > ?"
# One statement again: of two processes popping the same value, only one gets it.
_POP = "DELETE FROM channel_values WHERE channel = ? AND key = ? RETURNING value, expires_at"
_PRUNE_VALUES = "DELETE FROM channel_values WHERE expires_at <= ?"


class StateUnavailable(Exception):
    """The state store could not be read or written; the caller should not guess."""


class ChannelState(Protocol):
    """What the channels keep between messages: handled platform ids, short-lived values.

    Every method raises ``StateUnavailable`` when the store cannot answer.
    """

    async def seen_before(self, channel: str, item_id: str) -> bool:
        """Record ``item_id`` for ``channel``; ``True`` if it was already recorded."""
        ...

    async def put(self, channel: str, key: str, value: str, ttl_seconds: float) -> None:
        """Keep ``value`` under ``key`` for ``ttl_seconds`` (replacing what was there)."""
        ...

    async def get(self, channel: str, key: str) -> str | None:
        """The value under ``key``, if it has not expired."""
        ...

    async def pop(self, channel: str, key: str) -> str | None:
        """The value under ``key``, removed: of several callers, only one gets it."""
        ...

    async def aclose(self) -> None: ...


def state_db_path(env: Mapping[str, str] | None = None) -> Path:
    """``CHANNEL_STATE_DB`` if set, else ``var/channel_state.db`` under the project root."""
    env = os.environ if env is None else env
    configured = env.get(STATE_DB_ENV)
    return Path(configured) if configured else DEFAULT_STATE_DB


def redacted_url(url: str) -> str:
    """A Redis URL fit for a log line or an error: scheme, host, port and path, no password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def check_redis_url(url: str) -> str:
    """The URL if it names a Redis server; ``ValueError`` (without the password) otherwise."""
    if urlsplit(url).scheme not in REDIS_SCHEMES:
        raise ValueError(
            f"{SHARED_STATE_ENV} must be a redis://, rediss:// or unix:// URL, "
            f"not {redacted_url(url)!r}"
        )
    return url


class SqliteChannelState:
    """``ChannelState`` in two SQLite tables (WAL mode), opened on first use.

    Every call runs on the store's own single worker thread: a commit is usually tens of
    microseconds, but it can wait for another process's write lock (up to the busy timeout) or
    for the disk during a WAL checkpoint, and that must not stall the event loop. One thread
    also keeps the connection in the thread that made it and serialises our writes without a
    lock. ``synchronous=NORMAL``: a committed id survives a crash of the process; a power loss
    may forget the last few, which at worst lets one redelivery through. Expired rows are
    ignored at once and deleted once an hour (``prune_every_seconds``).
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
        return await self._run(self._record, channel, item_id)

    async def put(self, channel: str, key: str, value: str, ttl_seconds: float) -> None:
        await self._run(self._put, channel, key, value, ttl_seconds)

    async def get(self, channel: str, key: str) -> str | None:
        return await self._run(self._get, channel, key)

    async def pop(self, channel: str, key: str) -> str | None:
        return await self._run(self._pop, channel, key)

    async def aclose(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._close)
        finally:
            executor.shutdown(wait=False)

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        """Run ``function(connection, now, *args)`` on the store's thread, pruning when due."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="channel-state")
        now = self.clock()
        prune = now >= self._next_prune
        if prune:
            self._next_prune = now + self.prune_every_seconds
        call = functools.partial(self._in_thread, function, now, prune, *args)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except (sqlite3.Error, OSError) as exc:
            raise StateUnavailable(f"{self.path}: {type(exc).__name__}: {exc}") from exc

    # The methods below run on the store's thread only.

    def _in_thread(self, function: Callable[..., T], now: float, prune: bool, *args: object) -> T:
        connection = self._connect()
        if prune:
            self._prune(connection, now)
        return function(connection, now, *args)

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

    def _prune(self, connection: sqlite3.Connection, now: float) -> None:
        ids = connection.execute(_PRUNE, (now - self.retention_seconds,)).rowcount
        values = connection.execute(_PRUNE_VALUES, (now,)).rowcount
        if ids or values:
            logger.debug("channel state: %s expired ids and %s values pruned", ids, values)

    def _record(self, connection: sqlite3.Connection, now: float, channel: str, item: str) -> bool:
        expired_before = now - self.retention_seconds
        changed = connection.execute(_RECORD, (channel, item, now, expired_before)).rowcount
        return changed == 0

    def _put(
        self,
        connection: sqlite3.Connection,
        now: float,
        channel: str,
        key: str,
        value: str,
        ttl_seconds: float,
    ) -> None:
        connection.execute(_PUT, (channel, key, value, now + ttl_seconds))

    def _get(
        self, connection: sqlite3.Connection, now: float, channel: str, key: str
    ) -> str | None:
        row = connection.execute(_GET, (channel, key, now)).fetchone()
        return str(row[0]) if row else None

    def _pop(
        self, connection: sqlite3.Connection, now: float, channel: str, key: str
    ) -> str | None:
        row = connection.execute(_POP, (channel, key)).fetchone()
        return str(row[0]) if row and row[1] > now else None

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


class RedisChannelState:
    """``ChannelState`` on a Redis server shared by every replica (``redis.asyncio``).

    Keys: ``civic:channel:<channel>:seen:<id>`` (``SET 1 NX EX <retention>``: one round trip,
    atomic) and ``civic:channel:<channel>:value:<key>`` (``SET PX``, ``GET``, ``GETDEL``); Redis
    expires them itself, nothing to prune. The client connects on first use, in the running
    event loop, and after a failure the next call connects afresh: a Redis restarted is used
    again without restarting us. Errors never show the URL's password.
    """

    def __init__(
        self,
        url: str,
        *,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        timeout_seconds: float = REDIS_TIMEOUT_SECONDS,
        prefix: str = REDIS_KEY_PREFIX,
    ) -> None:
        self.url = check_redis_url(url)
        self.retention_seconds = retention_seconds
        self.timeout_seconds = timeout_seconds
        self.prefix = prefix
        self._client: Redis | None = None

    @property
    def client(self) -> Redis:
        if self._client is None:
            self._client = Redis.from_url(
                self.url,
                socket_timeout=self.timeout_seconds,
                socket_connect_timeout=self.timeout_seconds,
                decode_responses=True,
            )
        return self._client

    def key(self, channel: str, kind: str, name: str) -> str:
        return f"{self.prefix}{channel}:{kind}:{name}"

    async def seen_before(self, channel: str, item_id: str) -> bool:
        ttl = max(1, math.ceil(self.retention_seconds))
        created = await self._call(
            self.client.set(self.key(channel, "seen", item_id), "1", nx=True, ex=ttl)
        )
        return not created

    async def put(self, channel: str, key: str, value: str, ttl_seconds: float) -> None:
        ttl_ms = max(1, math.ceil(ttl_seconds * 1000))
        await self._call(self.client.set(self.key(channel, "value", key), value, px=ttl_ms))

    async def get(self, channel: str, key: str) -> str | None:
        value = await self._call(self.client.get(self.key(channel, "value", key)))
        return None if value is None else str(value)

    async def pop(self, channel: str, key: str) -> str | None:
        value = await self._call(self.client.getdel(self.key(channel, "value", key)))
        return None if value is None else str(value)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close(close_connection_pool=True)

    async def _call(self, command: Awaitable[T]) -> T:
        try:
            return await command
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            raise StateUnavailable(f"{redacted_url(self.url)}: {type(exc).__name__}") from exc


def default_channel_state(env: Mapping[str, str] | None = None) -> ChannelState:
    """The store a channel uses unless it is given one: Redis at ``SHARED_STATE_URL`` if set,
    else SQLite at ``state_db_path()``. The only place these variables are read."""
    env = os.environ if env is None else env
    url = env.get(SHARED_STATE_ENV, "").strip()
    if url:
        return RedisChannelState(url)
    return SqliteChannelState(state_db_path(env))
