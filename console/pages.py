"""The staff console's pages: server-rendered (Jinja2), htmx for search-as-you-type and the live
preview, plain forms for everything else (they work without JavaScript).

The pages call the same store functions as the JSON API (console.content, console.auth,
console.audit), so the rules live in one place. Signing in makes the same session as
`POST /api/login`; its token rides in an HttpOnly, SameSite=Strict cookie. Every POST carries a
CSRF token (a hidden `csrf` field, or the `X-CSRF-Token` header htmx sends): the HMAC of the
session token under the service's secret, so it needs no storage and dies with the session. The
sign-in form, before any session exists, uses a random cookie that the form must repeat.
"""

from __future__ import annotations

import datetime
import difflib
import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.faq import mask
from console import audit, unanswered
from console import content as store
from console import faq as faq_store
from console.api import Console, get_console
from console.auth import (
    MIN_PASSWORD_LENGTH,
    AccountError,
    NoSuchAccount,
    Staff,
    TooManyAttempts,
    WrongPassword,
    add_user,
    change_password,
    list_users,
    set_disabled,
    set_role,
    sign_in,
    sign_out,
    staff_for_token,
)
from console.channels import channels
from console.content import ContentError, Invalid
from console.db import transaction
from console.models import DRAFT, SUBMITTED, Version
from console.rasa_format import (
    LANGUAGES,
    Content,
    nlg_reply,
    placeholders,
    render,
    variations_from_content,
)
from console.settings import ROLES, ROOT
from console.text import fold
from console.text import words as fold_words

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "console_session"
SIGNIN_COOKIE = "console_signin"  # the sign-in form's CSRF token, before a session exists
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_BYTES = 256 * 1024
STATES = ("submitted", "draft", "published")  # the replies list's filter
LANGUAGE_LABELS = {"vi": "Tiếng Việt", "en": "English"}
# Where a reply's name can appear besides its definition: what Rasa and the actions utter.
USED_IN = ("stories", "actions", "bot/rasa_server.py", "bot/domain")
# Fixed messages a redirect may show (never text from the query string itself).
NOTICES = {
    "saved": "Draft saved.",
    "unchanged": "Nothing changed: the draft is as it was.",
    "submitted": "Submitted for review.",
    "published": "Published: citizens see it within a few seconds.",
    "sent_back": "Sent back to its authors as a draft.",
    "rolled_back": "Rolled back: the earlier wording is live again, as a new version.",
    "discarded": "Draft discarded.",
}

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["when"] = lambda at: (
    time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at)) if at else ""
)
router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """The pages and their static files (console/app.py calls this once)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")


# --- sessions and CSRF ---------------------------------------------------------------------


@dataclass(frozen=True)
class Visitor:
    staff: Staff
    token: str
    csrf: str


class SignInRequired(Exception):
    pass


def csrf_token(console: Console, session_token: str) -> str:
    key = console.settings.session_secret.encode("utf-8")
    return hmac.new(key, b"csrf:" + session_token.encode("utf-8"), hashlib.sha256).hexdigest()


def _loopback(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secure(request: Request, console: Console) -> bool:
    """Secure cookies except over plain http on a loopback address (development, tests)."""
    return request.url.scheme == "https" or not _loopback(console.settings.host)


def _visitor(request: Request) -> Visitor | None:
    console = get_console(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with transaction(console.engine) as session:
        staff = staff_for_token(session, console.settings, token, time.time())
    return Visitor(staff, token, csrf_token(console, token)) if staff else None


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form (all the pages send), without python-multipart."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ContentError("the form is too large")
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[-1] for key, values in parsed.items()}


def _csrf_ok(request: Request, form: dict[str, str], expected: str) -> bool:
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


async def _posted(request: Request) -> tuple[Visitor, dict[str, str]]:
    """The signed-in visitor and their form, if its CSRF token is right (else 403)."""
    visitor = _visitor(request)
    if visitor is None:
        raise SignInRequired()
    form = await _form(request)
    if not _csrf_ok(request, form, visitor.csrf):
        raise CsrfRefused()
    return visitor, form


class CsrfRefused(Exception):
    pass


async def _posted_as(
    request: Request, permission: str, what: str
) -> tuple[Visitor, dict[str, str]] | Response:
    """The visitor and their form when signed in, with the right CSRF token and ``permission``;
    else the page that says why (sign-in redirect, 403 refused, 403 forbidden ``what``)."""
    try:
        visitor, form = await _posted(request)
    except SignInRequired:
        return _sign_in_redirect(request)
    except CsrfRefused:
        return _refused(request)
    if not visitor.staff.may(permission):
        return _forbidden(request, visitor, what)
    return visitor, form


def _page(
    request: Request,
    template: str,
    visitor: Visitor | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        template,
        {"visitor": visitor, "languages": LANGUAGE_LABELS, **context},
        status_code=status,
    )
    _protect(response)
    return response


def _protect(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    response.headers["Referrer-Policy"] = "same-origin"


def _go(request: Request, url: str) -> Response:
    """After a POST: a redirect (htmx requests get HX-Redirect, which htmx follows itself)."""
    if request.headers.get("hx-request"):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def _sign_in_redirect(request: Request) -> Response:
    target = request.url.path if request.method == "GET" else "/"
    return _go(request, f"/signin?next={quote(target)}")


def _safe_next(value: str | None) -> str:
    """Only a path of this site (never //host or a scheme)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


# --- sign-in -------------------------------------------------------------------------------


def _signin_page(
    request: Request, next_url: str, error: str | None = None, status: int = 200
) -> HTMLResponse:
    console = get_console(request)
    form_token = secrets.token_urlsafe(24)
    response = _page(
        request,
        "signin.html",
        None,
        status,
        form_token=form_token,
        next_url=next_url,
        error=error,
        sandbox=console.settings.sandbox_mode,
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        form_token,
        max_age=900,
        httponly=True,
        samesite="strict",
        secure=_secure(request, console),
        path="/signin",
    )
    return response


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request, next: str | None = None) -> Response:  # noqa: A002
    if _visitor(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _signin_page(request, _safe_next(next))


@router.post("/signin")
async def signin(request: Request) -> Response:
    console = get_console(request)
    form = await _form(request)
    next_url = _safe_next(form.get("next"))
    if not _csrf_ok(request, form, request.cookies.get(SIGNIN_COOKIE, "")):
        return _signin_page(
            request, next_url, "The form had expired: please sign in again.", status=403
        )
    email, password = form.get("email", "")[:320], form.get("password", "")[:1024]
    try:
        with transaction(console.engine) as session:
            result = sign_in(session, console.settings, email, password, time.time())
    except TooManyAttempts:
        with transaction(console.engine) as session:
            audit.record(session, email.strip().lower(), "login_refused")
        return _signin_page(
            request,
            next_url,
            "Too many wrong passwords for this account: try again in 15 minutes.",
            429,
        )
    if result is None:
        return _signin_page(request, next_url, "Wrong email or password.", 401)
    token, _ = result
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(console.settings.session_ttl_seconds),
        httponly=True,
        samesite="strict",
        secure=_secure(request, console),
        path="/",
    )
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    try:
        visitor, _ = await _posted(request)
    except SignInRequired:
        return _go(request, "/signin")
    except CsrfRefused:
        return _refused(request)
    console = get_console(request)
    with transaction(console.engine) as session:
        sign_out(session, console.settings, visitor.token, visitor.staff)
    response = _go(request, "/signin")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _refused(request: Request) -> HTMLResponse:
    return _page(
        request,
        "error.html",
        _visitor(request),
        403,
        title="Refused",
        message="This form was not sent from the console (its security token is missing or "
        "wrong). Reload the page and try again.",
    )


