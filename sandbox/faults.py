"""A fault switch for tests (sandbox mode only): make one API slow, fail, or answer garbage.

`POST /sandbox/faults {"mode": "slow", "delay_seconds": 10}` on the identity or the portal API
applies to every other route of that API until `{"mode": "off"}`; `GET /sandbox/faults` shows
the switch and how many requests the API received since it was last set (a test sees whether
a client stopped calling). "Down" is not a mode: stop the process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from sandbox.common import error_responses

logger = logging.getLogger("sandbox.faults")

# What "malformed" answers: a 200 whose JSON body is cut off in the middle.
MALFORMED_BODY = b'{"items": [{"id": "passp'


class FaultMode(str, Enum):
    off = "off"
    slow = "slow"  # answer normally after `delay_seconds`
    error = "error"  # 500 with an error body, at once
    malformed = "malformed"  # 200 with a truncated JSON body, at once


class FaultRequest(BaseModel):
    mode: FaultMode = Field(..., description="`off`, `slow`, `error` or `malformed`.")
    delay_seconds: float = Field(10.0, ge=0, le=300, description="How slow `slow` is.")


class FaultStatus(BaseModel):
    mode: FaultMode
    delay_seconds: float
    requests: int = Field(
        ..., description="Requests to this API (other than /sandbox/...) since the last POST."
    )


class FaultSwitch:
    def __init__(self) -> None:
        self.mode = FaultMode.off
        self.delay_seconds = 10.0
        self.requests = 0

    def status(self) -> FaultStatus:
        return FaultStatus(mode=self.mode, delay_seconds=self.delay_seconds, requests=self.requests)


def install_fault_switch(app: FastAPI, name: str) -> FaultSwitch:
    """Add the switch's routes and the middleware that applies it (call in sandbox mode only)."""
    switch = FaultSwitch()
    app.state.faults = switch

    @app.middleware("http")
    async def _inject(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Any:
        if request.url.path.startswith("/sandbox/"):
            return await call_next(request)
        switch.requests += 1
        mode = switch.mode
        if mode is FaultMode.slow:
            await asyncio.sleep(switch.delay_seconds)
        elif mode is FaultMode.error:
            return JSONResponse(
                {"error": "fault_injected", "message": "Sandbox fault switch: error."},
                status_code=500,
            )
        elif mode is FaultMode.malformed:
            return Response(MALFORMED_BODY, status_code=200, media_type="application/json")
        return await call_next(request)

    @app.get(
        "/sandbox/faults",
        response_model=FaultStatus,
        tags=["sandbox"],
        summary="The fault switch and the requests received since it was set (sandbox mode)",
        responses=error_responses(),
    )
    def faults() -> FaultStatus:
        return switch.status()

    @app.post(
        "/sandbox/faults",
        response_model=FaultStatus,
        tags=["sandbox"],
        summary="Make this API slow, fail (500) or answer malformed JSON; `off` (sandbox mode)",
        responses=error_responses(),
    )
    def set_faults(body: FaultRequest) -> FaultStatus:
        switch.mode = body.mode
        switch.delay_seconds = body.delay_seconds
        switch.requests = 0
        logger.warning(
            "%s fault switch: %s (delay %.1f s)", name, body.mode.value, body.delay_seconds
        )
        return switch.status()

    return switch
