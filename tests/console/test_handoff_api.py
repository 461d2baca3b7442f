"""The call-centre desk through its JSON API, against a fake Rasa and portal: the bot's handoff
requests (queue, position and wait, office hours, nobody online, duplicates), taking (409 for a
second agent), roles, replies through the channel's agent endpoint, hand back, masking of what
staff see, and the audit of every view."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from console.desk_assist import reply_text
from console.settings import ConsoleSettings
from tests.console.conftest import sign_in
from tests.console.handoff_fake import (
    DOSSIER,
    ID_NUMBER,
    INTERNAL_TOKEN,
    PHONE,
    FakeRasa,
    ask_for_person,
    citizen_events,
    desk_client,
)

SECOND_AGENT = "minh@demo.gov.vn"


@pytest.fixture()
def rasa() -> FakeRasa:
    return FakeRasa()


@pytest.fixture()
def client(
    settings: ConsoleSettings,
    rasa: FakeRasa,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    yield from desk_client(settings, rasa, monkeypatch)


@pytest.fixture()
def agent(client: TestClient) -> dict[str, str]:
    """The demo agent, signed in and at the desk (so somebody is online)."""
    headers = sign_in(client, "agent")
    assert client.get("/api/handoff/queue", headers=headers).status_code == 200
    return headers


def second_agent(client: TestClient) -> dict[str, str]:
    admin = sign_in(client, "admin")
    made = client.post(
        "/api/users",
        json={"email": SECOND_AGENT, "password": "second-agent-2026", "role": "agent"},
        headers=admin,
    )
    assert made.status_code in (200, 201), made.text
    answer = client.post(
        "/api/login", json={"email": SECOND_AGENT, "password": "second-agent-2026"}
    )
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def audit_actions(client: TestClient) -> list[dict[str, Any]]:
    answer = client.get("/api/audit?limit=200", headers=sign_in(client, "admin"))
    return list(answer.json()["entries"])


def test_a_request_is_queued_with_its_place_and_expected_wait(
    client: TestClient, agent: dict[str, str]
) -> None:
    first = ask_for_person(client, "conv-1")
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "queued"
    assert first.json()["position"] == 1
    assert first.json()["wait_minutes"] == 3  # nothing taken yet: 3 minutes a place
    second = ask_for_person(client, "conv-2").json()
    assert (second["position"], second["wait_minutes"]) == (2, 6)
    entries = client.get("/api/handoff/queue", headers=agent).json()["queue"]
    assert [e["conversation_id"] for e in entries] == ["conv-1", "conv-2"]
    assert entries[0]["channel"] == "rest" and entries[0]["language"] == "vi"
    assert "a dossier code was given" in entries[0]["summary"]
    assert "not verified" in entries[0]["summary"]


def test_asking_again_returns_the_same_entry(client: TestClient, agent: dict[str, str]) -> None:
    first = ask_for_person(client, "conv-1").json()
    again = ask_for_person(client, "conv-1", reason="fallbacks").json()
    assert again["handoff_id"] == first["handoff_id"]
    assert len(client.get("/api/handoff/queue", headers=agent).json()["queue"]) == 1
    client.post("/api/handoff/conv-1/take", headers=agent)
    taken = ask_for_person(client, "conv-1").json()
    assert taken["handoff_id"] == first["handoff_id"] and taken["taken"] is True


def test_nobody_online_is_a_call_back(client: TestClient) -> None:
    answer = ask_for_person(client, "conv-1").json()
    assert answer == {
        "status": "unavailable",
        "handoff_id": answer["handoff_id"],
        "why": "nobody_online",
    }
    agent = sign_in(client, "agent")
    [entry] = client.get("/api/handoff/queue", headers=agent).json()["queue"]
    assert entry["status"] == "callback"
    # Someone is at the desk now: asking again puts the same entry in the queue.
    again = ask_for_person(client, "conv-1").json()
    assert again["status"] == "queued" and again["handoff_id"] == answer["handoff_id"]


def test_outside_office_hours_nobody_is_available(
    settings: ConsoleSettings,
    rasa: FakeRasa,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import datetime

    today = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=7))).weekday()
    other = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[(today + 3) % 7]
    for client in desk_client(settings, rasa, monkeypatch, office_hours=f"{other} 00:00-24:00"):
        agent = sign_in(client, "agent")
        client.get("/api/handoff/queue", headers=agent)  # online, but the office is closed
        answer = ask_for_person(client).json()
        assert answer["status"] == "unavailable" and answer["why"] == "closed"


def test_internal_routes_need_the_token(client: TestClient) -> None:
    refused = client.post(
        "/internal/handoff",
        json={"conversation_id": "c", "channel": "rest", "reason": "fallbacks"},
        headers={"X-Internal-Token": "wrong"},
    )
    assert refused.status_code == 403


def test_two_agents_cannot_take_the_same_conversation(
    client: TestClient, agent: dict[str, str]
) -> None:
    other = second_agent(client)
    ask_for_person(client, "conv-1")
    assert client.post("/api/handoff/conv-1/take", headers=agent).status_code == 200
    refused = client.post("/api/handoff/conv-1/take", headers=other)
    assert refused.status_code == 409
    assert "agent@demo.gov.vn" in refused.json()["detail"]
    assert client.post("/api/handoff/conv-1/take", headers=agent).status_code == 200  # again: ok


def test_the_take_is_one_conditional_update(
    client: TestClient, agent: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two agents who both read the entry as waiting: the UPDATE alone decides (409)."""
    from console import handoff as store

    other = second_agent(client)
    ask_for_person(client, "conv-1")
    real_open = store.open_handoff
    stale: dict[str, Any] = {}

    def first_read(session: Any, conversation_id: str) -> Any:
        found = real_open(session, conversation_id)
        if found is not None and "status" not in stale:
            stale["status"] = found.status
        return found

    monkeypatch.setattr(store, "open_handoff", first_read)
    assert client.post("/api/handoff/conv-1/take", headers=agent).status_code == 200
    assert client.post("/api/handoff/conv-1/take", headers=other).status_code == 409
    assert stale["status"] == "waiting"


