"""The workflow of a reply: draft -> submitted -> published, rollback, search, history.

Every function runs inside the caller's transaction (console.db.transaction) and raises before
writing anything it would have to undo, so a refused request leaves no trace but its error.
Rules: an editor never publishes; nobody publishes a version they edited; only a submitted
version is published; every published version is kept; a rollback publishes an old version
again as a new one.
"""

from __future__ import annotations

import copy
import difflib
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console import audit
from console.auth import Staff
from console.checks import check_content
from console.models import (
    DISCARDED,
    DRAFT,
    PUBLISHED,
    SUBMITTED,
    Counter,
    Response,
    Version,
)
from console.rasa_format import LANGUAGES, Content, DomainResponse, placeholders
from console.text import fold, words

PUBLISHED_COUNTER = "published"


class ContentError(Exception):
    status = 400

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class NotFound(ContentError):
    status = 404


class Forbidden(ContentError):
    status = 403


class Conflict(ContentError):
    status = 409


class Invalid(ContentError):
    status = 422


def _target(name: str) -> str:
    return f"response:{name}"


def bump_published(session: Session) -> int:
    counter = session.get(Counter, PUBLISHED_COUNTER)
    if counter is None:
        counter = Counter(name=PUBLISHED_COUNTER, value=0)
        session.add(counter)
    counter.value = (counter.value or 0) + 1
    return int(counter.value)


def published_counter(session: Session) -> int:
    counter = session.get(Counter, PUBLISHED_COUNTER)
    return int(counter.value) if counter is not None else 0


def _next_number(session: Session, response: Response) -> int:
    query = select(func.max(Version.number)).where(Version.response_id == response.id)
    return int(session.execute(query).scalar_one() or 0) + 1


def _search_text(name: str, contents: Iterable[Content | None]) -> str:
    parts = [name, name.replace("_", " ")]
    for content in contents:
        for language in LANGUAGES:
            entry = (content or {}).get(language) or {}
            parts.append(str(entry.get("text") or ""))
            parts += [str(b.get("title") or "") for b in entry.get("buttons") or []]
            for message in (entry.get("channels") or {}).values():
                parts.append(str(message.get("text") or ""))
    return fold(" ".join(parts))


def _version(session: Session, version_id: int | None) -> Version | None:
    return session.get(Version, version_id) if version_id is not None else None


def _refresh_search(session: Session, response: Response) -> None:
    live, working = (
        _version(session, response.live_version_id),
        _version(session, response.working_version_id),
    )
    response.search_text = _search_text(
        response.name, [v.content if v else None for v in (live, working)]
    )


def get_response(session: Session, name: str) -> Response:
    response = session.execute(select(Response).where(Response.name == name)).scalar_one_or_none()
    if response is None:
        raise NotFound(f"no reply named {name!r}")
    return response


# --- the domain seed -----------------------------------------------------------------------


def import_domain(session: Session, domain: dict[str, DomainResponse], now: float) -> list[str]:
    """Import every domain response the store lacks; a reply nobody edited in the console
    follows the domain when its YAML changed. Returns the names that were published."""
    changed = []
    for name, item in domain.items():
        if item.content is None:
            continue
        response = session.execute(
            select(Response).where(Response.name == name)
        ).scalar_one_or_none()
        if response is None:
            response = Response(name=name, domain_file=item.file, created_at=now, search_text="")
            session.add(response)
            session.flush()
            action = "imported"
        else:
            live = _version(session, response.live_version_id)
            if (
                live is None
                or live.created_by != audit.SYSTEM_DOMAIN
                or live.content == item.content
            ):
                continue  # staff own it now, or nothing changed
            action = "reimported"
        version = Version(
            response_id=response.id,
            number=_next_number(session, response),
            state=PUBLISHED,
            content=copy.deepcopy(item.content),
            authors=[],
            created_by=audit.SYSTEM_DOMAIN,
            created_at=now,
            updated_at=now,
            published_by=audit.SYSTEM_DOMAIN,
            published_at=now,
        )
        session.add(version)
        session.flush()
        response.live_version_id = version.id
        response.domain_file = item.file
        _refresh_search(session, response)
        audit.record(
            session,
            audit.SYSTEM_DOMAIN,
            action,
            _target(name),
            version.number,
            {"file": item.file},
            now,
        )
        changed.append(name)
    if changed:
        bump_published(session)
    return changed


