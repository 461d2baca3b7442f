"""The JSON API's shared pieces: the service object handlers reach, the signed-in staff member,
role checks, and error bodies (`{"detail": "...", "problems": [...]}`).

Routers per resource: auth.py (sign-in), responses.py (replies and their workflow), admin.py
(accounts, audit log); FAQ entries will get their own router beside them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine

from console.auth import Staff, staff_for_token
from console.content import ContentError
from console.db import transaction
from console.published import PublishedContent
from console.settings import ConsoleSettings


@dataclass
class Console:
    """Everything a request needs, built once by console.app.create_app."""

    settings: ConsoleSettings
    engine: Engine
    published: PublishedContent
    slot_names: set[str]


def get_console(request: Request) -> Console:
    return request.app.state.console  # type: ignore[no-any-return]


_bearer = HTTPBearer(auto_error=False, description="the token from POST /api/login")


@dataclass(frozen=True)
class SignedIn:
    staff: Staff
    token: str


ConsoleDep = Annotated[Console, Depends(get_console)]


def signed_in(
    console: ConsoleDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> SignedIn:
    staff = None
    if credentials is not None and credentials.scheme.lower() == "bearer":
        with transaction(console.engine) as session:
            staff = staff_for_token(session, console.settings, credentials.credentials, time.time())
    if staff is None:
        raise HTTPException(
            401,
            "sign in first (POST /api/login), or sign in again: the session expired",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return SignedIn(staff, credentials.credentials if credentials else "")


SignedInDep = Annotated[SignedIn, Depends(signed_in)]


def requires(permission: str) -> Callable[..., Staff]:
    """A dependency: the signed-in staff member, if their role has ``permission`` (else 403)."""

    def check(who: SignedInDep) -> Staff:
        if not who.staff.may(permission):
            raise HTTPException(403, f"the {who.staff.role} role may not {permission} here")
        return who.staff

    return check


Reader = Annotated[Staff, Depends(requires("read"))]
Editor = Annotated[Staff, Depends(requires("edit"))]
Publisher = Annotated[Staff, Depends(requires("publish"))]
Admin = Annotated[Staff, Depends(requires("admin"))]


def _field(location: tuple[object, ...]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path")]
    return ".".join(parts) or "request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ContentError)
    async def content_error(_: Request, exc: ContentError) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "problems": exc.problems}, exc.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # The submitted values are never echoed (an NLG body holds a conversation's slots).
        problems = [f"{_field(tuple(e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(problems), "problems": problems}, 422)
