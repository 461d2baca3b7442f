"""What the assistant may keep of a conversation: one place for the redaction rules.

Used by the tracker store (bot/tracker_store.py) before anything is written, so the SQLite file
on a laptop and PostgreSQL in scaled mode hold the same redacted events. See docs/PRIVACY.md.
"""

from __future__ import annotations

from typing import Any

from bot.logmask import mask_pii

# Replies that show what only the verified owner may see (names, dossier details). Their text is
# not kept: the event keeps the response name, so a transcript says what was shown, not what.
# tests/bot/test_privacy.py checks this list against what the status actions really utter.
PERSONAL_RESPONSES = frozenset(
    {
        "utter_identity_verified",
        "utter_dossier_detail",
        "utter_dossier_missing_documents",
        "utter_dossier_refusal_reason",
        "utter_dossier_pickup",
        "utter_dossier_next_step",
    }
)
# Rasa keeps the values an action filled into a reply in the bot event's metadata: for personal
# replies only these keys stay.
KEPT_METADATA = ("utter_action", "model_id", "assistant_id")
MAX_KEPT_TEXT = 2000  # a message longer than this is kept cut short
WITHHELD = "[{response}: shown to the verified citizen, not kept]"
CUT = " …[cut]"


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        masked = mask_pii(value)
        return masked if len(masked) <= MAX_KEPT_TEXT else masked[:MAX_KEPT_TEXT] + CUT
    if isinstance(value, list):
        return [_redact_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    return value


def redact_event(data: dict[str, Any]) -> dict[str, Any]:
    """A serialised Rasa event as it may be stored: ID numbers, phones and codes masked in every
    text, entity and slot value; personal replies withheld; very long texts cut."""
    redacted: dict[str, Any] = _redact_value(data)
    if data.get("event") == "bot":
        response = (data.get("metadata") or {}).get("utter_action")
        if response in PERSONAL_RESPONSES:
            redacted["text"] = WITHHELD.format(response=response)
            metadata = redacted.get("metadata") or {}
            redacted["metadata"] = {k: metadata[k] for k in KEPT_METADATA if k in metadata}
    return redacted
