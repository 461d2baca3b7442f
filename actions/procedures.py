"""Procedure questions: a guided form asks for the one detail that changes the answer (the case,
e.g. first card or lost card), then the answer comes from the portal catalogue.

The first answer about a procedure is the whole checklist (documents, fee, time, place); follow-ups
("còn lệ phí thì sao?", "and how long?") answer just what was asked, for the same case.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.clients import PortalError, ServiceUnavailable, clients
from actions.common import bullets, intent_name, language, latest_entity_values
from actions.content import response_text

QUESTION_OF_INTENT = {
    "ask_requirements": "documents",
    "ask_fee": "fee",
    "ask_processing_time": "processing_time",
    "ask_where_to_submit": "where",
    "ask_online": "online",
    "ask_who_can_file": "who_can_file",
    "ask_for_other_person": "documents",
}
RESPONSE_OF_QUESTION = {
    "documents": "utter_procedure_documents",
    "fee": "utter_procedure_fee",
    "processing_time": "utter_procedure_processing_time",
    "where": "utter_procedure_where",
    "who_can_file": "utter_procedure_who_can_file",
}
SKIPPED = "default"  # the citizen does not know or does not care: answer the usual case
NOT_SURE = "__not_sure__"  # "không biết" when asked which procedure: stop asking
# The same words mean another case for another procedure ("hết hạn": exchange a card, renew a
# passport); NLU gives one value, the procedure decides.
EQUIVALENT_VARIANTS = {
    ("passport", "exchange"): "renewal",
    ("id_card", "renewal"): "exchange",
}

_variant_cache: dict[str, list[str]] = {}


async def variant_ids(procedure: str, lang: str) -> list[str] | None:
    """Variant ids of a procedure (cached: they do not change while the server runs)."""
    if procedure not in _variant_cache:
        try:
            detail = await clients().portal.get_procedure(procedure, lang)
        except (PortalError, ServiceUnavailable):
            return None
        _variant_cache[procedure] = [v["id"] for v in detail.get("variants") or []]
    return _variant_cache[procedure]


def fit_variant(procedure: str, variant: str | None, known: list[str]) -> str | None:
    """The variant of ``procedure`` that ``variant`` means, or None if it does not apply."""
    if not variant or variant == SKIPPED:
        return variant
    variant = EQUIVALENT_VARIANTS.get((procedure, variant), variant)
    return variant if variant in known else None


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


class ActionProcedureQuestion(Action):
    """Remembers what was asked and resets the case when the procedure or the person changes."""

    def name(self) -> str:
        return "action_procedure_question"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent = intent_name(tracker)
        question = QUESTION_OF_INTENT.get(intent) or tracker.get_slot("last_question")
        events: list[EventType] = [
            SlotSet("last_question", question or "documents"),
            SlotSet("procedure_failed", False),
            SlotSet("pending_verification", False),  # a new topic closes the verification offer
        ]
        new_procedure = latest_entity_values(tracker, "procedure")
        new_variant = latest_entity_values(tracker, "variant")
        changed = new_procedure and new_procedure[-1] != tracker.get_slot("answered_procedure")
        if (changed or intent == "ask_for_other_person") and not new_variant:
            events.append(SlotSet("variant", None))
        if intent == "ask_for_other_person":
            events.append(SlotSet("answered_procedure", None))  # a full answer for that person
        return events


class ValidateProcedureForm(FormValidationAction):
    def name(self) -> str:
        return "validate_procedure_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[str]:
        if tracker.get_slot("procedure_failed"):
            return []
        procedure = tracker.get_slot("procedure")
        if not procedure:
            return ["procedure"]
        known = await variant_ids(procedure, language(tracker))
        return ["procedure", "variant"] if known else ["procedure"]

    async def validate_procedure(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        value = str(slot_value or "").strip()
        if value == NOT_SURE:
            dispatcher.utter_message(response="utter_anything_else")
            return {"procedure": None, "procedure_failed": True}
        if value and value == tracker.get_slot("procedure") and _is_id(value):
            return {"procedure": value}
        # Typed words instead of a recognised name: look them up in the catalogue.
        try:
            found = (
                await clients().portal.search_procedures(value, language(tracker)) if value else []
            )
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return {"procedure": None, "procedure_failed": True}
        if len(found) == 1 or (found and _is_id(value) and found[0]["id"] == value):
            return {"procedure": found[0]["id"], "variant": None}
        if found:
            dispatcher.utter_message(
                response="utter_procedure_which",
                buttons=[
                    {"title": item["name"], "payload": f'/inform{{"procedure": "{item["id"]}"}}'}
                    for item in found[:3]
                ],
            )
            return {"procedure": None}
        dispatcher.utter_message(response="utter_procedure_not_found")
        return {"procedure": None, "procedure_failed": True}

    async def validate_variant(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        procedure = tracker.get_slot("procedure")
        known = await variant_ids(procedure, language(tracker)) if procedure else []
        return {"variant": fit_variant(procedure or "", slot_value, known or [])}


def _is_id(value: str) -> bool:
    return value.replace("_", "").isalnum() and value.islower() and value.isascii()


class ActionAskVariant(Action):
    """Asks which case applies, with the catalogue's own case names as buttons."""

    def name(self) -> str:
        return "action_ask_variant"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        lang = language(tracker)
        try:
            detail = await clients().portal.get_procedure(tracker.get_slot("procedure"), lang)
        except (PortalError, ServiceUnavailable):
            dispatcher.utter_message(response="utter_service_unavailable")
            return [SlotSet("variant", SKIPPED)]
        buttons = [
            {"title": v["name"], "payload": f'/inform{{"variant": "{v["id"]}"}}'}
            for v in detail.get("variants") or []
        ]
        skip_title = response_text(domain, "utter_button_not_sure", lang)
        if skip_title:
            buttons.append({"title": skip_title, "payload": "/skip"})
        dispatcher.utter_message(
            response="utter_ask_variant", procedure_name=detail.get("name", ""), buttons=buttons
        )
        return []


