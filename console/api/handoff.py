"""The call-centre desk's JSON API: the bot's handoff requests and ratings (internal routes, the
action server's token), and the agents' queue, take, reply, transfer, notes, transcript, assist,
hand back and report (roles `agent` and `admin`; others 403).

Transcripts and assist come from Rasa's tracker, masked (console/desk_rasa.py) before they
leave; every view is audited (`viewed_conversation`, `viewed_assist`), as are take (and
`taken_by_staff` for a conversation that did not ask), transfer, note, message and release
(console/handoff.py).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field, conint

from console import audit
from console import handoff as store
from console.api import ConsoleDep, SignedInDep
from console.api.faq import Internal
from console.auth import Staff
from console.db import transaction
from console.desk_assist import (
    HANDBACK_ACTION,
    JOINED,
    RETURNED,
    Desk,
    assist,
    get_desk,
    reply_text,
)
from console.desk_rasa import DeskError, markdown, mask

router = APIRouter(tags=["Call-centre desk"])
MAX_MESSAGE = 4000
DeskDep = Annotated[Desk, Depends(get_desk)]


def desk_staff(who: SignedInDep, console: ConsoleDep) -> Staff:
    """An agent or admin; each call marks them online at the desk."""
    if who.staff.role not in store.DESK_ROLES:
        raise HTTPException(403, f"the {who.staff.role} role may not use the call-centre desk")
    with transaction(console.engine) as session:
        store.touch(session, who.staff.email)
    return who.staff


Agent = Annotated[Staff, Depends(desk_staff)]


def display_name(email: str) -> str:
    """What the citizen sees of an agent: the email's local part."""
    return email.split("@", 1)[0]


# --- the bot's side ------------------------------------------------------------------------


class Summary(BaseModel):
    intent: str | None = None  # kept only when it looks like a name (console/handoff.py)
    procedure: str | None = None
    dossier_code_given: bool = False
    verified: bool = False


class HandoffRequest(BaseModel):
    conversation_id: str = Field(..., min_length=1, max_length=200)
    channel: str = Field(..., regex=r"^[a-z0-9_]{1,40}$")
    language: str = Field("vi", regex="^(vi|en)$")
    reason: str = Field(..., regex="^(request_human|fallbacks)$")
    summary: Summary = Field(default_factory=Summary)  # type: ignore[arg-type]


class Rating(BaseModel):
    score: conint(ge=1, le=5)  # type: ignore[valid-type]


@router.post("/internal/handoff", dependencies=[Internal])
async def request_handoff(body: HandoffRequest, desk: DeskDep) -> dict[str, Any]:
    """A citizen asked for a person (or the bot misunderstood twice): queued, or a call back."""
    return await desk.db(
        lambda session: store.request(
            session,
            desk.hours,
            body.conversation_id,
            body.channel,
            body.language,
            body.reason,
            body.summary.dict(),
        )
    )


@router.post("/internal/handoff/{conversation_id}/rating", dependencies=[Internal])
async def rate(conversation_id: str, body: Rating, desk: DeskDep) -> dict[str, Any]:
    handoff_id = await desk.db(
        lambda session: store.rate(session, conversation_id, int(body.score))
    )
    return {"handoff_id": handoff_id, "rating": int(body.score)}


# --- the agents' side ----------------------------------------------------------------------


class Text(BaseModel):
    text: str = Field(..., min_length=1, max_length=MAX_MESSAGE)


class Transfer(BaseModel):
    to: str = Field(..., min_length=3, max_length=320)


@router.get("/api/handoff/queue")
async def queue(staff: Agent, desk: DeskDep) -> dict[str, Any]:
    now = time.time()

    def read(session: Any) -> dict[str, Any]:
        return {
            "queue": store.queue(session, now),
            "online": store.online_agents(session, now),
            "open": desk.hours.is_open(now),
        }

    return await desk.db(read)


