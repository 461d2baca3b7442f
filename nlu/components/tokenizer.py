"""A Vietnamese-aware tokenizer: whitespace (or pyvi word segmentation) with folded lemmas.

Token text and offsets stay as typed (entities keep their spans); the lemma is accent-folded with
abbreviations expanded, so featurizers that read lemmas see "can cuoc" for "căn cước", "can cuoc"
and "cccd" alike. Very long messages are cut before anything else (to ``max_characters``, then
``max_tokens``) so a pasted essay cannot stall NLU; the input guard still sees the whole text and
answers it as too long.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message

from nlu.components.text import normalise_token


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class VietnameseTokenizer(WhitespaceTokenizer):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **WhitespaceTokenizer.get_default_config(),
            "segmenter": "whitespace",  # or "pyvi": join Vietnamese compound words
            "max_tokens": 200,
            "max_characters": 2000,
        }

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._segmenter = self._config.get("segmenter", "whitespace")
        self._max_tokens = int(self._config.get("max_tokens", 200))
        self._max_characters = int(self._config.get("max_characters", 2000))
        self._pyvi: Any = None

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> VietnameseTokenizer:
        return cls(config)

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        text = message.get(attribute)
        if isinstance(text, str) and len(text) > self._max_characters:
            message = Message({attribute: text[: self._max_characters]})  # offsets still hold
        tokens = super().tokenize(message, attribute)[: self._max_tokens]
        if self._segmenter == "pyvi" and attribute == "text":
            tokens = self._join_compounds(tokens)
        for token in tokens:
            token.lemma = " ".join(normalise_token(part) for part in token.text.split())
        return tokens

    def _join_compounds(self, tokens: list[Token]) -> list[Token]:
        """Merge tokens that pyvi segments as one word ("căn cước" -> one token)."""
        if not tokens:
            return tokens
        if self._pyvi is None:
            from pyvi import ViTokenizer  # loaded on first use, not at import time

            self._pyvi = ViTokenizer
        segmented = self._pyvi.tokenize(" ".join(t.text for t in tokens)).split()
        merged: list[Token] = []
        i = 0
        for word in segmented:
            parts = word.split("_")
            # pyvi may split punctuation differently: fall back to one token at a time
            if [t.text for t in tokens[i : i + len(parts)]] != parts:
                parts = [tokens[i].text] if i < len(tokens) else []
            if not parts:
                break
            group = tokens[i : i + len(parts)]
            merged.append(Token(" ".join(parts), group[0].start, group[-1].end))
            i += len(parts)
        merged.extend(tokens[i:])
        return merged
