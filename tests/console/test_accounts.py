"""Staff accounts: argon2 hashes only, sessions that expire, repeated wrong passwords refused,
demo accounts only in sandbox mode (and only on loopback), `python -m console users add`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from console.app import create_app
from console.settings import DEFAULT_DEMO_PASSWORD, ROOT, ConsoleSettings, SettingsError
from tests.console.conftest import make_settings, sign_in


def database_bytes(settings: ConsoleSettings) -> bytes:
    path = Path(settings.db_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_passwords_are_argon2_hashes_and_never_stored_plain(
    client: TestClient, settings: ConsoleSettings
) -> None:
    token = sign_in(client, "editor")["Authorization"].split()[1]
    stored = database_bytes(settings)
    assert DEFAULT_DEMO_PASSWORD.encode() not in stored
    assert stored.count(b"$argon2id$") >= 4
    assert token.encode() not in stored  # only the session token's keyed hash is kept


def test_a_wrong_password_is_refused_and_audited(client: TestClient) -> None:
    answer = client.post(
        "/api/login", json={"email": "editor@demo.gov.vn", "password": "wrong-one"}
    )
    assert answer.status_code == 401
    assert (
        client.post("/api/login", json={"email": "nobody@x.vn", "password": "x"}).status_code == 401
    )
    admin = sign_in(client, "admin")
    entries = client.get("/api/audit", params={"actor": "editor@demo.gov.vn"}, headers=admin)
    assert "login_failed" in [e["action"] for e in entries.json()["entries"]]


def test_five_wrong_passwords_lock_the_account_for_a_while(client: TestClient) -> None:
    wrong = {"email": "reviewer@demo.gov.vn", "password": "not-the-password"}
    assert [client.post("/api/login", json=wrong).status_code for _ in range(5)] == [401] * 5
    right = {"email": "reviewer@demo.gov.vn", "password": DEFAULT_DEMO_PASSWORD}
    assert client.post("/api/login", json=right).status_code == 429
    assert (
        client.post("/api/login", json={**right, "email": "editor@demo.gov.vn"}).status_code == 200
    )


def test_sessions_expire(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, session_ttl_seconds=3))) as client:
        headers = sign_in(client, "editor")
        assert client.get("/api/me", headers=headers).json()["role"] == "editor"
        import time

        time.sleep(3.1)
        answer = client.get("/api/me", headers=headers)
        assert answer.status_code == 401 and "expired" in answer.json()["detail"]


def test_sign_out_ends_the_session(client: TestClient) -> None:
    headers = sign_in(client, "editor")
    assert client.post("/api/logout", headers=headers).status_code == 200
    assert client.get("/api/me", headers=headers).status_code == 401


def test_outside_sandbox_mode_there_is_no_account(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, sandbox_mode=False))) as client:
        body = {"email": "admin@demo.gov.vn", "password": DEFAULT_DEMO_PASSWORD}
        assert client.post("/api/login", json=body).status_code == 401


def test_sandbox_mode_refuses_to_leave_loopback() -> None:
    with pytest.raises(SettingsError):
        ConsoleSettings(sandbox_mode=True, host="0.0.0.0").check()
    ConsoleSettings(sandbox_mode=False, host="0.0.0.0").check()


def test_users_add_from_the_command_line(tmp_path: Path) -> None:
    env = {"CONTENT_DB_URL": f"sqlite:///{tmp_path / 'content.db'}", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "console", "users", "add", "Lan@Gov.vn", "--role", "reviewer"]
    made = subprocess.run(
        command, input="a-long-password\n", capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert made.returncode == 0, made.stderr
    short = subprocess.run(
        [*command[:5], "b@gov.vn", "--role", "editor"],
        input="short\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    settings = make_settings(tmp_path, sandbox_mode=False)
    with TestClient(create_app(settings)) as client:
        body = {"email": "lan@gov.vn", "password": "a-long-password"}
        answer = client.post("/api/login", json=body)
        assert answer.status_code == 200 and answer.json()["role"] == "reviewer"


def test_demo_accounts_left_by_a_sandbox_run_are_disabled_outside_sandbox_mode(
    tmp_path: Path,
) -> None:
    body = {"email": "admin@demo.gov.vn", "password": DEFAULT_DEMO_PASSWORD}
    with TestClient(create_app(make_settings(tmp_path))) as client:
        assert client.post("/api/login", json=body).status_code == 200
    with TestClient(create_app(make_settings(tmp_path, sandbox_mode=False))) as client:
        assert client.post("/api/login", json=body).status_code == 401
