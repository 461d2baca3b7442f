"""FastAPI app of the portal sandbox: procedure catalogue and dossier lookup by code."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any, Dict, List

from fastapi import FastAPI, Header, Path, Query

from sandbox.common import (
    ApiError,
    Clock,
    Lang,
    error_responses,
    install_error_handlers,
    install_request_logging,
    make_engine,
    mask_id_number,
    transaction,
)
from sandbox.faults import install_fault_switch
from sandbox.portal.catalogue import Procedure, load_catalogue, resolve, search
from sandbox.portal.models import Dossier
from sandbox.portal.provinces import DEFAULT_PROVINCES_FILE, load_provinces
from sandbox.portal.schemas import (
    Health,
    OwnerDossierStatus,
    ProcedureDetail,
    ProcedureList,
    ProvinceList,
    ProvinceResolution,
    PublicDossierStatus,
)
from sandbox.portal.seed import STATUS_LABELS, seed_portal
from sandbox.settings import Settings
from sandbox.tokens import TokenError, verify_token

logger = logging.getLogger("sandbox.portal")

LangQuery = Annotated[Lang, Query(description="Language of the texts: vi (default) or en.")]

DOSSIER_CODE = re.compile(r"^[0-9A-Z]{2,5}(\.[0-9A-Z]{1,5}){1,4}-\d{6}-\d{4,6}$")

DESCRIPTION = """Sandbox of the national public service portal: the procedure catalogue
(bilingual, sample content with its source and review date), the 34 provincial-level units in
force since 1 July 2025 (old province names resolve to them) and dossier tracking by code.
Without a token (or with another citizen's token) a dossier shows only its coarse status;
the owner's access token from the identity API shows the details.
Errors are JSON `{"error": code, "message": text}`."""


def normalise_dossier_code(raw: str) -> str:
    return raw.strip().upper()


def _invalid_token(message: str) -> ApiError:
    return ApiError(
        401,
        "invalid_token",
        message,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def create_portal_app(
    settings: Settings,
    clock: Clock = time.time,
    provinces_file: FilePath = DEFAULT_PROVINCES_FILE,
) -> FastAPI:
    """Build the app: catalogue and provinces loaded (and validated), engine, tables, seed."""
    secret = settings.require_secret()
    catalogue: Dict[str, Procedure] = load_catalogue(settings.catalogue_dir)
    provinces = load_provinces(provinces_file)
    engine = make_engine(settings.portal_db_url)
    seed_portal(engine)
    logger.info("catalogue loaded: %d procedures from %s", len(catalogue), settings.catalogue_dir)
    logger.info(
        "provinces loaded: %d units, %d former provinces from %s",
        len(provinces.units),
        provinces.former_count,
        provinces_file,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="Portal API (sandbox)",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.catalogue = catalogue
    app.state.provinces = provinces
    install_error_handlers(app)
    if settings.sandbox_mode:  # inside the request log, so faulted requests are logged too
        install_fault_switch(app, "portal")
    install_request_logging(app, "portal")

    @app.get("/health", response_model=Health, tags=["health"])
    def health() -> Health:
        return Health()

    @app.get(
        "/v1/procedures",
        response_model=ProcedureList,
        tags=["catalogue"],
        summary="Search procedures by name or keyword (accent-insensitive)",
        responses=error_responses(),
    )
    def list_procedures(
        q: Annotated[
            str | None, Query(description='e.g. "ho chieu"; omitted: all procedures')
        ] = None,
        lang: LangQuery = Lang.vi,
    ) -> ProcedureList:
        items = [
            {"id": p.id, "name": p.name.get(lang.value), "summary": p.summary.get(lang.value)}
            for p in search(catalogue, q)
        ]
        return ProcedureList.parse_obj({"items": items})

    @app.get(
        "/v1/procedures/{procedure_id}",
        response_model=ProcedureDetail,
        tags=["catalogue"],
        summary="One procedure, resolved for a variant and a province",
        responses=error_responses((404, "`procedure_not_found`, `variant_not_found`")),
    )
    def get_procedure(
        procedure_id: Annotated[str, Path(description="e.g. passport")],
        lang: LangQuery = Lang.vi,
        variant: Annotated[
            str | None, Query(description="Variant id; the default variant if omitted")
        ] = None,
        province: Annotated[
            str | None,
            Query(description='e.g. "Hà Nội"; an old name ("Bình Dương") means its new unit'),
        ] = None,
    ) -> ProcedureDetail:
        procedure = catalogue.get(procedure_id.strip().lower())
        if procedure is None:
            raise ApiError(404, "procedure_not_found", f"No procedure {procedure_id!r}.")
        # The note keyed by the name as given wins; else the note of the unit it resolves to.
        province_names: List[str] = []
        if province:
            province_names.append(province)
            found = provinces.resolve(province)
            if found is not None:
                province_names.append(found.unit.name.vi)
        try:
            detail = resolve(procedure, lang.value, variant, province_names)
        except KeyError:
            raise ApiError(
                404,
                "variant_not_found",
                f"Procedure {procedure.id!r} has no variant {variant!r}.",
            ) from None
        return ProcedureDetail.parse_obj(detail)

    @app.get(
        "/v1/provinces",
        response_model=ProvinceList,
        tags=["provinces"],
        summary="The 34 provincial-level units and the former provinces now part of each",
        responses=error_responses(),
    )
    def list_provinces(lang: LangQuery = Lang.vi) -> ProvinceList:
        items = [
            {
                "name": unit.name.get(lang.value),
                "former": [former.get(lang.value) for former in unit.former],
            }
            for unit in provinces.units
        ]
        return ProvinceList.parse_obj({"items": items})

    @app.get(
        "/v1/provinces/resolve",
        response_model=ProvinceResolution,
        tags=["provinces"],
        summary="The current unit for a province name as typed (old or new, any accents)",
        responses=error_responses((404, "`province_not_found`")),
    )
    def resolve_province(
        name: Annotated[
            str,
            Query(
                min_length=1,
                pattern=r"^\s*\S",
                description='As typed, e.g. "Bình Dương", "tphcm", "tinh nam dinh"',
            ),
        ],
        lang: LangQuery = Lang.vi,
    ) -> ProvinceResolution:
        found = provinces.resolve(name)
        if found is None:
            raise ApiError(
                404,
                "province_not_found",
                f"No province or city, current or former, is called {name.strip()!r}.",
            )
        return ProvinceResolution(
            input=name,
            name=found.unit.name.get(lang.value),
            name_vi=found.unit.name.vi,
            former_name=found.former.get(lang.value) if found.former is not None else None,
            merged=found.merged,
        )

    @app.get(
        "/v1/dossiers/{code}",
        response_model=OwnerDossierStatus | PublicDossierStatus,
        tags=["dossiers"],
        summary="Dossier status by code; details only with the owner's token",
        response_description="The public view, or the owner's view with the owner's token",
        responses=error_responses(
            (400, "`invalid_dossier_code`"),
            (401, "`invalid_token` (a token was given but is invalid or expired)"),
            (404, "`dossier_not_found`"),
        ),
    )
    def get_dossier(
        code: Annotated[str, Path(description="e.g. 000.00.10.H26-261110-0001")],
        lang: LangQuery = Lang.vi,
        authorization: Annotated[
            str | None,
            Header(description="Optional: `Bearer <access token from the identity API>`"),
        ] = None,
    ) -> Dict[str, Any]:
        normalised = normalise_dossier_code(code)
        if not DOSSIER_CODE.match(normalised):
            raise ApiError(
                400,
                "invalid_dossier_code",
                "Dossier codes look like 000.00.10.H26-261110-0001 or H29.22-261112-0123.",
            )
        subject: str | None = None
        if authorization is not None and authorization.strip():
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise _invalid_token("Authorization must be `Bearer <token>`.")
            try:
                subject = str(verify_token(secret, token.strip(), clock())["sub"])
            except TokenError:
                raise _invalid_token("The access token is invalid or expired.") from None

        with transaction(engine) as session:
            dossier = session.get(Dossier, normalised)
            if dossier is None:
                raise ApiError(404, "dossier_not_found", "No dossier has this code.")
            view = _dossier_view(dossier, lang.value, subject)
        logger.info(
            "dossier %s looked up (%s, by %s)",
            normalised,
            view["detail_level"],
            mask_id_number(subject) if subject else "anonymous",
        )
        return view

    return app


def _dossier_view(dossier: Dossier, lang: str, subject: str | None) -> Dict[str, Any]:
    owner_match = None if subject is None else subject == dossier.owner_id_number
    view: Dict[str, Any] = {
        "code": dossier.code,
        "status": dossier.status,
        "status_label": STATUS_LABELS[dossier.status][lang],
        "updated_on": dossier.updated_on,
        "detail_level": "owner" if owner_match else "public",
        "owner_match": owner_match,
    }
    if not owner_match:
        return view

    def text(value: Dict[str, str] | None) -> str | None:
        return None if value is None else value[lang]

    view.update(
        {
            "owner_name": dossier.owner_name,
            "procedure": {"id": dossier.procedure_id, "name": dossier.procedure_name[lang]},
            "agency": dossier.agency[lang],
            "submitted_on": dossier.submitted_on,
            "due_on": dossier.due_on,
            "missing_documents": list(dossier.missing_documents[lang]),
            "supplement_deadline": dossier.supplement_deadline,
            "refusal_reason": text(dossier.refusal_reason),
            "pickup": text(dossier.pickup),
            "next_step": dossier.next_step[lang],
        }
    )
    return view
