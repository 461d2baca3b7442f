"""Messages with nothing to understand (empty, only emoji or punctuation), far too long, or
offering a password get their own intents, so the dialogue answers them instead of guessing."""

from __future__ import annotations

import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.components.text import fold

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
                self._override(message, "empty_message")
            elif len(text) > self._max:
                self._override(message, "message_too_long")
            elif _OFFERED_PASSWORD.search(fold(text)):
                self._override(message, "offer_password")
        return messages

    @staticmethod
    def _override(message: Message, intent: str) -> None:
        message.set(INTENT, {"name": intent, "confidence": 1.0}, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [{"name": intent, "confidence": 1.0}], add_to_output=True)
        message.set(ENTITIES, [], add_to_output=True)
