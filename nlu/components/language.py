"""Language detection: puts `language` ("vi"/"en") in the parse result when the text says which.

The `language` slot's custom mapping `action_detect_language`, answered inside Rasa
(bot/language_slot.py), copies it to the slot, so replies follow the citizen; when the text does
not tell (a code, "ok"), nothing changes.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.components.text import guess_language

MAX_CHARACTERS = 2000  # the start of a pasted essay says its language as well as the whole


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class LanguageDetector(GraphComponent):
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
    ) -> LanguageDetector:
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = (message.get(TEXT) or "")[:MAX_CHARACTERS]
            message.set("language", guess_language(text), add_to_output=True)
        return messages
