from __future__ import annotations

from typing import Any

import httpx
import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions import procedures
from actions.clients import clients
from actions.procedures import (
    ActionAskVariant,
    ActionProcedureInfo,
    ActionProcedureQuestion,
    ValidateProcedureForm,
)
from tests.actions.helpers import (
    FakeBackends,
    json_response,
    make_tracker,
    message,
    responses,
    slot_events,
)

ID_CARD = {
    "id": "id_card",
    "name": "Cấp thẻ căn cước",
    "variant": {"id": "reissue_lost", "name": "Cấp lại do bị mất"},
    "variants": [
        {"id": "first_issuance", "name": "Cấp lần đầu"},
        {"id": "exchange", "name": "Cấp đổi"},
        {"id": "reissue_lost", "name": "Cấp lại do bị mất"},
    ],
    "documents": ["Tờ khai CC01"],
    "fee": "50.000 đồng",
    "processing_time": "7 ngày làm việc",
    "where_to_submit": "Công an cấp xã",
    "online": {"available": True, "channels": ["vneid"], "url": "https://x", "note": "Qua VNeID"},
    "who_can_file": "Người đề nghị",
    "province_note": None,
    "source": "Luật Căn cước 2023",
    "reviewed_on": "2026-11-20",
    "sample_data": True,
}
DOMAIN = {
    "responses": {
        "utter_button_not_sure": [
            {"text": "Tôi không rõ"},
            {"text": "I'm not sure", "condition": [{"name": "language", "value": "en"}]},
        ]
    }
}


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    procedures._variant_cache.clear()


