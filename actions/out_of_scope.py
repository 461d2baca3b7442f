"""Neighbouring services (land, tax, traffic fines, visas, ...): a question about one is out of
scope, but the citizen should learn where to go. The NLU tags the service as `other_service`
(values in docs/CONTRACT.md and config.yml's EntityValueFilter); each value has a reply in
bot/domain/out_of_scope.yml, which the communications team edits. The FAQ action
(actions/faq.py) asks this module once no published entry answers.

DIET tags the service in about two thirds of the out-of-scope questions it recognises
(tests/nlu/dev5, docs/NLU_RESULTS.md); when it tagged none, the message is searched for the
phrases of the NLU's own lookup table (nlu/lookups/other_service.yml, the specific phrases
only, as typed), so the reply does not depend on the tagger alone."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import yaml
from rasa_sdk import Tracker

from actions.common import latest_entity_values

ENTITY = "other_service"
LOOKUP = Path(__file__).resolve().parent.parent / "nlu" / "lookups" / "other_service.yml"
# Written out (not built from the value) so `git grep` and the console's "where used" find them;
# tests/actions/test_out_of_scope.py checks this table against the config, contract and domain.
RESPONSES: dict[str, str] = {
    "land": "utter_out_of_scope_land",
    "tax": "utter_out_of_scope_tax",
    "traffic_fine": "utter_out_of_scope_traffic_fine",
    "visa_foreigner": "utter_out_of_scope_visa_foreigner",
    "school": "utter_out_of_scope_school",
    "university": "utter_out_of_scope_university",
    "bank": "utter_out_of_scope_bank",
    "insurance_private": "utter_out_of_scope_insurance_private",
    "social_insurance": "utter_out_of_scope_social_insurance",
    "utilities": "utter_out_of_scope_utilities",
    "vehicle_registration": "utter_out_of_scope_vehicle_registration",
    "construction": "utter_out_of_scope_construction",
    "company": "utter_out_of_scope_company",
    "court_police": "utter_out_of_scope_court_police",
}


def _examples(item: dict[str, object]) -> list[str]:
    lines = str(item.get("examples") or "").splitlines()
    return [line.strip()[2:].strip() for line in lines if line.strip().startswith("- ")]


@functools.lru_cache(maxsize=1)
def phrases() -> tuple[tuple[re.Pattern[str], int, str], ...]:
    """(pattern, length, value) for each phrase of the lookup, with the value its synonym
    names; read once, on first use."""
    items = yaml.safe_load(LOOKUP.read_text(encoding="utf-8"))["nlu"]
    value_of = {
        spelling.lower(): str(item["synonym"])
        for item in items
        if "synonym" in item
        for spelling in _examples(item)
    }
    found: dict[str, str] = {}
    for item in items:
        if item.get("lookup") == ENTITY:
            for spelling in _examples(item):
                value = value_of.get(spelling.lower())
                if value in RESPONSES:
                    found[spelling.lower()] = value
    return tuple(
        (re.compile(rf"(?<!\w){re.escape(phrase)}(?!\w)"), len(phrase), value)
        for phrase, value in found.items()
    )


def named_in(text: str) -> str | None:
    """The service whose longest phrase the text holds (the earliest of equally long ones)."""
    lowered = text.lower()
    best: tuple[int, int, str] | None = None  # (-length, start, value)
    for pattern, length, value in phrases():
        match = pattern.search(lowered)
        if match and (best is None or (-length, match.start()) < best[:2]):
            best = (-length, match.start(), value)
    return best[2] if best else None


def where_to_go(tracker: Tracker) -> str | None:
    """The reply for the neighbouring service the latest message names, if any: the NLU's
    entity first, else a lookup phrase in the typed text."""
    for value in latest_entity_values(tracker, ENTITY):
        if value in RESPONSES:
            return RESPONSES[value]
    text = str(tracker.latest_message.get("text") or "")
    named = named_in(text) if not text.startswith("/") else None
    return RESPONSES[named] if named else None
