"""The call-centre desk: its JSON API (console/api/handoff.py) and its pages.

- `/desk`: the live queue, pushed by server-sent events (`/desk/events`, read by the 30 lines of
  console/static/desk.js: CSP allows the console's own scripts only, and htmx's SSE extension is
  not vendored). The stream also marks the agent online.
- `/desk/{conversation_id}`: the masked transcript (live: Rasa's tracker is read every second
  while the page is open), the reply box with canned replies and suggestions to insert and
  edit, take / transfer / note / hand back, and the assist panel.
- `/desk/report`: handoffs per day (an SVG chart drawn here), waits, ratings, per channel.

The pages call the same functions as the JSON API, with the console's sign-in cookie and CSRF
token (console/pages.py); every view is audited there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from console import handoff as store
from console.api import handoff as handoff_api
from console.content import ContentError
from console.desk_assist import Desk, assist, get_desk, install_desk
from console.desk_rasa import DeskError, markdown, mask
from console.pages import (
    CsrfRefused,
    SignInRequired,
    Visitor,
    _go,
    _page,
    _posted,
    _refused,
    _sign_in_redirect,
    _visitor,
    templates,
)

router = APIRouter(include_in_schema=False)
POLL_SECONDS = 1.0  # the queue and an open conversation's tracker, while a page is open
TOUCH_SECONDS = 20.0  # how often an open stream marks its agent online (ONLINE_SECONDS: 120)
KEEPALIVE_SECONDS = 15.0
NOTICES = {
    "taken": "You hold this conversation: the citizen reads what you send.",
    "sent": "Sent to the citizen.",
    "noted": "Note saved (internal: the citizen never sees it).",
    "transferred": "Transferred.",
    "released": "Handed back to the bot.",
}


def install(app: FastAPI, transport: httpx.AsyncBaseTransport | None = None) -> None:
    """The desk's state, its JSON API and its pages (console/app.py calls this once)."""
    install_desk(app, transport)
    app.include_router(handoff_api.router)
    app.include_router(router)


def _may(visitor: Visitor) -> bool:
    return visitor.staff.role in store.DESK_ROLES


def _not_allowed(request: Request, visitor: Visitor) -> HTMLResponse:
    return _page(
        request,
        "error.html",
        visitor,
        403,
        title="Not allowed",
        message=f"The {visitor.staff.role} role may not use the call-centre desk.",
    )


def minutes(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{max(0, round(seconds / 60))} min"


templates.env.filters["minutes"] = minutes


def fragment(name: str, **context: Any) -> str:
    return templates.get_template(name).render(**context)


def sse(event: str, html: str) -> str:
    """One server-sent event; each line of the fragment its own `data:` line."""
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in html.split("\n")) + "\n"


# --- the queue -----------------------------------------------------------------------------


async def _queue_context(desk: Desk) -> dict[str, Any]:
    now = time.time()

    def read(session: Any) -> dict[str, Any]:
        return {
            "queue": store.queue(session, now),
            "online": store.online_agents(session, now),
            "open": desk.hours.is_open(now),
        }

    return await desk.db(read)


@router.get("/desk", response_class=HTMLResponse)
async def desk_page(request: Request) -> Response:
    visitor = await asyncio.to_thread(_visitor, request)
    if visitor is None:
        return _sign_in_redirect(request)
    if not _may(visitor):
        return _not_allowed(request, visitor)
    desk = get_desk(request)
    await desk.db(lambda session: store.touch(session, visitor.staff.email))
    context = await _queue_context(desk)
    return _page(
        request, "desk.html", visitor, office_hours=desk.console.settings.office_hours, **context
    )


async def desk_events(
    request: Request, desk: Desk, visitor: Visitor, conversation_id: str | None
) -> AsyncIterator[str]:
    """The queue (on /desk) or one conversation's transcript, sent again whenever it changed."""
    last: dict[str, str] = {}
    touched = sent = 0.0
    yield "retry: 3000\n\n"
    while not await request.is_disconnected():
        now = time.time()
        if now - touched >= TOUCH_SECONDS:
            await desk.db(lambda session: store.touch(session, visitor.staff.email))
            touched = now
        if conversation_id is None:
            event = "queue"
            html = fragment("_desk_queue.html", **await _queue_context(desk))
        else:
            event = "transcript"
            try:
                conversation = await desk.clients.conversation(conversation_id)
                html = fragment("_desk_transcript.html", messages=conversation.messages)
            except DeskError as exc:
                html = fragment("_desk_transcript.html", messages=None, error=exc.message)
        if last.get(event) != html:
            last[event] = html
            sent = now
            yield sse(event, html)
        elif now - sent >= KEEPALIVE_SECONDS:
            sent = now
            yield ": still here\n\n"
        await asyncio.sleep(POLL_SECONDS)