async def take_conversation(desk: Desk, staff: Staff, conversation_id: str) -> dict[str, Any]:
    """Hold a conversation, from the queue or (staff's own choice) one that did not ask; then
    tell the citizen a person joined.

    A conversation not in the queue must be known to Rasa (the citizen wrote: else 404); its
    channel and language come from the tracker, and the bot is paused first (a `pause` event:
    if Rasa refuses, 502 and nothing changed here). A call back (the bot did not pause it when
    it kept the question) is paused the same way. The published `utter_handoff_agent_joined`
    goes through the channel's agent endpoint; if that fails the take stands and ``joined``
    says why."""

    def before(session: Any) -> tuple[str | None, str | None]:
        found = store.open_handoff(session, conversation_id)
        return (str(found.status), found.agent) if found is not None else (None, None)

    status, holder = await desk.db(before)
    if status is None:
        conversation = await desk.clients.conversation(conversation_id)
        if not conversation.known:
            raise DeskError("Rasa has no conversation with this id", 404)
        if not conversation.channel:
            raise DeskError("Rasa does not say which channel this conversation came from", 422)
        channel, language = conversation.channel, conversation.language
        await desk.clients.pause(conversation_id)
        handoff = await desk.db(
            lambda session: store.describe(
                store.take_unasked(session, staff.email, conversation_id, channel, language),
                time.time(),
            )
        )
    else:
        if status == store.CALLBACK:
            await desk.clients.pause(conversation_id)
        handoff = await desk.db(
            lambda session: store.describe(
                store.take(session, staff.email, conversation_id), time.time()
            )
        )
    joined: dict[str, Any] = {"sent": False, "problem": None}
    if holder == staff.email:  # took it again: the citizen was told the first time
        return {**handoff, "joined": joined}
    name = display_name(staff.email)
    text = reply_text(desk, JOINED, handoff["language"], handoff["channel"], {"agent": name})
    if not text:
        joined["problem"] = (
            f"no published reply {JOINED} (bot/domain/handoff.yml): the citizen was not told"
        )
    else:
        try:
            await desk.clients.send(handoff["channel"], conversation_id, text, name)
            joined["sent"] = True
        except DeskError as exc:
            joined["problem"] = exc.message
    return {**handoff, "joined": joined}


@router.post("/api/handoff/{conversation_id}/take")
async def take(conversation_id: str, staff: Agent, desk: DeskDep) -> Any:
    try:
        return await take_conversation(desk, staff, conversation_id)
    except DeskError as exc:
        return JSONResponse({"detail": exc.message, "problems": [exc.message]}, exc.status)


async def send_message(desk: Desk, staff: Staff, conversation_id: str, text: str) -> None:
    """The holder's text to the citizen through their channel; audited (its length, not it)."""
    handoff = await desk.db(
        lambda session: store.describe(
            store.held_by(session, staff.email, conversation_id, staff.role), time.time()
        )
    )
    await desk.clients.send(handoff["channel"], conversation_id, text, display_name(staff.email))

    def record(session: Any) -> None:
        audit.record(
            session,
            staff.email,
            "sent_message",
            target=f"handoff:{handoff['handoff_id']}",
            detail={"characters": len(text)},
        )

    await desk.db(record)


@router.post("/api/handoff/{conversation_id}/messages")
async def message(conversation_id: str, body: Text, staff: Agent, desk: DeskDep) -> Any:
    try:
        await send_message(desk, staff, conversation_id, body.text)
    except DeskError as exc:
        return JSONResponse({"detail": exc.message, "problems": [exc.message]}, exc.status)
    return {"sent": True}


@router.post("/api/handoff/{conversation_id}/transfer")
async def transfer(conversation_id: str, body: Transfer, staff: Agent, desk: DeskDep) -> Any:
    return await desk.db(
        lambda session: store.describe(
            store.transfer(session, staff.email, staff.role, conversation_id, body.to),
            time.time(),
        )
    )


@router.post("/api/handoff/{conversation_id}/notes", status_code=201)
async def note(conversation_id: str, body: Text, staff: Agent, desk: DeskDep) -> dict[str, Any]:
    note_id = await desk.db(
        lambda session: store.add_note(
            session, staff.email, conversation_id, body.text, mask(body.text)
        )
    )
    return {"note_id": note_id}


