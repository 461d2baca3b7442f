"""The call-centre desk's store: handoffs from the bot to a person, their queue, who holds each
one, internal notes, agents' presence, citizens' ratings, and the numbers of the report.

A handoff is `waiting` (in the queue), `callback` (asked for outside office hours or with nobody
online: kept for a call back), `taken` (an agent holds it) or `released` (handed back to the
bot). Staff may also take a conversation that did not ask (reason `staff`: created taken). A
conversation has at most one open handoff (waiting, callback or taken): asking again
returns it. Taking uses one conditional UPDATE, so of two agents racing exactly one wins.

Nothing here holds a message of the conversation: the transcript stays in Rasa's tracker and is
read, masked, when an agent looks (console/desk_rasa.py). The summary the bot sends is topic
names and yes/no flags, never a code, ID number or phone.

OFFICE_HOURS, in the zone OFFICE_TIMEZONE (Asia/Ho_Chi_Minh): clauses separated by `;`, each
days then time ranges, e.g. `Mon-Fri 07:30-17:00` (the default),
`Mon-Fri 07:30-11:30,13:00-17:00; Sat 08:00-11:30`, `Mon,Wed,Fri 08:00-12:00`; `always` is
open at every hour. Days are Mon Tue Wed Thu Fri Sat Sun; a range ends before its end minute.
"""

from __future__ import annotations

import datetime
import math
import re
import statistics
import time
import uuid
from collections import Counter as Tally
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Column, Float, Index, Integer, String, Text, or_, select, update
from sqlalchemy.orm import Session

from console import audit
from console.content import Conflict, Forbidden, Invalid, NotFound
from console.desk_rasa import mask
from console.models import Base, User

WAITING = "waiting"
CALLBACK = "callback"
TAKEN = "taken"
RELEASED = "released"
OPEN = (WAITING, CALLBACK, TAKEN)
DESK_ROLES = frozenset({"agent", "admin"})
ONLINE_SECONDS = 120.0  # an agent seen within this is online (desk page, events, API)
DEFAULT_TAKE_SECONDS = 180.0  # the expected wait per place when nothing was taken yet
RECENT_TAKES = 20  # the rolling average of take times covers this many
REASONS = ("request_human", "fallbacks")
STAFF = "staff"  # the reason of a conversation a staff member took without being asked
MAX_NOTE = 2000
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,79}$")  # intent and procedure names (never a code)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


class Handoff(Base):
    """One request of a conversation for a person."""

    __tablename__ = "handoffs"

    id = Column(String(36), primary_key=True)
    conversation_id = Column(String(200), nullable=False)
    channel = Column(String(80), nullable=False)
    language = Column(String(5), nullable=False)
    reason = Column(String(40), nullable=False)
    summary = Column(JSON, nullable=False)  # {"intent", "procedure", "dossier_code_given", ...}
    status = Column(String(20), nullable=False)
    why = Column(String(40), nullable=True)  # callback: "closed" or "nobody_online"
    requested_at = Column(Float, nullable=False)
    agent = Column(String(320), nullable=True)  # the email of whoever holds it
    taken_at = Column(Float, nullable=True)  # first taken (the wait ends then)
    released_at = Column(Float, nullable=True)
    released_by = Column(String(320), nullable=True)
    rating = Column(Integer, nullable=True)
    rated_at = Column(Float, nullable=True)

    __table_args__ = (
        Index("ix_handoffs_conversation_status", "conversation_id", "status"),
        Index("ix_handoffs_status_requested", "status", "requested_at"),
    )


class HandoffNote(Base):
    """An agent's internal note on a handoff: never sent to the citizen."""

    __tablename__ = "handoff_notes"

    id = Column(Integer, primary_key=True, autoincrement=True)
    handoff_id = Column(String(36), nullable=False, index=True)
    author = Column(String(320), nullable=False)
    text = Column(Text, nullable=False)  # masked before it is stored
    at = Column(Float, nullable=False)


class DeskPresence(Base):
    """When each agent was last seen at the desk (page, event stream or API)."""

    __tablename__ = "desk_presence"

    email = Column(String(320), primary_key=True)
    last_seen = Column(Float, nullable=False)


# --- office hours --------------------------------------------------------------------------


