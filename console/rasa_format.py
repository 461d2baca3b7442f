"""Rasa's response format, in one place: reading `bot/domain/*.yml`, turning the store's content
into Rasa response variations and back, and rendering a response as Rasa's templated generator
does (it is used for that: slot and argument interpolation, language condition, channel choice).

The store's content of one version, per language (`vi` is the domain's default variation, `en`
its variation with the `language: en` slot condition)::

    {"vi": {"text": "...", "buttons": [{"title": "...", "payload": "/intent"}],
            "channels": {"facebook": {"text": "...", "buttons": [...]}}},
     "en": {...}}

Other keys of a variation (image, custom, attachment, elements, quick_replies) are kept as they
are. Variants for a channel always carry their language condition, so that an English citizen on
Messenger never gets the Vietnamese Messenger variant (Rasa prefers a channel match without a
condition over a matching condition without a channel).
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger("console.rasa_format")

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
LANGUAGE_SLOT = "language"
# Keys of a variation that are what the citizen sees (Rasa's templated generator fills these).
MESSAGE_KEYS = ("text", "buttons", "image", "custom", "attachment", "elements", "quick_replies")
# Rasa's interpolator (rasa/core/nlg/interpolator.py) fills "{name}" where name has no newline
# and no brace.
PLACEHOLDER = re.compile(r"{([^\n{}]+?)}")

Message = dict[str, Any]
Content = dict[str, Any]
Variations = list[dict[str, Any]]


def placeholders(text: str | None) -> set[str]:
    return set(PLACEHOLDER.findall(text or ""))


@dataclass
class DomainResponse:
    name: str
    file: str  # the domain file it comes from, e.g. core.yml
    variations: Variations
    content: Content | None  # None: conditions the store does not model (served from the domain)


def _language_of(variation: dict[str, Any]) -> str | None:
    """The variation's language, or None if it has conditions other than the language slot."""
    language = DEFAULT_LANGUAGE
    for condition in variation.get("condition") or []:
        if condition.get("type") != "slot" or condition.get("name") != LANGUAGE_SLOT:
            return None
        language = str(condition.get("value"))
    return language if language in LANGUAGES else None


def _message(variation: dict[str, Any]) -> Message:
    message = {k: copy.deepcopy(v) for k, v in variation.items() if k in MESSAGE_KEYS}
    message.setdefault("text", "")
    message["buttons"] = list(message.get("buttons") or [])
    return message


def content_from_variations(variations: Variations) -> Content | None:
    """The store's content for a domain response; None when it cannot be modelled (several
    random variations for one language and channel, or conditions on other slots)."""
    content: Content = {}
    for variation in variations:
        language = _language_of(variation)
        if language is None:
            return None
        entry = content.setdefault(language, {"channels": {}})
        channel = variation.get("channel")
        if channel:
            if channel in entry["channels"]:
                return None
            entry["channels"][channel] = _message(variation)
        else:
            if "text" in entry:
                return None
            entry.update(_message(variation))
    if any("text" not in entry for entry in content.values()):
        return None
    return content


def variations_from_content(content: Content) -> Variations:
    """Rasa response variations for the store's content (the inverse of the above)."""
    found: Variations = []
    for language in LANGUAGES:
        entry = content.get(language)
        if not entry:
            continue
        condition = [{"type": "slot", "name": LANGUAGE_SLOT, "value": language}]
        default = {k: copy.deepcopy(v) for k, v in entry.items() if k in MESSAGE_KEYS}
        if language != DEFAULT_LANGUAGE:
            default["condition"] = condition
        found.append(default)
        for channel, message in sorted((entry.get("channels") or {}).items()):
            variant = {k: copy.deepcopy(v) for k, v in message.items() if k in MESSAGE_KEYS}
            found.append({**variant, "channel": channel, "condition": condition})
    return found


def read_domain(domain_dir: Path) -> dict[str, DomainResponse]:
    """Every response of a domain directory (as Rasa merges it: one file per feature)."""
    found: dict[str, DomainResponse] = {}
    for path in sorted(Path(domain_dir).glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for name, variations in (data.get("responses") or {}).items():
            variations = list(variations or [])
            content = content_from_variations(variations)
            if content is None:
                logger.warning("%s: %s is served from the domain only (not editable)", path, name)
            found[name] = DomainResponse(name, path.name, variations, content)
    return found


def render(
    variations: Variations, name: str, slots: dict[str, Any], channel: str, arguments: dict
) -> Message | None:
    """The response as Rasa's templated generator makes it for these slots and channel."""
    from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator

    generator = TemplatedNaturalLanguageGenerator({name: variations})
    return generator.generate_from_slots(name, slots, channel, **arguments)


def nlg_reply(message: Message) -> dict[str, Any]:
    """An NLG endpoint's answer (rasa/core/nlg/callback.py's `nlg_response_format_spec`)."""
    reply: dict[str, Any] = {
        "text": message.get("text"),
        "buttons": list(message.get("buttons") or []),
        "image": message.get("image"),
        "elements": list(message.get("elements") or []),
        "attachment": message.get("attachment"),
    }
    for optional in ("custom", "quick_replies"):  # `custom` must be an object when present
        if message.get(optional):
            reply[optional] = message[optional]
    return reply


def read_slot_names(domain_dir: Path) -> set[str]:
    """The domain's slots: what a reply's {placeholders} may name besides its arguments."""
    names: set[str] = set()
    for path in sorted(Path(domain_dir).glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        names.update((data.get("slots") or {}).keys())
    return names
