"""Two replicas sharing one Redis never hold a conversation's lock at the same time."""

from __future__ import annotations

import asyncio
import threading
import time
from urllib.parse import urlparse

from bot.lock_store import AtomicRedisLockStore
from tests.redis_server import RedisServer


def replica_store(server: RedisServer) -> AtomicRedisLockStore:
    url = urlparse(server.url)
    return AtomicRedisLockStore(host=url.hostname or "127.0.0.1", port=url.port or 6379, db=0)


def test_tickets_issued_at_once_by_several_replicas_are_all_different(
    redis_server: RedisServer,
) -> None:
    stores = [replica_store(redis_server) for _ in range(6)]
    issued: list[int] = []
    start = threading.Barrier(len(stores))

    def issue(store: AtomicRedisLockStore) -> None:
        start.wait()
        for _ in range(30):
            issued.append(store.issue_ticket("conversation-1", 60))

    threads = [threading.Thread(target=issue, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(issued) == 180 and len(set(issued)) == 180


def test_only_one_replica_at_a_time_handles_a_conversation(redis_server: RedisServer) -> None:
    holders: list[int] = []
    most = [0]
    guard = threading.Lock()

    async def handle(store: AtomicRedisLockStore) -> None:
        async with store.lock("conversation-2", wait_time_in_seconds=0.01):
            with guard:
                holders.append(1)
                most[0] = max(most[0], len(holders))
            await asyncio.sleep(0.005)
            with guard:
                holders.pop()

    def replica() -> None:
        store = replica_store(redis_server)

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
    assert replica_store(redis_server).get_lock("conversation-2") is None  # cleaned up