@dataclass(frozen=True)
class OfficeHours:
    """Per weekday (0 = Monday) the open ranges in minutes since midnight; ``None``: always."""

    ranges: tuple[tuple[tuple[int, int], ...], ...] | None
    zone: ZoneInfo

    def is_open(self, now: float) -> bool:
        if self.ranges is None:
            return True
        local = datetime.datetime.fromtimestamp(now, self.zone)
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.ranges[local.weekday()])


def _minutes(text: str, spec: str) -> int:
    found = _TIME.match(text)
    if not found or int(found.group(1)) * 60 + int(found.group(2)) > 24 * 60:
        raise ValueError(f"OFFICE_HOURS: {text!r} is not a time like 07:30 (in {spec!r})")
    return int(found.group(1)) * 60 + int(found.group(2))


def _days(text: str, spec: str) -> list[int]:
    found: list[int] = []
    for part in text.lower().split(","):
        first, _, last = part.partition("-")
        if first[:3] not in DAYS or (last and last[:3] not in DAYS):
            raise ValueError(f"OFFICE_HOURS: {part!r} is not a day like Mon or Mon-Fri ({spec!r})")
        start, end = DAYS.index(first[:3]), DAYS.index((last or first)[:3])
        found.extend(range(start, end + 1) if start <= end else [*range(start, 7), *range(end + 1)])
    return found


def parse_office_hours(spec: str, zone: str = "Asia/Ho_Chi_Minh") -> OfficeHours:
    """``Mon-Fri 07:30-17:00; Sat 08:00-11:30`` (module docstring); ValueError when unreadable."""
    tz = ZoneInfo(zone)
    if spec.strip().lower() in ("always", "24/7"):
        return OfficeHours(None, tz)
    week: list[list[tuple[int, int]]] = [[] for _ in DAYS]
    for clause in filter(None, (c.strip() for c in spec.split(";"))):
        days, _, times = clause.partition(" ")
        ranges = [r for r in re.split(r"[,\s]+", times.strip()) if r]
        if not ranges:
            raise ValueError(
                f"OFFICE_HOURS: {clause!r} needs days and hours, e.g. Mon-Fri 07:30-17:00"
            )
        for item in ranges:
            start_text, _, end_text = item.partition("-")
            start, end = _minutes(start_text, spec), _minutes(end_text, spec)
            if end <= start:
                raise ValueError(f"OFFICE_HOURS: {item!r} ends before it starts ({spec!r})")
            for day in _days(days, spec):
                week[day].append((start, end))
    if not any(week):
        raise ValueError(f"OFFICE_HOURS: no open hours in {spec!r}")
    return OfficeHours(tuple(tuple(day) for day in week), tz)


# --- presence ------------------------------------------------------------------------------


def touch(session: Session, email: str, now: float | None = None) -> None:
    """The agent is at the desk now."""
    now = time.time() if now is None else now
    row = session.get(DeskPresence, email)
    if row is None:
        session.add(DeskPresence(email=email, last_seen=now))
    else:
        row.last_seen = now


def online_agents(session: Session, now: float) -> list[str]:
    rows = session.execute(
        select(DeskPresence.email)
        .join(User, User.email == DeskPresence.email)
        .where(
            DeskPresence.last_seen >= now - ONLINE_SECONDS,
            User.role.in_(sorted(DESK_ROLES)),
            User.disabled_at.is_(None),
        )
        .order_by(DeskPresence.email)
    )
    return list(rows.scalars())


# --- the bot's requests ----------------------------------------------------------------------


def _name(value: Any) -> str | None:
    """An intent or procedure name as the bot sends it; anything else (free text) is dropped."""
    return value if isinstance(value, str) and _NAME.match(value) else None


def clean_summary(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "intent": _name(raw.get("intent")),
        "procedure": _name(raw.get("procedure")),
        "dossier_code_given": bool(raw.get("dossier_code_given")),
        "verified": bool(raw.get("verified")),
    }


