"""The desk's shared state and what it shows beside a conversation: the masked transcript, the
NLU's top intents, suggested answers (published replies and FAQ entries close to the citizen's
last message, in their language: for the agent to insert and edit, never sent by themselves),
the procedure's checklist, and a dossier's public status when the citizen verified.

Suggestions reuse the FAQ's retrieval (actions/faq.py: accent-folded character n-gram TF-IDF
against the NLU examples as background), here with a lower threshold and the best few.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from console import faq as faq_store
from console import handoff as store
from console.api import Console
from console.content import Conflict
from console.db import transaction
from console.desk_rasa import Conversation, DeskClients, DeskError, mask
from console.rasa_format import PLACEHOLDER

T = TypeVar("T")
REPLY_THRESHOLD = 0.12
FAQ_THRESHOLD = 0.3
SUGGESTIONS = 3
INTENT_BONUS = 0.3  # a reply named after the NLU's top intent (utter_ask_fee for ask_fee)
# Replies offered in the reply box whatever the message; `utter_desk_*` replies in the domain
# are added (communications edit them in the console like any other reply).
CANNED = ("utter_greet", "utter_help", "utter_you_are_welcome", "utter_goodbye")
RETURNED = "utter_handoff_returned"
JOINED = "utter_handoff_agent_joined"  # sent when an agent takes a conversation ({agent})
SERIALIZATION_FAILURE = "40001"
HANDBACK_ACTION = "action_handoff_returned"  # actions/handoff.py: resume, say so, ask a rating
_SKIP = (
    "utter_handoff_",
    "utter_ask_",
    "utter_title_",
)  # handoff lines, form questions, button titles


@dataclass
class Desk:
    """Built once per app by console.desk.install; tests replace ``clients``' transport."""

    console: Console
    clients: DeskClients
    hours: store.OfficeHours
    _index_lock: threading.Lock = field(default_factory=threading.Lock)
    _replies: dict[tuple[int, str], Any] = field(default_factory=dict)
    _faq: dict[tuple[int, str], Any] = field(default_factory=dict)

    @classmethod
    def build(cls, console: Console, transport: httpx.AsyncBaseTransport | None = None) -> Desk:
        settings = console.settings
        hours = store.parse_office_hours(settings.office_hours, settings.office_timezone)
        return cls(console, DeskClients(settings, transport), hours)

    async def db(self, work: Callable[[Session], T]) -> T:
        """One transaction, off the event loop."""

        def run() -> T:
            try:
                with transaction(self.console.engine) as session:
                    return work(session)
            except DBAPIError as exc:
                # PostgreSQL (SERIALIZABLE) refuses the loser of two simultaneous takes: a
                # conflict, as SQLite's conditional UPDATE gives.
                if getattr(exc.orig, "pgcode", None) == SERIALIZATION_FAILURE:
                    raise Conflict(
                        "another agent changed this conversation at the same moment"
                    ) from exc
                raise

        return await asyncio.to_thread(run)


def install_desk(app: FastAPI, transport: httpx.AsyncBaseTransport | None = None) -> Desk:
    desk = Desk.build(app.state.console, transport)
    app.state.desk = desk
    return desk


def get_desk(request: Request) -> Desk:
    return request.app.state.desk  # type: ignore[no-any-return]


# --- replies in the citizen's language -------------------------------------------------------


def reply_text(
    desk: Desk,
    name: str,
    language: str,
    channel: str,
    arguments: dict[str, Any] | None = None,
) -> str | None:
    """A published reply's text as the citizen's channel would get it (``arguments`` fill its
    placeholders, as an action's would), or None if the store and the domain do not have it."""
    rendered = desk.console.published.render(
        name, {"language": language}, channel, dict(arguments or {})
    )
    if rendered is None:
        return None
    return str(rendered.get("text") or "")


def plain(desk: Desk, name: str) -> bool:
    """A reply without placeholders in any variation: it reads right outside its action (and
    rendering it logs no missing slot)."""
    variations = desk.console.published.variations(name) or []
    return bool(variations) and not any(
        PLACEHOLDER.search(str(v.get("text") or "")) for v in variations
    )


def canned(desk: Desk, language: str, channel: str) -> list[dict[str, str]]:
    names = list(CANNED) + sorted(
        n for n in desk.console.published.snapshot.responses if n.startswith("utter_desk_")
    )
    found = []
    for name in names:
        text = reply_text(desk, name, language, channel) if plain(desk, name) else None
        if text:
            found.append({"name": name, "text": text})
    return found


