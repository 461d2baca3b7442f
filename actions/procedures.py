"""Answers about a procedure (documents, fee, time, place, online, who may file) from the portal."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.clients import PortalError, ServiceUnavailable, clients
from actions.common import bullets, intent_name, language

# Which answer each question intent wants; follow-ups ("còn lệ phí?") reuse the procedure slot.
QUESTION_OF_INTENT = {
    "ask_requirements": "documents",
    "ask_fee": "fee",
    "ask_processing_time": "processing_time",
    "ask_where_to_submit": "where",
    "ask_online": "online",
    "ask_who_can_file": "who_can_file",
}

RESPONSE_OF_QUESTION = {
    "documents": "utter_procedure_documents",
    "fee": "utter_procedure_fee",
    "processing_time": "utter_procedure_processing_time",
    "where": "utter_procedure_where",
    "who_can_file": "utter_procedure_who_can_file",
}


def template_values(detail: dict[str, Any]) -> dict[str, Any]:
    """The variables the procedure responses use, taken from a portal procedure detail."""
    variant = detail.get("variant") or {}
    online = detail.get("online") or {}
    province_note = detail.get("province_note")
    return {
        "procedure_name": detail.get("name", ""),
        "variant_name": f" ({variant['name']})" if variant.get("name") else "",
        "documents": bullets(list(detail.get("documents") or [])),
        "fee": detail.get("fee", ""),
        "processing_time": detail.get("processing_time", ""),
        "where_to_submit": detail.get("where_to_submit", ""),
        "province_note": f"\n{province_note}" if province_note else "",
        "online_note": online.get("note") or "",
        "online_url": online.get("url") or "",
        "who_can_file": detail.get("who_can_file", ""),
        "source": detail.get("source", ""),
        "reviewed_on": detail.get("reviewed_on", ""),
    }


class ActionProcedureInfo(Action):
    def name(self) -> str:
        return "action_procedure_info"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        question = QUESTION_OF_INTENT.get(intent_name(tracker)) or (
            tracker.get_slot("last_question") or "documents"
        )
        procedure = tracker.get_slot("procedure")
        if not procedure:
            dispatcher.utter_message(response="utter_ask_procedure")
            return [SlotSet("last_question", question)]
        try:
            detail = await clients().portal.get_procedure(
                procedure,
                language(tracker),
                variant=tracker.get_slot("variant"),
                province=tracker.get_slot("province"),
            )
        except PortalError as exc:
            if exc.code == "variant_not_found":
                return await self._without_variant(dispatcher, tracker, procedure, question)
            dispatcher.utter_message(response="utter_procedure_not_found")
            return [SlotSet("procedure", None), SlotSet("last_question", question)]
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return [SlotSet("last_question", question)]
        self.answer(dispatcher, question, detail)
        return [SlotSet("last_question", question)]

    async def _without_variant(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, procedure: str, question: str
    ) -> list[EventType]:
        """A variant of another procedure was still in the slot: answer the general case."""
        try:
            detail = await clients().portal.get_procedure(procedure, language(tracker))
        except (PortalError, ServiceUnavailable):
            dispatcher.utter_message(response="utter_service_unavailable")
            return [SlotSet("variant", None), SlotSet("last_question", question)]
        self.answer(dispatcher, question, detail)
        return [SlotSet("variant", None), SlotSet("last_question", question)]

    @staticmethod
    def answer(dispatcher: CollectingDispatcher, question: str, detail: dict[str, Any]) -> None:
        values = template_values(detail)
        if question == "online":
            available = bool((detail.get("online") or {}).get("available"))
            response = "utter_procedure_online_yes" if available else "utter_procedure_online_no"
            dispatcher.utter_message(response=response, **values)
            return
        dispatcher.utter_message(response=RESPONSE_OF_QUESTION[question], **values)
        if question == "documents" and detail.get("sample_data"):
            dispatcher.utter_message(response="utter_procedure_sample_note", **values)
