"""Messages with nothing to understand (empty, only emoji or punctuation), far too long, or
offering a password get their own intents, so the dialogue answers them instead of guessing."""

from __future__ import annotations

import difflib
import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.components.text import fold, letter_words

_HAS_CONTENT = re.compile(r"[^\W_]", re.UNICODE)
# "mật khẩu vneid của tôi là Abc123", "pass: ...": a secret offered to the bot.
_OFFERED_PASSWORD = re.compile(
    r"\b(mat khau|mk|password|pass)( vneid)?( cua (toi|minh|em|anh|chi|tao))?"
    r"( moi)?\s*(\bla\b|\bis\b|:|=)\s*(?=\S*[\d@#$%^&*!])\S{4,}"
)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class InputGuard(GraphComponent):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"max_characters": 1500}

    def __init__(self, config: dict[str, Any]) -> None:
        self._max = int(config.get("max_characters", 1500))

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> InputGuard:
        return cls(config)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            if text.startswith("/"):
                continue  # a button payload, already parsed
            if not _HAS_CONTENT.search(text):
                _override(message, "empty_message")
            elif len(text) > self._max:
                _override(message, "message_too_long")
            elif _OFFERED_PASSWORD.search(fold(text)):
                _override(message, "offer_password")
        return messages


def _override(message: Message, intent: str) -> None:
    """``intent`` for certain, nothing else ranked, no entities."""
    message.set(INTENT, {"name": intent, "confidence": 1.0}, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [{"name": intent, "confidence": 1.0}], add_to_output=True)
    message.set(ENTITIES, [], add_to_output=True)


_REPEATS = re.compile(r"(\w)\1{2,}")  # "alooo", "hiiii", "okkk": drawn-out words
FUZZY_MIN_LENGTH = 4  # shorter words are too easy to match by accident
FUZZY_CUTOFF = 0.8
WORDS_CHECKED = 8  # enough to find one known word in a real message
FOLDED_CHARACTERS = 2000  # only the start of a long text is folded (the input guard sees it all)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class UnknownWordsGuard(GraphComponent):
    """Keyboard mashing ("asdkjh qwe", "lalala") has no word the assistant has ever seen, yet a
    classifier still picks some intent with high confidence. This component learns the folded
    words of the training data and turns a message with none of them, not even by close
    spelling, and no entity into `nlu_fallback`, so the dialogue asks the citizen to rephrase."""

    def __init__(
        self, model_storage: ModelStorage, resource: Resource, vocabulary: frozenset[str]
    ) -> None:
        self._storage = model_storage
        self._resource = resource
        self._set_vocabulary(vocabulary)

    def _set_vocabulary(self, vocabulary: frozenset[str]) -> None:
        self._vocabulary = vocabulary
        self._long_words = sorted(w for w in vocabulary if len(w) >= FUZZY_MIN_LENGTH - 1)

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
    ) -> UnknownWordsGuard:
        return cls(model_storage, resource, frozenset())

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> UnknownWordsGuard:
        try:
            with model_storage.read_from(resource) as path:
                words = (path / "vocabulary.txt").read_text(encoding="utf-8").split()
        except (ValueError, FileNotFoundError):
            words = []
        return cls(model_storage, resource, frozenset(words))

    def train(self, training_data: TrainingData) -> Resource:
        words: set[str] = set()
        for example in training_data.training_examples:
            words.update(_words(example.get(TEXT) or ""))
        for table in training_data.lookup_tables:
            for element in table.get("elements") or []:
                words.update(_words(str(element)))
        for synonym in training_data.entity_synonyms:
            words.update(_words(synonym))
        self._set_vocabulary(frozenset(words))
        with self._storage.write_to(self._resource) as path:
            (path / "vocabulary.txt").write_text("\n".join(sorted(words)), encoding="utf-8")
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        if not self._vocabulary:
            return messages
        for message in messages:
            text = message.get(TEXT) or ""
            if text.startswith("/") or message.get(ENTITIES):
                continue
            words = _words(text[:FOLDED_CHARACTERS])
            if words and not self.knows_any(words):
                _override(message, "nlu_fallback")  # it has no entities to drop
        return messages

    def knows_any(self, words: list[str]) -> bool:
        """True when one of ``words`` (folded) is in the vocabulary, drawn out or misspelt."""
        checked = words[:WORDS_CHECKED]
        squeezed = [_REPEATS.sub(r"\1", w) for w in checked]
        candidates = checked + [w for w in squeezed if len(w) > 1]  # "kkkkk" is not "k"
        if any(w in self._vocabulary for w in candidates):
            return True
        return any(
            difflib.get_close_matches(w, self._long_words, n=1, cutoff=FUZZY_CUTOFF)
            for w in checked
            if len(w) >= FUZZY_MIN_LENGTH
        )


def _words(text: str) -> list[str]:
    return letter_words(fold(text))