# --- reading -------------------------------------------------------------------------------


# Every reply fits on one page: the domain has about a hundred (104 with the out-of-scope ones).
SEARCH_LIMIT = 1000


def search(session: Session, query: str | None, limit: int = SEARCH_LIMIT) -> list[dict[str, Any]]:
    """Replies whose name or words (live or being edited) contain every word of ``query``,
    accents and case ignored."""
    statement = select(Response).order_by(Response.name)
    for word in words(query or ""):
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(Response.search_text.like(f"%{escaped}%", escape="\\"))
    found = []
    for response in session.execute(statement.limit(limit)).scalars():
        live = _version(session, response.live_version_id)
        working = _version(session, response.working_version_id)
        found.append(
            {
                "name": response.name,
                "domain_file": response.domain_file,
                "text": {
                    lang: ((live.content if live else {}).get(lang) or {}).get("text")
                    for lang in LANGUAGES
                },
                "live_version": live.number if live else None,
                "working": {"version": working.number, "state": working.state} if working else None,
            }
        )
    return found


def _version_summary(version: Version) -> dict[str, Any]:
    return {
        "version": version.number,
        "state": version.state,
        "based_on": version.based_on,
        "rollback_of": version.rollback_of,
        "authors": list(version.authors or []),
        "created_by": version.created_by,
        "created_at": version.created_at,
        "updated_at": version.updated_at,
        "submitted_by": version.submitted_by,
        "submitted_at": version.submitted_at,
        "published_by": version.published_by,
        "published_at": version.published_at,
        "note": version.note,
    }


def detail(session: Session, name: str, staff: Staff) -> dict[str, Any]:
    response = get_response(session, name)
    live = _version(session, response.live_version_id)
    working = _version(session, response.working_version_id)
    audit.record(session, staff.email, "viewed", _target(name), live.number if live else None)
    return {
        "name": response.name,
        "domain_file": response.domain_file,
        "live": {**_version_summary(live), "content": live.content} if live else None,
        "working": {**_version_summary(working), "content": working.content} if working else None,
        "placeholders": sorted(_placeholders_of(live.content if live else {})),
    }


def _placeholders_of(content: Content) -> set[str]:
    found: set[str] = set()
    for language in LANGUAGES:
        entry = content.get(language) or {}
        found |= placeholders(entry.get("text"))
        for message in (entry.get("channels") or {}).values():
            found |= placeholders(message.get("text"))
    return found


def content_lines(content: Content) -> list[str]:
    """A version as lines a person can compare: text, buttons, per-channel variants."""
    lines: list[str] = []

    def add(prefix: str, message: dict[str, Any]) -> None:
        for line in str(message.get("text") or "").splitlines() or [""]:
            lines.append(f"{prefix} {line}")
        for number, button in enumerate(message.get("buttons") or [], 1):
            target = button.get("payload") or button.get("url") or ""
            lines.append(f"{prefix} button {number}: {button.get('title')} -> {target}")

    for language in LANGUAGES:
        entry = content.get(language) or {}
        add(f"[{language}]", entry)
        for channel, message in sorted((entry.get("channels") or {}).items()):
            add(f"[{language}/{channel}]", message)
    return lines


def diff(old: Version | None, new: Version) -> str:
    before = content_lines(old.content) if old else []
    return "\n".join(
        difflib.unified_diff(
            before,
            content_lines(new.content),
            fromfile=f"version {old.number}" if old else "nothing",
            tofile=f"version {new.number}",
            lineterm="",
        )
    )


