from __future__ import annotations

import json
import time
from typing import Any

import httpx
from rasa_sdk.executor import CollectingDispatcher

from actions.identity import (
    ActionForgetIdentity,
    ActionResendCode,
    ActionStopVerification,
    ValidateIdentityForm,
)
from actions.identity_store import IdentityStore, Proof
from tests.actions.helpers import (
    FakeBackends,
    json_response,
    make_tracker,
    message,
    responses,
    slot_events,
)

AN = "001090001234"
STARTED = {"verification_id": "v-1", "masked_phone": "*******678", "expires_in": 300}
TOKEN = {
    "access_token": "tok-an",
    "token_type": "Bearer",
    "expires_in": 900,
    "citizen": {"full_name": "Nguyễn Văn An", "id_number_masked": "*********234"},
}


async def validate_id(value: str, slots: dict[str, Any] | None = None) -> tuple[Any, Any]:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(slots=slots, active_loop="identity_form")
    result = await ValidateIdentityForm().validate_id_number(value, dispatcher, tracker, {})
    return dispatcher, result


async def code_sent(store: IdentityStore, conversation: str = "test") -> dict[str, Any]:
    """Slots of a conversation at the code step (a code was sent for An's ID number)."""
    handle = await store.start(conversation, AN, "v-1")
    return {"id_number": "*********234", "identity_ref": handle, "masked_phone": "*******678"}


async def validate_otp(value: str, slots: dict[str, Any]) -> tuple[Any, Any]:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(slots=slots, active_loop="identity_form")
    result = await ValidateIdentityForm().validate_otp(value, dispatcher, tracker, {})
    return dispatcher, result


async def test_malformed_id_number_is_refused_without_calling_the_api(
    backends: FakeBackends,
) -> None:
    for typed in ["12345", "001790001234", "999090001234", "abc", "001099001234" + "1"]:
        dispatcher, result = await validate_id(typed)
        assert result == {"id_number": None}, typed
        assert responses(dispatcher) == ["utter_invalid_id_number"]
    assert backends.requests == []


async def test_old_nine_digit_number_gets_its_own_explanation(backends: FakeBackends) -> None:
    dispatcher, result = await validate_id("123456789")
    assert responses(dispatcher) == ["utter_old_cmnd_number"]
    assert result == {"id_number": None}


async def test_a_sent_code_leaves_no_id_number_or_verification_id_in_the_slots(
    backends: FakeBackends, identity_store: IdentityStore
) -> None:
    backends.identity = lambda r: json_response(201, STARTED)
    dispatcher, result = await validate_id("0010 9000 1234")
    sent = json.loads(backends.requests[0].content)
    assert sent["id_number"] == AN
    assert sent["client_ref"].startswith("c-") and "test" not in sent["client_ref"]
    assert responses(dispatcher) == ["utter_code_sent"]
    assert message(dispatcher, "utter_code_sent")["masked_phone"] == "*******678"
    assert message(dispatcher, "utter_code_sent")["expires_minutes"] == 5
    assert result["id_number"] == "*********234"
    assert AN not in json.dumps(result) and "v-1" not in json.dumps(result)
    pending = await identity_store.pending("test", result["identity_ref"])
    assert pending is not None and pending.id_number == AN and pending.verification_id == "v-1"


async def test_conversations_get_different_client_refs(backends: FakeBackends) -> None:
    backends.identity = lambda r: json_response(201, STARTED)
    for sender in ("web:one", "web:two"):
        tracker = make_tracker(active_loop="identity_form", sender_id=sender)
        await ValidateIdentityForm().validate_id_number(AN, CollectingDispatcher(), tracker, {})
    refs = {json.loads(r.content)["client_ref"] for r in backends.requests}
    assert len(refs) == 2


async def test_lock_of_this_conversation_and_of_the_id_number_are_told_apart(
    backends: FakeBackends,
) -> None:
    for scope, response in (
        ("conversation", "utter_conversation_locked"),
        ("id_number", "utter_identity_locked"),
    ):
        backends.identity = lambda r, s=scope: json_response(
            423, {"error": "locked", "retry_after": 840, "scope": s}
        )
        dispatcher, result = await validate_id(AN)
        assert responses(dispatcher) == [response]
        assert message(dispatcher, response)["retry_minutes"] == 14
        assert result["identity_failed"] is True
    tracker = make_tracker(slots={"identity_failed": True}, active_loop="identity_form")
    required = await ValidateIdentityForm().required_slots(
        ["id_number", "otp"], CollectingDispatcher(), tracker, {}
    )
    assert required == []


async def test_wrong_code_says_how_many_attempts_are_left(
    backends: FakeBackends, identity_store: IdentityStore
) -> None:
    backends.identity = lambda r: json_response(400, {"error": "wrong_code", "attempts_left": 2})
    dispatcher, result = await validate_otp("111 111", await code_sent(identity_store))
    assert json.loads(backends.requests[0].content) == {"code": "111111"}
    assert backends.requests[0].url.path == "/v1/verifications/v-1/confirm"
    assert responses(dispatcher) == ["utter_wrong_code"]
    assert message(dispatcher, "utter_wrong_code")["attempts_left"] == 2
    assert result == {"otp": None}


