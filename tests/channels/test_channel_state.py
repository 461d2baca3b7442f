"""The persistent de-duplication store: insert-if-new, shared across restarts, expiry, pruning."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.channels.state import (
    DEFAULT_RETENTION_SECONDS,
    SeenIds,
    SqliteSeenIds,
    StateUnavailable,
    default_seen_ids,
    state_db_path,
)
from bot.settings import ROOT


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


@pytest.fixture
async def store(tmp_path: Path):
    seen = SqliteSeenIds(tmp_path / "state.db")
    yield seen
    await seen.aclose()


async def test_an_id_is_new_once_per_channel(store):
    assert await store.seen_before("telegram", "7") is False
    assert await store.seen_before("telegram", "7") is True
    assert await store.seen_before("zalo", "7") is False  # channels do not share ids


async def test_a_new_instance_on_the_same_file_remembers(tmp_path):
    """What a restart (or a second process on the same host) sees."""
    path = tmp_path / "state.db"
    first = SqliteSeenIds(path)
    assert await first.seen_before("zalo", "msg:1") is False
    await first.aclose()
    second = SqliteSeenIds(path)
    try:
        assert await second.seen_before("zalo", "msg:1") is True
        assert await second.seen_before("zalo", "msg:2") is False
    finally:
        await second.aclose()


async def test_insert_if_new_is_atomic_under_concurrency(tmp_path):
    path = tmp_path / "state.db"
    stores = [SqliteSeenIds(path) for _ in range(4)]  # four connections, as four processes
    try:
        answers = await asyncio.gather(
            *(stores[i % 4].seen_before("telegram", "42") for i in range(40))
        )
    finally:
        for seen in stores:
            await seen.aclose()
    assert answers.count(False) == 1


async def test_entries_expire_after_the_retention(tmp_path):
    clock = Clock(1_000.0)
    seen = SqliteSeenIds(tmp_path / "state.db", retention_seconds=100, clock=clock)
    try:
        assert await seen.seen_before("telegram", "1") is False
        clock.now += 99
        assert await seen.seen_before("telegram", "1") is True
        clock.now += 2  # 101 s after it was first recorded
        assert await seen.seen_before("telegram", "1") is False
        assert await seen.seen_before("telegram", "1") is True  # recorded afresh
    finally:
        await seen.aclose()


async def test_expired_entries_are_pruned_now_and_then_not_on_every_call(tmp_path):
    path = tmp_path / "state.db"
    clock = Clock(0.0)
    seen = SqliteSeenIds(path, retention_seconds=100, prune_every_seconds=1_000, clock=clock)
    try:
        await seen.seen_before("telegram", "a")  # t=0, the first call prunes (nothing yet)
        clock.now = 150
        await seen.seen_before("telegram", "b")  # "a" has expired, but no prune is due
        assert [row[1] for row in rows(path)] == ["a", "b"]
        clock.now = 1_000
        await seen.seen_before("zalo", "c")  # prune due: everything before t=900 goes
        assert rows(path) == [("zalo", "c", 1_000.0)]
    finally:
        await seen.aclose()


async def test_the_first_call_after_a_restart_prunes(tmp_path):
    path = tmp_path / "state.db"
    clock = Clock(0.0)
    before = SqliteSeenIds(path, retention_seconds=100, clock=clock)
    await before.seen_before("telegram", "old")
    await before.aclose()
    clock.now = 500
    after = SqliteSeenIds(path, retention_seconds=100, clock=clock)
    try:
        await after.seen_before("telegram", "new")
    finally:
        await after.aclose()
    assert [row[1] for row in rows(path)] == ["new"]


async def test_the_file_is_made_on_first_use_in_wal_mode(tmp_path):
    path = tmp_path / "nested" / "dir" / "state.db"
    seen = SqliteSeenIds(path)
    assert not path.parent.exists()  # building the store touches nothing
    try:
        await seen.seen_before("telegram", "1")
    finally:
        await seen.aclose()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_closed_store_opens_again_on_use(store):
    assert await store.seen_before("telegram", "1") is False
    await store.aclose()
    assert await store.seen_before("telegram", "1") is True


async def test_a_store_that_cannot_open_raises_state_unavailable(tmp_path):
    seen = SqliteSeenIds(tmp_path)  # a directory, not a database file
    with pytest.raises(StateUnavailable):
        await seen.seen_before("telegram", "1")
    await seen.aclose()


def test_path_comes_from_channel_state_db_else_var_under_the_root(monkeypatch, tmp_path):
    assert state_db_path({}) == ROOT / "var" / "channel_state.db"
    assert state_db_path({"CHANNEL_STATE_DB": "/srv/state.db"}) == Path("/srv/state.db")
    monkeypatch.setenv("CHANNEL_STATE_DB", str(tmp_path / "x.db"))
    seen: SeenIds = default_seen_ids()
    assert isinstance(seen, SqliteSeenIds)
    assert seen.path == tmp_path / "x.db"
    assert seen.retention_seconds == DEFAULT_RETENTION_SECONDS == 3 * 24 * 3600
