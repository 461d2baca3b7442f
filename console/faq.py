"""FAQ entries: question phrasings and the answer in Vietnamese and English, a source link, a
"reviewed on" date and an optional validity window, through the same workflow as replies.

The reply workflow in console/content.py works on its own tables (Response, Version), so it is
not reusable as it is; this module keeps the same rules with the same pieces: the errors of
console.content (403/404/409/422), console.audit, console.checks.link_problem and the Counter
table (its own `faq` counter, which the action server polls through an ETag). Rules: an editor
never publishes; nobody publishes a version they edited; only a submitted version is published;
published versions are kept; a withdrawal takes the entry from citizens (its versions stay).
Every function runs inside the caller's transaction and raises before writing anything.
"""

from __future__ import annotations

import copy
import datetime
import time
from typing import Any

from sqlalchemy import JSON, Column, Float, ForeignKey, Index, Integer, String, func, select
from sqlalchemy.orm import Session

from console import audit
from console.auth import Staff
from console.checks import link_problem
from console.content import Conflict, Forbidden, Invalid, NotFound
from console.models import DISCARDED, DRAFT, PUBLISHED, SUBMITTED, Base, Counter
from console.rasa_format import LANGUAGES

FAQ_COUNTER = "faq"
WITHDRAWN = "withdrawn"  # a published version taken from citizens (kept for the record)
MAX_PHRASINGS = 30
MAX_PHRASING = 300
MAX_ANSWER = 4000

# What one version holds (FaqVersion.content):
# {"questions": {"vi": [...], "en": [...]}, "answer": {"vi": "...", "en": "..."},
#  "source": "https://...", "reviewed_on": "2026-12-01",
#  "valid_from": "2026-01-01" | None, "valid_until": "2026-12-31" | None}
FaqContent = dict[str, Any]


class FaqEntry(Base):
    """One question citizens ask; what the assistant answers is its live version."""

    __tablename__ = "faq_entries"

    id = Column(Integer, primary_key=True, autoincrement=True)
    live_version_id = Column(Integer, nullable=True)
    working_version_id = Column(Integer, nullable=True)  # the open draft or submission
    created_by = Column(String(320), nullable=False)
    created_at = Column(Float, nullable=False)
    withdrawn_by = Column(String(320), nullable=True)
    withdrawn_at = Column(Float, nullable=True)


class FaqVersion(Base):
    __tablename__ = "faq_versions"

    id = Column(Integer, primary_key=True, autoincrement=True)
    entry_id = Column(Integer, ForeignKey("faq_entries.id"), nullable=False)
    number = Column(Integer, nullable=False)
    state = Column(String(20), nullable=False)
    content = Column(JSON, nullable=False)
    based_on = Column(Integer, nullable=True)
    authors = Column(JSON, nullable=False, default=list)
    created_by = Column(String(320), nullable=False)
    created_at = Column(Float, nullable=False)
    updated_at = Column(Float, nullable=False)
    submitted_by = Column(String(320), nullable=True)
    submitted_at = Column(Float, nullable=True)
    published_by = Column(String(320), nullable=True)
    published_at = Column(Float, nullable=True)

    __table_args__ = (Index("ux_faq_versions_entry_number", "entry_id", "number", unique=True),)


def _target(entry_id: int) -> str:
    return f"faq:{entry_id}"


def _date(value: Any, name: str, problems: list[str]) -> str | None:
    if value is None or value == "":
        return None
    try:
        return datetime.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        problems.append(f"{name}: {value!r} is not a date (write it as YYYY-MM-DD)")
        return None