async def test_a_used_up_code_asks_for_a_new_one_without_sending_it(
    backends: FakeBackends, identity_store: IdentityStore
) -> None:
    for body in ({"error": "wrong_code", "attempts_left": 0}, {"error": "code_exhausted"}):
        backends.requests.clear()
        backends.identity = lambda r, b=body: json_response(
            410 if "exhausted" in str(b) else 400, b
        )
        dispatcher, result = await validate_otp("111111", await code_sent(identity_store))
        assert responses(dispatcher) == ["utter_code_exhausted"]
        assert result == {"otp": None}
        assert len(backends.requests) == 1  # no new code was requested


async def test_expired_code_sends_a_new_one(
    backends: FakeBackends, identity_store: IdentityStore
) -> None:
    def identity(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/confirm"):
            return json_response(410, {"error": "expired"})
        return json_response(201, {**STARTED, "verification_id": "v-2"})

    backends.identity = identity
    dispatcher, result = await validate_otp("123456", await code_sent(identity_store))
    assert responses(dispatcher) == ["utter_code_expired_resent"]
    assert json.loads(backends.requests[1].content)["id_number"] == AN
    pending = await identity_store.pending("test", result["identity_ref"])
    assert pending is not None and pending.verification_id == "v-2" and result["otp"] is None


async def test_right_code_keeps_the_token_in_the_action_server_not_the_tracker(
    backends: FakeBackends, identity_store: IdentityStore
) -> None:
    backends.identity = lambda r: json_response(200, TOKEN)
    slots = await code_sent(identity_store)
    dispatcher, result = await validate_otp("482913", slots)
    assert responses(dispatcher) == ["utter_identity_verified"]
    assert result == {"otp": "verified"}
    proof = await identity_store.proof("test", slots["identity_ref"])
    assert proof is not None and proof.token == "tok-an" and proof.full_name == "Nguyễn Văn An"


async def test_typing_the_verified_marker_proves_nothing(
    backends: FakeBackends, identity_store: IdentityStore
) -> None:
    slots = await code_sent(identity_store)
    dispatcher, result = await validate_otp("verified", slots)
    assert result == {"otp": None}
    assert responses(dispatcher) == ["utter_invalid_otp_format"]
    assert await identity_store.proof("test", slots["identity_ref"]) is None


async def test_an_id_number_at_the_code_step_never_sends_a_code(
    backends: FakeBackends, identity_store: IdentityStore
) -> None:
    dispatcher, result = await validate_otp("079185005678", await code_sent(identity_store))
    assert responses(dispatcher) == ["utter_code_step_expects_code"]
    assert message(dispatcher, "utter_code_step_expects_code")["masked_phone"] == "*******678"
    assert result == {"otp": None}
    assert backends.requests == []


async def test_a_code_without_a_verification_under_way_starts_again(
    backends: FakeBackends,
) -> None:
    slots = {"id_number": "*********234", "identity_ref": "from-a-lost-process"}
    dispatcher, result = await validate_otp("482913", slots)
    assert responses(dispatcher) == ["utter_verification_restart"]
    assert result["id_number"] is None and result["identity_ref"] is None
    assert backends.requests == []


async def test_otp_must_be_six_digits(
    backends: FakeBackends, identity_store: IdentityStore
) -> None:
    dispatcher, result = await validate_otp("12 34", await code_sent(identity_store))
    assert responses(dispatcher) == ["utter_invalid_otp_format"]
    assert backends.requests == []


async def test_identity_api_down(backends: FakeBackends) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    backends.identity = down
    dispatcher, result = await validate_id(AN)
    assert responses(dispatcher) == ["utter_service_unavailable"]
    assert result["identity_failed"] is True


async def test_resend_code_for_the_number_given_in_this_conversation(
    backends: FakeBackends, identity_store: IdentityStore
) -> None:
    backends.identity = lambda r: json_response(201, {**STARTED, "verification_id": "v-3"})
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(slots=await code_sent(identity_store), intent="resend_code")
    events = await ActionResendCode().run(dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_code_resent"]
    assert json.loads(backends.requests[0].content)["id_number"] == AN
    pending = await identity_store.pending("test", slot_events(events)["identity_ref"])
    assert pending is not None and pending.verification_id == "v-3"


async def test_stop_and_goodbye_end_a_verification(
    backends: FakeBackends, identity_store: IdentityStore
) -> None:
    for action in (ActionStopVerification(), ActionForgetIdentity()):
        handle = await identity_store.start("test", AN, "v-1")
        await identity_store.prove("test", handle, Proof("tok-an", "An", time.time() + 600))
        tracker = make_tracker(slots={"identity_ref": handle, "otp": "verified"})
        events = slot_events(await action.run(CollectingDispatcher(), tracker, {}))
        assert events["identity_ref"] is None and events["otp"] is None
        assert await identity_store.proof("test", handle) is None


async def test_starting_verification_clears_the_offer(backends: FakeBackends) -> None:
    tracker = make_tracker(
        slots={"pending_verification": True, "requested_slot": "id_number"},
        intent="affirm",
        active_loop="identity_form",
    )
    events = await ValidateIdentityForm().run(CollectingDispatcher(), tracker, {"forms": {}})
    assert {"event": "slot", "name": "pending_verification", "value": False, "timestamp": None} in (
        events
    )
