from __future__ import annotations

from collections.abc import Iterator

import pytest

from actions.clients import set_clients
from actions.identity_store import IdentityStore, set_identity_store
from tests.actions.helpers import FakeBackends


@pytest.fixture()
def backends() -> Iterator[FakeBackends]:
    fake = FakeBackends()
    fake.install()
    yield fake
    set_clients(None)


@pytest.fixture(autouse=True)
def identity_store() -> Iterator[IdentityStore]:
    """Every test starts with no verification under way and nobody verified."""
    store = IdentityStore()
    set_identity_store(store)
    yield store
    set_identity_store(None)