@router.get("/desk/events")
async def events(request: Request, conversation: str | None = None) -> Response:
    visitor = await asyncio.to_thread(_visitor, request)
    if visitor is None:
        return Response("sign in first", status_code=401)
    if not _may(visitor):
        return Response("not allowed", status_code=403)
    desk = get_desk(request)
    if conversation is not None:  # the stream is a view of the conversation: audited once
        try:
            await handoff_api.viewed(desk, visitor.staff, conversation, "viewed_conversation")
        except ContentError as exc:
            return Response(exc.message, status_code=exc.status)
    return StreamingResponse(
        desk_events(request, desk, visitor, conversation),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# --- the report ----------------------------------------------------------------------------


def chart(per_day: list[dict[str, Any]], width: int = 640, height: int = 180) -> dict[str, Any]:
    """Bars of handoffs per day, as numbers for an inline SVG (no script, no inline style)."""
    top = max([d["handoffs"] for d in per_day] + [1])
    step = width / max(1, len(per_day))
    bars = []
    for n, day in enumerate(per_day):
        tall = (height - 40) * day["handoffs"] / top
        bars.append(
            {
                "x": round(n * step + 2, 1),
                "y": round(height - 20 - tall, 1),
                "width": round(step - 4, 1),
                "height": round(tall, 1),
                "label": day["day"][5:],
                "count": day["handoffs"],
                "mid": round(n * step + step / 2, 1),
            }
        )
    return {"width": width, "height": height, "bars": bars, "top": top}


@router.get("/desk/report", response_class=HTMLResponse)
async def report_page(request: Request, days: int = 14) -> Response:
    visitor = await asyncio.to_thread(_visitor, request)
    if visitor is None:
        return _sign_in_redirect(request)
    if not _may(visitor):
        return _not_allowed(request, visitor)
    desk = get_desk(request)
    days = min(max(days, 1), 90)
    found = await desk.db(lambda session: store.report(session, desk.hours, days))
    return _page(request, "desk_report.html", visitor, report=found, chart=chart(found["per_day"]))


# --- one conversation ----------------------------------------------------------------------


async def _conversation_page(
    request: Request,
    visitor: Visitor,
    conversation_id: str,
    status: int = 200,
    error: str | None = None,
    typed: str = "",
) -> Response:
    desk = get_desk(request)
    problems: list[str] = []
    try:
        found = await handoff_api.transcript_of(desk, visitor.staff, conversation_id)
    except ContentError as exc:
        return _page(
            request, "error.html", visitor, exc.status, title="Not found", message=exc.message
        )
    except DeskError as exc:
        handoff, notes = await handoff_api.viewed(
            desk, visitor.staff, conversation_id, "viewed_conversation"
        )
        found = {"handoff": handoff, "notes": notes, "messages": None, "_conversation": None}
        problems.append(exc.message)
    helped = None
    if found["_conversation"] is not None:
        await handoff_api.viewed(desk, visitor.staff, conversation_id, "viewed_assist")
        helped = await assist(desk, found["handoff"], found["_conversation"])
        problems += helped["problems"]
    agents = await desk.db(store.desk_agents)
    handoff = found["handoff"]
    return _page(
        request,
        "desk_conversation.html",
        visitor,
        status,
        handoff=handoff,
        conversation_id=conversation_id,
        events_url=f"/desk/events?conversation={quote(conversation_id, safe='')}",
        messages=found["messages"],
        notes=found["notes"],
        assist=helped,
        holder=handoff["agent"] == visitor.staff.email and handoff["status"] == store.TAKEN,
        may_take=handoff["status"] in (store.WAITING, store.CALLBACK)
        or (handoff["status"] == store.TAKEN and visitor.staff.role == "admin"),
        agents=[a for a in agents if a != handoff["agent"]],
        notice=NOTICES.get(request.query_params.get("done", "")),
        error=error,
        problems=problems,
        typed=typed,
        base=f"/desk/{quote(conversation_id, safe='')}",
    )


@router.get("/desk/{conversation_id}", response_class=HTMLResponse)
async def conversation_page(request: Request, conversation_id: str) -> Response:
    visitor = await asyncio.to_thread(_visitor, request)
    if visitor is None:
        return _sign_in_redirect(request)
    if not _may(visitor):
        return _not_allowed(request, visitor)
    return await _conversation_page(request, visitor, conversation_id)


@router.get("/desk/{conversation_id}/transcript.md")
async def transcript_markdown(request: Request, conversation_id: str) -> Response:
    """The masked transcript for a ticket (audited as a view, like the page)."""
    visitor = await asyncio.to_thread(_visitor, request)
    if visitor is None:
        return _sign_in_redirect(request)
    if not _may(visitor):
        return _not_allowed(request, visitor)
    desk = get_desk(request)
    try:
        found = await handoff_api.transcript_of(desk, visitor.staff, conversation_id)
    except (ContentError, DeskError) as exc:
        return Response(exc.message, status_code=exc.status, media_type="text/plain")
    text = markdown(found["handoff"], found["_conversation"], found["notes"])
    name = f"handoff-{found['handoff']['handoff_id'][:8]}.md"
    return Response(
        text,
        media_type="text/markdown; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


async def _act(request: Request, conversation_id: str, action: str) -> Response:
    try:
        visitor, form = await _posted(request)
    except SignInRequired:
        return _sign_in_redirect(request)
    except CsrfRefused:
        return _refused(request)
    if not _may(visitor):
        return _not_allowed(request, visitor)
    desk, staff = get_desk(request), visitor.staff
    text = form.get("text", "").strip()[: handoff_api.MAX_MESSAGE]
    done, extra = action, ""
    try:
        if action == "taken":
            taken = await handoff_api.take_conversation(desk, staff, conversation_id)
            if taken["joined"]["problem"]:
                extra = "&joined=0"
        elif action == "sent":
            if not text:
                raise store.Invalid("write the reply first")
            await handoff_api.send_message(desk, staff, conversation_id, text)
        elif action == "noted":
            await desk.db(
                lambda session: store.add_note(
                    session, staff.email, conversation_id, text, mask(text)
                )
            )
        elif action == "transferred":
            to = form.get("to", "")
            await desk.db(
                lambda session: store.transfer(
                    session, staff.email, staff.role, conversation_id, to
                )
            )
        elif action == "released":
            result = await handoff_api.hand_back(desk, staff, conversation_id)
            if result["returned"]["problem"]:
                extra = "&returned=0"
    except (ContentError, DeskError) as exc:
        status = exc.status
        return await _conversation_page(
            request,
            visitor,
            conversation_id,
            status=status,
            error=exc.message,
            typed=text if action == "sent" else "",
        )
    await desk.db(lambda session: store.touch(session, staff.email))
    if action == "transferred":
        return _go(request, f"/desk?done={done}")
    return _go(request, f"/desk/{quote(conversation_id, safe='')}?done={done}{extra}")


@router.post("/desk/take")
async def take_by_id(request: Request) -> Response:
    """Take a conversation by its id (the form on /desk): one in the queue, or one that did not
    ask for a person (console/api/handoff.py's take_conversation)."""
    try:
        visitor, form = await _posted(request)
    except SignInRequired:
        return _sign_in_redirect(request)
    except CsrfRefused:
        return _refused(request)
    if not _may(visitor):
        return _not_allowed(request, visitor)
    desk = get_desk(request)
    conversation_id = form.get("conversation_id", "").strip()[:200]
    extra = ""
    try:
        if not conversation_id:
            raise store.Invalid("write the conversation's id first")
        taken = await handoff_api.take_conversation(desk, visitor.staff, conversation_id)
        if taken["joined"]["problem"]:
            extra = "&joined=0"
    except (ContentError, DeskError) as exc:
        context = await _queue_context(desk)
        return _page(
            request,
            "desk.html",
            visitor,
            exc.status,
            office_hours=desk.console.settings.office_hours,
            error=exc.message,
            typed_id=conversation_id,
            **context,
        )
    return _go(request, f"/desk/{quote(conversation_id, safe='')}?done=taken{extra}")


@router.post("/desk/{conversation_id}/take")
async def take(request: Request, conversation_id: str) -> Response:
    return await _act(request, conversation_id, "taken")


@router.post("/desk/{conversation_id}/messages")
async def message(request: Request, conversation_id: str) -> Response:
    return await _act(request, conversation_id, "sent")


@router.post("/desk/{conversation_id}/notes")
async def note(request: Request, conversation_id: str) -> Response:
    return await _act(request, conversation_id, "noted")


@router.post("/desk/{conversation_id}/transfer")
async def transfer(request: Request, conversation_id: str) -> Response:
    return await _act(request, conversation_id, "transferred")


@router.post("/desk/{conversation_id}/release")
async def release(request: Request, conversation_id: str) -> Response:
    return await _act(request, conversation_id, "released")
