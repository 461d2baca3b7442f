"""Replies follow the citizen's language: the NLU pipeline detects it, this keeps the slot."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import LANGUAGES, intent_name, language, latest_entity_values


class ActionDetectLanguage(Action):
    """Custom slot mapping of `language`: run by Rasa after every user message."""

    def name(self) -> str:
        return "action_detect_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if intent_name(tracker) == "switch_language":
            return []
        detected = tracker.latest_message.get("language")
        if detected in LANGUAGES and detected != tracker.get_slot("language"):
            return [SlotSet("language", detected)]
        return []


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