class ActionProcedureInfo(Action):
    def name(self) -> str:
        return "action_procedure_info"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        procedure = tracker.get_slot("procedure")
        if not procedure or tracker.get_slot("procedure_failed"):
            return [SlotSet("procedure_failed", False)]
        lang = language(tracker)
        question = tracker.get_slot("last_question") or "documents"
        variant = tracker.get_slot("variant")
        events: list[EventType] = []
        province = await self._province(dispatcher, tracker, lang, events)
        portal = clients().portal
        try:
            try:
                detail = await portal.get_procedure(
                    procedure,
                    lang,
                    variant=None if variant in (None, SKIPPED) else variant,
                    province=province,
                )
            except PortalError as exc:
                if exc.code != "variant_not_found":
                    raise
                events.append(SlotSet("variant", None))
                detail = await portal.get_procedure(procedure, lang, province=province)
        except PortalError:
            dispatcher.utter_message(response="utter_procedure_not_found")
            return [*events, SlotSet("procedure", None), SlotSet("variant", None)]
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return events
        case = f"{procedure}/{variant}"
        if tracker.get_slot("answered_procedure") != case and question != "online":
            question = "documents"  # first answer for this case: the whole checklist
        self.answer(dispatcher, question, detail)
        return [*events, SlotSet("answered_procedure", case)]

    @staticmethod
    async def _province(
        dispatcher: CollectingDispatcher, tracker: Tracker, lang: str, events: list[EventType]
    ) -> str | None:
        """The current unit's name for the province the citizen named; says so if it merged."""
        typed = tracker.get_slot("province")
        if not typed:
            return None
        try:
            resolved = await clients().portal.resolve_province(typed, lang)
        except (PortalError, ServiceUnavailable):
            return typed
        if resolved is None:
            return typed
        if resolved.get("merged") and tracker.get_slot("province_told") != typed:
            dispatcher.utter_message(
                response="utter_province_merged",
                former_name=resolved.get("former_name") or typed,
                new_name=resolved.get("name", ""),
            )
            events.append(SlotSet("province_told", typed))
        return str(resolved.get("name_vi") or resolved.get("name") or typed)

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