def catalogue(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/v1/provinces/resolve":
        if request.url.params["name"] == "Bình Dương":
            return json_response(
                200,
                {
                    "input": "Bình Dương",
                    "name": "TP. Hồ Chí Minh",
                    "name_vi": "TP. Hồ Chí Minh",
                    "former_name": "Bình Dương",
                    "merged": True,
                },
            )
        return json_response(404, {"error": "province_not_found"})
    if request.url.path == "/v1/procedures":
        q = request.url.params["q"]
        items = {
            "căn cước": [{"id": "id_card", "name": "Cấp thẻ căn cước"}],
            "đăng ký": [
                {"id": "birth_registration", "name": "Đăng ký khai sinh"},
                {"id": "marriage_registration", "name": "Đăng ký kết hôn"},
            ],
        }.get(q, [])
        return json_response(200, {"items": items})
    return json_response(200, ID_CARD)


async def info(slots: dict[str, Any]) -> tuple[CollectingDispatcher, dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await ActionProcedureInfo().run(dispatcher, make_tracker(slots), DOMAIN)
    return dispatcher, slot_events(events)


async def test_first_answer_is_the_whole_checklist_for_the_case(backends: FakeBackends) -> None:
    backends.portal = catalogue
    slots = {"procedure": "id_card", "variant": "reissue_lost", "last_question": "fee"}
    dispatcher, events = await info(slots)
    assert responses(dispatcher) == ["utter_procedure_documents", "utter_procedure_sample_note"]
    sent = message(dispatcher, "utter_procedure_documents")
    assert sent["fee"] == "50.000 đồng" and sent["processing_time"] == "7 ngày làm việc"
    assert backends.requests[0].url.params["variant"] == "reissue_lost"
    assert events["answered_procedure"] == "id_card/reissue_lost"


async def test_follow_up_answers_just_what_was_asked(backends: FakeBackends) -> None:
    backends.portal = catalogue
    slots = {
        "procedure": "id_card",
        "variant": "reissue_lost",
        "answered_procedure": "id_card/reissue_lost",
    }
    for question, response in [
        ("fee", "utter_procedure_fee"),
        ("processing_time", "utter_procedure_processing_time"),
        ("where", "utter_procedure_where"),
        ("who_can_file", "utter_procedure_who_can_file"),
        ("online", "utter_procedure_online_yes"),
    ]:
        dispatcher, _ = await info({**slots, "last_question": question})
        assert responses(dispatcher) == [response]


async def test_online_question_is_answered_even_first(backends: FakeBackends) -> None:
    backends.portal = lambda r: json_response(200, {**ID_CARD, "online": {"available": False}})
    dispatcher, _ = await info({"procedure": "id_card", "last_question": "online"})
    assert responses(dispatcher) == ["utter_procedure_online_no"]


async def test_skipped_case_asks_the_catalogue_for_the_usual_case(backends: FakeBackends) -> None:
    backends.portal = catalogue
    await info({"procedure": "id_card", "variant": "default", "last_question": "fee"})
    assert "variant" not in backends.requests[0].url.params


async def test_old_province_name_is_mapped_and_the_citizen_told(backends: FakeBackends) -> None:
    backends.portal = catalogue
    dispatcher, events = await info(
        {"procedure": "id_card", "variant": "exchange", "province": "Bình Dương"}
    )
    assert responses(dispatcher)[0] == "utter_province_merged"
    assert message(dispatcher, "utter_province_merged")["new_name"] == "TP. Hồ Chí Minh"
    assert backends.requests[-1].url.params["province"] == "TP. Hồ Chí Minh"
    assert events["province_told"] == "Bình Dương"
    again, _ = await info(
        {
            "procedure": "id_card",
            "variant": "exchange",
            "province": "Bình Dương",
            "province_told": "Bình Dương",
        }
    )
    assert "utter_province_merged" not in responses(again)


async def test_unknown_procedure_points_to_portal_and_hotline(backends: FakeBackends) -> None:
    backends.portal = lambda r: json_response(404, {"error": "procedure_not_found"})
    dispatcher, events = await info({"procedure": "spaceship_licence"})
    assert responses(dispatcher) == ["utter_procedure_not_found"]
    assert events["procedure"] is None


async def test_variant_of_another_procedure_is_dropped(backends: FakeBackends) -> None:
    def portal(request: httpx.Request) -> httpx.Response:
        if "variant" in request.url.params:
            return json_response(404, {"error": "variant_not_found"})
        return json_response(200, ID_CARD)

    backends.portal = portal
    dispatcher, events = await info({"procedure": "id_card", "variant": "late"})
    assert responses(dispatcher)[0] == "utter_procedure_documents"
    assert events["variant"] is None


async def test_portal_slow_or_down(backends: FakeBackends) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    backends.portal = slow
    dispatcher, _ = await info({"procedure": "id_card", "variant": "exchange"})
    assert responses(dispatcher) == ["utter_service_unavailable"]


async def question(tracker_slots: dict[str, Any], intent: str, **kw: Any) -> dict[str, Any]:
    tracker = make_tracker(tracker_slots, intent=intent, **kw)
    return slot_events(await ActionProcedureQuestion().run(CollectingDispatcher(), tracker, {}))


async def test_new_procedure_resets_the_case_same_procedure_keeps_it() -> None:
    answered = {"procedure": "passport", "variant": "renewal", "answered_procedure": "id_card/x"}
    switched = await question(
        answered, "ask_fee", entities=[{"entity": "procedure", "value": "passport"}]
    )
    assert switched["variant"] is None and switched["last_question"] == "fee"
    follow_up = await question({**answered, "answered_procedure": "passport"}, "ask_fee")
    assert "variant" not in follow_up


async def test_same_for_my_wife_asks_her_case_again() -> None:
    events = await question(
        {"procedure": "id_card", "variant": "reissue_lost", "last_question": "fee"},
        "ask_for_other_person",
    )
    assert events["variant"] is None and events["answered_procedure"] is None


async def test_form_asks_for_the_case_only_where_it_matters(backends: FakeBackends) -> None:
    backends.portal = catalogue
    form = ValidateProcedureForm()
    with_variants = make_tracker({"procedure": "id_card"}, active_loop="procedure_form")
    assert await form.required_slots(
        ["procedure", "variant"], CollectingDispatcher(), with_variants, {}
    ) == ["procedure", "variant"]
    backends.portal = lambda r: json_response(200, {**ID_CARD, "id": "x", "variants": []})
    procedures._variant_cache.clear()
    clients().portal.forget_catalogue()
    assert await form.required_slots(
        ["procedure", "variant"], CollectingDispatcher(), with_variants, {}
    ) == ["procedure"]


async def test_case_words_fit_the_procedure(backends: FakeBackends) -> None:
    backends.portal = lambda r: json_response(
        200, {**ID_CARD, "variants": [{"id": "first_issuance"}, {"id": "renewal"}]}
    )
    form = ValidateProcedureForm()
    tracker = make_tracker({"procedure": "passport"}, active_loop="procedure_form")
    d = CollectingDispatcher()
    assert await form.validate_variant("exchange", d, tracker, {}) == {"variant": "renewal"}
    assert await form.validate_variant("late", d, tracker, {}) == {"variant": None}
    assert await form.validate_variant("default", d, tracker, {}) == {"variant": "default"}


async def test_typed_procedure_words_are_looked_up(backends: FakeBackends) -> None:
    backends.portal = catalogue
    form = ValidateProcedureForm()
    tracker = make_tracker({}, active_loop="procedure_form")
    one = CollectingDispatcher()
    assert (await form.validate_procedure("căn cước", one, tracker, {}))["procedure"] == "id_card"
    several = CollectingDispatcher()
    assert (await form.validate_procedure("đăng ký", several, tracker, {}))["procedure"] is None
    assert responses(several) == ["utter_procedure_which"]
    assert len(several.messages[0]["buttons"]) == 2
    none = CollectingDispatcher()
    result = await form.validate_procedure("bằng lái tàu vũ trụ", none, tracker, {})
    assert result["procedure_failed"] is True
    assert responses(none) == ["utter_procedure_not_found"]


async def test_case_question_offers_the_catalogue_cases_as_buttons(backends: FakeBackends) -> None:
    backends.portal = catalogue
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"procedure": "id_card", "language": "en"})
    await ActionAskVariant().run(dispatcher, tracker, DOMAIN)
    buttons = message(dispatcher, "utter_ask_variant")["buttons"]
    assert [b["payload"] for b in buttons] == [
        '/inform{"variant": "first_issuance"}',
        '/inform{"variant": "exchange"}',
        '/inform{"variant": "reissue_lost"}',
        "/skip",
    ]
    assert buttons[-1]["title"] == "I'm not sure"


async def test_a_procedure_question_closes_the_verification_offer() -> None:
    events = await question({"pending_verification": True}, "ask_requirements")
    assert events["pending_verification"] is False


async def test_not_sure_which_procedure_stops_asking(backends: FakeBackends) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({}, active_loop="procedure_form", intent="skip")
    result = await ValidateProcedureForm().validate_procedure(
        "__not_sure__", dispatcher, tracker, {}
    )
    assert result == {"procedure": None, "procedure_failed": True}
    assert responses(dispatcher) == ["utter_anything_else"]
    assert backends.requests == []
