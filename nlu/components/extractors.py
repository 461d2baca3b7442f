"""Entities whose values must be valid, found by validating patterns rather than memorised:
dossier codes, 12-digit ID numbers (structure checked), phone numbers, one-time codes."""

from __future__ import annotations

import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.components.patterns import (
    CMND_CANDIDATE,
    DOSSIER_CODE,
    ID_NUMBER_CANDIDATE,
    OTP_CANDIDATE,
    PHONE_CANDIDATE,
    digits_only,
    is_valid_id_number,
    is_valid_phone,
    normalise_dossier_code,
)
from nlu.components.text import fold

PATTERN_ENTITIES = ("dossier_code", "id_number", "phone_number", "otp")
OTP_INTENTS = frozenset({"inform", "resend_code"})
# "speak English", "nói tiếng Việt": the language asked for, when the citizen asks to switch.
LANGUAGE_NAMES = re.compile(
    r"\b(?P<en>english|tieng anh|anh ngu)\b|\b(?P<vi>vietnamese|tieng viet|viet ngu)\b"
)


OTP_CONTEXT = re.compile(r"\b(ma|code|otp|xac thuc|verif\w*|sms|pin)\b")
CURRENCY_AFTER = re.compile(r"\s*(d|đ|vnd|dong|đồng|k|nghin|nghìn|ngan|ngàn)\b", re.IGNORECASE)


# "987654321 cộng 5", "what is 458812345 times 12": a number in a sum is no one's ID number.
# Both sides must be numbers: "cá nhân 0802..." (personal) is no multiplication.
_OPERATOR = r"([-+*/x×=]|cong|tru|nhan|chia|times|plus|minus|divided by|multiplied by)"
_SUM_AFTER = re.compile(rf"\s*{_OPERATOR}\s*\d")
_SUM_BEFORE = re.compile(rf"\d\s*{_OPERATOR}\s*$")


def _in_sum(text: str, start: int, end: int) -> bool:
    return bool(
        _SUM_AFTER.match(fold(text[end : end + 20])) or _SUM_BEFORE.search(fold(text[:start]))
    )


def find_pattern_entities(text: str, otp_expected: bool = True) -> list[dict[str, Any]]:
    """Valid codes and numbers in ``text``; earlier kinds win where spans overlap.

    A bare 6-digit number is a one-time code only where one is expected (an answer to the bot's
    question, or a message that talks about a code) and it is not an amount of money.
    """
    found: list[dict[str, Any]] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    def add(entity: str, start: int, end: int, value: str) -> None:
        taken.append((start, end))
        found.append({"entity": entity, "start": start, "end": end, "value": value})

    for m in DOSSIER_CODE.finditer(text):
        code = normalise_dossier_code(m.group(1))
        if code:
            add("dossier_code", m.start(1), m.end(1), code)
    for m in ID_NUMBER_CANDIDATE.finditer(text):
        if (
            free(m.start(1), m.end(1))
            and is_valid_id_number(m.group(1))
            and not _in_sum(text, m.start(1), m.end(1))
        ):
            add("id_number", m.start(1), m.end(1), digits_only(m.group(1)))
    for m in CMND_CANDIDATE.finditer(text):
        if free(m.start(1), m.end(1)) and not _in_sum(text, m.start(1), m.end(1)):
            add("id_number", m.start(1), m.end(1), m.group(1))
    for m in PHONE_CANDIDATE.finditer(text):
        if free(m.start(1), m.end(1)) and is_valid_phone(m.group(1)):
            add("phone_number", m.start(1), m.end(1), m.group(1))
    if not (otp_expected or OTP_CONTEXT.search(fold(text))):
        return sorted(found, key=lambda e: e["start"])
    for m in OTP_CANDIDATE.finditer(text):
        if free(m.start(1), m.end(1)) and not CURRENCY_AFTER.match(text, m.end(1)):
            add("otp", m.start(1), m.end(1), m.group(1))
    return sorted(found, key=lambda e: e["start"])


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class PatternEntityExtractor(GraphComponent):
    """Authoritative for the pattern entities: replaces what a statistical extractor guessed."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> PatternEntityExtractor:
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            kept = [e for e in message.get(ENTITIES, []) if e.get("entity") not in PATTERN_ENTITIES]
            intent = (message.get(INTENT) or {}).get("name")
            extracted = [
                {**e, "confidence_entity": 1.0, "extractor": self.__class__.__name__}
                for e in find_pattern_entities(text, otp_expected=intent in OTP_INTENTS)
            ]
            if intent == "switch_language" and not any(e.get("entity") == "language" for e in kept):
                extracted += self._requested_language(text)
            message.set(ENTITIES, kept + extracted, add_to_output=True)
        return messages

    def _requested_language(self, text: str) -> list[dict[str, Any]]:
        match = LANGUAGE_NAMES.search(fold(text))
        if not match or len(fold(text)) != len(text):
            return []
        value = "en" if match.group("en") else "vi"
        start, end = match.span(value)
        return [
            {
                "entity": "language",
                "start": start,
                "end": end,
                "value": value,
                "confidence_entity": 1.0,
                "extractor": self.__class__.__name__,
            }
        ]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class EntityValueFilter(GraphComponent):
    """Drops entities whose (synonym-mapped) value is not one of the contract's ids, and entities
    that only mean something with some intents (a procedure's case outside procedure questions).

    A statistical extractor sometimes tags a fragment ("lại" of "làm lại") as a procedure or a
    case; a value that names nothing would send the dialogue after a procedure that does not
    exist, so only known values pass.
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"allowed_values": {}, "only_with_intents": {}}

    def __init__(self, config: dict[str, Any]) -> None:
        self._allowed = {
            entity: frozenset(values) for entity, values in config["allowed_values"].items()
        }
        self._intents = {
            entity: frozenset(intents)
            for entity, intents in (config.get("only_with_intents") or {}).items()
        }

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> EntityValueFilter:
        return cls(config)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            entities = message.get(ENTITIES, [])
            intent = (message.get(INTENT) or {}).get("name")
            kept = [
                e
                for e in entities
                if (
                    e.get("entity") not in self._allowed
                    or e.get("value") in self._allowed[e["entity"]]
                )
                and (e.get("entity") not in self._intents or intent in self._intents[e["entity"]])
            ]
            if len(kept) != len(entities):
                message.set(ENTITIES, kept, add_to_output=True)
        return messages