def _forbidden(request: Request, visitor: Visitor, permission: str) -> HTMLResponse:
    return _page(
        request,
        "error.html",
        visitor,
        403,
        title="Not allowed",
        message=f"The {visitor.staff.role} role may not {permission} here.",
    )


# --- replies -------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    visitor = _visitor(request)
    if visitor is None:
        return _sign_in_redirect(request)
    # Content roles start at the replies, agents at the call-centre desk (console/desk.py).
    home_page = "/responses" if visitor.staff.may("read") else "/desk"
    return RedirectResponse(home_page, status_code=303)


def _state(found: dict[str, Any]) -> str:
    working = found.get("working")
    return str(working["state"]) if working else "published"


@router.get("/responses", response_class=HTMLResponse)
def responses(request: Request, q: str = "", state: str = "") -> Response:
    """The replies matching ``q``; ``state=submitted`` is the review queue."""
    visitor = _visitor(request)
    if visitor is None:
        return _sign_in_redirect(request)
    if not visitor.staff.may("read"):
        return _forbidden(request, visitor, "read replies")
    console = get_console(request)
    with transaction(console.engine) as session:
        found = store.search(session, q[:200])
    for item in found:
        item["state"] = _state(item)
    if state in STATES:
        found = [item for item in found if item["state"] == state]
    partial = (
        bool(request.headers.get("hx-request")) and request.headers.get("hx-target") == "results"
    )
    return _page(
        request,
        "_results.html" if partial else "responses.html",
        visitor,
        q=q,
        state=state if state in STATES else "",
        states=STATES,
        found=found,
    )


