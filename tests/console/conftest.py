"""A content service on a fresh SQLite file per test, in sandbox mode (the four demo accounts)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from console.app import create_app
from console.settings import DEFAULT_DEMO_PASSWORD, DEMO_ACCOUNTS, ConsoleSettings


def make_settings(tmp_path: Path, **overrides: object) -> ConsoleSettings:
    values: dict[str, object] = {
        "db_url": f"sqlite:///{tmp_path / 'content.db'}",
        "sandbox_mode": True,
        "session_secret": "test-secret",
        "refresh_seconds": 0.2,
    }
    values.update(overrides)
    return ConsoleSettings(**values)  # type: ignore[arg-type]


@pytest.fixture()
def settings(tmp_path: Path) -> ConsoleSettings:
    return make_settings(tmp_path)


@pytest.fixture()
def client(settings: ConsoleSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def sign_in(client: TestClient, role: str) -> dict[str, str]:
    answer = client.post(
        "/api/login", json={"email": DEMO_ACCOUNTS[role], "password": DEFAULT_DEMO_PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


@pytest.fixture()
def as_role(client: TestClient) -> Callable[[str], dict[str, str]]:
    return lambda role: sign_in(client, role)


def nlg_text(client: TestClient, name: str, language: str = "vi", channel: str = "rest") -> str:
    body = {
        "response": name,
        "arguments": {},
        "tracker": {"slots": {"language": language}},
        "channel": {"name": channel},
    }
    answer = client.post("/nlg", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["text"])
