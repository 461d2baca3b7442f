"""Reading reply texts from the domain, for the few places where an action needs a text as a
button title (the domain is sent to the action server with every call)."""

from __future__ import annotations

from typing import Any


def response_text(domain: dict[str, Any], name: str, language: str) -> str | None:
    """The text of response ``name`` in ``language`` (the Vietnamese default otherwise)."""
    variations = (domain.get("responses") or {}).get(name) or []
    default = None
    for variation in variations:
        conditions = variation.get("condition") or []
        if not conditions:
            default = default or variation.get("text")
        elif any(c.get("name") == "language" and c.get("value") == language for c in conditions):
            return variation.get("text")
    return default
