"""The launcher runs one content service, on its own port, and points Rasa at it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.launcher import services
from bot.settings import Settings


def test_the_staff_port_follows_the_web_chat_port_unless_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STAFF_PORT", raising=False)
    monkeypatch.delenv("CONTENT_SERVICE_URL", raising=False)
    assert Settings(var_dir=tmp_path).staff_port == 8090
    assert Settings(var_dir=tmp_path, webchat_port=41000).staff_port == 41010  # tests, bench
    monkeypatch.setenv("STAFF_PORT", "9999")
    settings = Settings(var_dir=tmp_path, webchat_port=41000)
    assert settings.staff_port == 9999
    assert settings.service_env()["CONTENT_SERVICE_URL"] == "http://127.0.0.1:9999"


def test_the_content_service_gets_its_port_store_and_session_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("STAFF_PORT", "CONTENT_DB_URL", "STAFF_SESSION_SECRET", "CONTENT_SERVICE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(var_dir=tmp_path, start_sandbox=False)
    env = settings.service_env()
    assert env["CONTENT_DB_URL"] == f"sqlite:///{tmp_path / 'content.db'}"
    content = settings.content_env(env)
    assert content["STAFF_PORT"] == "8090" and content["BIND_HOST"] == "127.0.0.1"
    secret = content["STAFF_SESSION_SECRET"]
    assert len(secret) > 30
    assert (tmp_path / "secrets" / "staff_session_secret").stat().st_mode & 0o077 == 0
    assert Settings(var_dir=tmp_path).content_env(env)["STAFF_SESSION_SECRET"] == secret  # kept


@pytest.mark.parametrize("scaled", [False, True])
def test_one_content_service_in_either_mode(
    tmp_path: Path, scaled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The plan only: PostgreSQL, Redis and HAProxy need not be installed for it (`make unit`
    # runs before `make services`).
    monkeypatch.setattr("bot.scaled.executable", lambda name: f"/usr/bin/{name}")
    settings = Settings(var_dir=tmp_path, start_sandbox=False, scaled=scaled)
    found = [s for s in services(settings, "model.tar.gz") if s.name == "content"]
    assert len(found) == 1
    assert found[0].command[-2:] == ["-m", "console"]
