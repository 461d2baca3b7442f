"""One client per back-end system. Actions get them here and never know sandbox from production.

Settings (environment): IDENTITY_API_URL, PORTAL_API_URL, IDENTITY_API_KEY, PORTAL_API_KEY,
API_TIMEOUT_SECONDS. Clients are built on first use, not at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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
