"""One client per back-end system. Actions get them here and never know sandbox from production.

Settings (environment): IDENTITY_API_URL, PORTAL_API_URL, IDENTITY_API_KEY, PORTAL_API_KEY,
API_TIMEOUT_SECONDS, CLIENT_REF_SECRET (keys the conversation references sent to the identity
API; random per process when unset). Clients are built on first use, not at import time.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

from actions.clients.base import ApiError, ServiceUnavailable
from actions.clients.identity import IdentityClient, IdentityError
from actions.clients.portal import PortalClient, PortalError

__all__ = [
    "ApiError",
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


_clients: Clients | None = None


def _from_env() -> Clients:
    timeout = float(os.environ.get("API_TIMEOUT_SECONDS", "5"))
    return Clients(
        identity=IdentityClient(
            os.environ.get("IDENTITY_API_URL", "http://127.0.0.1:8000"),
            api_key=os.environ.get("IDENTITY_API_KEY") or None,
            timeout=timeout,
        ),
        portal=PortalClient(
            os.environ.get("PORTAL_API_URL", "http://127.0.0.1:8001"),
            api_key=os.environ.get("PORTAL_API_KEY") or None,
            timeout=timeout,
        ),
        client_ref_secret=os.environ.get("CLIENT_REF_SECRET") or secrets.token_hex(16),
    )


def clients() -> Clients:
    """The process-wide clients, built from the environment on first use."""
    global _clients
    if _clients is None:
        _clients = _from_env()
    return _clients


def set_clients(value: Clients | None) -> None:
    """Replace the clients (tests hand in clients built on httpx.MockTransport)."""
    global _clients
    _clients = value