def open_handoff(session: Session, conversation_id: str) -> Handoff | None:
    return session.execute(
        select(Handoff)
        .where(Handoff.conversation_id == conversation_id, Handoff.status.in_(OPEN))
        .order_by(Handoff.requested_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def latest_handoff(session: Session, conversation_id: str) -> Handoff | None:
    return session.execute(
        select(Handoff)
        .where(Handoff.conversation_id == conversation_id)
        .order_by(Handoff.requested_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def position(session: Session, handoff: Handoff) -> int:
    """1 = the next to be taken (first come, first served)."""
    earlier = session.execute(
        select(Handoff.id).where(
            Handoff.status == WAITING, Handoff.requested_at <= handoff.requested_at
        )
    ).all()
    return max(1, len(earlier))


def average_take_seconds(session: Session) -> float:
    """How long the last RECENT_TAKES handoffs waited before an agent took them."""
    rows = session.execute(
        select(Handoff.requested_at, Handoff.taken_at)
        .where(Handoff.taken_at.is_not(None))
        .order_by(Handoff.taken_at.desc())
        .limit(RECENT_TAKES)
    ).all()
    waits = [max(0.0, taken - requested) for requested, taken in rows]
    return statistics.fmean(waits) if waits else DEFAULT_TAKE_SECONDS


def availability(session: Session, hours: OfficeHours, now: float) -> str | None:
    """None when a person can answer now, else why not: `closed` or `nobody_online`."""
    if not hours.is_open(now):
        return "closed"
    if not online_agents(session, now):
        return "nobody_online"
    return None


def answer(session: Session, handoff: Handoff) -> dict[str, Any]:
    """What the bot is told about a handoff (the contract in console/README.md)."""
    if handoff.status == CALLBACK:
        return {"status": "unavailable", "handoff_id": handoff.id, "why": handoff.why}
    if handoff.status == TAKEN:
        return {
            "status": "queued",
            "handoff_id": handoff.id,
            "position": 1,
            "wait_minutes": 0,
            "taken": True,
        }
    place = position(session, handoff)
    wait = place * average_take_seconds(session) / 60
    return {
        "status": "queued",
        "handoff_id": handoff.id,
        "position": place,
        "wait_minutes": max(1, math.ceil(wait)),
    }


def request(
    session: Session,
    hours: OfficeHours,
    conversation_id: str,
    channel: str,
    language: str,
    reason: str,
    summary: dict[str, Any],
    now: float | None = None,
) -> dict[str, Any]:
    """Queue a conversation for a person, or keep it for a call back; asked again, the same."""
    now = time.time() if now is None else now
    why = availability(session, hours, now)
    existing = open_handoff(session, conversation_id)
    if existing is not None:
        if existing.status == CALLBACK and why is None:  # open again: into the queue
            existing.status, existing.why = WAITING, None
        return answer(session, existing)
    handoff = Handoff(
        id=str(uuid.uuid4()),
        conversation_id=conversation_id,
        channel=channel,
        language=language,
        reason=reason,
        summary=clean_summary(summary),
        status=WAITING if why is None else CALLBACK,
        why=why,
        requested_at=now,
    )
    session.add(handoff)
    session.flush()
    return answer(session, handoff)


def rate(session: Session, conversation_id: str, score: int, now: float | None = None) -> str:
    handoff = latest_handoff(session, conversation_id)
    if handoff is None:
        raise NotFound("this conversation was never handed to a person")
    handoff.rating = score
    handoff.rated_at = time.time() if now is None else now
    return str(handoff.id)


# --- the desk ------------------------------------------------------------------------------


def one_line(handoff: Handoff) -> str:
    """The queue's summary of a handoff: topic, procedure, code given, verified; nothing else."""
    summary = handoff.summary or {}
    parts = [
        f"topic: {summary.get('intent') or 'unknown'}",
        f"procedure: {summary.get('procedure')}" if summary.get("procedure") else None,
        "a dossier code was given" if summary.get("dossier_code_given") else None,
        "verified" if summary.get("verified") else "not verified",
        "after two misunderstandings" if handoff.reason == "fallbacks" else None,
        "taken by staff (the citizen did not ask)" if handoff.reason == STAFF else None,
    ]
    return " · ".join(p for p in parts if p)


def describe(handoff: Handoff, now: float) -> dict[str, Any]:
    return {
        "handoff_id": handoff.id,
        "conversation_id": handoff.conversation_id,
        "channel": handoff.channel,
        "language": handoff.language,
        "reason": handoff.reason,
        "status": handoff.status,
        "why": handoff.why,
        "agent": handoff.agent,
        "requested_at": handoff.requested_at,
        "waiting_seconds": int(
            max(0.0, (handoff.taken_at or handoff.released_at or now) - handoff.requested_at)
        ),
        "summary": mask(one_line(handoff)),
        "flags": clean_summary(dict(handoff.summary or {})),
        "rating": handoff.rating,
    }


def queue(session: Session, now: float | None = None) -> list[dict[str, Any]]:
    """Every open handoff: waiting first (oldest first), then call backs, then taken ones."""
    now = time.time() if now is None else now
    rows = session.execute(
        select(Handoff).where(Handoff.status.in_(OPEN)).order_by(Handoff.requested_at)
    ).scalars()
    order = {WAITING: 0, CALLBACK: 1, TAKEN: 2}
    return [describe(h, now) for h in sorted(rows, key=lambda h: order[str(h.status)])]


def current(session: Session, conversation_id: str) -> Handoff:
    """The conversation's open handoff, else its latest (a released one can still be read)."""
    found = open_handoff(session, conversation_id) or latest_handoff(session, conversation_id)
    if found is None:
        raise NotFound("no handoff for this conversation")
    return found


def _target(handoff: Handoff) -> str:
    return f"handoff:{handoff.id}"


def take(session: Session, email: str, conversation_id: str, now: float | None = None) -> Handoff:
    """Hold the conversation: one conditional UPDATE, so of two agents racing one wins (409)."""
    now = time.time() if now is None else now
    handoff = open_handoff(session, conversation_id)
    if handoff is None:
        raise NotFound("this conversation is not waiting for a person")
    won = session.execute(
        update(Handoff)
        .where(
            Handoff.id == handoff.id,
            or_(Handoff.status.in_((WAITING, CALLBACK)), Handoff.agent == email),
            Handoff.status.in_(OPEN),
        )
        .values(status=TAKEN, agent=email, why=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(handoff)
    if not won:
        raise Conflict(f"{handoff.agent} already took this conversation")
    if handoff.taken_at is None:
        handoff.taken_at = now
    audit.record(session, email, "took_conversation", target=_target(handoff), now=now)
    return handoff


def take_unasked(
    session: Session,
    email: str,
    conversation_id: str,
    channel: str,
    language: str,
    now: float | None = None,
) -> Handoff:
    """Hold a conversation that did not ask for a person: a new entry (reason `staff`), taken
    by ``email`` at once; audited `taken_by_staff`. If it has an open entry meanwhile, the usual
    take (409 when another agent holds it). SQLite writes one transaction at a time (BEGIN
    IMMEDIATE) and PostgreSQL refuses the loser (SERIALIZABLE), so a conversation never gets
    two open entries."""
    now = time.time() if now is None else now
    if open_handoff(session, conversation_id) is not None:
        return take(session, email, conversation_id, now)
    handoff = Handoff(
        id=str(uuid.uuid4()),
        conversation_id=conversation_id,
        channel=channel,
        language=language if language in ("vi", "en") else "vi",
        reason=STAFF,
        summary=clean_summary({}),
        status=TAKEN,
        why=None,
        requested_at=now,
        agent=email,
        taken_at=now,
    )
    session.add(handoff)
    session.flush()
    audit.record(session, email, "taken_by_staff", target=_target(handoff), now=now)
    return handoff


def held_by(session: Session, email: str, conversation_id: str, role: str = "agent") -> Handoff:
    """The conversation's handoff, if ``email`` holds it (an admin may act on any taken one)."""
    handoff = open_handoff(session, conversation_id)
    if handoff is None or handoff.status != TAKEN:
        raise Conflict("take this conversation first")
    if handoff.agent != email and role != "admin":
        raise Forbidden(f"{handoff.agent} holds this conversation")
    return handoff


def transfer(session: Session, email: str, role: str, conversation_id: str, to: str) -> Handoff:
    handoff = held_by(session, email, conversation_id, role)
    target = to.strip().lower()
    user = session.execute(select(User).where(User.email == target)).scalar_one_or_none()
    if user is None or user.disabled_at is not None or user.role not in DESK_ROLES:
        raise Invalid(f"{target[:320]} is not an agent of the desk")
    previous = handoff.agent
    handoff.agent = target
    audit.record(
        session,
        email,
        "transferred_conversation",
        target=_target(handoff),
        detail={"from": previous, "to": target},
    )
    return handoff


def release(
    session: Session, email: str, role: str, conversation_id: str, now: float | None = None
) -> Handoff:
    handoff = held_by(session, email, conversation_id, role)
    handoff.status = RELEASED
    handoff.released_at = time.time() if now is None else now
    handoff.released_by = email
    audit.record(session, email, "released_conversation", target=_target(handoff))
    return handoff


def add_note(session: Session, email: str, conversation_id: str, text: str, masked: str) -> int:
    """An internal note (``masked``: the text with personal data masked, as it is kept)."""
    if not text.strip():
        raise Invalid("a note needs some text")
    handoff = current(session, conversation_id)
    note = HandoffNote(handoff_id=handoff.id, author=email, text=masked[:MAX_NOTE], at=time.time())
    session.add(note)
    session.flush()
    audit.record(session, email, "noted_conversation", target=_target(handoff))
    return int(note.id)


def notes(session: Session, handoff: Handoff) -> list[dict[str, Any]]:
    rows = session.execute(
        select(HandoffNote).where(HandoffNote.handoff_id == handoff.id).order_by(HandoffNote.id)
    ).scalars()
    return [{"author": n.author, "text": n.text, "at": n.at} for n in rows]


def desk_agents(session: Session) -> list[str]:
    """Everyone a conversation can be transferred to."""
    rows = session.execute(
        select(User.email)
        .where(User.role.in_(sorted(DESK_ROLES)), User.disabled_at.is_(None))
        .order_by(User.email)
    )
    return list(rows.scalars())


# --- the report ----------------------------------------------------------------------------


def _percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (p50, p95) of a few hundred waits."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def report(
    session: Session, hours: OfficeHours, days: int = 14, now: float | None = None
) -> dict[str, Any]:
    """Handoffs per day (office time zone), waits p50/p95 in seconds, ratings, per channel."""
    now = time.time() if now is None else now
    since = now - days * 86400
    rows = list(session.execute(select(Handoff).where(Handoff.requested_at >= since)).scalars())
    zone = hours.zone
    today = datetime.datetime.fromtimestamp(now, zone).date()
    per_day = {(today - datetime.timedelta(days=n)).isoformat(): 0 for n in range(days - 1, -1, -1)}
    channels: dict[str, dict[str, Any]] = {}
    waits: list[float] = []
    ratings: list[int] = []
    for h in rows:
        day = datetime.datetime.fromtimestamp(h.requested_at, zone).date().isoformat()
        if day in per_day:
            per_day[day] += 1
        entry = channels.setdefault(
            h.channel, {"handoffs": 0, "fallbacks": 0, "waits": [], "ratings": []}
        )
        entry["handoffs"] += 1
        entry["fallbacks"] += h.reason == "fallbacks"
        if h.taken_at is not None:
            waits.append(h.taken_at - h.requested_at)
            entry["waits"].append(h.taken_at - h.requested_at)
        if h.rating is not None:
            ratings.append(int(h.rating))
            entry["ratings"].append(int(h.rating))

    def numbers(handoffs: int, fallbacks: int, w: list[float], r: list[int]) -> dict[str, Any]:
        return {
            "handoffs": handoffs,
            "fallback_share": round(fallbacks / handoffs, 3) if handoffs else None,
            "wait_p50_seconds": _percentile(w, 0.5),
            "wait_p95_seconds": _percentile(w, 0.95),
            "taken": len(w),
            "ratings": len(r),
            "rating_average": round(statistics.fmean(r), 2) if r else None,
        }

    tally = Tally(ratings)
    return {
        "days": days,
        "per_day": [{"day": d, "handoffs": n} for d, n in per_day.items()],
        "total": numbers(len(rows), sum(h.reason == "fallbacks" for h in rows), waits, ratings),
        "rating_counts": {str(score): tally.get(score, 0) for score in range(1, 6)},
        "per_channel": {
            name: numbers(e["handoffs"], e["fallbacks"], e["waits"], e["ratings"])
            for name, e in sorted(channels.items())
        },
    }