def _reply_index(desk: Desk, language: str) -> Any:
    """Vectors of every published reply's text without placeholders (one per publish)."""
    from actions.faq import Vectors, normalise  # the FAQ's retrieval, without side effects

    key = (desk.console.published.counter, language)
    with desk._index_lock:
        if key not in desk._replies:
            names, texts = [], []
            for name in sorted(desk.console.published.snapshot.responses):
                if name.startswith(_SKIP) or not plain(desk, name):
                    continue
                text = reply_text(desk, name, language, "rest")
                if text:
                    names.append((name, text))
                    texts.append(normalise(text))
            desk._replies.clear()
            desk._replies[key] = (names, Vectors(texts) if texts else None)
        return desk._replies[key]


def _faq_index(desk: Desk, session_entries: tuple[int, list[dict[str, Any]]], language: str) -> Any:
    from actions.faq import Vectors, normalise

    counter, entries = session_entries
    key = (counter, language)
    with desk._index_lock:
        if key not in desk._faq:
            rows, texts = [], []
            for entry in entries:
                for phrasing in (entry.get("questions") or {}).get(language) or []:
                    folded = normalise(str(phrasing))
                    if folded:
                        rows.append(entry)
                        texts.append(folded)
            desk._faq.clear()
            desk._faq[key] = (rows, Vectors(texts) if texts else None)
        return desk._faq[key]


def suggestions(
    desk: Desk, message: str, intents: list[dict[str, Any]], language: str
) -> list[dict[str, Any]]:
    """Published replies and FAQ answers close to ``message``, best first (blocking: a thread)."""
    from actions.faq import cosine, normalise

    query = normalise(message)
    top_intent = intents[0]["name"] if intents else ""
    found: list[dict[str, Any]] = []
    names, vectors = _reply_index(desk, language)
    asked = vectors.of(query) if vectors is not None and query else {}
    for row, (name, text) in enumerate(names):
        score = cosine(asked, vectors.rows[row]) if asked else 0.0
        if top_intent and top_intent in name:
            score += INTENT_BONUS
        if score >= REPLY_THRESHOLD:
            found.append({"kind": "reply", "name": name, "text": text, "score": round(score, 3)})
    with transaction(desk.console.engine) as session:
        published = faq_store.published(session, datetime.date.today().isoformat())
    rows, faq_vectors = _faq_index(desk, published, language)
    best: dict[int, dict[str, Any]] = {}
    if faq_vectors is not None and query:
        asked = faq_vectors.of(query)
        for row, entry in enumerate(rows):
            score = cosine(asked, faq_vectors.rows[row])
            if score >= FAQ_THRESHOLD and score > best.get(entry["id"], {}).get("score", 0):
                answer = (entry.get("answer") or {}).get(language) or ""
                source = entry.get("source") or ""
                best[entry["id"]] = {
                    "kind": "faq",
                    "name": f"faq:{entry['id']}",
                    "text": f"{answer}\n{source}".strip(),
                    "score": round(score, 3),
                }
    found += best.values()
    found.sort(key=lambda s: -float(s["score"]))
    return found[:SUGGESTIONS]


async def assist(desk: Desk, handoff: dict[str, Any], conversation: Conversation) -> dict[str, Any]:
    """Everything beside the transcript; the portal down costs its part only."""
    language = conversation.language
    result: dict[str, Any] = {
        "language": language,
        "intents": conversation.latest_intents,
        "last_message": mask(conversation.latest_text),
        "suggestions": [],
        "canned": canned(desk, language, handoff["channel"]),
        "checklist": None,
        "dossier": {"shown": False, "why": "not verified"},
        "problems": [],
    }
    if conversation.latest_text:
        found = await asyncio.to_thread(
            suggestions, desk, conversation.latest_text, conversation.latest_intents, language
        )
        result["suggestions"] = found
    procedure = conversation.slots.get("procedure")
    if isinstance(procedure, str) and procedure:
        try:
            result["checklist"] = await desk.clients.checklist(procedure, language)
        except DeskError as exc:
            result["problems"].append(exc.message)
    code = conversation.slots.get("dossier_code")
    if not conversation.verified:
        result["dossier"] = {"shown": False, "why": "not verified"}
    elif not code:
        result["dossier"] = {"shown": False, "why": "no dossier code was given"}
    else:
        try:
            status = await desk.clients.public_status(str(code), language)
        except DeskError as exc:
            result["problems"].append(exc.message)
            status = None
        result["dossier"] = (
            {"shown": True, **status}
            if status
            else {"shown": False, "why": "the portal does not know this dossier"}
        )
    return result