@cache
def _usage_files() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Files that may utter a reply, read once (they change only with a deploy)."""
    found = []
    for entry in USED_IN:
        path = ROOT / entry
        paths = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in paths:
            if file.is_file() and file.suffix in (".yml", ".yaml", ".py"):
                text = file.read_text(encoding="utf-8", errors="replace")
                found.append((str(file.relative_to(ROOT)), tuple(text.splitlines())))
    return tuple(found)


def where_used(name: str, defined_in: str | None) -> list[dict[str, Any]]:
    """Stories, rules, actions and other replies that name this one (not its definition)."""
    word = re.compile(rf"(?<![\w]){re.escape(name)}(?![\w])")
    found = []
    for path, lines in _usage_files():
        for number, line in enumerate(lines, 1):
            if not word.search(line):
                continue
            if path == f"bot/domain/{defined_in}" and line.strip().rstrip(":") == name:
                continue  # the definition itself
            found.append({"path": path, "line": number, "text": line.strip()[:160]})
    return found[:50]


def _preview(name: str, content: Content) -> dict[str, dict[str, Any]]:
    """What each channel would send per language, as the NLG endpoint renders it (the same as
    GET /api/responses/{name}/preview, for content that may not be saved yet)."""
    variations = variations_from_content(content)
    # Each placeholder filled with itself: shown as {fee}, without Rasa logging a missing slot.
    names = set().union(*(placeholders(v.get("text")) for v in variations)) if variations else set()
    shown: dict[str, dict[str, Any]] = {}
    for language in LANGUAGES:
        shown[language] = {}
        slots = {**{p: "{" + p + "}" for p in names}, "language": language}
        for channel in channels().values():
            error = None
            try:
                message = render(variations, name, slots, channel.name, {})
            except (ValueError, IndexError) as exc:  # e.g. an unclosed "{" in the text
                message, error = None, f"Rasa cannot fill this text in ({exc}): check its {{ }}"
            shown[language][channel.label] = {
                "reply": nlg_reply(message) if message else None,
                "limit": channel.text_limit,
                "error": error,
            }
    return shown


def render_problems(shown: dict[str, dict[str, Any]]) -> list[str]:
    """The preview's rendering errors, once per language and message."""
    found: list[str] = []
    for language, by_channel in shown.items():
        for item in by_channel.values():
            problem = f"{language} text: {item['error']}" if item.get("error") else None
            if problem and problem not in found:
                found.append(problem)
    return found


def _current(found: dict[str, Any]) -> dict[str, Any]:
    chosen = found["working"] or found["live"]
    return chosen or {"content": {}}


