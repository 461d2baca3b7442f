"""FAQ entries: create a draft, edit it, submit, publish, withdraw; the action server's read of
what is published (`GET /internal/faq/published`, with an ETag to poll cheaply); unanswered
questions: recorded by the action server (`POST /internal/unanswered`), listed in groups
(`GET /api/unanswered`), a group made into an FAQ draft (`POST /api/unanswered/{group}/faq`).

Each request is one transaction: a refused or invalid request changes nothing. Internal routes
answer loopback callers only, and only with the shared secret when one is set
(CONTENT_INTERNAL_TOKEN; console/settings.py does not hold it yet, see `internal_token`).
"""

from __future__ import annotations

import datetime
import hmac
import ipaddress
import os
from typing import Annotated, Any, List

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from pydantic import BaseModel, Field

from console import faq as store
from console import unanswered
from console.api import Console, ConsoleDep, Editor, Publisher, Reader
from console.db import transaction

router = APIRouter(tags=["FAQ"])
INTERNAL_HEADER = "X-Internal-Token"


class Questions(BaseModel):
    vi: List[str] = Field(..., max_items=store.MAX_PHRASINGS)
    en: List[str] = Field(default_factory=list, max_items=store.MAX_PHRASINGS)


class Answer(BaseModel):
    vi: str = Field(..., max_length=store.MAX_ANSWER)
    en: str = Field(..., max_length=store.MAX_ANSWER)


class FaqBody(BaseModel):
    """One entry's whole content: a draft is saved as a whole (the checks see it together)."""

    questions: Questions
    answer: Answer
    source: str = Field(..., max_length=2000, description="https:// link to the official text")
    reviewed_on: datetime.date
    valid_from: datetime.date | None = None
    valid_until: datetime.date | None = None

    def raw(self) -> dict[str, Any]:
        data = self.dict()
        for key in ("reviewed_on", "valid_from", "valid_until"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


@router.post("/api/faq", status_code=201)
def create(body: FaqBody, staff: Editor, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        return store.create(session, staff, body.raw())


@router.get("/api/faq")
def list_entries(staff: Reader, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        return {"entries": store.list_entries(session)}


@router.get("/api/faq/{entry_id}")
def read(entry_id: int, staff: Reader, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        return store.detail(session, entry_id, staff)


@router.put("/api/faq/{entry_id}/draft")
def save_draft(entry_id: int, body: FaqBody, staff: Editor, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        return store.save_draft(session, staff, entry_id, body.raw())


@router.delete("/api/faq/{entry_id}/draft")
def discard(entry_id: int, staff: Editor, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        return store.discard(session, staff, entry_id)


@router.post("/api/faq/{entry_id}/submit")
def submit(entry_id: int, staff: Editor, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        return store.submit(session, staff, entry_id)


@router.post("/api/faq/{entry_id}/publish")
def publish(entry_id: int, staff: Publisher, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        return store.publish(session, staff, entry_id)


@router.post("/api/faq/{entry_id}/withdraw")
def withdraw(entry_id: int, staff: Publisher, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        return store.withdraw(session, staff, entry_id)


# --- for the action server -----------------------------------------------------------------


def internal_token(console: Console) -> str:
    """The shared secret of the internal routes. Read here until console/settings.py (not this
    module's file) holds it as `internal_token`; then the settings object wins."""
    return str(getattr(console.settings, "internal_token", "") or "") or os.environ.get(
        "CONTENT_INTERNAL_TOKEN", ""
    )


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def internal_caller(
    request: Request,
    console: ConsoleDep,
    token: Annotated[str | None, Header(alias=INTERNAL_HEADER)] = None,
) -> None:
    if not _loopback(request.client.host if request.client else None):
        raise HTTPException(403, "internal routes answer the local action server only")
    expected = internal_token(console)
    if expected and not hmac.compare_digest((token or "").encode(), expected.encode()):
        raise HTTPException(403, f"internal routes need the {INTERNAL_HEADER} header")


Internal = Depends(internal_caller)


def today() -> str:
    return datetime.date.today().isoformat()


@router.get("/internal/faq/published", dependencies=[Internal])
def published(
    response: Response,
    console: ConsoleDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    """Live entries within their validity window. The ETag changes with every publish or
    withdrawal and with the date (a window opens or closes at midnight)."""
    day = today()
    with transaction(console.engine) as session:
        counter = store.faq_counter(session)
        etag = f'"{counter}-{day}"'
        if if_none_match == etag:
            return Response(status_code=304, headers={"ETag": etag})
        counter, entries = store.published(session, day)
    etag = f'"{counter}-{day}"'
    response.headers["ETag"] = etag
    return {"version": etag.strip('"'), "entries": entries}


class Reported(BaseModel):
    text: str = Field(..., min_length=1, max_length=4000)
    language: str = Field("vi", regex="^(vi|en)$")


class FromGroup(BaseModel):
    """What a group lacks to be an FAQ draft; its questions become the phrasings."""

    answer: Answer
    source: str = Field(..., max_length=2000)
    reviewed_on: datetime.date
    valid_from: datetime.date | None = None
    valid_until: datetime.date | None = None
    questions_vi: List[str] = Field(default_factory=list, max_items=store.MAX_PHRASINGS)
    questions_en: List[str] = Field(default_factory=list, max_items=store.MAX_PHRASINGS)


@router.post("/internal/unanswered", status_code=202, dependencies=[Internal])
def record_unanswered(body: Reported, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        unanswered.record(session, body.text, body.language)
    return {"recorded": True}


@router.get("/api/unanswered")
def unanswered_groups(staff: Reader, console: ConsoleDep) -> dict[str, Any]:
    """Open questions in groups of similar ones, the largest first."""
    with transaction(console.engine) as session:
        found = unanswered.groups(session)
    return {"groups": [{k: v for k, v in g.items() if k != "ids"} for g in found]}


@router.post("/api/unanswered/{group}/faq", status_code=201)
def faq_from_group(
    group: int, body: FromGroup, staff: Editor, console: ConsoleDep
) -> dict[str, Any]:
    extra = {
        "answer": body.answer.dict(),
        "source": body.source,
        "reviewed_on": body.reviewed_on.isoformat(),
        "valid_from": body.valid_from.isoformat() if body.valid_from else None,
        "valid_until": body.valid_until.isoformat() if body.valid_until else None,
        "questions": {"vi": body.questions_vi, "en": body.questions_en},
    }
    with transaction(console.engine) as session:
        return unanswered.make_faq(session, staff, group, extra)
