"""Content rules a communications team relies on: every reply exists in Vietnamese and English,
and every reply is reachable (used by a rule, a story, a form or an action)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_responses() -> dict[str, list[dict]]:
    responses: dict[str, list[dict]] = {}
    for path in sorted((ROOT / "bot" / "domain").glob("*.yml")):
        responses.update(
            (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("responses", {})
        )
    return responses


def is_english(variation: dict) -> bool:
    return any(
        c.get("name") == "language" and c.get("value") == "en"
        for c in variation.get("condition", [])
    )


def test_every_reply_has_vietnamese_default_and_english_variation() -> None:
    for name, variations in load_responses().items():
        defaults = [v for v in variations if not v.get("condition")]
        english = [v for v in variations if is_english(v)]
        assert defaults and english, f"{name} needs a Vietnamese default and an English variation"
        for vi, en in zip(defaults, english, strict=False):
            assert set(re.findall(r"{(\w+)}", vi["text"])) == set(
                re.findall(r"{(\w+)}", en["text"])
            ), f"{name}: both languages must use the same variables"
            assert len(vi.get("buttons") or []) == len(en.get("buttons") or []), name


def test_every_reply_is_used() -> None:
    used_text = "\n".join(
        p.read_text(encoding="utf-8")
        for folder in ("stories", "actions", "tests/conversations")
        for p in (ROOT / folder).rglob("*")
        if p.suffix in (".yml", ".py")
    )
    # Rasa itself utters the apology when the action server is down (bot/rasa_server.py).
    used_text += (ROOT / "bot" / "rasa_server.py").read_text(encoding="utf-8")
    # The console tells the citizen an agent joined (console/desk_assist.py's JOINED).
    used_text += (ROOT / "console" / "desk_assist.py").read_text(encoding="utf-8")
    forms = set()
    for path in (ROOT / "bot" / "domain").glob("*.yml"):
        for form, spec in ((yaml.safe_load(path.read_text()) or {}).get("forms") or {}).items():
            forms.update(f"utter_ask_{slot}" for slot in spec.get("required_slots", []))
    unused = [name for name in load_responses() if name not in used_text and name not in forms]
    assert unused == []
