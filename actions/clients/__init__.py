"""One client per back-end system. Actions get them here and never know sandbox from production.

Settings (environment), read here and nowhere else: IDENTITY_API_URL, PORTAL_API_URL,
IDENTITY_API_KEY, PORTAL_API_KEY, API_TIMEOUT_SECONDS (one attempt of a read),
API_DEADLINE_SECONDS (a whole call, retries included), API_RETRIES, BREAKER_FAILURES (failed
calls in a row that open a back end's breaker), BREAKER_COOLDOWN_SECONDS (how long it stays
open before a trial call), CLIENT_REF_SECRET (keys the conversation references sent to the
identity API; random per process when unset), CONTENT_SERVICE_URL and CONTENT_INTERNAL_TOKEN
(the content service's internal routes: published FAQ entries, unanswered questions). Clients
are built on first use, not at import.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from actions.clients.base import ApiError, ServiceUnavailable
from actions.clients.breaker import CircuitBreaker
from actions.clients.identity import IdentityClient, IdentityError
from actions.clients.portal import PortalClient, PortalError

__all__ = [
    "ApiError",
    "CircuitBreaker",
    "ClientSettings",
    "Clients",
    "IdentityClient",
    "IdentityError",
    "PortalClient",
    "PortalError",
    "ServiceUnavailable",
    "clients",
    "set_clients",
]


@dataclass
class Clients:
    identity: IdentityClient
    portal: PortalClient
    client_ref_secret: str = field(default_factory=lambda: secrets.token_hex(16))


@dataclass(frozen=True)
class ClientSettings:
    """What the clients are built from; ``from_env`` is the one place that reads it."""

    identity_url: str = "http://127.0.0.1:8000"
    portal_url: str = "http://127.0.0.1:8001"
    identity_api_key: str | None = None
    portal_api_key: str | None = None
    # The action answers within ~3 s: one call waits at most `deadline`, every attempt and
    # back-off included; one attempt of a read at most `timeout`.
    timeout: float = 1.5
    deadline: float = 2.2
    retries: int = 2
    breaker_failures: int = 3
    breaker_cooldown: float = 30.0
    client_ref_secret: str = ""
    content_url: str = "http://127.0.0.1:8090"
    content_token: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientSettings:
        env = os.environ if environ is None else environ

        def number(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            try:
                value = float(raw) if raw else default
            except ValueError:
                raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {raw!r}")
            return value

        def whole(name: str, default: int, least: int) -> int:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            if not raw.isdigit() or int(raw) < least:
                raise ValueError(f"{name} must be a whole number >= {least}, got {raw!r}")
            return int(raw)

        return cls(
            identity_url=env.get("IDENTITY_API_URL") or cls.identity_url,
            portal_url=env.get("PORTAL_API_URL") or cls.portal_url,
            identity_api_key=env.get("IDENTITY_API_KEY") or None,
            portal_api_key=env.get("PORTAL_API_KEY") or None,
            timeout=number("API_TIMEOUT_SECONDS", cls.timeout),
            deadline=number("API_DEADLINE_SECONDS", cls.deadline),
            retries=whole("API_RETRIES", cls.retries, 0),
            breaker_failures=whole("BREAKER_FAILURES", cls.breaker_failures, 1),
            breaker_cooldown=number("BREAKER_COOLDOWN_SECONDS", cls.breaker_cooldown),
            client_ref_secret=env.get("CLIENT_REF_SECRET") or secrets.token_hex(16),
            content_url=env.get("CONTENT_SERVICE_URL") or cls.content_url,
            content_token=env.get("CONTENT_INTERNAL_TOKEN") or "",
        )

    def build(self) -> Clients:
        return Clients(
            identity=IdentityClient(
                self.identity_url,
                api_key=self.identity_api_key,
                timeout=self.timeout,
                deadline=self.deadline,
                retries=self.retries,
                breaker=self._breaker("identity"),
            ),
            portal=PortalClient(
                self.portal_url,
                api_key=self.portal_api_key,
                timeout=self.timeout,
                deadline=self.deadline,
                retries=self.retries,
                breaker=self._breaker("portal"),
            ),
            client_ref_secret=self.client_ref_secret or secrets.token_hex(16),
        )

    def _breaker(self, name: str) -> CircuitBreaker:
        return CircuitBreaker(name, failures=self.breaker_failures, cooldown=self.breaker_cooldown)


_clients: Clients | None = None


def clients() -> Clients:
    """The process-wide clients, built from the environment on first use."""
    global _clients
    if _clients is None:
        _clients = ClientSettings.from_env().build()
    return _clients


def set_clients(value: Clients | None) -> None:
    """Replace the clients (tests hand in clients built on httpx.MockTransport)."""
    global _clients
    _clients = value
