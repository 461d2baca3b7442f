"""Channel state: the same behaviour from SQLite (embedded) and Redis (shared by replicas).

The behaviour tests run against both; "a second store" is what a restart or another replica
sees (a new object on the same file, or on the same Redis). Then what only one of them has:
SQLite's pruning and file, Redis down and back.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from redis import Redis

from bot.channels.state import (
    DEFAULT_RETENTION_SECONDS,
    ChannelState,
    RedisChannelState,
    SqliteChannelState,
    StateUnavailable,
    default_channel_state,
    state_db_path,
)
from bot.settings import ROOT
from tests.redis_server import RedisServer, free_port

MakeState = Callable[..., ChannelState]


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rows(path: Path) -> list[tuple[str, str, float]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT channel, item_id, seen_at FROM seen_ids ORDER BY seen_at"
        ).fetchall()


@pytest.fixture(params=["sqlite", "redis"])
async def make_state(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeState]:
    """Builds store objects on one shared backing: one file, or one Redis server."""
    made: list[ChannelState] = []
    if request.param == "sqlite":

        def make(**options: float) -> ChannelState:
            made.append(SqliteChannelState(tmp_path / "state.db", **options))
            return made[-1]

    else:
        server: RedisServer = request.getfixturevalue("redis_server")

        def make(**options: float) -> ChannelState:
            made.append(RedisChannelState(server.url, **options))
            return made[-1]

    yield make
    for state in made:
        await state.aclose()


@pytest.fixture
def store(make_state: MakeState) -> ChannelState:
    return make_state()


async def test_an_id_is_new_once_per_channel(store):
    assert await store.seen_before("telegram", "7") is False
    assert await store.seen_before("telegram", "7") is True
    assert await store.seen_before("zalo", "7") is False  # channels do not share ids


async def test_a_second_store_on_the_same_backing_remembers(make_state):
    """What a restart, or another replica, sees."""
    first, second = make_state(), make_state()
    assert await first.seen_before("zalo", "msg:1") is False
    await first.aclose()
    assert await second.seen_before("zalo", "msg:1") is True
    assert await second.seen_before("zalo", "msg:2") is False
    await first.put("zalo", "choices:u1", '["/a", "/b"]', 60)  # a closed store opens again
    assert await second.get("zalo", "choices:u1") == '["/a", "/b"]'
    assert await second.pop("zalo", "choices:u1") == '["/a", "/b"]'
    assert await first.get("zalo", "choices:u1") is None


async def test_insert_if_new_is_atomic_under_concurrency(make_state):
    stores = [make_state() for _ in range(4)]  # four connections, as four processes
    answers = await asyncio.gather(
        *(stores[i % 4].seen_before("telegram", "42") for i in range(40))
    )
    assert answers.count(False) == 1


async def test_put_get_pop(store):
    assert await store.get("telegram", "callback:x") is None
    assert await store.pop("telegram", "callback:x") is None
    await store.put("telegram", "callback:x", '/inform{"a": 1}', 60)
    assert await store.get("telegram", "callback:x") == '/inform{"a": 1}'
    assert await store.get("telegram", "callback:x") == '/inform{"a": 1}'  # get keeps it
    assert await store.get("zalo", "callback:x") is None  # channels do not share values
    await store.put("telegram", "callback:x", "replaced", 60)
    assert await store.pop("telegram", "callback:x") == "replaced"
    assert await store.pop("telegram", "callback:x") is None  # pop takes it
    await store.put("telegram", "language:1", "vi ✓ tiếng Việt", 60)
    assert await store.get("telegram", "language:1") == "vi ✓ tiếng Việt"


async def test_only_one_of_many_pops_gets_the_value(make_state):
    stores = [make_state() for _ in range(4)]
    await stores[0].put("zalo", "choices:u", "[1]", 60)
    got = await asyncio.gather(*(stores[i % 4].pop("zalo", "choices:u") for i in range(20)))
    assert got.count("[1]") == 1 and got.count(None) == 19


async def test_values_expire_after_their_ttl(store):
    await store.put("zalo", "short", "v", 0.2)
    await store.put("zalo", "long", "v", 60)
    assert await store.get("zalo", "short") == "v"
    await asyncio.sleep(0.35)
    assert await store.get("zalo", "short") is None
    assert await store.pop("zalo", "short") is None
    assert await store.get("zalo", "long") == "v"


async def test_ids_expire_after_the_retention(make_state):
    store = make_state(retention_seconds=1)
    assert await store.seen_before("telegram", "1") is False
    assert await store.seen_before("telegram", "1") is True
    await asyncio.sleep(1.2)
    assert await store.seen_before("telegram", "1") is False  # recorded afresh
    assert await store.seen_before("telegram", "1") is True


# SQLite only: the file, the clock, pruning.


async def test_sqlite_entries_expire_after_the_retention_by_its_clock(tmp_path):
    clock = Clock(1_000.0)
    seen = SqliteChannelState(tmp_path / "state.db", retention_seconds=100, clock=clock)
    try:
        assert await seen.seen_before("telegram", "1") is False
        clock.now += 99
        assert await seen.seen_before("telegram", "1") is True
        clock.now += 2  # 101 s after it was first recorded
        assert await seen.seen_before("telegram", "1") is False
        assert await seen.seen_before("telegram", "1") is True  # recorded afresh
        await seen.put("zalo", "k", "v", 10)
        clock.now += 11
        assert await seen.get("zalo", "k") is None
    finally:
        await seen.aclose()


async def test_expired_entries_are_pruned_now_and_then_not_on_every_call(tmp_path):
    path = tmp_path / "state.db"
    clock = Clock(0.0)
    seen = SqliteChannelState(path, retention_seconds=100, prune_every_seconds=1_000, clock=clock)
    try:
        await seen.seen_before("telegram", "a")  # t=0, the first call prunes (nothing yet)
        await seen.put("zalo", "choices:u", "[]", 10)
        clock.now = 150
        await seen.seen_before("telegram", "b")  # "a" has expired, but no prune is due
        assert [row[1] for row in rows(path)] == ["a", "b"]
        clock.now = 1_000
        await seen.seen_before("zalo", "c")  # prune due: everything before t=900 goes
        assert rows(path) == [("zalo", "c", 1_000.0)]
        with sqlite3.connect(path) as connection:
            assert connection.execute("SELECT count(*) FROM channel_values").fetchone() == (0,)
    finally:
        await seen.aclose()


async def test_the_first_call_after_a_restart_prunes(tmp_path):
    path = tmp_path / "state.db"
    clock = Clock(0.0)
    before = SqliteChannelState(path, retention_seconds=100, clock=clock)
    await before.seen_before("telegram", "old")
    await before.aclose()
    clock.now = 500
    after = SqliteChannelState(path, retention_seconds=100, clock=clock)
    try:
        await after.seen_before("telegram", "new")
    finally:
        await after.aclose()
    assert [row[1] for row in rows(path)] == ["new"]


async def test_a_file_of_the_previous_version_gets_the_values_table(tmp_path):
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE seen_ids (channel TEXT NOT NULL, item_id TEXT NOT NULL, "
            "seen_at REAL NOT NULL, PRIMARY KEY (channel, item_id)) WITHOUT ROWID"
        )
        connection.execute("INSERT INTO seen_ids VALUES ('telegram', '9', ?)", (time.time(),))
    state = SqliteChannelState(path)
    try:
        assert await state.seen_before("telegram", "9") is True
        await state.put("zalo", "k", "v", 60)
        assert await state.get("zalo", "k") == "v"
    finally:
        await state.aclose()


async def test_the_file_is_made_on_first_use_in_wal_mode(tmp_path):
    path = tmp_path / "nested" / "dir" / "state.db"
    seen = SqliteChannelState(path)
    assert not path.parent.exists()  # building the store touches nothing
    try:
        await seen.seen_before("telegram", "1")
    finally:
        await seen.aclose()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_a_store_that_cannot_open_raises_state_unavailable(tmp_path):
    seen = SqliteChannelState(tmp_path)  # a directory, not a database file
    for call in (
        seen.seen_before("telegram", "1"),
        seen.put("zalo", "k", "v", 1),
        seen.get("zalo", "k"),
        seen.pop("zalo", "k"),
    ):
        with pytest.raises(StateUnavailable):
            await call
    await seen.aclose()


# Redis only: down and back, what it holds.


async def test_redis_down_raises_state_unavailable_quickly_and_recovers(redis_server):
    state = RedisChannelState(redis_server.url, timeout_seconds=0.5)
    try:
        assert await state.seen_before("telegram", "1") is False
        await state.put("zalo", "choices:u", "[1]", 60)
        redis_server.stop()
        for call in (
            state.seen_before("telegram", "2"),
            state.put("zalo", "k", "v", 60),
            state.get("zalo", "k"),
            state.pop("zalo", "k"),
        ):
            started = time.monotonic()
            with pytest.raises(StateUnavailable):
                await call
            assert time.monotonic() - started < 2.0
        redis_server.start()  # the same port, empty (no persistence)
        assert await state.seen_before("telegram", "2") is False  # same object, no restart
        assert await state.seen_before("telegram", "2") is True
        await state.put("zalo", "k", "v", 60)
        assert await state.pop("zalo", "k") == "v"
    finally:
        await state.aclose()


async def test_every_redis_key_expires_and_the_layout_is_documented(redis_server):
    state = RedisChannelState(redis_server.url, retention_seconds=3600)
    try:
        await state.seen_before("telegram", "123")
        await state.put("zalo", "choices:u1", "[]", 60)
    finally:
        await state.aclose()
    with Redis.from_url(redis_server.url, decode_responses=True) as client:
        keys = sorted(client.scan_iter("*"))
        assert keys == ["civic:channel:telegram:seen:123", "civic:channel:zalo:value:choices:u1"]
        assert 3590 < client.ttl(keys[0]) <= 3600
        assert 0 < client.pttl(keys[1]) <= 60_000


async def test_a_redis_error_never_shows_the_password():
    port = free_port()  # nothing listens there
    state = RedisChannelState(f"redis://:hunter2-secret@127.0.0.1:{port}/1", timeout_seconds=0.5)
    with pytest.raises(StateUnavailable) as raised:
        await state.seen_before("telegram", "1")
    assert "hunter2" not in str(raised.value)
    assert f"127.0.0.1:{port}/1" in str(raised.value)
    await state.aclose()


# Which store: one variable, read in one place.


def test_sqlite_unless_shared_state_url_is_set(monkeypatch, tmp_path):
    assert state_db_path({}) == ROOT / "var" / "channel_state.db"
    assert state_db_path({"CHANNEL_STATE_DB": "/srv/state.db"}) == Path("/srv/state.db")
    monkeypatch.delenv("SHARED_STATE_URL", raising=False)
    monkeypatch.setenv("CHANNEL_STATE_DB", str(tmp_path / "x.db"))
    state = default_channel_state()
    assert isinstance(state, SqliteChannelState)
    assert state.path == tmp_path / "x.db"
    assert state.retention_seconds == DEFAULT_RETENTION_SECONDS == 3 * 24 * 3600

    monkeypatch.setenv("SHARED_STATE_URL", "redis://:pw@10.0.0.5:6390/1")
    shared = default_channel_state()
    assert isinstance(shared, RedisChannelState)
    assert shared.url == "redis://:pw@10.0.0.5:6390/1"
    assert isinstance(default_channel_state({"SHARED_STATE_URL": " "}), SqliteChannelState)


def test_a_shared_state_url_that_is_not_redis_is_refused_without_its_password():
    with pytest.raises(ValueError) as raised:
        default_channel_state({"SHARED_STATE_URL": "postgresql://u:s3cret@db/x"})
    assert "s3cret" not in str(raised.value) and "SHARED_STATE_URL" in str(raised.value)


async def test_a_redis_that_hangs_counts_as_down_after_the_timeout(redis_server):
    state = RedisChannelState(redis_server.url, timeout_seconds=0.3)
    try:
        assert await state.seen_before("zalo", "1") is False  # connected
        assert redis_server.process is not None
        redis_server.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(StateUnavailable):
                await state.seen_before("zalo", "2")
            assert time.monotonic() - started < 1.0
        finally:
            redis_server.process.send_signal(signal.SIGCONT)
        assert await state.seen_before("zalo", "3") is False
    finally:
        await state.aclose()
