"""When the bot is not sure: offer the two or three likeliest topics as buttons; if the citizen is
still not understood on the next try, hand the conversation to a person (actions/handoff.py),
or, with the handoff queue unreachable, admit it and point to the hotline and the portal."""

from __future__ import annotations

import json
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import language
from actions.content import response_text
from actions.handoff import hand_off

# Topics worth offering, with the response that holds each button's title.
TITLE_OF_INTENT = {
    "ask_requirements": "utter_title_ask_requirements",
    "ask_fee": "utter_title_ask_fee",
    "ask_processing_time": "utter_title_ask_processing_time",
    "ask_where_to_submit": "utter_title_ask_where_to_submit",
    "ask_online": "utter_title_ask_online",
    "ask_who_can_file": "utter_title_ask_who_can_file",
    "check_status": "utter_title_check_status",
    "vneid_cannot_login": "utter_title_vneid_cannot_login",
    "vneid_forgot_password": "utter_title_vneid_forgot_password",
    "vneid_change_phone": "utter_title_vneid_change_phone",
    "report_scam": "utter_title_report_scam",
    "request_human": "utter_title_request_human",
}
MIN_CONFIDENCE = 0.08
MAX_OPTIONS = 3


def previous_user_intent(tracker: Tracker) -> str | None:
    users = [e for e in tracker.events if e.get("event") == "user"]
    if len(users) < 2:
        return None
    return ((users[-2].get("parse_data") or {}).get("intent") or {}).get("name")


class ActionClarify(Action):
    def name(self) -> str:
        return "action_clarify"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if previous_user_intent(tracker) == "nlu_fallback":
            return await hand_off(
                dispatcher, tracker, domain, "fallbacks", console_down="utter_cannot_help"
            )
        lang = language(tracker)
        entities = {
            e["entity"]: e["value"]
            for e in tracker.latest_message.get("entities", [])
            if e.get("entity") == "procedure" and e.get("value")
        }
        suffix = json.dumps(entities, ensure_ascii=False) if entities else ""
        buttons = []
        for ranked in tracker.latest_message.get("intent_ranking") or []:
            intent = ranked.get("name")
            title_response = TITLE_OF_INTENT.get(str(intent))
            if not title_response or float(ranked.get("confidence") or 0) < MIN_CONFIDENCE:
                continue
            title = response_text(domain, title_response, lang)
            if title:
                buttons.append({"title": title, "payload": f"/{intent}{suffix}"})
            if len(buttons) == MAX_OPTIONS:
                break
        if len(buttons) >= 2:
            dispatcher.utter_message(response="utter_clarify", buttons=buttons)
        else:
            dispatcher.utter_message(response="utter_default")
        return []
