"""Settings of both sandbox apps, read from the environment (the only place they come from)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

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


@dataclass(frozen=True)
class Settings:
    """Everything the two apps need; `from_env()` builds it, tests build it directly."""

    identity_db_url: str = "sqlite:///var/sandbox/identity.db"
    portal_db_url: str = "sqlite:///var/sandbox/portal.db"
    sandbox_mode: bool = True
    otp_ttl_seconds: int = 300
    otp_max_attempts: int = 5
    lockout_seconds: int = 900
    token_ttl_seconds: int = 900
    max_codes_per_window: int = 5
    code_window_seconds: int = 900
    token_secret: str | None = None
    catalogue_dir: Path = DEFAULT_CATALOGUE_DIR

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        catalogue = env.get("PORTAL_CATALOGUE_DIR", "").strip()
        return cls(
            identity_db_url=env.get("IDENTITY_DB_URL", "").strip() or cls.identity_db_url,
            portal_db_url=env.get("PORTAL_DB_URL", "").strip() or cls.portal_db_url,
            sandbox_mode=env.get("SANDBOX_MODE", "1").strip().lower() not in _FALSE_WORDS,
            otp_ttl_seconds=_int(env, "OTP_TTL_SECONDS", cls.otp_ttl_seconds),
            otp_max_attempts=_int(env, "OTP_MAX_ATTEMPTS", cls.otp_max_attempts),
            lockout_seconds=_int(env, "LOCKOUT_SECONDS", cls.lockout_seconds),
            token_ttl_seconds=_int(env, "TOKEN_TTL_SECONDS", cls.token_ttl_seconds),
            max_codes_per_window=_int(env, "MAX_CODES_PER_WINDOW", cls.max_codes_per_window),
            code_window_seconds=_int(env, "CODE_WINDOW_SECONDS", cls.code_window_seconds),
            token_secret=env.get("SANDBOX_TOKEN_SECRET") or None,
            catalogue_dir=Path(catalogue) if catalogue else DEFAULT_CATALOGUE_DIR,
        )

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