@pytest.mark.parametrize("role", ["editor", "reviewer"])
def test_content_staff_have_no_desk(client: TestClient, role: str) -> None:
    ask_for_person(client, "conv-1")
    headers = sign_in(client, role)
    for method, path in [
        ("get", "/api/handoff/queue"),
        ("post", "/api/handoff/conv-1/take"),
        ("get", "/api/handoff/conv-1/transcript"),
        ("get", "/api/handoff/conv-1/assist"),
        ("get", "/api/handoff/report"),
    ]:
        assert getattr(client, method)(path, headers=headers).status_code == 403, path
    assert client.get("/api/handoff/queue").status_code == 401


def test_only_the_holder_replies_and_it_reaches_the_channel(
    client: TestClient,
    agent: dict[str, str],
    rasa: FakeRasa,
) -> None:
    other = second_agent(client)
    ask_for_person(client, "conv-1", channel="telegram")
    body = {"text": "Chào anh, tôi là Lan, tôi xem hồ sơ giúp anh."}
    assert client.post("/api/handoff/conv-1/messages", json=body, headers=agent).status_code == 409
    client.post("/api/handoff/conv-1/take", headers=agent)
    assert client.post("/api/handoff/conv-1/messages", json=body, headers=other).status_code == 403
    sent = client.post("/api/handoff/conv-1/messages", json=body, headers=agent)
    assert sent.status_code == 200, sent.text
    requests = [r for r in rasa.requests if r.url.path == "/webhooks/telegram/agent"]
    assert requests and all(
        r.headers["authorization"] == "Bearer rasa-test-token" for r in requests
    )
    # The take told the citizen an agent joined (tests/console/test_handoff_staff_take.py),
    # then the agent's own text.
    assert rasa.posted("/webhooks/telegram/agent")[1:] == [
        {"conversation_id": "conv-1", "text": body["text"], "agent": "agent"}
    ]
    # The transcript shows it as the agent's.
    shown = client.get("/api/handoff/conv-1/transcript", headers=agent).json()["messages"]
    assert shown[-1] == {"who": "agent", "name": "agent", "text": body["text"], "at": None}