def clean_content(raw: dict[str, Any]) -> FaqContent:
    """The content as stored, or Invalid with every problem found (nothing is saved then)."""
    problems: list[str] = []
    questions: dict[str, list[str]] = {}
    answer: dict[str, str] = {}
    for language in LANGUAGES:
        phrasings = (raw.get("questions") or {}).get(language) or []
        cleaned = [" ".join(str(p).split()) for p in phrasings]
        if any(not p for p in cleaned):
            problems.append(f"questions.{language}: a phrasing is empty")
        if any(len(p) > MAX_PHRASING for p in cleaned):
            problems.append(f"questions.{language}: a phrasing is over {MAX_PHRASING} characters")
        if len(cleaned) > MAX_PHRASINGS:
            problems.append(f"questions.{language}: at most {MAX_PHRASINGS} phrasings")
        questions[language] = [p for p in cleaned if p]
        text = str((raw.get("answer") or {}).get(language) or "").strip()
        if not text:
            problems.append(f"answer.{language}: the answer is empty")
        elif len(text) > MAX_ANSWER:
            problems.append(f"answer.{language}: over {MAX_ANSWER} characters")
        answer[language] = text
    if not questions["vi"]:
        problems.append("questions.vi: at least one Vietnamese phrasing is needed")
    source = str(raw.get("source") or "").strip()
    if not source:
        problems.append("source: a source link is needed")
    else:
        why = link_problem(source)
        if why or source != source.rstrip(".,;:!?)]}»"):
            problems.append(f"source: {why or repr(source) + ' ends with punctuation'}")
    reviewed_on = _date(raw.get("reviewed_on"), "reviewed_on", problems)
    if reviewed_on is None and not any(p.startswith("reviewed_on") for p in problems):
        problems.append("reviewed_on: the date the answer was last checked is needed")
    valid_from = _date(raw.get("valid_from"), "valid_from", problems)
    valid_until = _date(raw.get("valid_until"), "valid_until", problems)
    if valid_from and valid_until and valid_until < valid_from:
        problems.append(f"valid_until ({valid_until}) is before valid_from ({valid_from})")
    if problems:
        raise Invalid("the FAQ entry was not saved: " + "; ".join(problems), problems)
    return {
        "questions": questions,
        "answer": answer,
        "source": source,
        "reviewed_on": reviewed_on,
        "valid_from": valid_from,
        "valid_until": valid_until,
    }


def bump_faq(session: Session) -> int:
    counter = session.get(Counter, FAQ_COUNTER)
    if counter is None:
        counter = Counter(name=FAQ_COUNTER, value=0)
        session.add(counter)
    counter.value = (counter.value or 0) + 1
    return int(counter.value)


def faq_counter(session: Session) -> int:
    counter = session.get(Counter, FAQ_COUNTER)
    return int(counter.value) if counter is not None else 0


def _version(session: Session, version_id: int | None) -> FaqVersion | None:
    return session.get(FaqVersion, version_id) if version_id is not None else None


def _next_number(session: Session, entry: FaqEntry) -> int:
    query = select(func.max(FaqVersion.number)).where(FaqVersion.entry_id == entry.id)
    return int(session.execute(query).scalar_one() or 0) + 1


def get_entry(session: Session, entry_id: int) -> FaqEntry:
    entry = session.get(FaqEntry, entry_id)
    if entry is None:
        raise NotFound(f"no FAQ entry {entry_id}")
    return entry


def _summary(version: FaqVersion) -> dict[str, Any]:
    return {
        "version": version.number,
        "state": version.state,
        "based_on": version.based_on,
        "authors": list(version.authors or []),
        "created_by": version.created_by,
        "created_at": version.created_at,
        "updated_at": version.updated_at,
        "submitted_by": version.submitted_by,
        "submitted_at": version.submitted_at,
        "published_by": version.published_by,
        "published_at": version.published_at,
        "content": version.content,
    }


def describe(session: Session, entry: FaqEntry) -> dict[str, Any]:
    live = _version(session, entry.live_version_id)
    working = _version(session, entry.working_version_id)
    return {
        "id": entry.id,
        "live": _summary(live) if live else None,
        "working": _summary(working) if working else None,
        "withdrawn_by": entry.withdrawn_by,
        "withdrawn_at": entry.withdrawn_at,
    }


def list_entries(session: Session) -> list[dict[str, Any]]:
    entries = session.execute(select(FaqEntry).order_by(FaqEntry.id)).scalars()
    return [describe(session, entry) for entry in entries]


def detail(session: Session, entry_id: int, staff: Staff) -> dict[str, Any]:
    entry = get_entry(session, entry_id)
    versions = session.execute(
        select(FaqVersion).where(FaqVersion.entry_id == entry.id).order_by(FaqVersion.number)
    ).scalars()
    live = _version(session, entry.live_version_id)
    audit.record(session, staff.email, "viewed", _target(entry.id), live.number if live else None)
    return describe(session, entry) | {"versions": [_summary(v) for v in reversed(list(versions))]}


def create(
    session: Session, staff: Staff, raw: dict[str, Any], now: float | None = None
) -> dict[str, Any]:
    """A new entry whose first version is a draft."""
    now = time.time() if now is None else now
    content = clean_content(raw)
    entry = FaqEntry(created_by=staff.email, created_at=now)
    session.add(entry)
    session.flush()
    version = FaqVersion(
        entry_id=entry.id,
        number=1,
        state=DRAFT,
        content=content,
        authors=[staff.email],
        created_by=staff.email,
        created_at=now,
        updated_at=now,
    )
    session.add(version)
    session.flush()
    entry.working_version_id = version.id
    audit.record(session, staff.email, "faq_created", _target(entry.id), 1, now=now)
    return describe(session, entry)