def _detail_page(
    request: Request,
    visitor: Visitor,
    name: str,
    status: int = 200,
    problems: list[str] | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    console = get_console(request)
    with transaction(console.engine) as session:
        found = store.detail(session, name, visitor.staff)
        versions = store.history(session, name, visitor.staff)
    current = _current(found)
    content: Content = current["content"]
    working = found["working"]
    may_publish = visitor.staff.may("publish")
    own = bool(working) and visitor.staff.email in (working.get("authors") or [])
    fields = _fields(content)
    if form:
        for field in fields:
            field["value"] = form.get(field["key"], field["value"])
    notice = NOTICES.get(request.query_params.get("done", ""))
    return _page(
        request,
        "response.html",
        visitor,
        status,
        name=name,
        found=found,
        state=_state(found),
        fields=fields,
        preview=_preview(name, content),
        used=where_used(name, found.get("domain_file")),
        versions=versions,
        may_edit=visitor.staff.may("edit"),
        may_publish=may_publish,
        show_publish=may_publish and bool(working) and working["state"] == SUBMITTED and not own,
        own_submission=own and bool(working) and working["state"] == SUBMITTED,
        show_send_back=may_publish and bool(working) and working["state"] == SUBMITTED,
        problems=problems or [],
        error=error,
        notice=notice,
        channel_names=[(c.name, c.label) for c in channels().values()],
    )


@router.get("/responses/{name}", response_class=HTMLResponse)
def response_page(request: Request, name: str) -> Response:
    visitor = _visitor(request)
    if visitor is None:
        return _sign_in_redirect(request)
    if not visitor.staff.may("read"):
        return _forbidden(request, visitor, "read replies")
    try:
        return _detail_page(request, visitor, name)
    except ContentError as exc:
        return _page(
            request, "error.html", visitor, exc.status, title="Not found", message=exc.message
        )


# --- the edit form -------------------------------------------------------------------------


def buttons_text(buttons: list[dict[str, Any]] | None) -> str:
    """Buttons as the form shows them: one `title | payload` (or `title | https://...`) a line."""
    return "\n".join(
        f"{b.get('title', '')} | {b.get('payload') or b.get('url') or ''}" for b in buttons or []
    )


def parse_buttons(text: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        title, _, target = line.partition("|")
        target = target.strip()
        if re.match(r"(?i)https?://", target):
            found.append({"title": title.strip(), "url": target, "type": "web_url"})
        else:
            found.append({"title": title.strip(), "payload": target})
    return found


def _fields(content: Content) -> list[dict[str, Any]]:
    """The form's fields for a reply's content: per language its text and buttons, then each
    channel variant's text and buttons."""
    labels = {c.name: c.label for c in channels().values()}
    fields = []
    for language in LANGUAGES:
        entry = content.get(language) or {}
        fields.append(
            {
                "key": f"text.{language}",
                "language": language,
                "channel": None,
                "kind": "text",
                "value": str(entry.get("text") or ""),
            }
        )
        fields.append(
            {
                "key": f"buttons.{language}",
                "language": language,
                "channel": None,
                "kind": "buttons",
                "value": buttons_text(entry.get("buttons")),
            }
        )
        for channel, message in sorted((entry.get("channels") or {}).items()):
            for kind in ("text", "buttons"):
                value = (
                    message.get("text") if kind == "text" else buttons_text(message.get("buttons"))
                )
                fields.append(
                    {
                        "key": f"{kind}.{language}.{channel}",
                        "language": language,
                        "channel": channel,
                        "channel_label": labels.get(channel, channel),
                        "kind": kind,
                        "value": str(value or ""),
                    }
                )
    return fields


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def working_content(session: Session, name: str) -> Content:
    """The draft being edited, else the live version (what the form starts from)."""
    response = store.get_response(session, name)
    version_id = response.working_version_id or response.live_version_id
    version = session.get(Version, version_id) if version_id is not None else None
    return dict(version.content) if version is not None else {}


def apply_form(
    session: Session, console: Console, staff: Staff, name: str, form: dict[str, str]
) -> bool:
    """Save what the form changed into the reply's draft, one store call per changed language
    or channel variant (each checked by the store, so nothing is half-saved); True when
    anything changed."""
    shown = {f["key"]: f for f in _fields(working_content(session, name))}
    changed = False
    for key, field in shown.items():
        if field["kind"] != "text":
            continue
        language, channel = field["language"], field["channel"]
        suffix = key.removeprefix("text.")
        text = _normalise(form.get(key, field["value"]))
        old_buttons = shown[f"buttons.{suffix}"]["value"].strip()
        new_buttons = _normalise(form.get(f"buttons.{suffix}", old_buttons)).strip()
        buttons = parse_buttons(new_buttons) if new_buttons != old_buttons else None
        if text == field["value"] and buttons is None:
            continue
        store.save_draft(
            session,
            staff,
            name,
            language,
            text,
            channel=channel,
            buttons=buttons,
            allowed_placeholders=console.slot_names,
        )
        changed = True
    for language in LANGUAGES:
        new_channel = form.get(f"add_variant.{language}", "")
        if new_channel and new_channel in channels():
            store.save_draft(
                session,
                staff,
                name,
                language,
                None,
                channel=new_channel,
                allowed_placeholders=console.slot_names,
            )
            changed = True
    return changed


@contextmanager
def dry_run(console: Console) -> Iterator[Session]:
    """A transaction that is always rolled back: the checks and preview of unsaved text."""
    with Session(console.engine, future=True, expire_on_commit=False) as session:
        session.begin()
        try:
            yield session
        finally:
            session.rollback()


@router.post("/responses/{name}/check", response_class=HTMLResponse)
async def check(request: Request, name: str) -> Response:
    """The live preview and the checks of what is typed, nothing saved (htmx, as one types)."""
    posted = await _posted_as(request, "read", "read replies")
    if isinstance(posted, Response):
        return posted
    visitor, form = posted
    console = get_console(request)
    problems: list[str] = []
    try:
        with dry_run(console) as session:
            if visitor.staff.may("edit"):
                apply_form(session, console, visitor.staff, name, form)
            content = working_content(session, name)
    except ContentError as exc:
        problems = exc.problems or [exc.message]
        with dry_run(console) as session:
            content = working_content(session, name)
    preview = _preview(name, content)
    problems += render_problems(preview)
    return _page(
        request, "_preview.html", visitor, preview=preview, problems=problems, unsaved=True
    )


async def _act(request: Request, name: str, permission: str, action: str) -> Response:
    posted = await _posted_as(request, permission, f"{permission} replies")
    if isinstance(posted, Response):
        return posted
    visitor, form = posted
    console = get_console(request)
    staff = visitor.staff
    done = action
    try:
        with transaction(console.engine) as session:
            if action in ("saved", "submitted"):
                changed = apply_form(session, console, staff, name, form)
                if action == "saved" and not changed:
                    done = "unchanged"
                if action == "submitted":
                    store.submit(session, staff, name)
            elif action == "published":
                store.publish(session, staff, name)
            elif action == "sent_back":
                if not form.get("note", "").strip():
                    raise store.Invalid("write why it goes back, for its authors")
                store.send_back(session, staff, name, form.get("note", "").strip()[:2000])
            elif action == "rolled_back":
                try:
                    number = int(form.get("version", ""))
                except ValueError:
                    raise store.Invalid("choose a version to roll back to") from None
                store.rollback(session, staff, name, number)
            elif action == "discarded":
                store.discard(session, staff, name)
    except ContentError as exc:
        return _detail_page(
            request,
            visitor,
            name,
            exc.status,
            problems=exc.problems,
            error=exc.message if not exc.problems else "Not saved: fix the problems below.",
            form=form if action in ("saved", "submitted") else None,
        )
    if action in ("published", "rolled_back"):
        console.published.refresh()  # this process serves it at once; the others within 1 s
    return _go(request, f"/responses/{quote(name)}?done={done}")


@router.post("/responses/{name}/draft")
async def save(request: Request, name: str) -> Response:
    return await _act(request, name, "edit", "saved")


@router.post("/responses/{name}/submit")
async def submit(request: Request, name: str) -> Response:
    return await _act(request, name, "edit", "submitted")


@router.post("/responses/{name}/discard")
async def discard(request: Request, name: str) -> Response:
    return await _act(request, name, "edit", "discarded")


@router.post("/responses/{name}/publish")
async def publish(request: Request, name: str) -> Response:
    return await _act(request, name, "publish", "published")


@router.post("/responses/{name}/send-back")
async def send_back(request: Request, name: str) -> Response:
    return await _act(request, name, "publish", "sent_back")


@router.post("/responses/{name}/rollback")
async def rollback(request: Request, name: str) -> Response:
    return await _act(request, name, "publish", "rolled_back")


# --- audit ---------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, target: str = "", actor: str = "") -> Response:
    visitor = _visitor(request)
    if visitor is None:
        return _sign_in_redirect(request)
    if not visitor.staff.may("admin"):
        return _forbidden(request, visitor, "read the whole audit log")
    console = get_console(request)
    with transaction(console.engine) as session:
        entries = audit.entries(
            session, target=target[:220] or None, actor=actor[:320] or None, limit=500
        )
    for entry in entries:
        entry["when"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry["at"]))
    return _page(request, "audit.html", visitor, entries=entries, target=target, actor=actor)


# --- accounts ------------------------------------------------------------------------------

ACCOUNT_NOTICES = {
    "added": "Account added: it can sign in now.",
    "disabled": "Account disabled: its sessions ended, it cannot sign in.",
    "enabled": "Account enabled: it can sign in again.",
    "role": "Role changed: it holds from the account's next page.",
    "password": "Password changed. Your other sessions were signed out.",
}


def _users_page(
    request: Request,
    visitor: Visitor,
    status: int = 200,
    error: str | None = None,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    console = get_console(request)
    with transaction(console.engine) as session:
        users = list_users(session)
    return _page(
        request,
        "users.html",
        visitor,
        status,
        users=users,
        roles=ROLES,
        error=error,
        typed=typed or {},
        min_length=MIN_PASSWORD_LENGTH,
        notice=ACCOUNT_NOTICES.get(request.query_params.get("done", "")),
    )


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request) -> Response:
    visitor = _visitor(request)
    if visitor is None:
        return _sign_in_redirect(request)
    if not visitor.staff.may("admin"):
        return _forbidden(request, visitor, "manage accounts")
    return _users_page(request, visitor)


async def _user_action(request: Request, email: str | None, action: str) -> Response:
    posted = await _posted_as(request, "admin", "manage accounts")
    if isinstance(posted, Response):
        return posted
    visitor, form = posted
    console = get_console(request)
    actor = visitor.staff.email
    try:
        with transaction(console.engine) as session:
            if action == "added":
                add_user(
                    session,
                    form.get("email", "")[:320],
                    form.get("password", "")[:1024],
                    form.get("role", ""),
                    actor=actor,
                )
            elif action == "role" and email is not None:
                set_role(session, email, form.get("role", ""), actor=actor)
            elif email is not None:
                set_disabled(session, email, action == "disabled", actor=actor)
    except AccountError as exc:
        typed = {k: form.get(k, "") for k in ("email", "role")} if action == "added" else None
        status = 404 if isinstance(exc, NoSuchAccount) else 422
        return _users_page(request, visitor, status, error=str(exc), typed=typed)
    return _go(request, f"/users?done={action}")


@router.post("/users")
async def user_add(request: Request) -> Response:
    return await _user_action(request, None, "added")


@router.post("/users/{email}/disable")
async def user_disable(request: Request, email: str) -> Response:
    return await _user_action(request, email, "disabled")


@router.post("/users/{email}/enable")
async def user_enable(request: Request, email: str) -> Response:
    return await _user_action(request, email, "enabled")


@router.post("/users/{email}/role")
async def user_role(request: Request, email: str) -> Response:
    return await _user_action(request, email, "role")


def _account_page(
    request: Request, visitor: Visitor, status: int = 200, error: str | None = None
) -> HTMLResponse:
    return _page(
        request,
        "account.html",
        visitor,
        status,
        error=error,
        min_length=MIN_PASSWORD_LENGTH,
        notice=ACCOUNT_NOTICES.get(request.query_params.get("done", "")),
    )


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request) -> Response:
    """Every role: one's own account and password."""
    visitor = _visitor(request)
    if visitor is None:
        return _sign_in_redirect(request)
    return _account_page(request, visitor)


