"""Launcher settings that keep the stack closed: sandbox mode on loopback only, API tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.rasa_server import with_auth_token
from bot.settings import Settings, SettingsError


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(var_dir=tmp_path, webchat_port=8080, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "::", "bot.example.gov.vn"])
def test_sandbox_mode_refuses_to_leave_loopback(tmp_path: Path, host: str) -> None:
    with pytest.raises(SettingsError, match="loopback"):
        settings(tmp_path, sandbox_mode=True, host=host).check()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_sandbox_mode_runs_on_loopback(tmp_path: Path, host: str) -> None:
    settings(tmp_path, sandbox_mode=True, host=host).check()


def test_a_public_address_is_fine_without_sandbox_mode(tmp_path: Path) -> None:
    settings(tmp_path, sandbox_mode=False, host="0.0.0.0").check()


def test_sandbox_mode_is_off_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANDBOX_MODE", raising=False)
    assert Settings(var_dir=tmp_path).sandbox_mode is False
    monkeypatch.setenv("SANDBOX_MODE", "1")
    assert Settings(var_dir=tmp_path).sandbox_mode is True


def test_cors_allows_the_demo_page_and_never_everyone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEBCHAT_ORIGINS", raising=False)
    assert settings(tmp_path).webchat_origins == ["http://127.0.0.1:8080", "http://localhost:8080"]
    monkeypatch.setenv("WEBCHAT_ORIGINS", "https://dichvucong.gov.vn, https://portal.example")
    assert Settings(var_dir=tmp_path).webchat_origins == [
        "https://dichvucong.gov.vn",
        "https://portal.example",
    ]
    monkeypatch.setenv("WEBCHAT_ORIGINS", "*")
    with pytest.raises(SettingsError):
        Settings(var_dir=tmp_path).check()


def test_rasa_gets_a_fresh_token_kept_for_local_tools_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RASA_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("WEBCHAT_SECRET", raising=False)
    first = settings(tmp_path)
    env = first.rasa_env(first.service_env())
    token = env["RASA_AUTH_TOKEN"]
    assert len(token) >= 32
    assert first.rasa_token_file.read_text() == token
    assert first.rasa_token_file.stat().st_mode & 0o777 == 0o600
    assert first.secrets_dir.stat().st_mode & 0o777 == 0o700
    assert first.rasa_env(first.service_env())["RASA_AUTH_TOKEN"] == token  # one per start
    second = settings(tmp_path)
    again = second.rasa_env(second.service_env())
    assert again["RASA_AUTH_TOKEN"] != token  # a new start, a new token
    assert again["WEBCHAT_SECRET"] == env["WEBCHAT_SECRET"]  # web sessions survive restarts
    assert "RASA_AUTH_TOKEN" not in second.actions_env(second.service_env())


def test_rasa_never_starts_its_api_without_a_token() -> None:
    argv = ["rasa", "run", "--enable-api", "--port", "5005"]
    assert with_auth_token(argv, {"RASA_AUTH_TOKEN": "t0k"})[-1] == "--auth-token=t0k"
    with pytest.raises(SystemExit, match="token"):
        with_auth_token(argv, {})
    assert with_auth_token(["rasa", "train"], {}) == ["rasa", "train"]


@pytest.mark.parametrize("token", ["plain-token", "-starts-with-a-dash", "--two"])
def test_rasa_reads_every_token_the_launcher_can_make(token: str) -> None:
    """A random token may begin with "-": given as a separate word, argparse took it for an
    option and Rasa exited with code 2 at start-up (CI, once)."""
    from rasa.__main__ import create_argument_parser

    argv = ["rasa", "run", "--enable-api", "--port", "5005"]
    args = create_argument_parser().parse_args(
        with_auth_token(argv, {"RASA_AUTH_TOKEN": token})[1:]
    )
    assert args.auth_token == token


def test_scaled_mode_shares_state_but_only_action_servers_hold_the_identity_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDENTITY_STORE_KEY", raising=False)
    scaled = settings(tmp_path, scaled=True)
    env = scaled.service_env()
    assert env["SHARED_STATE_URL"].startswith("redis://:")
    assert env["SHARED_STATE_URL"] == scaled.rasa_env(env)["SHARED_STATE_URL"]
    assert "IDENTITY_STORE_KEY" not in scaled.rasa_env(env)
    key = scaled.actions_env(env)["IDENTITY_STORE_KEY"]
    assert (
        len(key) >= 32
        and key == settings(tmp_path, scaled=True).actions_env(env)["IDENTITY_STORE_KEY"]
    )  # made once: every action server, every start, the same key
    assert "SHARED_STATE_URL" not in settings(tmp_path / "e").service_env()  # embedded: none


def test_the_content_services_internal_routes_get_a_token_only_the_action_servers_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONTENT_INTERNAL_TOKEN", raising=False)
    made = settings(tmp_path)
    env = made.service_env()
    token = made.content_env(env)["CONTENT_INTERNAL_TOKEN"]
    assert len(token) >= 32 and made.actions_env(env)["CONTENT_INTERNAL_TOKEN"] == token
    assert "CONTENT_INTERNAL_TOKEN" not in made.rasa_env(env)


def test_rasa_sends_no_telemetry_or_error_reports_off_the_machine(tmp_path: Path) -> None:
    made = settings(tmp_path)
    assert made.rasa_env(made.service_env())["RASA_TELEMETRY_ENABLED"] == "false"