def save_draft(
    session: Session, staff: Staff, entry_id: int, raw: dict[str, Any], now: float | None = None
) -> dict[str, Any]:
    """Replace the draft's content (making a draft if there is none); a submission reopens."""
    now = time.time() if now is None else now
    entry = get_entry(session, entry_id)
    content = clean_content(raw)
    working = _version(session, entry.working_version_id)
    if working is None:
        live = _version(session, entry.live_version_id)
        working = FaqVersion(
            entry_id=entry.id,
            number=_next_number(session, entry),
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
        entry.working_version_id = working.id
    else:
        working.content = copy.deepcopy(content)
        working.state = DRAFT
        working.submitted_by = working.submitted_at = None
        if staff.email not in (working.authors or []):
            working.authors = [*(working.authors or []), staff.email]
        working.updated_at = now
    audit.record(
        session, staff.email, "faq_draft_saved", _target(entry.id), working.number, now=now
    )
    return describe(session, entry)


def _working(session: Session, entry: FaqEntry, state: str, verb: str) -> FaqVersion:
    working = _version(session, entry.working_version_id)
    if working is None:
        raise Conflict(f"FAQ entry {entry.id} has no draft to {verb}")
    if working.state != state:
        hint = ": submit it for review first" if working.state == DRAFT else ""
        raise Conflict(
            f"FAQ entry {entry.id} version {working.number} is {working.state}, not {state}{hint}"
        )
    return working


def submit(
    session: Session, staff: Staff, entry_id: int, now: float | None = None
) -> dict[str, Any]:
    now = time.time() if now is None else now
    entry = get_entry(session, entry_id)
    working = _working(session, entry, DRAFT, "submit")
    working.state = SUBMITTED
    working.submitted_by, working.submitted_at = staff.email, now
    audit.record(session, staff.email, "faq_submitted", _target(entry.id), working.number, now=now)
    return describe(session, entry)


def publish(
    session: Session, staff: Staff, entry_id: int, now: float | None = None
) -> dict[str, Any]:
    now = time.time() if now is None else now
    entry = get_entry(session, entry_id)
    working = _working(session, entry, SUBMITTED, "publish")
    if staff.email in (working.authors or []):
        raise Forbidden(
            f"you edited version {working.number} of FAQ entry {entry.id}: another reviewer or "
            f"an admin publishes it (nobody publishes their own change)"
        )
    working.state = PUBLISHED
    working.published_by, working.published_at = staff.email, now
    entry.live_version_id = working.id
    entry.working_version_id = None
    entry.withdrawn_by = entry.withdrawn_at = None
    counter = bump_faq(session)
    audit.record(
        session,
        staff.email,
        "faq_published",
        _target(entry.id),
        working.number,
        {"counter": counter},
        now,
    )
    return describe(session, entry)


def withdraw(
    session: Session, staff: Staff, entry_id: int, now: float | None = None
) -> dict[str, Any]:
    """Citizens no longer get this entry; its versions stay, and a new one can be published."""
    now = time.time() if now is None else now
    entry = get_entry(session, entry_id)
    live = _version(session, entry.live_version_id)
    if live is None:
        raise Conflict(f"FAQ entry {entry.id} is not published: nothing to withdraw")
    live.state = WITHDRAWN
    entry.live_version_id = None
    entry.withdrawn_by, entry.withdrawn_at = staff.email, now
    counter = bump_faq(session)
    audit.record(
        session,
        staff.email,
        "faq_withdrawn",
        _target(entry.id),
        live.number,
        {"counter": counter},
        now,
    )
    return describe(session, entry)


def discard(
    session: Session, staff: Staff, entry_id: int, now: float | None = None
) -> dict[str, Any]:
    now = time.time() if now is None else now
    entry = get_entry(session, entry_id)
    working = _version(session, entry.working_version_id)
    if working is None:
        raise Conflict(f"FAQ entry {entry.id} has no draft to discard")
    working.state = DISCARDED
    working.updated_at = now
    entry.working_version_id = None
    audit.record(session, staff.email, "faq_discarded", _target(entry.id), working.number, now=now)
    return describe(session, entry)


def in_window(content: FaqContent, today: str) -> bool:
    """ISO dates compare as strings; both ends of the window are included."""
    start, end = content.get("valid_from"), content.get("valid_until")
    return (not start or start <= today) and (not end or today <= end)


def published(session: Session, today: str) -> tuple[int, list[dict[str, Any]]]:
    """The counter and every live entry valid on ``today``, read in one transaction."""
    counter = faq_counter(session)
    rows = session.execute(
        select(FaqEntry.id, FaqVersion.number, FaqVersion.content)
        .join(FaqVersion, FaqVersion.id == FaqEntry.live_version_id)
        .order_by(FaqEntry.id)
    )
    entries = [
        {"id": entry_id, "version": number, **content}
        for entry_id, number, content in rows
        if in_window(content, today)
    ]
    return counter, entries
