"""Settings of the content service and staff console, read from the environment in one place.

`ConsoleSettings.from_env()` builds them at start; tests build them directly.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_URL = f"sqlite:///{ROOT / 'var' / 'content.db'}"
DEFAULT_DOMAIN_DIR = ROOT / "bot" / "domain"
DEFAULT_PORT = 8090
DEFAULT_DEMO_PASSWORD = "demo-staff-2026"
ROLES = ("editor", "reviewer", "agent", "admin")
# Sandbox mode only: one account per role, all with DEMO_STAFF_PASSWORD (README, like the test
# citizens). Outside sandbox mode no account exists until `python -m console users add`.
DEMO_ACCOUNTS = {role: f"{role}@demo.gov.vn" for role in ROLES}
_TRUE_WORDS = {"1", "true", "yes", "on"}


class SettingsError(ValueError):
    """A value the content service cannot start with."""


def _is_loopback(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class ConsoleSettings:
    db_url: str = DEFAULT_DB_URL
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    sandbox_mode: bool = False
    demo_password: str = DEFAULT_DEMO_PASSWORD
    # Keys the session tokens' stored hashes (the launcher keeps it in var/secrets/).
    session_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    session_ttl_seconds: float = 8 * 3600.0  # a working day; then sign in again
    domain_dir: Path = DEFAULT_DOMAIN_DIR
    # How often every process checks whether another one published (the publish counter).
    refresh_seconds: float = 1.0
    # Wrong passwords for one email within the window before sign-in is refused for a while.
    login_max_failures: int = 5
    login_window_seconds: float = 900.0
    log_level: str = "INFO"
    # The call-centre desk (console/handoff.py documents OFFICE_HOURS' format).
    office_hours: str = "Mon-Fri 07:30-17:00"
    office_timezone: str = "Asia/Ho_Chi_Minh"
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: str = field(default="", repr=False)
    portal_url: str = "http://127.0.0.1:8001"
    portal_api_key: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConsoleSettings:
        env = os.environ if environ is None else environ
        port = int(_number(env, "STAFF_PORT", DEFAULT_PORT))
        return cls(
            db_url=env.get("CONTENT_DB_URL") or DEFAULT_DB_URL,
            host=env.get("BIND_HOST") or "127.0.0.1",
            port=port,
            sandbox_mode=(env.get("SANDBOX_MODE") or "").strip().lower() in _TRUE_WORDS,
            demo_password=env.get("DEMO_STAFF_PASSWORD") or DEFAULT_DEMO_PASSWORD,
            session_secret=env.get("STAFF_SESSION_SECRET") or secrets.token_urlsafe(32),
            session_ttl_seconds=_number(env, "STAFF_SESSION_TTL_SECONDS", 8 * 3600.0),
            domain_dir=Path(env.get("DOMAIN_DIR") or DEFAULT_DOMAIN_DIR),
            refresh_seconds=_number(env, "CONTENT_REFRESH_SECONDS", 1.0),
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
            office_hours=env.get("OFFICE_HOURS") or "Mon-Fri 07:30-17:00",
            office_timezone=env.get("OFFICE_TIMEZONE") or "Asia/Ho_Chi_Minh",
            rasa_url=(env.get("RASA_URL") or "http://127.0.0.1:5005").rstrip("/"),
            rasa_token=env.get("RASA_AUTH_TOKEN") or "",
            portal_url=(env.get("PORTAL_API_URL") or "http://127.0.0.1:8001").rstrip("/"),
            portal_api_key=env.get("PORTAL_API_KEY") or "",
        )

    def check(self) -> None:
        """Demo accounts with a published password never leave loopback."""
        if self.sandbox_mode and not _is_loopback(self.host):
            raise SettingsError(
                f"SANDBOX_MODE=1 creates demo staff accounts with a known password: it only "
                f"runs on a loopback address, not BIND_HOST={self.host}"
            )
