from __future__ import annotations

import json
from typing import Any

import httpx
from rasa_sdk.executor import CollectingDispatcher

from actions.identity import ActionResendCode, ValidateIdentityForm
from tests.actions.helpers import FakeBackends, json_response, make_tracker, message, responses

AN = "001090001234"
STARTED = {"verification_id": "v-1", "masked_phone": "091****678", "expires_in": 300}


async def validate_id(value: str, slots: dict[str, Any] | None = None) -> tuple[Any, Any]:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(slots=slots, active_loop="identity_form")
    result = await ValidateIdentityForm().validate_id_number(value, dispatcher, tracker, {})
    return dispatcher, result


async def validate_otp(value: str, slots: dict[str, Any] | None = None) -> tuple[Any, Any]:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        slots={"id_number": AN, "verification_id": "v-1", **(slots or {})},
        active_loop="identity_form",
    )
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


async def test_valid_number_sends_a_code_to_the_registered_phone(backends: FakeBackends) -> None:
    backends.identity = lambda r: json_response(201, STARTED)
    dispatcher, result = await validate_id("0010 9000 1234")
    assert json.loads(backends.requests[0].content) == {"id_number": AN}
    assert responses(dispatcher) == ["utter_code_sent"]
    assert message(dispatcher, "utter_code_sent")["masked_phone"] == "091****678"
    assert message(dispatcher, "utter_code_sent")["expires_minutes"] == 5
    assert result["verification_id"] == "v-1" and result["id_number"] == AN


async def test_unknown_citizen(backends: FakeBackends) -> None:
    backends.identity = lambda r: json_response(404, {"error": "citizen_not_found"})
    dispatcher, result = await validate_id("079185009999")
    assert responses(dispatcher) == ["utter_citizen_not_found"]
    assert result == {"id_number": None}


async def test_locked_number_ends_the_form(backends: FakeBackends) -> None:
    backends.identity = lambda r: json_response(423, {"error": "locked", "retry_after": 840})
    dispatcher, result = await validate_id(AN)
    assert responses(dispatcher) == ["utter_identity_locked"]
    assert message(dispatcher, "utter_identity_locked")["retry_minutes"] == 14
    assert result["identity_failed"] is True
    tracker = make_tracker(slots={"identity_failed": True}, active_loop="identity_form")
    required = await ValidateIdentityForm().required_slots(
        ["id_number", "otp"], CollectingDispatcher(), tracker, {}
    )
    assert required == []


async def test_wrong_code_says_how_many_attempts_are_left(backends: FakeBackends) -> None:
    backends.identity = lambda r: json_response(400, {"error": "wrong_code", "attempts_left": 3})
    dispatcher, result = await validate_otp("111 111")
    assert json.loads(backends.requests[0].content) == {"code": "111111"}
    assert responses(dispatcher) == ["utter_wrong_code"]
    assert message(dispatcher, "utter_wrong_code")["attempts_left"] == 3
    assert result == {"otp": None}


async def test_expired_code_sends_a_new_one(backends: FakeBackends) -> None:
    def identity(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/confirm"):
            return json_response(410, {"error": "expired"})
        return json_response(201, {**STARTED, "verification_id": "v-2"})

    backends.identity = identity
    dispatcher, result = await validate_otp("123456")
    assert responses(dispatcher) == ["utter_code_expired_resent"]
    assert result["verification_id"] == "v-2" and result["otp"] is None


async def test_too_many_wrong_codes_locks_and_ends(backends: FakeBackends) -> None:
    backends.identity = lambda r: json_response(423, {"error": "locked", "retry_after": 900})
    dispatcher, result = await validate_otp("123456")
    assert responses(dispatcher) == ["utter_identity_locked"]
    assert result["identity_failed"] is True


async def test_right_code_keeps_the_token_not_the_code(backends: FakeBackends) -> None:
    backends.identity = lambda r: json_response(
        200,
        {
            "access_token": "tok",
            "token_type": "Bearer",
            "expires_in": 900,
            "citizen": {"full_name": "Nguyễn Văn An", "id_number_masked": "001******234"},
        },
    )
    dispatcher, result = await validate_otp("482913")
    assert responses(dispatcher) == ["utter_identity_verified"]
    assert result["identity_token"] == "tok"
    assert result["otp"] != "482913"
    assert "482913" not in json.dumps(result)


async def test_otp_must_be_six_digits(backends: FakeBackends) -> None:
    dispatcher, result = await validate_otp("12 34")
    assert responses(dispatcher) == ["utter_invalid_otp_format"]
    assert backends.requests == []


async def test_identity_api_down(backends: FakeBackends) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    backends.identity = down
    dispatcher, result = await validate_id(AN)
    assert responses(dispatcher) == ["utter_service_unavailable"]
    assert result["identity_failed"] is True


async def test_resend_code(backends: FakeBackends) -> None:
    backends.identity = lambda r: json_response(201, {**STARTED, "verification_id": "v-3"})
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(slots={"id_number": AN}, intent="resend_code")
    events = await ActionResendCode().run(dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_code_resent"]
    assert {"event": "slot", "name": "verification_id", "value": "v-3", "timestamp": None} in events


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
