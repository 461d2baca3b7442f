"""Entity values as the dialogue needs them, whatever the spelling.

A statistical extractor returns the text it tagged; Rasa's synonym mapper only maps exact strings
seen in training, so "hộ chiêu", "lí lịch tư pháp" or "ho chieu" stay raw text. This component
learns, from the annotated training examples, which accent-folded phrases name which value and
maps what the extractor tagged to that value (exactly, else by close spelling). Where the
extractor tagged no procedure at all, it looks for a known procedure phrase in the message.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections import Counter, defaultdict
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.components.text import fold

MIN_SCAN_LENGTH = 4  # shorter phrases ("hc", "cc") are too ambiguous to find on their own
EXACT = "exact:"  # table of phrases as typed (lower case, diacritics kept)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class EntityNormaliser(GraphComponent):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "entities": ["procedure", "variant", "province"],
            "scan": ["procedure", "province"],
            # "from Hà Nội to Lào Cai": every province named, also next to one the extractor found
            "scan_all": ["province"],
            "fuzzy_cutoff": 0.85,
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        table: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self._table: dict[str, dict[str, str]] = table or {}
        self._scan_patterns: dict[str, list[tuple[re.Pattern[str], str]]] = {}
        self._values: dict[str, frozenset[str]] = {}
        self._compile()

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> EntityNormaliser:
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> EntityNormaliser:
        try:
            with model_storage.read_from(resource) as path:
                table = json.loads((path / "table.json").read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            table = {}
        return cls(config, model_storage, resource, table)

    def train(self, training_data: TrainingData) -> Resource:
        votes: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        for example in training_data.training_examples:
            text = example.get(TEXT) or ""
            for entity in example.get(ENTITIES) or []:
                kind = entity.get("entity")
                if kind not in self._config["entities"] or "start" not in entity:
                    continue
                surface = text[entity["start"] : entity["end"]]
                value = str(entity.get("value") or surface)
                votes[kind][_key(surface)][value] += 1
                votes[EXACT + kind][_exact(surface)][value] += 1
        self._table = {
            kind: {phrase: counts.most_common(1)[0][0] for phrase, counts in phrases.items()}
            for kind, phrases in votes.items()
        }
        for kind, names in _lookup_names(training_data, self._config["entities"]).items():
            table = self._table.setdefault(kind, {})
            for phrase, value in names.items():
                table.setdefault(phrase, value)  # annotated examples win over the lookup table
        self._compile()
        with self._storage.write_to(self._resource) as path:
            (path / "table.json").write_text(
                json.dumps(self._table, ensure_ascii=False), encoding="utf-8"
            )
        return self._resource

    def _compile(self) -> None:
        self._values = {kind: frozenset(table.values()) for kind, table in self._table.items()}
        self._scan_patterns = {}
        for kind in self._config["scan"]:
            phrases = sorted(
                (p for p in self._table.get(kind, {}) if len(p) >= MIN_SCAN_LENGTH),
                key=len,
                reverse=True,
            )
            self._scan_patterns[kind] = [
                (re.compile(rf"(?<!\w){re.escape(p)}(?!\w)"), self._table[kind][p]) for p in phrases
            ]

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = unicodedata.normalize("NFC", message.get(TEXT) or "")
            entities = [self._normalise(e) for e in message.get(ENTITIES, [])]
            # A fragment ("hà" of "hà nội") whose value names nothing known is dropped; the scan
            # below may then find the whole phrase.
            entities = [e for e in entities if self._known(e)]
            entities = [e for e in entities if not _is_number_reference(e, text, entities)]
            for kind in self._config["scan"]:
                every = kind in self._config["scan_all"]
                if every or not any(e.get("entity") == kind for e in entities):
                    entities.extend(self._scan(kind, text, entities, every))
            message.set(ENTITIES, entities, add_to_output=True)
        return messages

    def _known(self, entity: dict[str, Any]) -> bool:
        kind = str(entity.get("entity"))
        return kind not in self._table or entity.get("value") in self._values[kind]

    def _normalise(self, entity: dict[str, Any]) -> dict[str, Any]:
        kind = entity.get("entity")
        table = self._table.get(str(kind))
        if not table:
            return entity
        if entity.get("value") in self._values[str(kind)]:
            return entity
        raw = str(entity.get("value") or "")
        if _accented(raw):
            # Typed with diacritics: "muốn" (want) must not meet "muộn" (late) once folded.
            table = self._table.get(EXACT + str(kind)) or table
            key = _exact(raw)
        else:
            key = _key(raw)
        value = table.get(key)
        if value is None:
            close = difflib.get_close_matches(
                key, table.keys(), n=1, cutoff=self._config["fuzzy_cutoff"]
            )
            value = table[close[0]] if close else None
        return {**entity, "value": value} if value else entity

    def _scan(
        self, kind: str, text: str, entities: list[dict[str, Any]], every: bool = False
    ) -> list[dict[str, Any]]:
        folded = fold(text)
        if len(folded) != len(text):
            return []
        taken = [(e.get("start", -1), e.get("end", -1)) for e in entities]
        found_all: list[dict[str, Any]] = []
        for pattern, value in self._scan_patterns.get(kind, []):
            for match in pattern.finditer(folded):
                start, end = match.span()
                found = {
                    "entity": kind,
                    "start": start,
                    "end": end,
                    "value": value,
                    "confidence_entity": 1.0,
                    "extractor": self.__class__.__name__,
                }
                free = all(end <= s or start >= e for s, e in taken)
                if free and not _is_number_reference(found, text, entities):
                    if not every:
                        return [found]
                    found_all.append(found)
                    taken.append((start, end))
        return sorted(found_all, key=lambda e: e["start"])


def _lookup_names(training_data: TrainingData, kinds: list[str]) -> dict[str, dict[str, str]]:
    """Folded phrase -> value from lookup tables ("lao cai" -> "Lào Cai"), so a province the
    extractor missed in a long sentence is still found. Only names the table lists with and
    without diacritics ("Lào Cai", "Lao Cai") count, the one with diacritics being the value;
    a lone alias ("Danang", "HCMC") does not say which unit it names."""
    names: dict[str, dict[str, str]] = {}
    for table in training_data.lookup_tables:
        kind = table.get("name")
        if kind not in kinds or not isinstance(table.get("elements"), list):
            continue
        spellings: dict[str, list[str]] = defaultdict(list)
        for element in map(str, table["elements"]):
            spellings[_key(element)].append(element.strip())
        for key, group in spellings.items():
            accented = [e for e in group if _accented(e)]
            if accented and len(group) > len(accented):
                names.setdefault(kind, {})[key] = accented[0]
    return names


def _accented(text: str) -> bool:
    return fold(text) != text.lower()


def _key(text: str) -> str:
    return " ".join(fold(text).split())


def _exact(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).lower().split())


def _is_number_reference(entity: dict[str, Any], text: str, entities: list[dict[str, Any]]) -> bool:
    """ "số cccd 0790...", "cccd: 0790...", "cmnd của em là 2723..." name the citizen's number,
    not the identity card procedure."""
    if entity.get("entity") != "procedure" or "start" not in entity:
        return False
    numbers = [e for e in entities if e.get("entity") == "id_number" and "start" in e]
    if not numbers:
        return False
    before = fold(text[: entity["start"]]).split()
    if before and before[-1] in ("so", "number"):
        return True
    return any(
        0 <= e["start"] - entity["end"] <= 30
        and not NUMBER_GAP_STOP.search(fold(text[entity["end"] : e["start"]]))
        for e in numbers
    )


# Words that show the citizen asks about the procedure rather than giving their number.
NUMBER_GAP_STOP = re.compile(r"[?]|\b(lam|cap|doi|mat|het|bao|nop|phi|can|o dau)\b")
