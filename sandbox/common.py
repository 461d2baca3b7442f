"""Pieces both apps share: error bodies, masking for logs, database engines, request logging."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any, Dict, List, Literal

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

Clock = Callable[[], float]

request_logger = logging.getLogger("sandbox.requests")


class Lang(str, Enum):
    """Language of the texts in a response."""

    vi = "vi"
    en = "en"


# --- masking -------------------------------------------------------------------------------


def mask_middle(value: str, keep: int = 3) -> str:
    """Keep the first and last `keep` characters: 001090001234 -> 001******234."""
    if len(value) <= 2 * keep:
        return "*" * len(value)
    return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]


def mask_id_number(id_number: str) -> str:
    return mask_middle(id_number)


def mask_phone(phone: str, keep: int = 3) -> str:
    """Only the last `keep` digits, enough for the citizen to recognise it: *******678."""
    if len(phone) <= keep:
        return "*" * len(phone)
    return "*" * (len(phone) - keep) + phone[-keep:]


def mask_code(code: str) -> str:
    return "*" * len(code)


# --- errors ----------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """Every error answer: a stable machine code, an English message, sometimes more fields."""

    error: str = Field(..., description="Stable machine-readable code, e.g. `wrong_code`.")
    message: str = Field(..., description="Human-readable explanation in English.")
    retry_after: int | None = Field(
        None, description="Seconds until the request may succeed (`locked`, `too_many_requests`)."
    )
    attempts_left: int | None = Field(
        None,
        description="Wrong codes still allowed for this code (`wrong_code`); 0 on the wrong code "
        "that started a lock.",
    )
    scope: Literal["conversation", "id_number"] | None = Field(
        None,
        description="What is limited (`locked`, `too_many_requests`): `conversation` (the "
        "caller's `client_ref`, any ID number) or `id_number` (this ID number, every "
        "conversation).",
    )
    reason: str | None = Field(None, description="Finer cause of `invalid_id_number`.")
    details: List[Dict[str, Any]] | None = Field(
        None, description="Field errors of `invalid_request`."
    )


class ApiError(Exception):
    """Raised by handlers; rendered as `ErrorBody` JSON with the given status."""

    def __init__(
        self,
        status_code: int,
        error: str,
        message: str,
        headers: Dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{error}: {message}")
        self.status_code = status_code
        self.error = error
        self.message = message
        self.headers = headers
        self.extra = extra

    def body(self) -> Dict[str, Any]:
        return {"error": self.error, "message": self.message, **self.extra}


def retry_after_seconds(until: float, now: float) -> int:
    return max(1, math.ceil(until - now))


def error_responses(*codes: tuple[int, str]) -> Dict[int | str, Dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the error codes a route can answer."""
    out: Dict[int | str, Dict[str, Any]] = {}
    for status, description in codes:
        if status in out:
            out[status]["description"] += "; " + description
        else:
            out[status] = {"model": ErrorBody, "description": description}
    if 422 not in out:
        out[422] = {"model": ErrorBody, "description": "`invalid_request`: malformed input"}
    return out


_HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg"), "type": err.get("type")}
            for err in exc.errors()
        ]
        body = {
            "error": "invalid_request",
            "message": "The request is malformed; see details.",
            "details": jsonable_encoder(details),
        }
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_ERROR_CODES.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": code, "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )


# --- request logging -------------------------------------------------------------------------


def install_request_logging(app: FastAPI, name: str) -> None:
    """Log method, path and status. Never the query string: it can hold a phone number.

    Paths carry only random verification ids, dossier codes and procedure ids.
    """

    @app.middleware("http")
    async def _log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        request_logger.info(
            "%s %s %s -> %d (%.0f ms)",
            name,
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response


# --- storage ---------------------------------------------------------------------------------


def make_engine(url: str, serialized: bool = False) -> Engine:
    """An engine for any SQLAlchemy URL; for a SQLite file, its folder is created first.

    `serialized=True` runs transactions one at a time (SQLite: `BEGIN IMMEDIATE`, others:
    SERIALIZABLE), so that count-then-insert limits cannot be raced by parallel requests.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        if serialized:
            return create_engine(url, future=True, isolation_level="SERIALIZABLE")
        return create_engine(url, future=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    if serialized:
        # pysqlite defers BEGIN to the first write, so reads would not be isolated; take the
        # write lock at the start instead (SQLAlchemy's documented recipe).
        @event.listens_for(engine, "connect")
        def _no_driver_transactions(dbapi_connection: Any, _: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with Session(engine, future=True) as session, session.begin():
        yield session
