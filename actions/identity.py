"""Identity proof: the citizen's ID number, then the one-time code the identity API sends by SMS."""

from __future__ import annotations

import time
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.clients import IdentityError, ServiceUnavailable, clients
from actions.common import minutes
from nlu.components.patterns import digits_only, id_number_problem, normalise_otp

# Kept a little shorter than the API's lifetime so the bot never shows details on a dying token.
TOKEN_SAFETY_MARGIN_SECONDS = 30
VERIFIED_MARKER = "verified"  # what the otp slot holds once checked: never the code itself
STOP_EVENTS: dict[str, Any] = {"id_number": None, "otp": None, "verification_id": None}


def failed(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Slot values that end the identity form: it asks nothing more (see required_slots)."""
    return {**STOP_EVENTS, "identity_failed": True, **(extra or {})}


def explain_refusal(dispatcher: CollectingDispatcher, exc: IdentityError) -> bool:
    """Tell the citizen why the identity API refused; True when verification must stop."""
    if exc.code == "locked":
        dispatcher.utter_message(
            response="utter_identity_locked", retry_minutes=minutes(exc.retry_after or 900)
        )
        return True
    if exc.code == "too_many_requests":
        dispatcher.utter_message(
            response="utter_too_many_codes", retry_minutes=minutes(exc.retry_after or 900)
        )
        return True
    if exc.code == "citizen_not_found":
        dispatcher.utter_message(response="utter_citizen_not_found")
    else:
        dispatcher.utter_message(response="utter_invalid_id_number")
    return False


async def send_code(
    dispatcher: CollectingDispatcher, id_number: str, response: str
) -> dict[str, Any]:
    """Start a verification and say where the code went; slot values for the outcome."""
    try:
        started = await clients().identity.start_verification(id_number)
    except ServiceUnavailable:
        dispatcher.utter_message(response="utter_service_unavailable")
        return failed()
    except IdentityError as exc:
        return failed() if explain_refusal(dispatcher, exc) else {"id_number": None}
    dispatcher.utter_message(
        response=response,
        masked_phone=started.masked_phone,
        expires_minutes=minutes(started.expires_in),
    )
    return {
        "id_number": id_number,
        "verification_id": started.verification_id,
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
        if digits == tracker.get_slot("id_number") and tracker.get_slot("verification_id"):
            return {"id_number": digits}  # already sent a code for this number in this form
        return await send_code(dispatcher, digits, "utter_code_sent")

    async def validate_otp(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        if slot_value == VERIFIED_MARKER:
            return {"otp": VERIFIED_MARKER}
        code = normalise_otp(str(slot_value or ""))
        if code is None:
            dispatcher.utter_message(response="utter_invalid_otp_format")
            return {"otp": None}
        verification_id = tracker.get_slot("verification_id")
        id_number = tracker.get_slot("id_number")
        if not verification_id or not id_number:
            return {"otp": None, "id_number": None}
        try:
            verified = await clients().identity.confirm(verification_id, code)
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return failed()
        except IdentityError as exc:
            if exc.code == "wrong_code":
                dispatcher.utter_message(
                    response="utter_wrong_code", attempts_left=exc.attempts_left
                )
                return {"otp": None}
            if exc.code in ("expired", "already_used", "verification_not_found"):
                return await send_code(dispatcher, id_number, "utter_code_expired_resent")
            explain_refusal(dispatcher, exc)
            return failed()
        dispatcher.utter_message(
            response="utter_identity_verified", verified_name=verified.full_name
        )
        expires_at = time.time() + max(0, verified.expires_in - TOKEN_SAFETY_MARGIN_SECONDS)
        return {
            "otp": VERIFIED_MARKER,
            "verification_id": None,
            "identity_token": verified.access_token,
            "identity_expires_at": expires_at,
            "verified_name": verified.full_name,
        }


class ActionResendCode(Action):
    """ "Gửi lại mã": a fresh code for the ID number already given in this form."""

    def name(self) -> str:
        return "action_resend_code"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        id_number = tracker.get_slot("id_number")
        if not id_number:
            return []  # the form asks for the ID number next
        values = await send_code(dispatcher, id_number, "utter_code_resent")
        return [SlotSet(name, value) for name, value in values.items()]


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
            *[SlotSet(name, value) for name, value in STOP_EVENTS.items()],
            SlotSet("pending_verification", False),
            SlotSet("identity_failed", False),
        ]
