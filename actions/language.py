"""Replies follow the citizen's language: the NLU pipeline detects it and Rasa copies it to the
`language` slot (bot/language_slot.py); here the citizen switches it on purpose."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import LANGUAGES, language, latest_entity_values


class ActionSwitchLanguage(Action):
    """`/lang en`, "nói tiếng Việt", "in English please": set or toggle the language."""

    def name(self) -> str:
        return "action_switch_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        requested = [v for v in latest_entity_values(tracker, "language") if v in LANGUAGES]
        if requested:
            new = requested[-1]
        else:
            new = "en" if language(tracker) == "vi" else "vi"
        # The confirmation is uttered by the rule that follows, so it is already in `new`.
        return [SlotSet("language", new)]
