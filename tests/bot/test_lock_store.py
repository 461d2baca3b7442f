"""Two replicas sharing one Redis, or two Sanic workers sharing one SQLite file, never hold a
conversation's lock at the same time."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import pytest
from rasa.core.lock_store import LockStore

from bot.lock_store import AtomicRedisLockStore, SQLiteLockStore

MakeStore = Callable[[], LockStore]


@pytest.fixture(params=["redis", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    """A new store on the same shared state at each call: one per replica or worker."""
    if request.param == "sqlite":
        return lambda: SQLiteLockStore(path=str(tmp_path / "locks.db"))
    server = request.getfixturevalue("redis_server")
    url = urlparse(server.url)
    return lambda: AtomicRedisLockStore(
        host=url.hostname or "127.0.0.1", port=url.port or 6379, db=0
    )


def test_tickets_issued_at_once_by_several_replicas_are_all_different(
    make_store: MakeStore,
) -> None:
    stores = [make_store() for _ in range(6)]
    issued: list[int] = []
    start = threading.Barrier(len(stores))

    def issue(store: LockStore) -> None:
        start.wait()
        for _ in range(30):
            issued.append(store.issue_ticket("conversation-1", 60))

    threads = [threading.Thread(target=issue, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(issued) == 180 and len(set(issued)) == 180


def test_only_one_replica_at_a_time_handles_a_conversation(make_store: MakeStore) -> None:
    holders: list[int] = []
    most = [0]
    guard = threading.Lock()

    async def handle(store: LockStore) -> None:
        async with store.lock("conversation-2", wait_time_in_seconds=0.01):
            with guard:
                holders.append(1)
                most[0] = max(most[0], len(holders))
            await asyncio.sleep(0.005)
            with guard:
                holders.pop()

    def replica() -> None:
        store = make_store()

        async def many() -> None:
            await asyncio.gather(*(handle(store) for _ in range(8)))

        asyncio.run(many())

    threads = [threading.Thread(target=replica) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert time.monotonic() - started < 60
    assert most[0] == 1  # never two holders
    assert make_store().get_lock("conversation-2") is None  # cleaned up