def test_a_channel_refusal_is_shown_to_the_agent(
    client: TestClient,
    agent: dict[str, str],
    rasa: FakeRasa,
) -> None:
    ask_for_person(client, "conv-1", channel="zalo")
    client.post("/api/handoff/conv-1/take", headers=agent)
    rasa.agent_answer = (409, {"error": "Zalo's 48-hour window is closed"})
    refused = client.post("/api/handoff/conv-1/messages", json={"text": "Xin chào"}, headers=agent)
    assert refused.status_code == 502
    assert "48-hour window is closed" in refused.json()["detail"]


def test_transfer_moves_the_conversation_to_another_agent(
    client: TestClient, agent: dict[str, str]
) -> None:
    other = second_agent(client)
    ask_for_person(client, "conv-1")
    client.post("/api/handoff/conv-1/take", headers=agent)
    refused = client.post(
        "/api/handoff/conv-1/transfer", json={"to": "editor@demo.gov.vn"}, headers=agent
    )
    assert refused.status_code == 422
    moved = client.post("/api/handoff/conv-1/transfer", json={"to": SECOND_AGENT}, headers=agent)
    assert moved.status_code == 200 and moved.json()["agent"] == SECOND_AGENT
    body = {"text": "Tôi tiếp nhận hồ sơ của anh."}
    assert client.post("/api/handoff/conv-1/messages", json=body, headers=agent).status_code == 403
    assert client.post("/api/handoff/conv-1/messages", json=body, headers=other).status_code == 200


def test_release_runs_the_bot_s_hand_back_action_through_the_citizen_s_channel(
    client: TestClient, agent: dict[str, str], rasa: FakeRasa
) -> None:
    ask_for_person(client, "conv-1", language="en", channel="telegram")
    client.post("/api/handoff/conv-1/take", headers=agent)
    released = client.post("/api/handoff/conv-1/release", headers=agent)
    assert released.status_code == 200, released.text
    [request] = [r for r in rasa.requests if r.url.path == "/conversations/conv-1/execute"]
    assert request.url.params["output_channel"] == "latest"
    assert rasa.posted("/conversations/conv-1/execute") == [{"name": "action_handoff_returned"}]
    assert released.json()["returned"] == {
        "sent": True,
        "by": "action_handoff_returned",
        "problem": None,
    }
    assert rasa.events["conv-1"][-1] == {"event": "resume"}
    # the action's lines went by Rasa; the agent route carried only the joined line of the take
    assert len(rasa.posted("/webhooks/telegram/agent")) == 1
    assert client.get("/api/handoff/queue", headers=agent).json()["queue"] == []
    assert client.post("/api/handoff/conv-1/release", headers=agent).status_code == 409


def test_without_the_hand_back_action_release_posts_resume_and_the_published_line(
    client: TestClient, agent: dict[str, str], rasa: FakeRasa
) -> None:
    rasa.execute_answer = (500, {"message": "Cannot access action 'action_handoff_returned'"})
    ask_for_person(client, "conv-1", language="en")
    client.post("/api/handoff/conv-1/take", headers=agent)
    released = client.post("/api/handoff/conv-1/release", headers=agent)
    assert released.status_code == 200, released.text
    assert rasa.posted("/conversations/conv-1/tracker/events") == [[{"event": "resume"}]]
    assert released.json()["status"] == "released"
    returned = released.json()["returned"]
    assert returned["by"] == "resume"
    if returned["sent"]:  # bot/domain/handoff.yml has utter_handoff_returned
        joined, sent = rasa.posted("/webhooks/rest/agent")  # the take's joined line first
        assert sent["text"] == reply_text(
            client.app.state.desk,  # type: ignore[attr-defined]
            "utter_handoff_returned",
            "en",
            "rest",
        )
    else:  # not yet: a clear problem, never a text written in Python
        assert "utter_handoff_returned" in returned["problem"]
        assert len(rasa.posted("/webhooks/rest/agent")) == 1  # the take's joined line
    assert client.get("/api/handoff/queue", headers=agent).json()["queue"] == []


