"""Small helpers shared by the action modules (no replies here: replies live in the domain)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from rasa_sdk import Tracker

LANGUAGES = ("vi", "en")


def language(tracker: Tracker) -> str:
    value = tracker.get_slot("language")
    return value if value in LANGUAGES else "vi"


def intent_name(tracker: Tracker) -> str:
    return str((tracker.latest_message.get("intent") or {}).get("name") or "")


def latest_entity_values(tracker: Tracker, entity: str) -> list[str]:
    return [
        str(e.get("value"))
        for e in tracker.latest_message.get("entities", [])
        if e.get("entity") == entity and e.get("value") is not None
    ]


def minutes(seconds: int | float) -> int:
    return max(1, math.ceil(seconds / 60))


def display_date(value: Any) -> str:
    """ISO date (or datetime) -> dd/mm/yyyy, which reads the same in Vietnamese and English."""
    if not value:
        return "-"
    try:
        return dt.date.fromisoformat(str(value)[:10]).strftime("%d/%m/%Y")
    except ValueError:
        return str(value)


def bullets(items: list[Any]) -> str:
    return "\n".join(f"• {item}" for item in items)
