"""Dossier tracking: public status for anyone with the code; details only for the verified owner."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.clients import PortalError, ServiceUnavailable, clients
from actions.common import bullets, display_date, language, latest_entity_values
from actions.identity import HANDLE_SLOT
from actions.identity_store import IdentityStoreUnavailable, conversation_key, identity_store
from nlu.components.patterns import normalise_dossier_code

# What each status means and what anyone holding the code should do (no personal detail).
STATUS_MEANING = {
    "received": "utter_status_received",
    "in_processing": "utter_status_in_processing",
    "supplement_required": "utter_status_supplement_required",
    "result_ready": "utter_status_result_ready",
    "refused": "utter_status_refused",
    "completed": "utter_status_completed",
}


async def valid_token(tracker: Tracker) -> str | None:
    """The identity token this conversation proved, if it has not expired (never a slot).

    Raises ``IdentityStoreUnavailable`` when the store cannot answer.
    """
    proof = await identity_store().proof(conversation_key(tracker), tracker.get_slot(HANDLE_SLOT))
    return proof.token if proof is not None else None


async def verifying(tracker: Tracker) -> bool:
    """A code was sent in this conversation and not yet confirmed."""
    store = identity_store()
    handle = tracker.get_slot(HANDLE_SLOT)
    return await store.pending(conversation_key(tracker), handle) is not None


async def clear_token(tracker: Tracker) -> list[EventType]:
    await identity_store().forget(conversation_key(tracker))
    return [SlotSet(HANDLE_SLOT, None)]


class ActionResetDossier(Action):
    """A new status question without a code must not silently reuse the previous code."""

    def name(self) -> str:
        return "action_reset_dossier"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        events: list[EventType] = [SlotSet("pending_verification", False)]
        if not latest_entity_values(tracker, "dossier_code"):
            events.append(SlotSet("dossier_code", None))
        return events


class ValidateDossierForm(FormValidationAction):
    def name(self) -> str:
        return "validate_dossier_form"

    async def validate_dossier_code(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        code = normalise_dossier_code(str(slot_value or ""))
        if code is None:
            typed = " ".join(str(slot_value or "").split())
            shown = typed if len(typed) <= 40 else typed[:40] + "…"
            dispatcher.utter_message(
                response="utter_invalid_dossier_code", dossier_code_input=shown
            )
            return {"dossier_code": None}
        return {"dossier_code": code}


class ActionDossierStatus(Action):
    def name(self) -> str:
        return "action_dossier_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        events: list[EventType] = []

        def done(*more: EventType, offer: bool = False) -> list[EventType]:
            """Every outcome closes or opens the verification offer exactly once."""
            return [SlotSet("pending_verification", offer), *events, *more]

        if tracker.get_slot("identity_failed"):
            # The identity form already explained why it stopped (locked, too many codes...).
            return done(SlotSet("identity_failed", False))
        try:
            token = await valid_token(tracker)
            lapsed = bool(tracker.get_slot(HANDLE_SLOT)) and not token
            lapsed = lapsed and not await verifying(tracker)
        except IdentityStoreUnavailable:
            # Not knowing whether this conversation proved anything: neither details nor an offer.
            dispatcher.utter_message(response="utter_service_unavailable")
            return done()
        code = tracker.get_slot("dossier_code")
        if not code:
            if token:
                dispatcher.utter_message(response="utter_ask_dossier_code")
            return done()
        lang = language(tracker)
        if lapsed:
            dispatcher.utter_message(response="utter_session_expired")
            events += await clear_token(tracker)
        portal = clients().portal
        try:
            try:
                dossier = await portal.get_dossier(code, lang, token)
            except PortalError as exc:
                if exc.code != "invalid_token":
                    raise
                dispatcher.utter_message(response="utter_session_expired")
                events += await clear_token(tracker)
                token = None
                dossier = await portal.get_dossier(code, lang)
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return done()
        except PortalError:
            dispatcher.utter_message(response="utter_dossier_not_found", dossier_code=code)
            return done(SlotSet("dossier_code", None))

        if dossier.get("detail_level") == "owner":
            self.show_details(dispatcher, dossier)
            return done()
        dispatcher.utter_message(
            response="utter_dossier_public_status",
            dossier_code=dossier.get("code", code),
            status_label=dossier.get("status_label", ""),
            updated_on=display_date(dossier.get("updated_on")),
        )
        meaning = STATUS_MEANING.get(str(dossier.get("status")))
        if meaning:
            dispatcher.utter_message(response=meaning)
        if token:
            dispatcher.utter_message(response="utter_dossier_not_yours")
            return done()
        dispatcher.utter_message(response="utter_offer_verification")
        return done(offer=True)

    @staticmethod
    def show_details(dispatcher: CollectingDispatcher, dossier: dict[str, Any]) -> None:
        procedure = dossier.get("procedure") or {}
        dispatcher.utter_message(
            response="utter_dossier_detail",
            dossier_code=dossier.get("code", ""),
            owner_name=dossier.get("owner_name", ""),
            procedure_name=procedure.get("name", ""),
            agency=dossier.get("agency", ""),
            submitted_on=display_date(dossier.get("submitted_on")),
            due_on=display_date(dossier.get("due_on")),
            status_label=dossier.get("status_label", ""),
            updated_on=display_date(dossier.get("updated_on")),
        )
        missing = list(dossier.get("missing_documents") or [])
        if missing:
            dispatcher.utter_message(
                response="utter_dossier_missing_documents",
                missing_documents=bullets(missing),
                supplement_deadline=display_date(dossier.get("supplement_deadline")),
            )
        if dossier.get("refusal_reason"):
            dispatcher.utter_message(
                response="utter_dossier_refusal_reason", refusal_reason=dossier["refusal_reason"]
            )
        if dossier.get("pickup"):
            dispatcher.utter_message(response="utter_dossier_pickup", pickup=dossier["pickup"])
        if dossier.get("next_step"):
            dispatcher.utter_message(
                response="utter_dossier_next_step", next_step=dossier["next_step"]
            )
