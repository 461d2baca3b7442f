"""Settings from the environment, masking helpers, engines, app factories without a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.common import make_engine, mask_code, mask_id_number, mask_phone
from sandbox.identity import create_identity_app
from sandbox.portal import create_portal_app
from sandbox.settings import DEFAULT_CATALOGUE_DIR, Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.identity_db_url == "sqlite:///var/sandbox/identity.db"
    assert settings.portal_db_url == "sqlite:///var/sandbox/portal.db"
    assert settings.sandbox_mode is False  # sandbox mode publishes the codes: only on request
    assert (settings.otp_ttl_seconds, settings.otp_max_attempts) == (300, 3)
    assert (settings.conversation_max_failures, settings.lockout_seconds) == (5, 900)
    assert (settings.id_max_failures, settings.id_failure_window_seconds) == (20, 86_400)
    assert (settings.lockout_max_seconds, settings.lockout_memory_seconds) == (86_400, 86_400)
    assert settings.token_ttl_seconds == 900
    assert (settings.max_codes_per_conversation, settings.max_codes_per_window) == (3, 5)
    assert settings.code_window_seconds == 900
    assert settings.token_secret is None
    assert settings.catalogue_dir == DEFAULT_CATALOGUE_DIR
    assert DEFAULT_CATALOGUE_DIR.parts[-4:] == ("sandbox", "portal", "data", "procedures")


def test_from_env() -> None:
    settings = Settings.from_env(
        {
            "IDENTITY_DB_URL": "postgresql://u@db/identity",
            "PORTAL_DB_URL": "sqlite:////tmp/p.db",
            "SANDBOX_MODE": "1",
            "OTP_TTL_SECONDS": "60",
            "OTP_MAX_ATTEMPTS": "4",
            "CONVERSATION_MAX_FAILURES": "6",
            "LOCKOUT_SECONDS": "30",
            "ID_MAX_FAILURES": "40",
            "ID_FAILURE_WINDOW_SECONDS": "3600",
            "LOCKOUT_MAX_SECONDS": "7200",
            "LOCKOUT_MEMORY_SECONDS": "1800",
            "TOKEN_TTL_SECONDS": "120",
            "MAX_CODES_PER_CONVERSATION": "7",
            "MAX_CODES_PER_WINDOW": "100",
            "CODE_WINDOW_SECONDS": "600",
            "SANDBOX_TOKEN_SECRET": "s" * 40,
            "PORTAL_CATALOGUE_DIR": "/data/procedures",
        }
    )
    assert settings.identity_db_url == "postgresql://u@db/identity"
    assert settings.sandbox_mode is True
    assert settings.otp_ttl_seconds == 60
    assert settings.otp_max_attempts == 4
    assert settings.conversation_max_failures == 6
    assert settings.lockout_seconds == 30
    assert settings.id_max_failures == 40
    assert settings.id_failure_window_seconds == 3600
    assert settings.lockout_max_seconds == 7200
    assert settings.lockout_memory_seconds == 1800
    assert settings.token_ttl_seconds == 120
    assert settings.max_codes_per_conversation == 7
    assert settings.max_codes_per_window == 100
    assert settings.code_window_seconds == 600
    assert settings.token_secret == "s" * 40
    assert settings.catalogue_dir == Path("/data/procedures")


@pytest.mark.parametrize(("value", "on"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_sandbox_mode_words(value: str, on: bool) -> None:
    assert Settings.from_env({"SANDBOX_MODE": value}).sandbox_mode is on


@pytest.mark.parametrize("value", ["five", "-1", "0"])
def test_bad_number_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="OTP_TTL_SECONDS"):
        Settings.from_env({"OTP_TTL_SECONDS": value})
    with pytest.raises(SettingsError, match="ID_MAX_FAILURES"):
        Settings.from_env({"ID_MAX_FAILURES": value})


def test_apps_need_a_secret(tmp_path: Path) -> None:
    settings = Settings(
        identity_db_url=f"sqlite:///{tmp_path}/i.db", portal_db_url=f"sqlite:///{tmp_path}/p.db"
    )
    with pytest.raises(SettingsError, match="SANDBOX_TOKEN_SECRET"):
        create_identity_app(settings)
    with pytest.raises(SettingsError, match="SANDBOX_TOKEN_SECRET"):
        create_portal_app(settings)


def test_masks() -> None:
    assert mask_id_number("001090001234") == "001******234"
    assert mask_phone("0912345678") == "*******678"
    assert mask_phone("678") == "***"
    assert mask_code("123456") == "******"
    assert mask_id_number("12345") == "*****"


def test_make_engine_creates_the_sqlite_folder(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/a/b/c.db")
    with engine.connect():
        pass
    engine.dispose()
    assert (tmp_path / "a" / "b" / "c.db").exists()
