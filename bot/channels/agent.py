"""Messages from a call-centre agent to a citizen, in the citizen's own channel.

Every channel of ours mounts ``POST /webhooks/<channel>/agent`` (``add_agent_route``), which
the staff console calls with Rasa's own API token (``Authorization: Bearer <RASA_AUTH_TOKEN>``)
and ``{"conversation_id", "text", "agent"}``. The route checks the token (no token configured:
403 always), the body (422), that the conversation belongs to this channel and exists in the
tracker store (404), then hands the text to the channel's ``deliver`` (Telegram's sendMessage,
Zalo's customer-service message; the web chat's inbox reads the tracker instead; REST has no
push) and appends ``BotUttered(text, metadata={"from_agent": agent})`` to the tracker under the
conversation's lock (Rasa's lock store, shared by every replica), so the transcript shows it and
nothing races with the citizen's own messages. Texts are never logged.

Rasa's ``output_channel=latest`` is not used: Rasa 3.6's Telegram output is broken, REST has none,
and the web chat answers only the citizen's own requests.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.common import MAX_BODY_BYTES
from bot.logmask import PiiFilter
from bot.settings import AgentChannelSettings

logger = logging.getLogger(__name__)
logger.addFilter(PiiFilter())

AGENT_PATH = "/agent"
FROM_AGENT = "from_agent"
MAX_TEXT_CHARS = 4000
MAX_ID_CHARS = 256
MAX_AGENT_CHARS = 128


@dataclass(frozen=True)
class AgentMessage:
    """What the agent sent, and when the citizen last wrote (from the tracker)."""

    conversation_id: str
    text: str
    agent: str
    last_user_at: float | None = None


class DeliveryRefused(Exception):
    """The channel cannot deliver the message; ``status`` and ``error`` go back to the console."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


Deliver = Callable[[AgentMessage], Awaitable[None]]
Recorded = Callable[[str, BotUttered], None]


def _answer(body: dict[str, Any], status: int = 200) -> HTTPResponse:
    return response.json(body, status=status, headers={"Cache-Control": "no-store"})


def authorised(request: Request, token: str) -> bool:
    """``Authorization: Bearer <token>`` with Rasa's token; never with no token configured."""
    if not token:
        return False
    scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def parse_agent_message(body: bytes) -> AgentMessage | None:
    """The three fields, each a non-empty string within its limit; None otherwise."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    fields = {"conversation_id": MAX_ID_CHARS, "text": MAX_TEXT_CHARS, "agent": MAX_AGENT_CHARS}
    values: dict[str, str] = {}
    for name, limit in fields.items():
        value = data.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            return None
        values[name] = value if name == "text" else value.strip()
    return AgentMessage(values["conversation_id"], values["text"].strip(), values["agent"])


def last_user_at(events: Any) -> float | None:
    """When the citizen last wrote in this conversation (Zalo's window counts from it)."""
    for event in reversed(list(events)):
        if isinstance(event, UserUttered):
            return float(event.timestamp)
    return None


def add_agent_route(
    blueprint: Blueprint,
    *,
    channel: str,
    sender_prefix: str,
    deliver: Deliver | None,
    settings: AgentChannelSettings,
    recorded: Recorded | None = None,
) -> None:
    """Mount ``POST /agent`` on a channel's blueprint (see the module docstring).

    ``deliver`` sends the text through the channel's platform (None: nothing to push);
    ``recorded(conversation_id, event)`` is told once the message is in the tracker (the web chat
    wakes its inbox with it).
    """

    @blueprint.route(AGENT_PATH, methods=["POST"])
    async def agent_message(request: Request) -> HTTPResponse:
        if not authorised(request, settings.token):
            logger.warning(
                "%s: agent message from %s refused: missing or wrong token",
                channel,
                request.remote_addr or request.ip,
            )
            return _answer({"error": "forbidden"}, 403)
        if len(request.body or b"") > MAX_BODY_BYTES:
            return _answer({"error": "too_large"}, 413)
        message = parse_agent_message(request.body or b"")
        if message is None:
            return _answer({"error": "bad_request"}, 422)
        if not message.conversation_id.startswith(sender_prefix):
            return _answer({"error": "unknown_conversation"}, 404)
        rasa = getattr(request.app.ctx, "agent", None)
        if rasa is None or rasa.tracker_store is None:
            return _answer({"error": "unavailable"}, 503)
        tracker = await rasa.tracker_store.retrieve(message.conversation_id)
        if tracker is None:
            return _answer({"error": "unknown_conversation"}, 404)
        message = AgentMessage(
            message.conversation_id, message.text, message.agent, last_user_at(tracker.events)
        )
        if deliver is not None:
            try:
                await deliver(message)
            except DeliveryRefused as exc:
                logger.warning(
                    "%s: agent message to %s not delivered: %s",
                    channel,
                    message.conversation_id,
                    exc.error,
                )
                return _answer({"error": exc.error}, exc.status)
        event = await record(rasa, message)
        if recorded is not None and event is not None:
            recorded(message.conversation_id, event)
        logger.info("%s: agent message delivered to %s", channel, message.conversation_id)
        return _answer({"sent": True})


async def record(rasa: Any, message: AgentMessage) -> BotUttered | None:
    """Append the agent's message to the tracker, holding the conversation's lock."""
    async with rasa.lock_store.lock(message.conversation_id):
        tracker = await rasa.tracker_store.retrieve(message.conversation_id)
        if tracker is None:  # deleted meanwhile (retention): nothing to append to
            return None
        event = BotUttered(message.text, metadata={FROM_AGENT: message.agent})
        tracker.update(event)
        await rasa.tracker_store.save(tracker)
        return event


class InboxSignals:
    """Wakes this process's long-polls when an agent message to their conversation is recorded
    here; messages recorded by another replica are found by the poll of the tracker store."""

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}

    def notify(self, conversation_id: str) -> None:
        for event in self._events.get(conversation_id, ()):
            event.set()

    async def wait(self, conversation_id: str, timeout: float) -> None:
        event = asyncio.Event()
        waiters = self._events.setdefault(conversation_id, set())
        waiters.add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            waiters.discard(event)
            if not waiters:
                self._events.pop(conversation_id, None)
