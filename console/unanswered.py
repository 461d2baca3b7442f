"""Questions citizens asked that neither the NLU nor an FAQ entry answered: recorded masked by
the action server, grouped by similarity with counts (the FAQ retrieval's own vectors), and a
group turned into a new FAQ draft in one step (its questions become the phrasings). The routes
are in console/api/faq.py.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Column, Float, Integer, String, Text, select
from sqlalchemy.orm import Session

from actions.faq import Vectors, cosine, mask, normalise
from console import audit
from console import faq as faq_store
from console.auth import Staff
from console.content import NotFound
from console.models import Base

GROUP_THRESHOLD = 0.5  # cosine between a question and its group's first question
MAX_LISTED = 2000  # most recent open questions grouped per request
MAX_TEXT = 500


class Unanswered(Base):
    """One masked question; `faq_entry_id` is set once its group became an FAQ draft."""

    __tablename__ = "unanswered_questions"

    id = Column(Integer, primary_key=True, autoincrement=True)
    at = Column(Float, nullable=False)
    text = Column(Text, nullable=False)  # masked by the action server, and again here
    language = Column(String(5), nullable=False)
    faq_entry_id = Column(Integer, nullable=True)


def groups(session: Session) -> list[dict[str, Any]]:
    """Open questions grouped greedily: each joins the first group whose first question is
    close enough, else starts one. A group's id is its first question's id."""
    rows = list(
        session.execute(
            select(Unanswered)
            .where(Unanswered.faq_entry_id.is_(None))
            .order_by(Unanswered.id.desc())
            .limit(MAX_LISTED)
        ).scalars()
    )
    rows.reverse()
    if not rows:
        return []
    texts = [normalise(row.text) or row.text.lower() for row in rows]
    vectors = Vectors(texts).rows
    found: list[dict[str, Any]] = []
    heads: list[int] = []  # row index of each group's first question
    for position, row in enumerate(rows):
        scores = [cosine(vectors[head], vectors[position]) for head in heads]
        best = max(range(len(heads)), key=lambda g: scores[g], default=None)
        if best is not None and scores[best] >= GROUP_THRESHOLD:
            group = found[best]
        else:
            heads.append(position)
            group = {"group": row.id, "count": 0, "questions": [], "ids": [], "languages": {}}
            found.append(group)
        group["count"] += 1
        group["ids"].append(row.id)
        group["last_at"] = row.at
        group["languages"][row.language] = group["languages"].get(row.language, 0) + 1
        if row.text not in group["questions"]:
            group["questions"].append(row.text)
    found.sort(key=lambda g: (-g["count"], -g["last_at"]))
    return found


def record(session: Session, text: str, language: str, now: float | None = None) -> None:
    """Masked again here: nothing personal is kept whatever the caller sent."""
    session.add(
        Unanswered(
            at=time.time() if now is None else now,
            text=mask(text)[:MAX_TEXT],
            language=language if language in ("vi", "en") else "vi",
        )
    )


def make_faq(session: Session, staff: Staff, group: int, extra: dict[str, Any]) -> dict[str, Any]:
    """A new FAQ draft: the group's questions as phrasings (plus ``extra["questions"]``), the
    answer, source and date from ``extra``; the group's questions leave the list."""
    chosen = next((g for g in groups(session) if g["group"] == group), None)
    if chosen is None:
        raise NotFound(f"no open group {group} of unanswered questions")
    members = [session.get(Unanswered, i) for i in chosen["ids"]]
    added = extra.get("questions") or {}
    questions: dict[str, list[str]] = {lang: list(added.get(lang) or []) for lang in ("vi", "en")}
    for member in members:
        if member is not None and member.text not in questions[member.language]:
            questions[member.language].append(member.text)
    raw = {
        **extra,
        "questions": {k: v[: faq_store.MAX_PHRASINGS] for k, v in questions.items()},
    }
    created = faq_store.create(session, staff, raw)
    for member in members:
        if member is not None:
            member.faq_entry_id = created["id"]
    audit.record(
        session,
        staff.email,
        "faq_from_unanswered",
        f"faq:{created['id']}",
        1,
        {"group": group, "questions": len(members)},
    )
    return created
