from __future__ import annotations

from collections.abc import Iterator

import pytest

from actions.clients import set_clients
from tests.actions.helpers import FakeBackends


@pytest.fixture()
def backends() -> Iterator[FakeBackends]:
    fake = FakeBackends()
    fake.install()
    yield fake
    set_clients(None)