@router.post("/account/password")
async def account_password(request: Request) -> Response:
    try:
        visitor, form = await _posted(request)
    except SignInRequired:
        return _sign_in_redirect(request)
    except CsrfRefused:
        return _refused(request)
    console = get_console(request)
    current, new = form.get("current", "")[:1024], form.get("new", "")[:1024]
    if new != form.get("again", "")[:1024]:
        return _account_page(request, visitor, 422, "The two new passwords differ.")
    try:
        with transaction(console.engine) as session:
            change_password(session, console.settings, visitor.staff, current, new, visitor.token)
    except TooManyAttempts:
        return _account_page(
            request, visitor, 429, "Too many wrong current passwords: try again in 15 minutes."
        )
    except WrongPassword:
        with transaction(console.engine) as session:
            audit.record(session, visitor.staff.email, "password_change_failed")
        return _account_page(request, visitor, 403, "The current password is wrong.")
    except AccountError as exc:
        return _account_page(request, visitor, 422, f"Not changed: {exc}.")
    return _go(request, "/account?done=password")


# --- FAQ entries ---------------------------------------------------------------------------

FAQ_STATES = ("draft", "submitted", "published", "withdrawn")  # the FAQ list's filter
FAQ_NOTICES = {
    "created": "FAQ entry created as a draft.",
    "from_group": "FAQ draft made from the unanswered questions: check the phrasings and answer.",
    "saved": "Draft saved.",
    "unchanged": "Nothing changed: the draft is as it was.",
    "submitted": "Submitted for review.",
    "published": "Published: the assistant answers with it within a few seconds.",
    "sent_back": "Sent back to its authors as a draft.",
    "withdrawn": "Withdrawn: citizens no longer get this answer (its versions stay).",
    "discarded": "Draft discarded.",
    "restored": "The earlier version's text is the draft now: submit it for review.",
}
FAQ_TEXT_FIELDS = ("source", "reviewed_on", "valid_from", "valid_until")


