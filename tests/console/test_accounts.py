"""Staff accounts: argon2 hashes only, sessions that expire, repeated wrong passwords refused,
demo accounts only in sandbox mode (and only on loopback), `python -m console users add`,
disabling and enabling an account (its open sessions stop at once), roles changed by an admin,
and a user's own password change (the old one stops working, so do their other sessions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from console.app import create_app
from console.settings import (
    DEFAULT_DEMO_PASSWORD,
    DEMO_ACCOUNTS,
    ROOT,
    ConsoleSettings,
    SettingsError,
)
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
    assert short.returncode == 1 and "at least 12 characters" in short.stderr
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


EDITOR = DEMO_ACCOUNTS["editor"]


def login(client: TestClient, email: str, password: str) -> int:
    return client.post("/api/login", json={"email": email, "password": password}).status_code


def test_a_disabled_account_loses_its_open_sessions_and_cannot_sign_in(client: TestClient) -> None:
    editor, admin = sign_in(client, "editor"), sign_in(client, "admin")
    assert client.get("/api/me", headers=editor).status_code == 200
    assert client.post(f"/api/users/{EDITOR}/disable", headers=editor).status_code == 403
    answer = client.post(f"/api/users/{EDITOR}/disable", headers=admin)
    assert answer.status_code == 200 and answer.json()["disabled"] is True
    assert client.get("/api/me", headers=editor).status_code == 401
    assert client.get("/api/responses", headers=editor).status_code == 401
    assert login(client, EDITOR, DEFAULT_DEMO_PASSWORD) == 401
    listed = {u["email"]: u for u in client.get("/api/users", headers=admin).json()["users"]}
    assert listed[EDITOR]["disabled"] is True
    assert client.post(f"/api/users/{EDITOR}/enable", headers=admin).status_code == 200
    assert login(client, EDITOR, DEFAULT_DEMO_PASSWORD) == 200
    actions = [
        e["action"]
        for e in client.get(
            "/api/audit", params={"target": f"user:{EDITOR}"}, headers=admin
        ).json()["entries"]
    ]
    assert actions[:2] == ["user_enabled", "user_disabled"]


def test_a_disabled_account_is_refused_even_if_its_session_row_survived(
    client: TestClient, settings: ConsoleSettings
) -> None:
    """The second defence: the session check itself reads the account's state."""
    from sqlalchemy import update

    from console.db import make_engine, transaction
    from console.models import User

    editor = sign_in(client, "editor")
    with transaction(make_engine(settings.db_url)) as session:
        session.execute(update(User).where(User.email == EDITOR).values(disabled_at=1.0))
    assert client.get("/api/me", headers=editor).status_code == 401


def test_an_admin_cannot_disable_themself_or_change_their_own_role(client: TestClient) -> None:
    admin = sign_in(client, "admin")
    me = DEMO_ACCOUNTS["admin"]
    answer = client.post(f"/api/users/{me}/disable", headers=admin)
    assert answer.status_code == 422 and "your own account" in answer.json()["detail"]
    answer = client.put(f"/api/users/{me}/role", json={"role": "editor"}, headers=admin)
    assert answer.status_code == 422
    assert client.get("/api/me", headers=admin).json()["role"] == "admin"
    assert client.post("/api/users/nobody@x.vn/disable", headers=admin).status_code == 404


def test_a_role_change_holds_at_the_next_request(client: TestClient) -> None:
    editor, admin = sign_in(client, "editor"), sign_in(client, "admin")
    answer = client.put(f"/api/users/{EDITOR}/role", json={"role": "agent"}, headers=admin)
    assert answer.status_code == 200 and answer.json()["role"] == "agent"
    assert client.get("/api/responses", headers=editor).status_code == 403
    assert (
        client.put(f"/api/users/{EDITOR}/role", json={"role": "boss"}, headers=admin).status_code
        == 422
    )
    entries = client.get("/api/audit", params={"target": f"user:{EDITOR}"}, headers=admin).json()
    assert entries["entries"][0]["detail"] == {"from": "editor", "to": "agent"}


def test_a_changed_password_works_and_the_old_one_does_not(client: TestClient) -> None:
    first, other = sign_in(client, "editor"), sign_in(client, "editor")
    new = "a-new-long-password"
    body = {"current_password": "wrong-password!", "new_password": new}
    assert client.post("/api/me/password", json=body, headers=first).status_code == 403
    body = {"current_password": DEFAULT_DEMO_PASSWORD, "new_password": "short-pass1"}
    answer = client.post("/api/me/password", json=body, headers=first)
    assert answer.status_code == 422 and "at least 12 characters" in answer.json()["detail"]
    body["new_password"] = new
    answer = client.post("/api/me/password", json=body, headers=first)
    assert answer.status_code == 200 and answer.json()["sessions_ended"] == 1
    assert client.get("/api/me", headers=first).status_code == 200  # this session stays
    assert client.get("/api/me", headers=other).status_code == 401  # the other one ended
    assert login(client, EDITOR, DEFAULT_DEMO_PASSWORD) == 401
    assert login(client, EDITOR, new) == 200
    admin = sign_in(client, "admin")
    actions = [
        e["action"]
        for e in client.get("/api/audit", params={"actor": EDITOR}, headers=admin).json()["entries"]
    ]
    assert "password_changed" in actions and "password_change_failed" in actions


def test_wrong_current_passwords_are_limited_like_sign_in(client: TestClient) -> None:
    editor = sign_in(client, "editor")
    body = {"current_password": "not-the-password", "new_password": "a-new-long-password"}
    codes = [
        client.post("/api/me/password", json=body, headers=editor).status_code for _ in range(6)
    ]
    assert codes == [403] * 5 + [429]


def test_users_disable_and_enable_from_the_command_line(tmp_path: Path) -> None:
    env = {"CONTENT_DB_URL": f"sqlite:///{tmp_path / 'content.db'}", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "console", "users"]

    def run(*args: str, password: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], input=password, capture_output=True, text=True, env=env, cwd=ROOT
        )

    assert (
        run("add", "lan@gov.vn", "--role", "editor", password="a-long-password\n").returncode == 0
    )
    assert run("disable", "lan@gov.vn").returncode == 0
    settings = make_settings(tmp_path, sandbox_mode=False)
    body = {"email": "lan@gov.vn", "password": "a-long-password"}
    with TestClient(create_app(settings)) as client:
        assert client.post("/api/login", json=body).status_code == 401
    assert run("enable", "lan@gov.vn").returncode == 0
    with TestClient(create_app(settings)) as client:
        assert client.post("/api/login", json=body).status_code == 200
    assert run("disable", "nobody@gov.vn").returncode == 1
