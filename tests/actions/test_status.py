from __future__ import annotations

import time

import httpx
from rasa_sdk.executor import CollectingDispatcher

from actions.identity_store import Proof, identity_store
from actions.status import (
    ActionDossierStatus,
    ActionResetDossier,
    ValidateDossierForm,
    valid_token,
)
from tests.actions.helpers import (
    FakeBackends,
    json_response,
    make_tracker,
    message,
    responses,
    slot_events,
)

CODE = "000.00.10.H26-261110-0001"
PUBLIC = {
    "code": CODE,
    "status": "supplement_required",
    "status_label": "Yêu cầu bổ sung hồ sơ",
    "updated_on": "2026-11-12",
    "detail_level": "public",
    "owner_match": None,
}
OWNER = {
    **PUBLIC,
    "detail_level": "owner",
    "owner_match": True,
    "owner_name": "Nguyễn Văn An",
    "procedure": {"id": "passport", "name": "Cấp hộ chiếu phổ thông"},
    "agency": "Phòng Quản lý xuất nhập cảnh",
    "submitted_on": "2026-11-10",
    "due_on": "2026-11-18",
    "missing_documents": ["Ảnh chân dung 4x6 cm, nền trắng"],
    "supplement_deadline": "2026-12-10",
    "refusal_reason": None,
    "pickup": None,
    "next_step": "Tải ảnh lên hồ sơ trên Cổng dịch vụ công.",
}


async def with_token(valid_for: float = 600, conversation: str = "test") -> dict[str, object]:
    """Slots of a conversation that proved An's identity (the token itself is server-side)."""
    store = identity_store()
    handle = await store.start(conversation, "001090001234", "v-1")
    proof = Proof("tok-an", "Nguyễn Văn An", time.time() + valid_for)
    assert await store.prove(conversation, handle, proof)
    return {"dossier_code": CODE, "identity_ref": handle}


async def run_status(slots: dict[str, object]) -> tuple[CollectingDispatcher, dict[str, object]]:
    dispatcher = CollectingDispatcher()
    events = await ActionDossierStatus().run(dispatcher, make_tracker(slots=slots), {})
    return dispatcher, slot_events(events)


async def test_without_identity_only_public_status_and_an_offer(backends: FakeBackends) -> None:
    backends.portal = lambda r: json_response(200, PUBLIC)
    dispatcher, slots = await run_status({"dossier_code": CODE})
    assert responses(dispatcher) == [
        "utter_dossier_public_status",
        "utter_status_supplement_required",
        "utter_offer_verification",
    ]
    assert message(dispatcher, "utter_dossier_public_status")["updated_on"] == "12/11/2026"
    assert slots["pending_verification"] is True
    assert "authorization" not in backends.requests[0].headers


async def test_owner_sees_missing_document_and_next_step(backends: FakeBackends) -> None:
    backends.portal = lambda r: json_response(200, OWNER)
    dispatcher, slots = await run_status(await with_token())
    assert responses(dispatcher) == [
        "utter_dossier_detail",
        "utter_dossier_missing_documents",
        "utter_dossier_next_step",
    ]
    assert "4x6" in message(dispatcher, "utter_dossier_missing_documents")["missing_documents"]
    assert message(dispatcher, "utter_dossier_missing_documents")["supplement_deadline"] == (
        "10/12/2026"
    )
    assert backends.requests[0].headers["authorization"] == "Bearer tok-an"
    assert slots["pending_verification"] is False


async def test_someone_elses_dossier_shows_public_status_only(backends: FakeBackends) -> None:
    backends.portal = lambda r: json_response(200, {**PUBLIC, "owner_match": False})
    dispatcher, _ = await run_status(await with_token())
    assert responses(dispatcher) == [
        "utter_dossier_public_status",
        "utter_status_supplement_required",
        "utter_dossier_not_yours",
    ]


