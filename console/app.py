"""`create_app(settings)`: the content service and the console's JSON API in one FastAPI app.

Building it creates the schema, imports the domain's replies the store lacks, makes the demo
accounts in sandbox mode, and loads the published content; serving it polls for publishes made
by other processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from console import desk, nlg, pages
from console.api import Console, install_error_handlers
from console.api import admin as admin_api
from console.api import auth as auth_api
from console.api import faq as faq_api
from console.api import responses as responses_api
from console.api import spreadsheets as spreadsheets_api
from console.auth import ensure_demo_accounts
from console.content import import_domain
from console.db import create_schema, make_engine, transaction
from console.published import PublishedContent
from console.rasa_format import read_domain, read_slot_names
from console.settings import ConsoleSettings


def build_console(settings: ConsoleSettings, engine: Engine | None = None) -> Console:
    engine = engine or make_engine(settings.db_url)
    create_schema(engine)
    domain = read_domain(settings.domain_dir)
    with transaction(engine) as session:
        import_domain(session, domain, time.time())
        ensure_demo_accounts(session, settings)
    published = PublishedContent(engine, domain)
    published.load()
    published.warm_up()
    return Console(settings, engine, published, read_slot_names(settings.domain_dir))


def create_app(settings: ConsoleSettings, engine: Engine | None = None) -> FastAPI:
    console = build_console(settings, engine)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        poller = asyncio.create_task(console.published.poll(settings.refresh_seconds))
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    app = FastAPI(
        title="Content service and staff console",
        description=(
            "Rasa's NLG endpoint and the JSON API of the staff console (console/README.md)."
        ),
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.console = console
    install_error_handlers(app)
    app.include_router(nlg.router)
    app.include_router(auth_api.router)
    app.include_router(responses_api.router)
    app.include_router(admin_api.router)
    app.include_router(faq_api.router)
    app.include_router(spreadsheets_api.router)  # export, import as drafts, /spreadsheets
    pages.install(app)  # the staff console's pages (/, /signin, /responses, /audit, /static)
    desk.install(app)  # the call-centre desk: /api/handoff, /internal/handoff, /desk (desk.py)
    return app