def faq_state(entry: dict[str, Any]) -> str:
    """What the list shows: the open draft or submission first, as for replies."""
    if entry.get("working"):
        return str(entry["working"]["state"])
    if entry.get("live"):
        return "published"
    return "withdrawn" if entry.get("withdrawn_at") else "discarded"


def faq_form(content: dict[str, Any] | None) -> dict[str, str]:
    """An entry's content as the form's fields (phrasings one a line)."""
    content = content or {}
    values = {
        f"questions.{lang}": "\n".join((content.get("questions") or {}).get(lang) or [])
        for lang in LANGUAGES
    }
    values |= {
        f"answer.{lang}": (content.get("answer") or {}).get(lang) or "" for lang in LANGUAGES
    }
    values |= {key: str(content.get(key) or "") for key in FAQ_TEXT_FIELDS}
    return values


def faq_raw(form: dict[str, str]) -> dict[str, Any]:
    """The form's fields as the store's content (it checks and cleans them)."""
    return {
        "questions": {
            lang: [
                line.strip()
                for line in _normalise(form.get(f"questions.{lang}", "")).split("\n")
                if line.strip()
            ]
            for lang in LANGUAGES
        },
        "answer": {lang: _normalise(form.get(f"answer.{lang}", "")) for lang in LANGUAGES},
        **{key: form.get(key, "").strip()[:2000] or None for key in FAQ_TEXT_FIELDS},
    }


def faq_lines(content: dict[str, Any] | None) -> list[str]:
    """A version as lines for its diff."""
    if not content:
        return []
    lines = []
    for lang in LANGUAGES:
        lines += [f"[{lang}] Q: {q}" for q in (content.get("questions") or {}).get(lang) or []]
        answer = str((content.get("answer") or {}).get(lang) or "")
        lines += [f"[{lang}] A: {line}" for line in answer.splitlines()]
    lines.append(f"source: {content.get('source') or ''}")
    lines.append(f"reviewed on: {content.get('reviewed_on') or ''}")
    lines.append(
        f"valid: from {content.get('valid_from') or '-'} until {content.get('valid_until') or '-'}"
    )
    return lines


def faq_diffs(versions: list[dict[str, Any]]) -> None:
    """Each version's diff against the version it was made from (else the one before it)."""
    by_number = {v["version"]: v for v in versions}
    for version in versions:
        base = by_number.get(version["based_on"] or version["version"] - 1)
        version["diff"] = "\n".join(
            difflib.unified_diff(
                faq_lines(base["content"] if base else None),
                faq_lines(version["content"]),
                f"version {base['version']}" if base else "(nothing)",
                f"version {version['version']}",
                lineterm="",
            )
        )


def faq_send_back(session: Session, staff: Staff, entry_id: int, note: str) -> None:
    """A submitted version back to its authors as a draft, with the reviewer's reason (in the
    audit log: FaqVersion has no note column). console/faq.py has no send-back of its own;
    this uses its pieces and rules (the reply workflow's send_back is the model)."""
    entry = faq_store.get_entry(session, entry_id)
    working = faq_store._working(session, entry, SUBMITTED, "send back")
    working.state = DRAFT
    working.submitted_by = working.submitted_at = None
    working.updated_at = time.time()
    audit.record(
        session, staff.email, "faq_sent_back", f"faq:{entry.id}", working.number, {"note": note}
    )


def faq_restore(session: Session, staff: Staff, entry_id: int, number: str) -> None:
    """An earlier version's content as the entry's draft: console/faq.py has no rollback, so
    going back is a draft that a reviewer publishes like any other."""
    entry = faq_store.get_entry(session, entry_id)
    chosen = (
        session.execute(
            select(faq_store.FaqVersion).where(
                faq_store.FaqVersion.entry_id == entry.id,
                faq_store.FaqVersion.number == int(number),
            )
        ).scalar_one_or_none()
        if number.strip().isdigit()
        else None
    )
    if chosen is None:
        raise Invalid("choose a version to start the draft from")
    faq_store.save_draft(session, staff, entry.id, dict(chosen.content))


def _faq_note(session: Session, entry: dict[str, Any]) -> str | None:
    """The reviewer's reason when the open draft was sent back."""
    working = entry.get("working")
    if not working or working["state"] != DRAFT:
        return None
    for item in audit.entries(session, target=f"faq:{entry['id']}", limit=50):
        if item["action"] == "faq_sent_back" and item["version"] == working["version"]:
            return str((item["detail"] or {}).get("note") or "")
        if (
            item["action"] in ("faq_submitted", "faq_created")
            and item["version"] == working["version"]
        ):
            return None
    return None


