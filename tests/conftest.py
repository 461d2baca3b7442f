from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actions.clients import set_clients
from actions.identity_store import MemoryIdentityStore, set_identity_store
from tests.actions.helpers import FakeBackends
from tests.redis_server import RedisServer


@pytest.fixture()
def backends() -> Iterator[FakeBackends]:
    fake = FakeBackends()
    fake.install()
    yield fake
    set_clients(None)


@pytest.fixture(autouse=True)
def identity_store() -> Iterator[MemoryIdentityStore]:
    """Every test starts with no verification under way and nobody verified."""
    store = MemoryIdentityStore()
    set_identity_store(store)
    yield store
    set_identity_store(None)


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server of this test only (no persistence); ``.stop()``/``.start()`` it."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