def history(session: Session, name: str, staff: Staff) -> list[dict[str, Any]]:
    """Every version, newest first, each with its diff against the version it replaced (a
    published one) or was made from (a draft)."""
    response = get_response(session, name)
    versions = list(
        session.execute(
            select(Version).where(Version.response_id == response.id).order_by(Version.number)
        ).scalars()
    )
    by_number = {v.number: v for v in versions}
    found = []
    previous_published: Version | None = None
    for version in versions:
        if version.state == PUBLISHED:
            base = previous_published
            previous_published = version
        else:
            base = by_number.get(version.based_on) if version.based_on else None
        found.append(
            {
                **_version_summary(version),
                "live": version.id == response.live_version_id,
                "content": version.content,
                "diff": diff(base, version),
            }
        )
    audit.record(session, staff.email, "viewed_versions", _target(name))
    return list(reversed(found))


# --- changing ------------------------------------------------------------------------------


def save_draft(
    session: Session,
    staff: Staff,
    name: str,
    language: str,
    text: str | None,
    channel: str | None = None,
    buttons: list[dict[str, Any]] | None = None,
    remove: bool = False,
    allowed_placeholders: set[str] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Change one language (or one channel variant of it) of the reply's draft, making the
    draft from the live version if there is none; a submitted version goes back to draft."""
    now = time.time() if now is None else now
    response = get_response(session, name)
    live = _version(session, response.live_version_id)
    working = _version(session, response.working_version_id)
    base = working.content if working else (live.content if live else {})
    content = copy.deepcopy(base)
    entry = content.setdefault(language, {"text": "", "buttons": [], "channels": {}})
    entry.setdefault("channels", {})
    if channel is None:
        if remove:
            raise Invalid("a language's text cannot be removed, only a channel variant")
        entry["text"] = text if text is not None else entry.get("text", "")
        if buttons is not None:
            entry["buttons"] = buttons
    elif remove:
        if channel not in entry["channels"]:
            raise Invalid(f"the {language} text has no {channel} variant to remove")
        del entry["channels"][channel]
    else:
        variant = entry["channels"].setdefault(
            channel,
            {"text": entry.get("text", ""), "buttons": copy.deepcopy(entry.get("buttons") or [])},
        )
        if text is not None:
            variant["text"] = text
        if buttons is not None:
            variant["buttons"] = buttons
    allowed = set(allowed_placeholders or set()) | _placeholders_of(live.content if live else {})
    problems = check_content(content, live.content if live else None, allowed)
    if problems:
        raise Invalid("the draft was not saved: " + "; ".join(problems), problems)
    if working is None:
        working = Version(
            response_id=response.id,
            number=_next_number(session, response),
            state=DRAFT,
            content=content,
            based_on=live.number if live else None,
            authors=[staff.email],
            created_by=staff.email,
            created_at=now,
            updated_at=now,
        )
        session.add(working)
        session.flush()
        response.working_version_id = working.id
    else:
        reopened = working.state == SUBMITTED
        working.content = content
        working.state = DRAFT
        working.submitted_by = working.submitted_at = None
        if staff.email not in (working.authors or []):
            working.authors = [*(working.authors or []), staff.email]
        working.updated_at = now
        if reopened:
            audit.record(session, staff.email, "reopened", _target(name), working.number, now=now)
    _refresh_search(session, response)
    audit.record(
        session,
        staff.email,
        "draft_saved",
        _target(name),
        working.number,
        {"language": language, "channel": channel, "removed": remove or None},
        now,
    )
    return _version_summary(working) | {"content": working.content}


def _working(session: Session, response: Response, state: str, verb: str) -> Version:
    working = _version(session, response.working_version_id)
    if working is None:
        raise Conflict(f"{response.name} has no draft to {verb}")
    if working.state != state:
        raise Conflict(f"{response.name} version {working.number} is {working.state}, not {state}")
    return working


def submit(session: Session, staff: Staff, name: str, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    response = get_response(session, name)
    working = _working(session, response, DRAFT, "submit")
    working.state = SUBMITTED
    working.submitted_by, working.submitted_at, working.note = staff.email, now, None
    audit.record(session, staff.email, "submitted", _target(name), working.number, now=now)
    return _version_summary(working)


def send_back(
    session: Session, staff: Staff, name: str, note: str, now: float | None = None
) -> dict[str, Any]:
    """A reviewer returns a submission to its authors as a draft, with the reason."""
    now = time.time() if now is None else now
    response = get_response(session, name)
    working = _working(session, response, SUBMITTED, "send back")
    working.state = DRAFT
    working.submitted_by = working.submitted_at = None
    working.note = note
    audit.record(
        session, staff.email, "sent_back", _target(name), working.number, {"note": note}, now
    )
    return _version_summary(working)


def publish(session: Session, staff: Staff, name: str, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    response = get_response(session, name)
    working = _version(session, response.working_version_id)
    if working is not None and working.state == DRAFT:
        raise Conflict(f"{name} version {working.number} is a draft: submit it for review first")
    working = _working(session, response, SUBMITTED, "publish")
    if staff.email in (working.authors or []):
        raise Forbidden(
            f"you edited version {working.number} of {name}: another reviewer or an admin "
            f"publishes it (nobody publishes their own change)"
        )
    working.state = PUBLISHED
    working.published_by, working.published_at = staff.email, now
    response.live_version_id = working.id
    response.working_version_id = None
    _refresh_search(session, response)
    counter = bump_published(session)
    audit.record(
        session, staff.email, "published", _target(name), working.number, {"counter": counter}, now
    )
    return _version_summary(working)


def rollback(
    session: Session, staff: Staff, name: str, number: int, now: float | None = None
) -> dict[str, Any]:
    """Publish an earlier published version again, as a new version (history only grows)."""
    now = time.time() if now is None else now
    response = get_response(session, name)
    old = session.execute(
        select(Version).where(Version.response_id == response.id, Version.number == number)
    ).scalar_one_or_none()
    if old is None:
        raise NotFound(f"{name} has no version {number}")
    if old.state != PUBLISHED:
        raise Conflict(f"version {number} of {name} was never published ({old.state})")
    live = _version(session, response.live_version_id)
    if live is not None and live.id == old.id:
        raise Conflict(f"version {number} is what citizens see already")
    version = Version(
        response_id=response.id,
        number=_next_number(session, response),
        state=PUBLISHED,
        content=copy.deepcopy(old.content),
        based_on=live.number if live else None,
        rollback_of=old.number,
        authors=[],
        created_by=staff.email,
        created_at=now,
        updated_at=now,
        published_by=staff.email,
        published_at=now,
    )
    session.add(version)
    session.flush()
    response.live_version_id = version.id
    _refresh_search(session, response)
    counter = bump_published(session)
    audit.record(
        session,
        staff.email,
        "rolled_back",
        _target(name),
        version.number,
        {"to": old.number, "counter": counter},
        now,
    )
    return _version_summary(version)


def discard(session: Session, staff: Staff, name: str, now: float | None = None) -> dict[str, Any]:
    """Drop the open draft or submission (kept in the history as discarded)."""
    now = time.time() if now is None else now
    response = get_response(session, name)
    working = _version(session, response.working_version_id)
    if working is None:
        raise Conflict(f"{name} has no draft to discard")
    working.state = DISCARDED
    working.updated_at = now
    response.working_version_id = None
    _refresh_search(session, response)
    audit.record(session, staff.email, "discarded", _target(name), working.number, now=now)
    return _version_summary(working)


def live_contents(session: Session) -> tuple[int, dict[str, Content]]:
    """The publish counter and every reply's live content, read in one transaction."""
    counter = published_counter(session)
    rows = session.execute(
        select(Response.name, Version.content).join(Version, Version.id == Response.live_version_id)
    )
    return counter, {name: content for name, content in rows}
