from __future__ import annotations

import httpx
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.fallback import ActionClarify
from actions.handoff import HandoffClient, set_handoff_client
from tests.actions.helpers import make_tracker, responses

DOMAIN = {
    "responses": {
        "utter_title_ask_fee": [{"text": "Lệ phí"}],
        "utter_title_ask_processing_time": [{"text": "Thời gian giải quyết"}],
        "utter_title_check_status": [{"text": "Tra cứu hồ sơ"}],
    }
}
RANKING = [
    {"name": "nlu_fallback", "confidence": 0.6},
    {"name": "ask_fee", "confidence": 0.3},
    {"name": "ask_processing_time", "confidence": 0.25},
    {"name": "greet", "confidence": 0.2},
    {"name": "check_status", "confidence": 0.02},
]


def fallback_tracker(previous: str | None) -> Tracker:
    tracker = make_tracker(
        intent="nlu_fallback",
        entities=[{"entity": "procedure", "value": "passport"}],
        intent_ranking=RANKING,
    )
    if previous:
        tracker.events = [
            {"event": "user", "parse_data": {"intent": {"name": previous}}},
            {"event": "user", "parse_data": {"intent": {"name": "nlu_fallback"}}},
        ]
    return tracker


async def test_offers_the_likely_topics_as_buttons() -> None:
    dispatcher = CollectingDispatcher()
    await ActionClarify().run(dispatcher, fallback_tracker("greet"), DOMAIN)
    assert responses(dispatcher) == ["utter_clarify"]
    assert dispatcher.messages[0]["buttons"] == [
        {"title": "Lệ phí", "payload": '/ask_fee{"procedure": "passport"}'},
        {
            "title": "Thời gian giải quyết",
            "payload": '/ask_processing_time{"procedure": "passport"}',
        },
    ]


async def test_second_miss_in_a_row_with_no_handoff_queue_points_to_the_hotline() -> None:
    """The second miss hands off (tests/actions/test_handoff.py); with the queue unreachable
    the bot admits it and points to the hotline, as before there was a queue."""

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    set_handoff_client(HandoffClient("http://console.test", transport=httpx.MockTransport(refused)))
    try:
        dispatcher = CollectingDispatcher()
        await ActionClarify().run(dispatcher, fallback_tracker("nlu_fallback"), DOMAIN)
    finally:
        set_handoff_client(None)
    assert responses(dispatcher) == ["utter_cannot_help"]


async def test_nothing_likely_asks_to_rephrase() -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(intent="nlu_fallback", intent_ranking=RANKING[:1])
    await ActionClarify().run(dispatcher, tracker, DOMAIN)
    assert responses(dispatcher) == ["utter_default"]
