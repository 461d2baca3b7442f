from __future__ import annotations

import httpx
from rasa_sdk.executor import CollectingDispatcher

from actions.procedures import ActionProcedureInfo
from tests.actions.helpers import FakeBackends, json_response, make_tracker, message, responses

PASSPORT = {
    "id": "passport",
    "name": "Cấp hộ chiếu phổ thông",
    "variant": {"id": "first_issuance", "name": "Cấp lần đầu"},
    "documents": ["Tờ khai TK01", "Ảnh 4x6 cm"],
    "fee": "200.000 đồng",
    "processing_time": "8 ngày làm việc",
    "where_to_submit": "Công an cấp tỉnh",
    "online": {"available": True, "channels": ["portal"], "url": "https://x", "note": "Nộp online"},
    "who_can_file": "Người đề nghị",
    "province_note": None,
    "source": "Luật Xuất nhập cảnh",
    "reviewed_on": "2026-11-20",
    "sample_data": True,
}


async def ask(intent: str, slots: dict[str, object]) -> tuple[CollectingDispatcher, list]:
    dispatcher = CollectingDispatcher()
    events = await ActionProcedureInfo().run(dispatcher, make_tracker(slots, intent=intent), {})
    return dispatcher, events


async def test_requirements_come_from_the_portal_catalogue(backends: FakeBackends) -> None:
    backends.portal = lambda r: json_response(200, PASSPORT)
    dispatcher, _ = await ask("ask_requirements", {"procedure": "passport", "language": "en"})
    request = backends.requests[0]
    assert request.url.path == "/v1/procedures/passport"
    assert request.url.params["lang"] == "en"
    assert responses(dispatcher) == ["utter_procedure_documents", "utter_procedure_sample_note"]
    sent = message(dispatcher, "utter_procedure_documents")
    assert sent["documents"] == "• Tờ khai TK01\n• Ảnh 4x6 cm"
    assert sent["variant_name"] == " (Cấp lần đầu)"


async def test_follow_up_fee_uses_the_procedure_already_discussed(backends: FakeBackends) -> None:
    backends.portal = lambda r: json_response(200, PASSPORT)
    dispatcher, events = await ask("ask_fee", {"procedure": "passport"})
    assert responses(dispatcher) == ["utter_procedure_fee"]
    assert message(dispatcher, "utter_procedure_fee")["fee"] == "200.000 đồng"
    assert {"event": "slot", "name": "last_question", "value": "fee", "timestamp": None} in events


async def test_inform_after_a_question_answers_that_question(backends: FakeBackends) -> None:
    backends.portal = lambda r: json_response(200, PASSPORT)
    dispatcher, _ = await ask(
        "inform", {"procedure": "passport", "last_question": "processing_time"}
    )
    assert responses(dispatcher) == ["utter_procedure_processing_time"]


async def test_online_yes_and_no(backends: FakeBackends) -> None:
    backends.portal = lambda r: json_response(200, PASSPORT)
    dispatcher, _ = await ask("ask_online", {"procedure": "passport"})
    assert responses(dispatcher) == ["utter_procedure_online_yes"]
    backends.portal = lambda r: json_response(200, {**PASSPORT, "online": {"available": False}})
    dispatcher, _ = await ask("ask_online", {"procedure": "passport"})
    assert responses(dispatcher) == ["utter_procedure_online_no"]


async def test_no_procedure_yet_asks_which(backends: FakeBackends) -> None:
    dispatcher, events = await ask("ask_fee", {})
    assert responses(dispatcher) == ["utter_ask_procedure"]
    assert backends.requests == []


async def test_unknown_procedure_points_to_portal_and_hotline(backends: FakeBackends) -> None:
    backends.portal = lambda r: json_response(404, {"error": "procedure_not_found"})
    dispatcher, _ = await ask("ask_fee", {"procedure": "spaceship_licence"})
    assert responses(dispatcher) == ["utter_procedure_not_found"]


async def test_variant_of_another_procedure_is_dropped(backends: FakeBackends) -> None:
    def portal(request: httpx.Request) -> httpx.Response:
        if "variant" in request.url.params:
            return json_response(404, {"error": "variant_not_found"})
        return json_response(200, PASSPORT)

    backends.portal = portal
    dispatcher, events = await ask("ask_fee", {"procedure": "passport", "variant": "late"})
    assert responses(dispatcher) == ["utter_procedure_fee"]
    assert {"event": "slot", "name": "variant", "value": None, "timestamp": None} in events


async def test_portal_slow_or_down(backends: FakeBackends) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    backends.portal = slow
    dispatcher, _ = await ask("ask_fee", {"procedure": "passport"})
    assert responses(dispatcher) == ["utter_service_unavailable"]
