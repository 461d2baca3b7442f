"""Handing a conversation to an agent: the queue's answers, the console down, and what the
request may never carry (the code, the ID number, the phone)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.fallback import ActionClarify
from actions.handoff import (
    HOTLINE,
    ActionHandoff,
    ActionHandoffReturned,
    ActionRateHandoff,
    HandoffClient,
    hotline,
    set_handoff_client,
)
from tests.actions.helpers import json_response, make_tracker, message, responses

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "internal-test-token"


def load_domain() -> dict[str, Any]:
    """The real domain's responses: the hotline must come from there."""
    merged: dict[str, Any] = {"responses": {}}
    for path in sorted((ROOT / "bot" / "domain").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        merged["responses"].update(data.get("responses") or {})
    return merged


DOMAIN = load_domain()


class FakeConsole:
    """The content service's handoff routes, recording what the action sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answer: Callable[[httpx.Request], httpx.Response] = lambda r: json_response(
            200, {"status": "queued", "handoff_id": "h1", "position": 3, "wait_minutes": 6}
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


@pytest.fixture
def console() -> Iterator[FakeConsole]:
    fake = FakeConsole()
    set_handoff_client(
        HandoffClient(
            "http://console.test", TOKEN, transport=httpx.MockTransport(fake.handle), timeout=0.3
        )
    )
    yield fake
    set_handoff_client(None)


def human_tracker(**slots: Any) -> Tracker:
    tracker = make_tracker(slots=slots, intent="request_human", sender_id="web:abc")
    tracker.events = [
        {
            "event": "user",
            "input_channel": "webchat",
            "parse_data": {"intent": {"name": "check_status"}},
        },
        {
            "event": "user",
            "input_channel": "webchat",
            "parse_data": {"intent": {"name": "request_human"}},
        },
    ]
    return tracker


async def test_queued_pauses_the_conversation_and_tells_the_place(console: FakeConsole) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionHandoff().run(
        dispatcher, human_tracker(procedure="passport", language="en"), DOMAIN
    )
    assert [e["event"] for e in events] == ["pause", "action"]
    assert events[1]["name"] == "action_listen"  # the next turn after the hand-back fits the rules
    assert responses(dispatcher) == ["utter_handoff_queued"]
    queued = message(dispatcher, "utter_handoff_queued")
    assert (queued["position"], queued["wait_minutes"]) == (3, 6)
    (request,) = console.requests
    assert request.url.path == "/internal/handoff"
    assert request.headers["X-Internal-Token"] == TOKEN
    assert console.bodies() == [
        {
            "conversation_id": "web:abc",
            "channel": "webchat",
            "language": "en",
            "reason": "request_human",
            "summary": {
                "intent": "check_status",
                "procedure": "passport",
                "dossier_code_given": False,
                "verified": False,
            },
        }
    ]


@pytest.mark.parametrize(
    ("why", "response"),
    [
        ("closed", "utter_handoff_unavailable_closed"),
        ("nobody_online", "utter_handoff_unavailable_nobody"),
    ],
)
async def test_unavailable_gives_the_domains_hotline_and_does_not_pause(
    console: FakeConsole, why: str, response: str
) -> None:
    console.answer = lambda r: json_response(
        200, {"status": "unavailable", "handoff_id": "h2", "why": why}
    )
    dispatcher = CollectingDispatcher()
    events = await ActionHandoff().run(dispatcher, human_tracker(), DOMAIN)
    assert events == []
    assert responses(dispatcher) == [response]
    number = message(dispatcher, response)["hotline"]
    assert number == hotline(DOMAIN, "vi")
    assert number in DOMAIN["responses"]["utter_human_handover"][0]["text"]


def slow(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


@pytest.mark.parametrize(
    "answer",
    [
        slow,
        lambda r: json_response(503, {"error": "down"}),
        lambda r: httpx.Response(200, content=b"<html>"),
        lambda r: json_response(200, {"status": "queued", "handoff_id": "h"}),  # no position
        lambda r: json_response(401, {"error": "unauthorized"}),
    ],
    ids=["refused", "503", "not json", "incomplete", "401"],
)
async def test_console_down_or_wrong_says_the_hotline_as_before(
    console: FakeConsole, answer: Callable[[httpx.Request], httpx.Response]
) -> None:
    console.answer = answer
    dispatcher = CollectingDispatcher()
    assert await ActionHandoff().run(dispatcher, human_tracker(), DOMAIN) == []
    assert responses(dispatcher) == ["utter_human_handover"]


async def test_console_too_slow_is_given_up_within_the_budget() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return json_response(200, {"status": "queued", "position": 1, "wait_minutes": 1})

    class Hanging(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await hang(request)

    set_handoff_client(
        HandoffClient("http://console.test", TOKEN, transport=Hanging(), timeout=0.2)
    )
    try:
        dispatcher = CollectingDispatcher()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await ActionHandoff().run(dispatcher, human_tracker(), DOMAIN)
        assert loop.time() - started < 1.0
        assert responses(dispatcher) == ["utter_human_handover"]
    finally:
        set_handoff_client(None)


async def test_the_request_never_carries_the_code_the_id_number_or_the_phone(
    console: FakeConsole,
) -> None:
    tracker = human_tracker(
        dossier_code="000.00.10.H26-261110-0001",
        id_number="001234567890",
        otp="verified",
        masked_phone="0912345678",
        phone_number="0912 345 678",
    )
    tracker.latest_message["text"] = "tôi là 001234567890, sđt 0912345678, gặp nhân viên"
    await ActionHandoff().run(CollectingDispatcher(), tracker, DOMAIN)
    raw = console.requests[0].content.decode()
    assert not re.search(r"\d{12}", raw)
    assert not re.search(r"0\d{2}\s?\d{3}\s?\d{3,4}", raw)
    assert "H26" not in raw
    summary = console.bodies()[0]["summary"]
    assert summary["dossier_code_given"] is True
    assert summary["verified"] is True


def fallback_tracker() -> Tracker:
    tracker = make_tracker(intent="nlu_fallback", sender_id="telegram:42")
    tracker.events = [
        {
            "event": "user",
            "input_channel": "telegram_ptb",
            "parse_data": {"intent": {"name": "nlu_fallback"}},
        },
        {
            "event": "user",
            "input_channel": "telegram_ptb",
            "parse_data": {"intent": {"name": "nlu_fallback"}},
        },
    ]
    return tracker


async def test_second_fallback_in_a_row_hands_off(console: FakeConsole) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionClarify().run(dispatcher, fallback_tracker(), DOMAIN)
    assert [(e["event"], e.get("name")) for e in events] == [
        ("pause", None),
        ("action", "action_listen"),
    ]
    assert responses(dispatcher) == ["utter_handoff_queued"]
    body = console.bodies()[0]
    assert (body["reason"], body["channel"], body["summary"]["intent"]) == (
        "fallbacks",
        "telegram_ptb",
        None,
    )


async def test_second_fallback_with_the_console_down_admits_it(console: FakeConsole) -> None:
    console.answer = slow
    dispatcher = CollectingDispatcher()
    assert await ActionClarify().run(dispatcher, fallback_tracker(), DOMAIN) == []
    assert responses(dispatcher) == ["utter_cannot_help"]


async def test_rating_is_posted_and_thanked(console: FakeConsole) -> None:
    console.answer = lambda r: json_response(200, {"ok": True})
    tracker = make_tracker(
        intent="rate_handoff",
        entities=[{"entity": "rating", "value": "4"}],
        sender_id="zalo:7/x",
    )
    dispatcher = CollectingDispatcher()
    assert await ActionRateHandoff().run(dispatcher, tracker, DOMAIN) == []
    assert responses(dispatcher) == ["utter_handoff_thanks"]
    (request,) = console.requests
    assert request.url.raw_path.decode() == "/internal/handoff/zalo%3A7%2Fx/rating"
    assert json.loads(request.content) == {"score": 4}


async def test_typed_rating_and_console_down_still_thank(console: FakeConsole) -> None:
    console.answer = slow
    tracker = make_tracker(intent="rate_handoff", text="cho 5 sao")
    dispatcher = CollectingDispatcher()
    await ActionRateHandoff().run(dispatcher, tracker, DOMAIN)
    assert json.loads(console.requests[0].content) == {"score": 5}
    assert responses(dispatcher) == ["utter_handoff_thanks"]


async def test_handed_back_resumes_and_asks_for_a_rating() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionHandoffReturned().run(dispatcher, make_tracker(), DOMAIN)
    assert [(e["event"], e.get("name")) for e in events] == [
        ("resume", None),
        ("action", "action_listen"),
    ]
    assert responses(dispatcher) == ["utter_handoff_returned", "utter_handoff_rating"]


def test_the_rating_buttons_send_what_the_rating_action_reads() -> None:
    for variation in DOMAIN["responses"]["utter_handoff_rating"]:
        payloads = [b["payload"] for b in variation["buttons"]]
        assert payloads == [f'/rate_handoff{{"rating": "{n}"}}' for n in range(1, 6)]


def test_every_hotline_in_the_domain_is_the_same_number() -> None:
    """The handoff replies take the hotline from utter_human_handover; the other replies that
    write it out must agree with it."""
    numbers = {
        found.replace(" ", "")
        for variations in DOMAIN["responses"].values()
        for variation in variations
        for found in HOTLINE.findall(str(variation.get("text") or ""))
    }
    assert numbers == {hotline(DOMAIN, "vi")} == {hotline(DOMAIN, "en")}
