"""A citizen on the REST channel asks for a person: the bot answers with the queue's answer
(queued in office hours with an agent online, else unavailable with the hotline), the console's
queue holds the conversation with its summary, an agent takes it and writes, the message lands
in the tracker as from the agent, and after the hand-back the bot answers again.

While the conversation is queued (paused), the citizen's messages are recorded and the bot
says nothing at all."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

from actions.handoff import hotline
from console.settings import DEFAULT_DEMO_PASSWORD, DEMO_ACCOUNTS
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def domain_responses() -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for path in (ROOT / "bot" / "domain").glob("*.yml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        responses.update(data.get("responses") or {})
    return responses


def said(text: str, response: str) -> bool:
    """``text`` is one of the response's variations, its {placeholders} filled anyhow."""
    for variation in domain_responses()[response]:
        parts = re.split(r"\{\w+\}", str(variation["text"]))
        if re.fullmatch(".+?".join(re.escape(part) for part in parts), text, re.S):
            return True
    return False


def agent_headers(stack: Stack) -> dict[str, str]:
    assert stack.settings is not None
    answer = httpx.post(
        f"{stack.settings.staff_url}/api/login",
        json={"email": DEMO_ACCOUNTS["agent"], "password": DEFAULT_DEMO_PASSWORD},
        timeout=10,
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def desk(stack: Stack, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
    assert stack.settings is not None
    answer = httpx.request(
        method, f"{stack.settings.staff_url}{path}", headers=headers, timeout=30, **kwargs
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def tracker_events(stack: Stack, conversation_id: str) -> list[dict[str, Any]]:
    answer = stack.api("GET", f"/conversations/{conversation_id}/tracker")
    answer.raise_for_status()
    return list(answer.json()["events"])


def ask_and_take(stack: Stack) -> tuple[str, str, dict[str, str]]:
    """A citizen asks for a person, the queue holds it, an agent takes it and writes; the
    conversation's sender, its desk path and the agent's headers."""
    headers = agent_headers(stack)
    # An agent at the desk (each desk call marks them online): in office hours, a person can
    # answer and the citizen is queued; outside them, the question is kept for a call back.
    office_open = bool(desk(stack, "GET", "/api/handoff/queue", headers)["open"])
    sender = f"handoff-{uuid.uuid4().hex[:10]}"
    conversation_id = f"rest:{sender}"

    replies = stack.say(sender, "cho tôi gặp nhân viên")
    texts = [str(r.get("text") or "") for r in replies]
    paused = any(e.get("event") == "pause" for e in tracker_events(stack, conversation_id))
    if office_open:
        assert len(texts) == 1 and said(texts[0], "utter_handoff_queued"), texts
        assert paused
        # Paused: the citizen's message is recorded, the bot says nothing at all.
        assert stack.say(sender, "alo, có ai không?") == []
        users = [e for e in tracker_events(stack, conversation_id) if e.get("event") == "user"]
        assert users[-1]["text"] == "alo, có ai không?"
    else:
        assert len(texts) == 1 and said(texts[0], "utter_handoff_unavailable_closed"), texts
        assert hotline({"responses": domain_responses()}, "vi") in texts[0]
        assert not paused

    queue = desk(stack, "GET", "/api/handoff/queue", headers)["queue"]
    (entry,) = [q for q in queue if q["conversation_id"] == conversation_id]
    assert (entry["channel"], entry["reason"], entry["language"]) == ("rest", "request_human", "vi")
    assert entry["status"] == ("waiting" if office_open else "callback")
    assert entry["flags"]["dossier_code_given"] is False

    path = f"/api/handoff/{quote(conversation_id, safe='')}"
    desk(stack, "POST", f"{path}/take", headers)
    sent = desk(stack, "POST", f"{path}/messages", headers, json={"text": "Em chào anh ạ."})
    assert sent == {"sent": True}
    agent_lines = [
        e
        for e in tracker_events(stack, conversation_id)
        if e.get("event") == "bot" and (e.get("metadata") or {}).get("from_agent")
    ]
    # The take told the citizen a person joined (utter_handoff_agent_joined, from the agent),
    # then the agent's own text.
    assert [e["text"] for e in agent_lines][1:] == ["Em chào anh ạ."]
    assert said(str(agent_lines[0]["text"]), "utter_handoff_agent_joined"), agent_lines
    return sender, path, headers


def test_citizen_asks_for_a_person_and_an_agent_answers(stack: Stack) -> None:
    ask_and_take(stack)


def test_after_the_hand_back_the_bot_answers_again(stack: Stack) -> None:
    assert desk(stack, "GET", "/api/handoff/queue", agent_headers(stack))["open"]
    sender, path, headers = ask_and_take(stack)
    desk(stack, "POST", f"{path}/release", headers)
    greeted = stack.say(sender, "xin chào")
    assert greeted and said(str(greeted[0]["text"]), "utter_greet"), greeted


def test_handed_back_by_action_the_bot_answers_and_takes_a_rating(stack: Stack) -> None:
    """The hand-back as Rasa's API offers it (`execute` action_handoff_returned): resumed, the
    citizen is told and asked for a rating, the bot answers again, the rating reaches the desk."""
    headers = agent_headers(stack)
    assert desk(stack, "GET", "/api/handoff/queue", headers)["open"]  # OFFICE_HOURS=always
    sender, path, headers = ask_and_take(stack)
    conversation_id = f"rest:{sender}"
    answer = stack.api(
        "POST",
        f"/conversations/{conversation_id}/execute",
        params={"output_channel": "latest"},
        json={"name": "action_handoff_returned"},
    )
    assert answer.status_code == 200, answer.text
    lines = [m.get("text") for m in answer.json()["messages"]]
    assert len(lines) == 2
    assert said(str(lines[0]), "utter_handoff_returned")
    assert said(str(lines[1]), "utter_handoff_rating")

    greeted = stack.say(sender, "xin chào")
    assert greeted and said(str(greeted[0]["text"]), "utter_greet"), greeted
    thanks = stack.say(sender, '/rate_handoff{"rating": "4"}')
    assert len(thanks) == 1 and said(str(thanks[0]["text"]), "utter_handoff_thanks")
    handoff = desk(stack, "GET", f"{path}/transcript", headers)["handoff"]
    assert handoff["rating"] == 4


def test_resumed_by_an_event_the_bot_answers_the_next_message(stack: Stack) -> None:
    """The hand-back as the console does it (a `resume` event through Rasa's API, here with
    the conversation id as Rasa reads it): the next message is answered by the rules."""
    headers = agent_headers(stack)
    assert desk(stack, "GET", "/api/handoff/queue", headers)["open"]  # OFFICE_HOURS=always
    sender, _, _ = ask_and_take(stack)
    answer = stack.api(
        "POST", f"/conversations/rest:{sender}/tracker/events", json=[{"event": "resume"}]
    )
    assert answer.status_code == 200, answer.text
    greeted = stack.say(sender, "xin chào")
    assert greeted and said(str(greeted[0]["text"]), "utter_greet"), greeted
