"""The call-centre desk: its JSON API (console/api/handoff.py) and its pages.

console/app.py calls `install(app)` once, after the console object is on ``app.state``.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from console.api import handoff as handoff_api
from console.desk_assist import install_desk


def install(app: FastAPI, transport: httpx.AsyncBaseTransport | None = None) -> None:
    install_desk(app, transport)
    app.include_router(handoff_api.router)