@router.get("/faq", response_class=HTMLResponse)
def faq_list(request: Request, q: str = "", state: str = "") -> Response:
    visitor = _visitor(request)
    if visitor is None:
        return _sign_in_redirect(request)
    if not visitor.staff.may("read"):
        return _forbidden(request, visitor, "read FAQ entries")
    console = get_console(request)
    with transaction(console.engine) as session:
        entries = faq_store.list_entries(session)
    wanted = fold_words(q[:200])
    found = []
    for entry in entries:
        entry["state"] = faq_state(entry)
        shown = entry["working"] or entry["live"] or {"content": {}}
        entry["content"] = shown["content"]
        entry["version"] = shown.get("version")
        haystack = fold(" ".join(faq_lines(entry["content"])))
        if all(word in haystack for word in wanted) and (
            state not in FAQ_STATES or entry["state"] == state
        ):
            found.append(entry)
    partial = (
        bool(request.headers.get("hx-request")) and request.headers.get("hx-target") == "results"
    )
    return _page(
        request,
        "_faq_results.html" if partial else "faq_list.html",
        visitor,
        q=q,
        state=state if state in FAQ_STATES else "",
        states=FAQ_STATES,
        found=found,
        may_edit=visitor.staff.may("edit"),
    )


def _faq_new_page(
    request: Request,
    visitor: Visitor,
    status: int = 200,
    problems: list[str] | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    values = faq_form({"reviewed_on": datetime.date.today().isoformat()})
    if form:
        values = {key: form.get(key, value) for key, value in values.items()}
    return _page(
        request,
        "faq_entry.html",
        visitor,
        status,
        entry=None,
        values=values,
        problems=problems or [],
        error=error,
        may_edit=True,
        versions=[],
    )


@router.get("/faq/new", response_class=HTMLResponse)
def faq_new(request: Request) -> Response:
    visitor = _visitor(request)
    if visitor is None:
        return _sign_in_redirect(request)
    if not visitor.staff.may("edit"):
        return _forbidden(request, visitor, "write FAQ entries")
    return _faq_new_page(request, visitor)


@router.post("/faq/new")
async def faq_create(request: Request) -> Response:
    posted = await _posted_as(request, "edit", "write FAQ entries")
    if isinstance(posted, Response):
        return posted
    visitor, form = posted
    console = get_console(request)
    try:
        with transaction(console.engine) as session:
            created = faq_store.create(session, visitor.staff, faq_raw(form))
    except ContentError as exc:
        return _faq_new_page(
            request,
            visitor,
            exc.status,
            problems=exc.problems,
            error=exc.message if not exc.problems else "Not saved: fix the problems below.",
            form=form,
        )
    return _go(request, f"/faq/{created['id']}?done=created")


def _faq_page(
    request: Request,
    visitor: Visitor,
    entry_id: int,
    status: int = 200,
    problems: list[str] | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    console = get_console(request)
    with transaction(console.engine) as session:
        entry = faq_store.detail(session, entry_id, visitor.staff)
        note = _faq_note(session, entry)
    versions = entry["versions"]
    faq_diffs(versions)
    working, live = entry["working"], entry["live"]
    shown = working or live or (versions[0] if versions else None)
    values = faq_form(shown["content"] if shown else None)
    if form:
        values = {key: form.get(key, value) for key, value in values.items()}
    may_publish = visitor.staff.may("publish")
    submitted = bool(working) and working["state"] == SUBMITTED
    own = bool(working) and visitor.staff.email in (working.get("authors") or [])
    for version in versions:
        version["live"] = bool(live) and version["version"] == live["version"]
    return _page(
        request,
        "faq_entry.html",
        visitor,
        status,
        entry=entry,
        state=faq_state(entry),
        values=values,
        note=note,
        versions=versions,
        may_edit=visitor.staff.may("edit"),
        may_publish=may_publish,
        show_publish=may_publish and submitted and not own,
        own_submission=own and submitted,
        show_send_back=may_publish and submitted,
        show_withdraw=may_publish and bool(live),
        problems=problems or [],
        error=error,
        notice=FAQ_NOTICES.get(request.query_params.get("done", "")),
    )


@router.get("/faq/{entry_id}", response_class=HTMLResponse)
def faq_page(request: Request, entry_id: int) -> Response:
    visitor = _visitor(request)
    if visitor is None:
        return _sign_in_redirect(request)
    if not visitor.staff.may("read"):
        return _forbidden(request, visitor, "read FAQ entries")
    try:
        return _faq_page(request, visitor, entry_id)
    except ContentError as exc:
        return _page(
            request, "error.html", visitor, exc.status, title="Not found", message=exc.message
        )


def _faq_changed(session: Session, entry_id: int, raw: dict[str, Any]) -> bool:
    """Whether the typed content differs from the open draft (else from the live version)."""
    entry = faq_store.describe(session, faq_store.get_entry(session, entry_id))
    shown = entry["working"] or entry["live"]
    return shown is None or faq_store.clean_content(raw) != shown["content"]


async def _faq_act(request: Request, entry_id: int, permission: str, action: str) -> Response:
    posted = await _posted_as(request, permission, f"{permission} FAQ entries")
    if isinstance(posted, Response):
        return posted
    visitor, form = posted
    console = get_console(request)
    staff = visitor.staff
    done = action
    try:
        with transaction(console.engine) as session:
            if action in ("saved", "submitted"):
                raw = faq_raw(form)
                # Submitting what is already the draft does not make the submitter an author.
                if _faq_changed(session, entry_id, raw):
                    faq_store.save_draft(session, staff, entry_id, raw)
                elif action == "saved":
                    done = "unchanged"
                if action == "submitted":
                    faq_store.submit(session, staff, entry_id)
            elif action == "published":
                faq_store.publish(session, staff, entry_id)
            elif action == "sent_back":
                note = form.get("note", "").strip()[:2000]
                if not note:
                    raise Invalid("write why it goes back, for its authors")
                faq_send_back(session, staff, entry_id, note)
            elif action == "withdrawn":
                faq_store.withdraw(session, staff, entry_id)
            elif action == "discarded":
                faq_store.discard(session, staff, entry_id)
            elif action == "restored":
                faq_restore(session, staff, entry_id, form.get("version", ""))
    except ContentError as exc:
        try:
            return _faq_page(
                request,
                visitor,
                entry_id,
                exc.status,
                problems=exc.problems,
                error=exc.message if not exc.problems else "Not saved: fix the problems below.",
                form=form if action in ("saved", "submitted") else None,
            )
        except ContentError as missing:
            return _page(
                request,
                "error.html",
                visitor,
                missing.status,
                title="Not found",
                message=missing.message,
            )
    return _go(request, f"/faq/{entry_id}?done={done}")


@router.post("/faq/{entry_id}/draft")
async def faq_save(request: Request, entry_id: int) -> Response:
    return await _faq_act(request, entry_id, "edit", "saved")


@router.post("/faq/{entry_id}/submit")
async def faq_submit(request: Request, entry_id: int) -> Response:
    return await _faq_act(request, entry_id, "edit", "submitted")


@router.post("/faq/{entry_id}/discard")
async def faq_discard(request: Request, entry_id: int) -> Response:
    return await _faq_act(request, entry_id, "edit", "discarded")


@router.post("/faq/{entry_id}/publish")
async def faq_publish(request: Request, entry_id: int) -> Response:
    return await _faq_act(request, entry_id, "publish", "published")


@router.post("/faq/{entry_id}/send-back")
async def faq_send_back_form(request: Request, entry_id: int) -> Response:
    return await _faq_act(request, entry_id, "publish", "sent_back")


@router.post("/faq/{entry_id}/restore")
async def faq_restore_form(request: Request, entry_id: int) -> Response:
    return await _faq_act(request, entry_id, "edit", "restored")


@router.post("/faq/{entry_id}/withdraw")
async def faq_withdraw(request: Request, entry_id: int) -> Response:
    return await _faq_act(request, entry_id, "publish", "withdrawn")


# --- unanswered questions ------------------------------------------------------------------

FROM_GROUP_FIELDS = ("answer.vi", "answer.en", "source", "reviewed_on", "valid_from", "valid_until")


def _unanswered_page(
    request: Request,
    visitor: Visitor,
    status: int = 200,
    failed: int | None = None,
    problems: list[str] | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    console = get_console(request)
    with transaction(console.engine) as session:
        found = unanswered.groups(session)
    for group in found:
        # Masked by the action server and by the store on receipt; once more here, so a row
        # written any other way shows nothing personal either.
        group["questions"] = [mask(text) for text in group["questions"]]
        group.pop("ids", None)
    today = datetime.date.today().isoformat()
    typed = {key: (form or {}).get(key, "") for key in FROM_GROUP_FIELDS}
    return _page(
        request,
        "unanswered.html",
        visitor,
        status,
        groups=found,
        failed=failed,
        problems=problems or [],
        error=error,
        typed=typed | {"reviewed_on": typed["reviewed_on"] or today},
        today=today,
        may_edit=visitor.staff.may("edit"),
    )


@router.get("/unanswered", response_class=HTMLResponse)
def unanswered_page(request: Request) -> Response:
    """What citizens asked that fell to the fallback, grouped, the largest group first."""
    visitor = _visitor(request)
    if visitor is None:
        return _sign_in_redirect(request)
    if not visitor.staff.may("read"):
        return _forbidden(request, visitor, "read the unanswered questions")
    return _unanswered_page(request, visitor)


@router.post("/unanswered/{group}/faq")
async def unanswered_to_faq(request: Request, group: int) -> Response:
    """One step: a new FAQ draft whose phrasings are the group's questions, with the answer,
    source and date typed beside the group; then its page opens."""
    posted = await _posted_as(request, "edit", "write FAQ entries")
    if isinstance(posted, Response):
        return posted
    visitor, form = posted
    console = get_console(request)
    raw = faq_raw(form)
    extra = {key: value for key, value in raw.items() if key != "questions"}
    try:
        with transaction(console.engine) as session:
            created = unanswered.make_faq(session, visitor.staff, group, extra)
    except ContentError as exc:
        return _unanswered_page(
            request,
            visitor,
            exc.status,
            failed=group,
            problems=exc.problems,
            error=exc.message if not exc.problems else "No draft made: fix the problems below.",
            form=form,
        )
    return _go(request, f"/faq/{created['id']}?done=from_group")