def test_rasa_refusing_the_hand_back_changes_nothing(
    client: TestClient,
    agent: dict[str, str],
    rasa: FakeRasa,
) -> None:
    ask_for_person(client, "conv-1")
    client.post("/api/handoff/conv-1/take", headers=agent)
    client.app.state.desk.clients.settings = client.app.state.desk.clients.settings.__class__(
        **{**client.app.state.desk.clients.settings.__dict__, "rasa_token": "wrong"}
    )
    client.app.state.desk.clients._rasa = None
    refused = client.post("/api/handoff/conv-1/release", headers=agent)
    assert refused.status_code == 502 and "wrong token" in refused.json()["detail"]
    [entry] = client.get("/api/handoff/queue", headers=agent).json()["queue"]
    assert entry["status"] == "taken"


PERSONAL = (ID_NUMBER, PHONE, PHONE.replace(" ", ""), DOSSIER, "lan@example.vn")


def assert_masked(text: str) -> None:
    for value in PERSONAL:
        assert value not in text
    assert not re.search(r"(?<![\d.])\d{9,12}(?![\d.])", text.replace(" ", "")), text


def test_what_staff_see_never_holds_an_id_number_phone_or_dossier_code(
    client: TestClient,
    agent: dict[str, str],
    rasa: FakeRasa,
) -> None:
    rasa.events["conv-1"] = citizen_events()
    rasa.latest["conv-1"] = {
        "text": f"CCCD {ID_NUMBER} hồ sơ {DOSSIER}",
        "intent_ranking": [{"name": "check_status", "confidence": 0.9}],
    }
    rasa.slots["conv-1"] = {"language": "vi", "dossier_code": DOSSIER, "id_number": ID_NUMBER}
    ask_for_person(
        client,
        "conv-1",
        summary={
            "intent": f"check_status {ID_NUMBER}",
            "procedure": DOSSIER,
            "dossier_code_given": True,
        },
    )
    queue = client.get("/api/handoff/queue", headers=agent)
    assert_masked(queue.text)
    transcript = client.get("/api/handoff/conv-1/transcript", headers=agent)
    assert transcript.status_code == 200
    assert_masked(transcript.text)
    texts = [m["text"] for m in transcript.json()["messages"]]
    assert "CCCD của tôi là *********234" in texts  # masked, not dropped: the agent sees a number
    assert any("[dossier code]" in t for t in texts)
    markdown = client.get("/api/handoff/conv-1/transcript?format=md", headers=agent)
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "**Citizen**" in markdown.text
    assert_masked(markdown.text)
    client.post("/api/handoff/conv-1/take", headers=agent)
    note = client.post(
        "/api/handoff/conv-1/notes", json={"text": f"gọi lại {PHONE}"}, headers=agent
    )
    assert note.status_code == 201
    assist = client.get("/api/handoff/conv-1/assist", headers=agent)
    assert assist.status_code == 200
    assert_masked(assist.text)
    assert_masked(client.get("/api/handoff/conv-1/transcript?format=md", headers=agent).text)


def test_every_view_and_action_is_audited(
    client: TestClient,
    agent: dict[str, str],
    rasa: FakeRasa,
) -> None:
    rasa.events["conv-1"] = citizen_events()
    ask_for_person(client, "conv-1")
    client.get("/api/handoff/conv-1/transcript", headers=agent)
    client.get("/api/handoff/conv-1/assist", headers=agent)
    client.post("/api/handoff/conv-1/take", headers=agent)
    client.post("/api/handoff/conv-1/messages", json={"text": "Xin chào"}, headers=agent)
    client.post("/api/handoff/conv-1/notes", json={"text": "khách hỏi hộ chiếu"}, headers=agent)
    client.post("/api/handoff/conv-1/release", headers=agent)
    found = [
        e["action"] for e in audit_actions(client) if (e["target"] or "").startswith("handoff:")
    ]
    for action in (
        "viewed_conversation",
        "viewed_assist",
        "took_conversation",
        "sent_message",
        "noted_conversation",
        "released_conversation",
    ):
        assert action in found, action


