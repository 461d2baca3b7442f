"""FastAPI app of the identity sandbox (e-authentication against the population database)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Path, Query

from sandbox.common import (
    Clock,
    error_responses,
    install_error_handlers,
    install_request_logging,
    make_engine,
)
from sandbox.faults import install_fault_switch
from sandbox.identity.schemas import (
    ConfirmRequest,
    Health,
    IntrospectRequest,
    IntrospectResponse,
    SmsList,
    StartVerificationRequest,
    StartVerificationResponse,
    TokenResponse,
)
from sandbox.identity.seed import seed_identity
from sandbox.identity.service import IdentityService
from sandbox.settings import Settings

DESCRIPTION = """Sandbox of the e-authentication API: a citizen proves who they are with a
one-time code sent by SMS to the phone registered in the (sample) population database.
SMS are not sent: they are written to an outbox, readable at `GET /sandbox/sms` in sandbox mode.
All data is sample data. Errors are JSON `{"error": code, "message": text, ...}`."""

START_DESCRIPTION = """A well-formed ID number that is not in the population database gets the
same 201 answer (a decoy verification: no SMS, every code is wrong), so the API does not tell
whether a citizen exists. Locks and caps are checked first, for every ID number alike.
`client_ref` identifies the caller's conversation; requests without one share one bucket."""

CONFIRM_DESCRIPTION = """Checked in this order: unknown verification (404), lock of the
verification's conversation or ID number (423), already used (409), no tries left for this code
(410 `code_exhausted`), expired or superseded (410 `expired`), then the code itself."""


def create_identity_app(settings: Settings, clock: Clock = time.time) -> FastAPI:
    """Build the app: engine, tables and seed citizens are created here, not at import."""
    engine = make_engine(settings.identity_db_url, serialized=True)
    seed_identity(engine)
    service = IdentityService(engine, settings, clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="Identity API (sandbox)",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.service = service
    install_error_handlers(app)
    if settings.sandbox_mode:  # inside the request log, so faulted requests are logged too
        install_fault_switch(app, "identity")
    install_request_logging(app, "identity")

    @app.get("/health", response_model=Health, tags=["health"])
    def health() -> Health:
        return Health()

    @app.post(
        "/v1/verifications",
        status_code=201,
        response_model=StartVerificationResponse,
        tags=["verification"],
        summary="Send a one-time code to the citizen's registered phone",
        description=START_DESCRIPTION,
        responses=error_responses(
            (400, "`invalid_id_number` (with `reason`): the structure is wrong"),
            (
                423,
                "`locked` (with `scope`: `conversation` or `id_number`, and `retry_after`): too "
                "many wrong codes",
            ),
            (
                429,
                "`too_many_requests` (with `scope`: `conversation` or `id_number`, and "
                "`retry_after`): too many codes requested in the window",
            ),
        ),
    )
    def start_verification(body: StartVerificationRequest) -> StartVerificationResponse:
        return StartVerificationResponse(
            **service.start_verification(body.id_number, body.client_ref)
        )

    @app.post(
        "/v1/verifications/{verification_id}/confirm",
        response_model=TokenResponse,
        tags=["verification"],
        summary="Check the code and issue an access token",
        description=CONFIRM_DESCRIPTION,
        responses=error_responses(
            (400, "`wrong_code` (with `attempts_left` for this code)"),
            (404, "`verification_not_found`"),
            (409, "`already_used`"),
            (
                410,
                "`code_exhausted` (no tries left for this code: ask for a new one), `expired` "
                "(past its lifetime, or superseded by a newer code in the same conversation)",
            ),
            (
                423,
                "`locked` (with `scope`: `conversation` or `id_number`, and `retry_after`; also "
                "the answer, with `attempts_left: 0`, to the wrong code that starts the lock)",
            ),
        ),
    )
    def confirm(
        body: ConfirmRequest,
        verification_id: Annotated[str, Path(description="From POST /v1/verifications.")],
    ) -> TokenResponse:
        return TokenResponse(**service.confirm(verification_id, body.code))

    @app.post(
        "/v1/tokens/introspect",
        response_model=IntrospectResponse,
        response_model_exclude_none=True,
        tags=["tokens"],
        summary="Is this access token active? (RFC 7662 style)",
        responses=error_responses(),
    )
    def introspect(body: IntrospectRequest) -> IntrospectResponse:
        return IntrospectResponse(**service.introspect(body.token))

    if settings.sandbox_mode:

        @app.get(
            "/sandbox/sms",
            response_model=SmsList,
            tags=["sandbox"],
            summary="Read the SMS outbox for a phone (sandbox mode only)",
            responses=error_responses(),
        )
        def sms(
            phone: Annotated[str, Query(description="e.g. 0912345678 or +84912345678")],
        ) -> SmsList:
            return SmsList.parse_obj({"messages": service.sms_for_phone(phone)})

    return app