async def viewed(
    desk: Desk, staff: Staff, conversation_id: str, action: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The handoff and its notes, with the view written to the audit log."""

    def read(session: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        handoff = store.current(session, conversation_id)
        audit.record(session, staff.email, action, target=f"handoff:{handoff.id}")
        return store.describe(handoff, time.time()), store.notes(session, handoff)

    return await desk.db(read)


async def transcript_of(desk: Desk, staff: Staff, conversation_id: str) -> dict[str, Any]:
    handoff, notes = await viewed(desk, staff, conversation_id, "viewed_conversation")
    conversation = await desk.clients.conversation(conversation_id)
    return {
        "handoff": handoff,
        "messages": conversation.messages,
        "notes": notes,
        "paused": conversation.paused,
        "_conversation": conversation,
    }


@router.get("/api/handoff/{conversation_id}/transcript")
async def transcript(
    conversation_id: str,
    staff: Agent,
    desk: DeskDep,
    format: str = "json",  # noqa: A002
) -> Response:
    try:
        found = await transcript_of(desk, staff, conversation_id)
    except DeskError as exc:
        return JSONResponse({"detail": exc.message, "problems": [exc.message]}, exc.status)
    if format == "md":
        text = markdown(found["handoff"], found["_conversation"], found["notes"])
        return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")
    found.pop("_conversation")
    return JSONResponse(found)


@router.get("/api/handoff/{conversation_id}/assist")
async def assist_view(conversation_id: str, staff: Agent, desk: DeskDep) -> Any:
    handoff, _ = await viewed(desk, staff, conversation_id, "viewed_assist")
    try:
        conversation = await desk.clients.conversation(conversation_id)
    except DeskError as exc:
        return JSONResponse({"detail": exc.message, "problems": [exc.message]}, exc.status)
    return await assist(desk, handoff, conversation)


async def hand_back(desk: Desk, staff: Staff, conversation_id: str) -> dict[str, Any]:
    """Give the conversation back to the bot. Rasa first (if it refuses, nothing changes here):
    the bot's `action_handoff_returned` (actions/handoff.py: it resumes the conversation, says
    so and asks for a rating, rendered by the content store in the citizen's language and sent
    through their channel); if Rasa cannot run it, a `resume` event and the published
    `utter_handoff_returned` sent through the channel's agent endpoint."""
    handoff = await desk.db(
        lambda session: store.describe(
            store.held_by(session, staff.email, conversation_id, staff.role), time.time()
        )
    )
    returned: dict[str, Any] = {"sent": False, "by": HANDBACK_ACTION, "problem": None}
    try:
        await desk.clients.execute(conversation_id, HANDBACK_ACTION)
        returned["sent"] = True
    except DeskError as exc:
        await desk.clients.resume(conversation_id)
        returned["by"] = "resume"
        text = reply_text(desk, RETURNED, handoff["language"], handoff["channel"])
        if not text:
            returned["problem"] = (
                f"{exc.message}; and no published reply {RETURNED} (bot/domain/handoff.yml): "
                f"the bot answers again, but the citizen was not told"
            )
        else:
            try:
                await desk.clients.send(
                    handoff["channel"], conversation_id, text, display_name(staff.email)
                )
                returned["sent"] = True
            except DeskError as failed:
                returned["problem"] = failed.message
    await desk.db(lambda session: store.release(session, staff.email, staff.role, conversation_id))
    return {"status": "released", "handoff_id": handoff["handoff_id"], "returned": returned}


@router.post("/api/handoff/{conversation_id}/release")
async def release(conversation_id: str, staff: Agent, desk: DeskDep) -> Any:
    try:
        return await hand_back(desk, staff, conversation_id)
    except DeskError as exc:
        return JSONResponse({"detail": exc.message, "problems": [exc.message]}, exc.status)


@router.get("/api/handoff/report")
async def report(staff: Agent, desk: DeskDep, days: int = 14) -> dict[str, Any]:
    days = min(max(days, 1), 366)
    return await desk.db(lambda session: store.report(session, desk.hours, days))
