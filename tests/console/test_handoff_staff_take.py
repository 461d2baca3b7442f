"""Staff take a conversation that did not ask for a person (issue 17), and every take tells the
citizen a person joined: against the fake Rasa (tests/console/handoff_fake.py).

- not in the queue: the entry is made (reason `staff`, channel and language from the tracker),
  the bot is paused through Rasa's API (`pause` event) and the audit says `taken_by_staff`;
- `utter_handoff_agent_joined`, in the citizen's language with the agent's name, goes through
  the channel's agent route, for a queued take too; a refusal leaves the take standing;
- roles (an editor 403), a second agent 409, an id Rasa does not know 404; the desk's form.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from console.desk_assist import JOINED, reply_text
from console.settings import ConsoleSettings
from tests.console.conftest import sign_in
from tests.console.handoff_fake import FakeRasa, ask_for_person, desk_client
from tests.console.test_handoff_api import audit_actions, second_agent
from tests.console.test_handoff_pages import page_sign_in

CONVERSATION = "telegram:4242"
ROOT = Path(__file__).resolve().parents[2]


def chatting() -> list[dict[str, Any]]:
    """A conversation the bot is answering, nobody asked for a person."""
    return [
        {"event": "action", "name": "action_session_start", "timestamp": 1.0},
        {"event": "user", "text": "hello", "input_channel": "telegram", "timestamp": 2.0},
        {"event": "bot", "text": "Hi! How can I help?", "timestamp": 3.0},
    ]


@pytest.fixture()
def rasa() -> FakeRasa:
    fake = FakeRasa()
    fake.events[CONVERSATION] = chatting()
    fake.slots[CONVERSATION] = {"language": "en"}
    fake.channels[CONVERSATION] = "telegram"
    return fake


@pytest.fixture()
def client(
    settings: ConsoleSettings, rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    yield from desk_client(settings, rasa, monkeypatch)


@pytest.fixture()
def agent(client: TestClient) -> dict[str, str]:
    headers = sign_in(client, "agent")
    assert client.get("/api/handoff/queue", headers=headers).status_code == 200
    return headers


def path(conversation: str = CONVERSATION) -> str:
    from urllib.parse import quote

    return f"/api/handoff/{quote(conversation, safe='')}"


def domain_text(language: str) -> str:
    """The reply as bot/domain/handoff.yml words it, its placeholder unfilled."""
    domain = yaml.safe_load((ROOT / "bot" / "domain" / "handoff.yml").read_text(encoding="utf-8"))
    for variation in domain["responses"][JOINED]:
        english = any(c.get("value") == "en" for c in variation.get("condition") or [])
        if english == (language == "en"):
            assert "{agent}" in variation["text"]
            return str(variation["text"])
    raise AssertionError(f"no {language} variation of {JOINED}")


def joined_text(client: TestClient, language: str, channel: str, agent: str = "agent") -> str:
    text = reply_text(
        client.app.state.desk,  # type: ignore[attr-defined]
        JOINED,
        language,
        channel,
        {"agent": agent},
    )
    assert text, f"bot/domain/handoff.yml has no {JOINED}"
    return text


def test_taking_a_conversation_that_did_not_ask_pauses_the_bot_and_tells_the_citizen(
    client: TestClient, agent: dict[str, str], rasa: FakeRasa
) -> None:
    taken = client.post(f"{path()}/take", headers=agent)
    assert taken.status_code == 200, taken.text
    entry = taken.json()
    assert (entry["conversation_id"], entry["channel"], entry["language"]) == (
        CONVERSATION,
        "telegram",
        "en",
    )
    assert (entry["reason"], entry["status"], entry["agent"]) == (
        "staff",
        "taken",
        "agent@demo.gov.vn",
    )
    assert entry["joined"] == {"sent": True, "problem": None}
    # The bot is paused through Rasa's API, before anything is said.
    assert rasa.posted(f"/conversations/{CONVERSATION}/tracker/events") == [[{"event": "pause"}]]
    paused_at = next(
        n for n, r in enumerate(rasa.requests) if r.url.path.endswith("/tracker/events")
    )
    told_at = next(n for n, r in enumerate(rasa.requests) if r.url.path.endswith("/agent"))
    assert paused_at < told_at
    # The citizen is told in English, with the agent's name, through Telegram's agent route.
    text = joined_text(client, "en", "telegram")
    assert text == domain_text("en").replace("{agent}", "agent")
    assert rasa.posted("/webhooks/telegram/agent") == [
        {"conversation_id": CONVERSATION, "text": text, "agent": "agent"}
    ]
    # The desk lists it as taken, the transcript shows the bot paused and the joined line.
    [queued] = client.get("/api/handoff/queue", headers=agent).json()["queue"]
    assert queued["status"] == "taken" and "taken by staff" in queued["summary"]
    shown = client.get(f"{path()}/transcript", headers=agent).json()
    assert shown["paused"] is True
    assert shown["messages"][-1]["who"] == "agent"
    assert [e["action"] for e in audit_actions(client) if e["action"] == "taken_by_staff"] == [
        "taken_by_staff"
    ]
    # The holder writes and hands back as for any queued conversation: the bot resumes.
    sent = client.post(f"{path()}/messages", json={"text": "How can I help?"}, headers=agent)
    assert sent.status_code == 200, sent.text
    released = client.post(f"{path()}/release", headers=agent)
    assert released.status_code == 200, released.text
    assert rasa.events[CONVERSATION][-1] == {"event": "resume"}


def test_vietnamese_by_default(client: TestClient, agent: dict[str, str], rasa: FakeRasa) -> None:
    rasa.slots[CONVERSATION] = {"language": None}
    assert client.post(f"{path()}/take", headers=agent).json()["language"] == "vi"
    [sent] = rasa.posted("/webhooks/telegram/agent")
    assert sent["text"] == domain_text("vi").replace("{agent}", "agent")


def test_the_channel_comes_from_the_citizen_s_messages_when_rasa_gives_no_latest(
    client: TestClient, agent: dict[str, str], rasa: FakeRasa
) -> None:
    rasa.channels.clear()
    assert client.post(f"{path()}/take", headers=agent).json()["channel"] == "telegram"


def test_an_editor_may_not_take_one(client: TestClient, rasa: FakeRasa) -> None:
    refused = client.post(f"{path()}/take", headers=sign_in(client, "editor"))
    assert refused.status_code == 403
    assert rasa.requests == []  # not even read


def test_a_second_agent_gets_409(client: TestClient, agent: dict[str, str], rasa: FakeRasa) -> None:
    other = second_agent(client)
    assert client.post(f"{path()}/take", headers=agent).status_code == 200
    refused = client.post(f"{path()}/take", headers=other)
    assert refused.status_code == 409
    assert "agent@demo.gov.vn" in refused.json()["detail"]
    assert len(rasa.posted("/webhooks/telegram/agent")) == 1  # told once
    assert len(rasa.posted("/tracker/events")) == 1  # paused once
    again = client.post(f"{path()}/take", headers=agent)  # the holder again: not told twice
    assert again.status_code == 200 and again.json()["joined"] == {"sent": False, "problem": None}
    assert len(rasa.posted("/webhooks/telegram/agent")) == 1


@pytest.mark.parametrize(
    "events",
    [[], [{"event": "action", "name": "action_session_start"}, {"event": "session_started"}]],
    ids=["no events", "only the session Rasa makes up when asked"],
)
def test_a_conversation_rasa_does_not_know_is_404(
    client: TestClient, agent: dict[str, str], rasa: FakeRasa, events: list[dict[str, Any]]
) -> None:
    rasa.events["telegram:nobody"] = events
    refused = client.post(f"{path('telegram:nobody')}/take", headers=agent)
    assert refused.status_code == 404, refused.text
    assert client.get("/api/handoff/queue", headers=agent).json()["queue"] == []
    assert rasa.posted("/tracker/events") == [] and rasa.posted("/agent") == []


def test_rasa_refusing_the_pause_takes_nothing(
    client: TestClient, agent: dict[str, str], rasa: FakeRasa
) -> None:
    desk = client.app.state.desk  # type: ignore[attr-defined]

    async def refuse(conversation_id: str) -> None:
        from console.desk_rasa import DeskError

        raise DeskError("Rasa refused to pause the conversation: HTTP 500")

    desk.clients.pause = refuse
    refused = client.post(f"{path()}/take", headers=agent)
    assert refused.status_code == 502 and "pause" in refused.json()["detail"]
    assert client.get("/api/handoff/queue", headers=agent).json()["queue"] == []
    assert rasa.posted("/agent") == []


def test_a_queued_take_tells_the_citizen_too(
    client: TestClient, agent: dict[str, str], rasa: FakeRasa
) -> None:
    ask_for_person(client, "conv-1", channel="zalo", language="vi")
    taken = client.post("/api/handoff/conv-1/take", headers=agent)
    assert taken.status_code == 200 and taken.json()["joined"] == {"sent": True, "problem": None}
    assert taken.json()["reason"] == "request_human"
    assert rasa.posted("/webhooks/zalo/agent") == [
        {"conversation_id": "conv-1", "text": joined_text(client, "vi", "zalo"), "agent": "agent"}
    ]
    assert rasa.posted("/tracker/events") == []  # the bot paused it when it queued it
    assert "taken_by_staff" not in [e["action"] for e in audit_actions(client)]


def test_a_call_back_is_paused_when_taken(client: TestClient, rasa: FakeRasa) -> None:
    ask_for_person(client, "conv-1")  # nobody online: kept for a call back, the bot not paused
    taken = client.post("/api/handoff/conv-1/take", headers=sign_in(client, "agent"))
    assert taken.status_code == 200, taken.text
    assert rasa.posted("/conversations/conv-1/tracker/events") == [[{"event": "pause"}]]


def test_a_refused_joined_line_leaves_the_take_standing(
    client: TestClient, agent: dict[str, str], rasa: FakeRasa
) -> None:
    rasa.agent_answer = (409, {"error": "zalo_window_closed"})
    ask_for_person(client, "conv-1", channel="zalo")
    taken = client.post("/api/handoff/conv-1/take", headers=agent)
    assert taken.status_code == 200, taken.text
    assert taken.json()["status"] == "taken" and taken.json()["joined"]["sent"] is False
    assert "zalo_window_closed" in taken.json()["joined"]["problem"]


def test_the_desk_form_takes_a_conversation_by_its_id(client: TestClient, rasa: FakeRasa) -> None:
    csrf = page_sign_in(client, "agent")
    desk = client.get("/desk")
    assert "Take a conversation by its id" in desk.text
    assert client.post("/desk/take", data={"conversation_id": CONVERSATION}).status_code == 403
    unknown = client.post("/desk/take", data={"csrf": csrf, "conversation_id": "rest:nobody"})
    assert unknown.status_code == 404 and "Rasa has no conversation" in unknown.text
    assert 'value="rest:nobody"' in unknown.text  # kept in the box
    taken = client.post(
        "/desk/take",
        data={"csrf": csrf, "conversation_id": CONVERSATION},
        follow_redirects=False,
    )
    assert taken.status_code == 303
    assert taken.headers["location"].endswith("/desk/telegram%3A4242?done=taken")
    page = client.get(taken.headers["location"])
    assert "You hold this conversation" in page.text and 'id="reply-text"' in page.text
    assert rasa.posted("/tracker/events") == [[{"event": "pause"}]]
    rasa.agent_answer = (409, {"error": "zalo_window_closed"})
    ask_for_person(client, "conv-2", channel="zalo")
    told_not = client.post(
        "/desk/conv-2/take", data={"csrf": csrf}, follow_redirects=False
    ).headers["location"]
    assert "joined=0" in told_not
    assert "not told that you joined" in client.get(told_not).text
