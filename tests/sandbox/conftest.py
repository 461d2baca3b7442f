"""Fixtures for the sandbox tests: temp SQLite databases, a fake clock, clients for both apps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest
from fastapi.testclient import TestClient

from sandbox.identity import create_identity_app
from sandbox.portal import create_portal_app
from sandbox.settings import Settings
from tests.sandbox.helpers import FIXTURE_CATALOGUE, SECRET, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        sandbox_mode=True,  # the tests read codes from the outbox, like the citizen's handset
        identity_db_url=f"sqlite:///{tmp_path}/db/identity.db",
        portal_db_url=f"sqlite:///{tmp_path}/db/portal.db",
        token_secret=SECRET,
        catalogue_dir=FIXTURE_CATALOGUE,
    )


@pytest.fixture
def identity(settings: Settings, clock: FakeClock) -> TestClient:
    return TestClient(create_identity_app(settings, clock=clock))


@pytest.fixture
def portal(settings: Settings, clock: FakeClock) -> TestClient:
    return TestClient(create_portal_app(settings, clock=clock))


@pytest.fixture
def make_identity(settings: Settings, clock: FakeClock) -> Callable[..., TestClient]:
    """An identity client with some settings changed, e.g. make_identity(sandbox_mode=False)."""

    def make(**changes: Any) -> TestClient:
        return TestClient(create_identity_app(replace(settings, **changes), clock=clock))

    return make
