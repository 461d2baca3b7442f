"""Handing a conversation to a call-centre agent (issue 17, bot side).

On `request_human`, or on the second fallback in a row (actions/fallback.py), the action asks the
content service's handoff queue (`POST /internal/handoff`, `X-Internal-Token`) for a person:

- queued: the citizen hears their place and the expected wait, and the conversation is paused
  (``ConversationPaused``): Rasa keeps recording the citizen's messages for the agent, the bot
  answers none of them until the console hands the conversation back (``ConversationResumed``);
- unavailable (outside office hours, nobody online): the hotline, and that the question is kept
  for an agent to answer later in this chat; not paused, the bot goes on answering;
- the console down, slow (HANDOFF_TIMEOUT) or answering nonsense: what the bot said before there
  was a queue (``utter_human_handover``: the hotline), never silence.

Back from the agent: the console can run ``action_handoff_returned`` (Rasa's
``POST /conversations/{id}/execute?output_channel=latest``), which resumes the conversation and
tells the citizen so (``utter_handoff_returned``), then asks for a rating (``utter_handoff_rating``,
buttons ``/rate_handoff{"rating": "N"}``, answered by ``action_rate_handoff``). Our Telegram and
Zalo channels give Rasa their own output channels for it; the web chat's inbox brings both lines.

The summary the agent sees says *whether* a dossier code was given and the citizen verified,
never the code, the ID number or the phone themselves. The hotline number is read from the
domain's ``utter_human_handover`` (the one place the project writes it), not copied here.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, ConversationResumed, EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.clients import ClientSettings
from actions.common import intent_name, language
from actions.content import response_text
from actions.identity import VERIFIED_MARKER

logger = logging.getLogger(__name__)

INTERNAL_HEADER = "X-Internal-Token"
HANDOFF_TIMEOUT = 0.8  # the whole request to the console, connection included
REASONS = ("request_human", "fallbacks")
# Intents that say nothing about the citizen's topic: the summary names the one before them.
NOT_A_TOPIC = frozenset(
    {
        "request_human",
        "nlu_fallback",
        "out_of_scope",
        "rate_handoff",
        "greet",
        "goodbye",
        "thank",
        "affirm",
        "deny",
        "skip",
        "inform",
        "help",
        "bot_challenge",
        "switch_language",
        "empty_message",
        "message_too_long",
    }
)
HOTLINE_SOURCE = "utter_human_handover"
# A Vietnamese hotline: 1800 xxxx (free) or 1900 xxxx, as written in the domain's replies.
HOTLINE = re.compile(r"(?<!\d)1[89]00\s?\d{4}(?!\d)")
RATING = re.compile(r"(?<!\d)([1-5])(?!\d)")
# Rasa 3.6 ends neither a paused turn nor an action run through its API (`execute`) with
# action_listen. Without it the citizen's next message after the hand-back follows no rule: the
# bot answered utter_default, and that fallback's rewind undid the hand-back (measured in
# tests/e2e/test_handoff.py). Listening here, the next message is a turn like any other.
LISTEN = (ActionExecuted("action_listen"),)


def hotline(domain: Mapping[str, Any], lang: str) -> str | None:
    """The hotline as the domain writes it in ``utter_human_handover``; None if it is not there."""
    text = response_text(dict(domain), HOTLINE_SOURCE, lang) or ""
    found = HOTLINE.search(text)
    return found.group(0) if found else None


def topic_intent(tracker: Tracker) -> str | None:
    """The citizen's latest intent that names a topic (not "a person, please", not a miss)."""
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        name = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if name and name not in NOT_A_TOPIC:
            return str(name)
    latest = intent_name(tracker)
    return latest if latest and latest not in NOT_A_TOPIC else None


def summary(tracker: Tracker) -> dict[str, Any]:
    """What the agent sees at once: booleans only for the code and the verification."""
    procedure = tracker.get_slot("procedure")
    return {
        "intent": topic_intent(tracker),
        "procedure": str(procedure) if procedure else None,
        "dossier_code_given": bool(tracker.get_slot("dossier_code")),
        "verified": tracker.get_slot("otp") == VERIFIED_MARKER,
    }


def handoff_request(tracker: Tracker, reason: str) -> dict[str, Any]:
    return {
        "conversation_id": tracker.sender_id,
        "channel": tracker.get_latest_input_channel(),
        "language": language(tracker),
        "reason": reason,
        "summary": summary(tracker),
    }


