"""Settings of both sandbox apps, read from the environment (the only place they come from)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict

DEFAULT_CATALOGUE_DIR = Path(__file__).resolve().parent / "portal" / "data" / "procedures"

_FALSE_WORDS = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """An environment variable holds a value the sandbox cannot use."""


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {value}")
    return value


# Whole-number settings: (field, environment variable). Every limit of the identity app is here.
_INT_SETTINGS = (
    ("otp_ttl_seconds", "OTP_TTL_SECONDS"),
    ("otp_max_attempts", "OTP_MAX_ATTEMPTS"),
    ("conversation_max_failures", "CONVERSATION_MAX_FAILURES"),
    ("lockout_seconds", "LOCKOUT_SECONDS"),
    ("id_max_failures", "ID_MAX_FAILURES"),
    ("id_failure_window_seconds", "ID_FAILURE_WINDOW_SECONDS"),
    ("lockout_max_seconds", "LOCKOUT_MAX_SECONDS"),
    ("lockout_memory_seconds", "LOCKOUT_MEMORY_SECONDS"),
    ("token_ttl_seconds", "TOKEN_TTL_SECONDS"),
    ("max_codes_per_conversation", "MAX_CODES_PER_CONVERSATION"),
    ("max_codes_per_window", "MAX_CODES_PER_WINDOW"),
    ("code_window_seconds", "CODE_WINDOW_SECONDS"),
)


@dataclass(frozen=True)
class Settings:
    """Everything the two apps need; `from_env()` builds it, tests build it directly."""

    identity_db_url: str = "sqlite:///var/sandbox/identity.db"
    portal_db_url: str = "sqlite:///var/sandbox/portal.db"
    sandbox_mode: bool = False
    otp_ttl_seconds: int = 300
    otp_max_attempts: int = 3
    conversation_max_failures: int = 5
    lockout_seconds: int = 900
    id_max_failures: int = 20
    id_failure_window_seconds: int = 86_400
    lockout_max_seconds: int = 86_400
    lockout_memory_seconds: int = 86_400
    token_ttl_seconds: int = 900
    max_codes_per_conversation: int = 3
    max_codes_per_window: int = 5
    code_window_seconds: int = 900
    token_secret: str | None = None
    catalogue_dir: Path = DEFAULT_CATALOGUE_DIR

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        catalogue = env.get("PORTAL_CATALOGUE_DIR", "").strip()
        base = cls(
            identity_db_url=env.get("IDENTITY_DB_URL", "").strip() or cls.identity_db_url,
            portal_db_url=env.get("PORTAL_DB_URL", "").strip() or cls.portal_db_url,
            # Off unless asked for: sandbox mode publishes every one-time code.
            sandbox_mode=env.get("SANDBOX_MODE", "0").strip().lower() not in _FALSE_WORDS,
            token_secret=env.get("SANDBOX_TOKEN_SECRET") or None,
            catalogue_dir=Path(catalogue) if catalogue else DEFAULT_CATALOGUE_DIR,
        )
        numbers: Dict[str, Any] = {
            field: _int(env, name, getattr(cls, field)) for field, name in _INT_SETTINGS
        }
        return replace(base, **numbers)

    def with_secret(self, secret: str) -> Settings:
        return replace(self, token_secret=secret)

    def require_secret(self) -> str:
        """The HMAC secret; an app cannot start without one (never a hard-coded fallback)."""
        if not self.token_secret:
            raise SettingsError(
                "SANDBOX_TOKEN_SECRET is not set; `python -m sandbox` generates one, "
                "app factories need it in Settings.token_secret"
            )
        return self.token_secret