def test_assist_shows_intents_suggestions_checklist_and_hides_the_dossier_unless_verified(
    client: TestClient,
    agent: dict[str, str],
    rasa: FakeRasa,
) -> None:
    rasa.latest["conv-1"] = {
        "text": "Xin chào",
        "intent_ranking": [
            {"name": "greet", "confidence": 0.8},
            {"name": "help", "confidence": 0.1},
            {"name": "goodbye", "confidence": 0.05},
            {"name": "thank", "confidence": 0.05},
        ],
    }
    rasa.slots["conv-1"] = {"language": "en", "procedure": "passport", "dossier_code": DOSSIER}
    rasa.procedures["passport"] = {
        "name": "Passport",
        "documents": ["Form TK01", "Photo"],
        "fee": "200,000",
    }
    rasa.dossiers[DOSSIER] = {
        "status": "in_processing",
        "status_label": "Being processed",
        "updated_on": "2026-12-01",
    }
    ask_for_person(client, "conv-1", language="en")
    found = client.get("/api/handoff/conv-1/assist", headers=agent).json()
    assert [i["name"] for i in found["intents"]] == ["greet", "help", "goodbye"]
    assert found["language"] == "en"
    assert found["checklist"]["documents"] == ["Form TK01", "Photo"]
    assert found["dossier"] == {"shown": False, "why": "not verified"}
    assert any(s["name"] == "utter_greet" for s in found["suggestions"])
    assert all(s["text"] for s in found["suggestions"] + found["canned"])
    assert not [r for r in rasa.requests if r.url.path.startswith("/v1/dossiers/")]
    rasa.slots["conv-1"]["otp"] = "verified"
    found = client.get("/api/handoff/conv-1/assist", headers=agent).json()
    assert found["dossier"]["shown"] is True
    assert found["dossier"]["status_label"] == "Being processed"
    assert DOSSIER not in str(found)


def test_ratings_and_the_report(client: TestClient, agent: dict[str, str]) -> None:
    ask_for_person(client, "conv-1", channel="telegram")
    ask_for_person(client, "conv-2", reason="fallbacks")
    client.post("/api/handoff/conv-1/take", headers=agent)
    client.post("/api/handoff/conv-1/release", headers=agent)
    rated = client.post(
        "/internal/handoff/conv-1/rating",
        json={"score": 5},
        headers={"X-Internal-Token": INTERNAL_TOKEN},
    )
    assert rated.status_code == 200 and rated.json()["rating"] == 5
    bad = client.post(
        "/internal/handoff/conv-1/rating",
        json={"score": 6},
        headers={"X-Internal-Token": INTERNAL_TOKEN},
    )
    assert bad.status_code == 422
    unknown = client.post(
        "/internal/handoff/nobody/rating",
        json={"score": 3},
        headers={"X-Internal-Token": INTERNAL_TOKEN},
    )
    assert unknown.status_code == 404
    report = client.get("/api/handoff/report", headers=agent).json()
    assert report["total"]["handoffs"] == 2
    assert report["total"]["fallback_share"] == 0.5
    assert report["total"]["rating_average"] == 5
    assert report["total"]["wait_p50_seconds"] is not None
    assert set(report["per_channel"]) == {"telegram", "rest"}
    assert sum(d["handoffs"] for d in report["per_day"]) == 2


def test_a_serialization_failure_is_a_conflict(
    client: TestClient, agent: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL refuses the loser of two simultaneous takes (SERIALIZABLE): 409, not 500."""
    from sqlalchemy.exc import OperationalError

    from console import handoff as store

    class Refused(Exception):
        pgcode = "40001"

    def refuse(*_: Any, **__: Any) -> Any:
        raise OperationalError("UPDATE handoffs ...", {}, Refused())

    ask_for_person(client, "conv-1")
    monkeypatch.setattr(store, "take", refuse)
    refused = client.post("/api/handoff/conv-1/take", headers=agent)
    assert refused.status_code == 409 and "same moment" in refused.json()["detail"]