class HandoffClient:
    """The content service's internal handoff routes; every failure is an answer of ``None``."""

    def __init__(
        self,
        base_url: str,
        token: str = "",
        *,
        timeout: float = HANDOFF_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers[INTERNAL_HEADER] = token
        self.timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                headers=self._headers,
                transport=self._transport,
                timeout=self.timeout,
            )
        return self._client

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            answer = await asyncio.wait_for(self._http().post(path, json=body), self.timeout)
            answer.raise_for_status()
            data = answer.json()
        except (httpx.HTTPError, asyncio.TimeoutError, ValueError) as exc:
            logger.warning("handoff: %s failed (%s)", path.split("/")[2], type(exc).__name__)
            return None
        return data if isinstance(data, dict) else None

    async def request(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The queue's answer (``queued`` or ``unavailable``); None if it could not be had."""
        data = await self._post("/internal/handoff", body)
        if data is None or data.get("status") not in ("queued", "unavailable"):
            return None
        if data["status"] == "queued" and not all(
            isinstance(data.get(key), int) for key in ("position", "wait_minutes")
        ):
            return None
        return data

    async def rate(self, conversation_id: str, score: int) -> bool:
        path = f"/internal/handoff/{quote(conversation_id, safe='')}/rating"
        return await self._post(path, {"score": score}) is not None

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


_client: HandoffClient | None = None


def handoff_client() -> HandoffClient:
    """The process-wide client, built from the environment on first use."""
    global _client
    if _client is None:
        settings = ClientSettings.from_env()
        _client = HandoffClient(settings.content_url, settings.content_token)
    return _client


def set_handoff_client(value: HandoffClient | None) -> None:
    """Replace the client (tests hand in one built on httpx.MockTransport)."""
    global _client
    _client = value


async def hand_off(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    domain: Mapping[str, Any],
    reason: str,
    *,
    console_down: str = "utter_human_handover",
) -> list[EventType]:
    """Ask for a person and tell the citizen what happens next; the events to return.

    ``console_down`` is the reply when the queue cannot be reached (a second fallback in a row
    keeps its own, which also says the bot did not understand).
    """
    answer = await handoff_client().request(handoff_request(tracker, reason))
    if answer is None:
        dispatcher.utter_message(response=console_down)
        return []
    if answer["status"] == "queued":
        logger.info("handoff %s queued (%s)", answer.get("handoff_id"), reason)
        dispatcher.utter_message(
            response="utter_handoff_queued",
            position=answer["position"],
            wait_minutes=answer["wait_minutes"],
        )
        return [ConversationPaused(), *LISTEN]
    logger.info("handoff %s unavailable (%s)", answer.get("handoff_id"), answer.get("why"))
    number = hotline(domain, language(tracker))
    if number is None:
        logger.error("handoff: no hotline in %s; saying it instead", HOTLINE_SOURCE)
        dispatcher.utter_message(response=HOTLINE_SOURCE)
        return []
    response = (
        "utter_handoff_unavailable_closed"
        if answer.get("why") == "closed"
        else "utter_handoff_unavailable_nobody"
    )
    dispatcher.utter_message(response=response, hotline=number)
    return []


class ActionHandoff(Action):
    """The citizen asks for a person (rule in stories/handoff.yml)."""

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return await hand_off(dispatcher, tracker, domain, "request_human")


class ActionHandoffReturned(Action):
    """The agent handed the conversation back: the bot answers again, and asks for a rating."""

    def name(self) -> str:
        return "action_handoff_returned"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_handoff_returned")
        dispatcher.utter_message(response="utter_handoff_rating")
        return [ConversationResumed(), *LISTEN]


def rating(tracker: Tracker) -> int | None:
    """1-5 from the button's ``rating`` entity, else from a typed "5 sao"."""
    values = [
        str(e.get("value"))
        for e in tracker.latest_message.get("entities", [])
        if e.get("entity") == "rating"
    ]
    for candidate in [*values, str(tracker.latest_message.get("text") or "")]:
        found = RATING.search(candidate)
        if found:
            return int(found.group(1))
    return None


class ActionRateHandoff(Action):
    """The one-question rating after an agent handed the conversation back."""

    def name(self) -> str:
        return "action_rate_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        score = rating(tracker)
        if score is not None and not await handoff_client().rate(tracker.sender_id, score):
            logger.info("handoff rating not recorded")
        dispatcher.utter_message(response="utter_handoff_thanks")
        return []
