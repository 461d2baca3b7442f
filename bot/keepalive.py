"""Rasa's calls to the action server reuse their connections.

Rasa 3.6's ``EndpointConfig.request`` opens a new aiohttp session, so a new TCP connection, for
every custom action, and closes it after the answer: two to three connections per citizen
message, each set up and torn down on both sides. Here each endpoint keeps one session per
event loop and closes idle connections after ``IDLE_SECONDS``, before the action server's Sanic
does (its keep-alive timeout is 5 s), so a kept connection is not closed under a request.
Same headers, authentication and overall timeout as Rasa's own session.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp
    from rasa.utils.endpoints import EndpointConfig

IDLE_SECONDS = 2.0


class _Kept:
    """``async with`` over a kept session: entering gives it, leaving keeps it open."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self.session

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        return None


def install_kept_connections() -> None:
    import aiohttp
    from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT, EndpointConfig

    if getattr(EndpointConfig.session, "_kept", False):
        return
    sessions: dict[tuple[Any, ...], aiohttp.ClientSession] = {}

    def session(self: EndpointConfig) -> Any:
        # One per loop and per what a session carries itself (requests carry their URL).
        key = (
            id(asyncio.get_running_loop()),
            tuple(sorted((str(k), str(v)) for k, v in self.headers.items())),
            tuple(sorted(self.basic_auth.items())),
        )
        kept = sessions.get(key)
        if kept is None or kept.closed:
            auth = (
                aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
                if self.basic_auth
                else None
            )
            kept = aiohttp.ClientSession(
                headers=self.headers,
                auth=auth,
                timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
                connector=aiohttp.TCPConnector(keepalive_timeout=IDLE_SECONDS),
            )
            sessions[key] = kept
        return _Kept(kept)

    session._kept = True  # type: ignore[attr-defined]
    EndpointConfig.session = session  # type: ignore[method-assign]
