"""Identity proof: the citizen's ID number, then the one-time code the identity API sends by SMS.

What the proof needs between turns (the full ID number, the verification id, then the token and
the citizen's name) stays with the action servers (actions/identity_store.py: in memory, or
encrypted in the shared Redis); the tracker only holds a masked ID number and a random handle, so
nothing in the tracker store can be replayed. The store down: "service unavailable", the form
ends, as when the identity API is down.
"""

from __future__ import annotations

import time
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.clients import IdentityError, ServiceUnavailable, clients
from actions.common import minutes
from actions.identity_store import (
    IdentityStoreUnavailable,
    Proof,
    client_ref,
    conversation_key,
    identity_store,
)
from bot.logmask import mask_pii
from nlu.components.patterns import digits_only, id_number_problem, normalise_otp

# Kept a little shorter than the API's lifetime so the bot never shows details on a dying token.
TOKEN_SAFETY_MARGIN_SECONDS = 30
VERIFIED_MARKER = "verified"  # what the otp slot holds once checked: never the code itself
HANDLE_SLOT = "identity_ref"
STOP_EVENTS: dict[str, Any] = {"id_number": None, "otp": None, HANDLE_SLOT: None}


def masked_id(id_number: str) -> str:
    """What the id_number slot keeps: enough to recognise the number, never the number (the
    same mask as the logs and the tracker store: the last three digits)."""
    return mask_pii(id_number)