async def test_unknown_dossier_is_explained_and_code_forgotten(backends: FakeBackends) -> None:
    backends.portal = lambda r: json_response(404, {"error": "dossier_not_found"})
    dispatcher, slots = await run_status({"dossier_code": "000.00.10.H26-261110-9999"})
    assert responses(dispatcher) == ["utter_dossier_not_found"]
    assert slots["dossier_code"] is None


async def test_portal_down_gets_a_polite_answer(backends: FakeBackends) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    backends.portal = down
    dispatcher, slots = await run_status({"dossier_code": CODE})
    assert responses(dispatcher) == ["utter_service_unavailable"]
    assert slots == {"pending_verification": False}
    assert len(backends.requests) == 3  # a read is retried twice before giving up


async def test_expired_identity_is_not_sent_and_citizen_is_told(backends: FakeBackends) -> None:
    backends.portal = lambda r: json_response(200, PUBLIC)
    dispatcher, slots = await run_status(await with_token(valid_for=-1))
    assert responses(dispatcher)[:2] == ["utter_session_expired", "utter_dossier_public_status"]
    assert slots["identity_ref"] is None
    assert "authorization" not in backends.requests[0].headers


async def test_token_refused_by_portal_falls_back_to_public(backends: FakeBackends) -> None:
    def portal(request: httpx.Request) -> httpx.Response:
        if "authorization" in request.headers:
            return json_response(401, {"error": "invalid_token"})
        return json_response(200, PUBLIC)

    backends.portal = portal
    dispatcher, slots = await run_status(await with_token())
    assert responses(dispatcher) == [
        "utter_session_expired",
        "utter_dossier_public_status",
        "utter_status_supplement_required",
        "utter_offer_verification",
    ]
    assert slots["identity_ref"] is None


async def test_failed_identity_ends_quietly(backends: FakeBackends) -> None:
    dispatcher, slots = await run_status({"dossier_code": CODE, "identity_failed": True})
    assert responses(dispatcher) == []
    assert slots["identity_failed"] is False
    assert backends.requests == []


async def test_dossier_code_validation() -> None:
    form = ValidateDossierForm()
    tracker = make_tracker(active_loop="dossier_form")
    dispatcher = CollectingDispatcher()
    ok = await form.validate_dossier_code(" 000.00.10.h26-261110-0001 ", dispatcher, tracker, {})
    assert ok == {"dossier_code": CODE}
    bad = await form.validate_dossier_code("hồ sơ của tôi đâu 😡", dispatcher, tracker, {})
    assert bad == {"dossier_code": None}
    assert responses(dispatcher) == ["utter_invalid_dossier_code"]
    impossible_date = await form.validate_dossier_code(
        "000.00.10.H26-261340-0001", dispatcher, tracker, {}
    )
    assert impossible_date == {"dossier_code": None}


async def test_new_question_without_code_forgets_old_code() -> None:
    dispatcher = CollectingDispatcher()
    without = make_tracker(slots={"dossier_code": CODE}, intent="check_status")
    assert (
        slot_events(await ActionResetDossier().run(dispatcher, without, {}))["dossier_code"] is None
    )
    with_code = make_tracker(
        slots={"dossier_code": CODE},
        intent="check_status",
        entities=[{"entity": "dossier_code", "value": CODE}],
    )
    assert "dossier_code" not in slot_events(
        await ActionResetDossier().run(dispatcher, with_code, {})
    )


async def test_a_handle_copied_into_another_conversation_unlocks_nothing(
    backends: FakeBackends,
) -> None:
    stolen = await with_token(conversation="telegram:42")
    thief = make_tracker(slots=stolen, sender_id="rest:telegram:42")
    assert await valid_token(thief) is None
    backends.portal = lambda r: json_response(200, PUBLIC)
    dispatcher = CollectingDispatcher()
    await ActionDossierStatus().run(dispatcher, thief, {})
    assert all("authorization" not in r.headers for r in backends.requests)
    assert "utter_dossier_detail" not in responses(dispatcher)
    owner = make_tracker(slots=stolen, sender_id="telegram:42")
    assert await valid_token(owner) == "tok-an"
