"""The desk's pages as an agent's browser uses them (cookie, forms, CSRF), against the fake Rasa:
the queue, one conversation (masked transcript, assist, audited), take, reply, note, hand back,
the live events, the report's chart, and roles."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from console.desk import desk_events, sse
from console.settings import DEFAULT_DEMO_PASSWORD, DEMO_ACCOUNTS, ConsoleSettings
from tests.console.conftest import sign_in
from tests.console.handoff_fake import (
    DOSSIER,
    ID_NUMBER,
    PHONE,
    FakeRasa,
    ask_for_person,
    citizen_events,
    desk_client,
)


@pytest.fixture()
def rasa() -> FakeRasa:
    fake = FakeRasa()
    fake.events["conv-1"] = citizen_events()
    fake.latest["conv-1"] = {
        "text": "Xin chào",
        "intent_ranking": [{"name": "greet", "confidence": 0.9}],
    }
    return fake


@pytest.fixture()
def client(
    settings: ConsoleSettings, rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    yield from desk_client(settings, rasa, monkeypatch)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def page_sign_in(client: TestClient, role: str) -> str:
    client.cookies.clear()
    form = client.get("/signin")
    answer = client.post(
        "/signin",
        data={
            "csrf": csrf_of(form.text),
            "email": DEMO_ACCOUNTS[role],
            "password": DEFAULT_DEMO_PASSWORD,
            "next": "/desk",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/desk").text)


def audit_actions(client: TestClient) -> list[str]:
    entries = client.get("/api/audit?limit=200", headers=sign_in(client, "admin")).json()
    return [e["action"] for e in entries["entries"]]


def test_the_queue_page_shows_the_summary_and_never_the_personal_data(client: TestClient) -> None:
    page_sign_in(client, "agent")  # at the desk: online
    ask_for_person(client, "conv-1")
    page = client.get("/desk")
    assert page.status_code == 200
    assert "a dossier code was given" in page.text and "not verified" in page.text
    assert 'href="/desk/conv-1"' in page.text
    assert 'data-events="/desk/events"' in page.text and "/static/desk.js" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert '<a href="/desk">Desk</a>' in page.text
    for value in (ID_NUMBER, PHONE, DOSSIER):
        assert value not in page.text


@pytest.mark.parametrize("role", ["editor", "reviewer"])
def test_content_staff_get_no_desk_page(client: TestClient, role: str) -> None:
    page_sign_in(client, "agent")
    ask_for_person(client, "conv-1")
    client.cookies.clear()
    form = client.get("/signin")
    client.post(
        "/signin",
        data={
            "csrf": csrf_of(form.text),
            "email": DEMO_ACCOUNTS[role],
            "password": DEFAULT_DEMO_PASSWORD,
        },
    )
    for path in ("/desk", "/desk/conv-1", "/desk/report"):
        assert client.get(path).status_code == 403, path
    assert client.get("/desk/events").status_code == 403
    assert '<a href="/desk">' not in client.get("/responses").text


def test_take_reply_note_and_hand_back_through_the_forms(
    client: TestClient, rasa: FakeRasa
) -> None:
    csrf = page_sign_in(client, "agent")
    ask_for_person(client, "conv-1", channel="webchat")
    page = client.get("/desk/conv-1")
    assert page.status_code == 200
    assert "*********234" in page.text and "[dossier code]" in page.text
    for value in (ID_NUMBER, PHONE, DOSSIER, "lan@example.vn"):
        assert value not in page.text
    assert "Hand back" not in page.text  # not held yet
    refused = client.post("/desk/conv-1/take", data={}, follow_redirects=False)
    assert refused.status_code == 403  # no CSRF token: nothing done
    taken = client.post("/desk/conv-1/take", data={"csrf": csrf}, follow_redirects=False)
    assert taken.status_code == 303
    page = client.get(taken.headers["location"])
    assert "You hold this conversation" in page.text and 'id="reply-text"' in page.text
    assert "data-insert=" in page.text  # suggestions and canned replies to insert
    sent = client.post(
        "/desk/conv-1/messages",
        data={"csrf": csrf, "text": "Chào chị, em là Lan."},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert rasa.posted("/webhooks/webchat/agent")[1:] == [  # after the take's joined line
        {"conversation_id": "conv-1", "text": "Chào chị, em là Lan.", "agent": "agent"}
    ]
    rasa.agent_answer = (502, {"error": "the widget is gone"})
    failed = client.post("/desk/conv-1/messages", data={"csrf": csrf, "text": "Chị còn đó không?"})
    assert failed.status_code == 502
    assert "the widget is gone" in failed.text and "Chị còn đó không?" in failed.text  # kept
    rasa.agent_answer = (200, {"sent": True})
    noted = client.post(
        "/desk/conv-1/notes", data={"csrf": csrf, "text": f"gọi lại {PHONE}"}, follow_redirects=True
    )
    assert "Note saved" in noted.text and PHONE not in noted.text and "*******678" in noted.text
    ticket = client.get("/desk/conv-1/transcript.md")
    assert ticket.status_code == 200 and "attachment" in ticket.headers["content-disposition"]
    assert "**Citizen**" in ticket.text and "*******678" in ticket.text
    for value in (ID_NUMBER, PHONE, DOSSIER):
        assert value not in ticket.text
    released = client.post("/desk/conv-1/release", data={"csrf": csrf}, follow_redirects=False)
    assert released.status_code == 303
    assert rasa.posted("/conversations/conv-1/execute") == [{"name": "action_handoff_returned"}]
    assert "Handed back to the bot" in client.get(released.headers["location"]).text
    actions = audit_actions(client)
    for action in ("viewed_conversation", "viewed_assist", "took_conversation", "sent_message"):
        assert action in actions


def test_the_events_push_the_queue_and_a_conversation_s_new_messages(
    client: TestClient, rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    from console.auth import Staff
    from console.pages import Visitor

    page_sign_in(client, "agent")
    ask_for_person(client, "conv-1")
    desk = client.app.state.desk  # type: ignore[attr-defined]
    visitor = Visitor(Staff(0, DEMO_ACCOUNTS["agent"], "agent"), "token", "csrf")

    class Browser:
        """Stays connected for ``ticks`` polls."""

        def __init__(self, ticks: int) -> None:
            self.ticks = ticks

        async def is_disconnected(self) -> bool:
            self.ticks -= 1
            return self.ticks < 0

    async def collect(conversation: str | None, ticks: int, change: Any = None) -> list[str]:
        found = []
        async for chunk in desk_events(Browser(ticks), desk, visitor, conversation):  # type: ignore[arg-type]
            found.append(chunk)
            if change and len(found) == 2:
                change()
        return found

    monkeypatch.setattr("console.desk.POLL_SECONDS", 0.01)
    queue = asyncio.run(collect(None, 3))
    assert queue[0].startswith("retry:")
    assert queue[1].startswith("event: queue\n") and "a dossier code was given" in queue[1]
    assert len(queue) == 2  # unchanged: sent once

    def citizen_writes() -> None:
        rasa.events["conv-1"].append({"event": "user", "text": f"Số tôi là {ID_NUMBER}"})

    chunks = asyncio.run(collect("conv-1", 3, citizen_writes))
    transcripts = [c for c in chunks if c.startswith("event: transcript")]
    assert len(transcripts) == 2
    assert "*********234" in transcripts[1] and ID_NUMBER not in transcripts[1]
    assert sse("x", "a\nb") == "event: x\ndata: a\ndata: b\n\n"


def test_the_report_page_draws_a_chart(client: TestClient) -> None:
    page_sign_in(client, "agent")
    ask_for_person(client, "conv-1", channel="telegram")
    page = client.get("/desk/report")
    assert page.status_code == 200
    assert "<svg" in page.text and "<rect" in page.text and "telegram" in page.text