async def failed(tracker: Tracker, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Slot values that end the identity form: it asks nothing more (see required_slots)."""
    await identity_store().forget(conversation_key(tracker))
    return {**STOP_EVENTS, "identity_failed": True, **(extra or {})}


async def store_down(dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
    """The identity store cannot answer: say so, and end the form like any service outage."""
    dispatcher.utter_message(response="utter_service_unavailable")
    return await failed(tracker)


def explain_refusal(dispatcher: CollectingDispatcher, exc: IdentityError) -> bool:
    """Tell the citizen why the identity API refused; True when verification must stop."""
    retry_minutes = minutes(exc.retry_after or 900)
    if exc.code == "locked":
        response = (
            "utter_conversation_locked" if exc.scope == "conversation" else "utter_identity_locked"
        )
        dispatcher.utter_message(response=response, retry_minutes=retry_minutes)
        return True
    if exc.code == "too_many_requests":
        dispatcher.utter_message(response="utter_too_many_codes", retry_minutes=retry_minutes)
        return True
    dispatcher.utter_message(response="utter_invalid_id_number")
    return False


async def send_code(
    dispatcher: CollectingDispatcher, tracker: Tracker, id_number: str, response: str
) -> dict[str, Any]:
    """Start a verification and say where the code went; slot values for the outcome."""
    api = clients()
    try:
        started = await api.identity.start_verification(
            id_number, client_ref(tracker, api.client_ref_secret)
        )
    except ServiceUnavailable:
        dispatcher.utter_message(response="utter_service_unavailable")
        return await failed(tracker)
    except IdentityError as exc:
        return await failed(tracker) if explain_refusal(dispatcher, exc) else {"id_number": None}
    try:
        handle = await identity_store().start(
            conversation_key(tracker), id_number, started.verification_id
        )
    except IdentityStoreUnavailable:
        return await store_down(dispatcher, tracker)
    dispatcher.utter_message(
        response=response,
        masked_phone=started.masked_phone,
        expires_minutes=minutes(started.expires_in),
    )
    return {
        "id_number": masked_id(id_number),
        HANDLE_SLOT: handle,
        "masked_phone": started.masked_phone,
        "otp": None,
    }


class ValidateIdentityForm(FormValidationAction):
    def name(self) -> str:
        return "validate_identity_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        events = await super().run(dispatcher, tracker, domain)
        if tracker.get_slot("pending_verification"):
            # The offer has been taken up: a later "no" means "stop verifying", not "decline".
            events.append(SlotSet("pending_verification", False))
        return events

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[str]:
        if tracker.get_slot("identity_failed"):
            return []
        return domain_slots

    async def validate_id_number(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        digits = digits_only(str(slot_value or ""))
        problem = id_number_problem(digits) if digits else "length"
        if problem == "cmnd":
            dispatcher.utter_message(response="utter_old_cmnd_number")
            return {"id_number": None}
        if problem:
            dispatcher.utter_message(response="utter_invalid_id_number")
            return {"id_number": None}
        try:
            pending = await identity_store().pending(
                conversation_key(tracker), tracker.get_slot(HANDLE_SLOT)
            )
        except IdentityStoreUnavailable:
            return await store_down(dispatcher, tracker)
        if pending is not None and pending.id_number == digits:
            return {"id_number": masked_id(digits)}  # a code was already sent for this number
        return await send_code(dispatcher, tracker, digits, "utter_code_sent")

    async def validate_otp(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        typed = str(slot_value or "")
        code = normalise_otp(typed)
        if code is None:
            # An ID number typed at the code step never starts a new verification by itself.
            long_number = len(digits_only(typed)) in (9, 12)
            dispatcher.utter_message(
                response="utter_code_step_expects_code"
                if long_number
                else "utter_invalid_otp_format",
                masked_phone=tracker.get_slot("masked_phone") or "",
            )
            return {"otp": None}
        store = identity_store()
        conversation, handle = conversation_key(tracker), tracker.get_slot(HANDLE_SLOT)
        try:
            pending = await store.pending(conversation, handle)
        except IdentityStoreUnavailable:
            return await store_down(dispatcher, tracker)
        if pending is None:
            # Expired, or the action server restarted: only a new code can prove anything.
            dispatcher.utter_message(response="utter_verification_restart")
            return {"otp": None, "id_number": None, HANDLE_SLOT: None}
        try:
            verified = await clients().identity.confirm(pending.verification_id, code)
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return await failed(tracker)
        except IdentityError as exc:
            if exc.code == "wrong_code" and exc.attempts_left > 0:
                dispatcher.utter_message(
                    response="utter_wrong_code", attempts_left=exc.attempts_left
                )
                return {"otp": None}
            if exc.code in ("wrong_code", "code_exhausted"):
                dispatcher.utter_message(response="utter_code_exhausted")
                return {"otp": None}
            if exc.code in ("expired", "already_used", "verification_not_found"):
                return await send_code(
                    dispatcher, tracker, pending.id_number, "utter_code_expired_resent"
                )
            explain_refusal(dispatcher, exc)
            return await failed(tracker)
        lifetime = max(0, verified.expires_in - TOKEN_SAFETY_MARGIN_SECONDS)
        proof = Proof(verified.access_token, verified.full_name, time.time() + lifetime)
        try:
            proved = await store.prove(conversation, handle, proof)
        except IdentityStoreUnavailable:
            return await store_down(dispatcher, tracker)
        if not proved:
            dispatcher.utter_message(response="utter_verification_restart")
            return {"otp": None, "id_number": None, HANDLE_SLOT: None}
        dispatcher.utter_message(
            response="utter_identity_verified", verified_name=verified.full_name
        )
        return {"otp": VERIFIED_MARKER}


class ActionResendCode(Action):
    """ "Gửi lại mã": a fresh code for the ID number already given in this form."""

    def name(self) -> str:
        return "action_resend_code"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        try:
            pending = await identity_store().pending(
                conversation_key(tracker), tracker.get_slot(HANDLE_SLOT)
            )
        except IdentityStoreUnavailable:
            values = await store_down(dispatcher, tracker)
            return [SlotSet(name, value) for name, value in values.items()]
        if pending is None:
            # The form asks for the ID number next.
            return [SlotSet("id_number", None), SlotSet(HANDLE_SLOT, None)]
        values = await send_code(dispatcher, tracker, pending.id_number, "utter_code_resent")
        return [SlotSet(name, value) for name, value in values.items()]


async def forget_identity(tracker: Tracker) -> list[EventType]:
    """Drop the proof and whatever verification is under way in this conversation."""
    await identity_store().forget(conversation_key(tracker))
    return [SlotSet(name, value) for name, value in STOP_EVENTS.items()]


class ActionStopVerification(Action):
    """The citizen declined or changed topic: end the form and forget what it collected."""

    def name(self) -> str:
        return "action_stop_verification"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return [
            ActiveLoop(None),
            SlotSet("requested_slot", None),
            *await forget_identity(tracker),
            SlotSet("pending_verification", False),
            SlotSet("identity_failed", False),
        ]


class ActionForgetIdentity(Action):
    """Goodbye: verification ends with the conversation, not with the token's lifetime."""

    def name(self) -> str:
        return "action_forget_identity"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return await forget_identity(tracker)
