"""Zalo Official Account (OA) channel for Rasa.

API versions this module follows:
- Zalo OA webhook: header ``X-ZEvent-Signature: mac=<hex>`` where
  ``<hex> = sha256(app_id + raw request body + timestamp + OA secret key)`` (``timestamp`` is the
  field of the JSON body, in milliseconds since the epoch; the OA secret key is the one of the
  OA linked to the app, not the app secret). Zalo expects 200 within about 2 seconds, so
  messages are handled in the background.
  Events used: ``user_send_text`` (also what an ``oa.query.*`` button press sends); other
  ``user_send_*`` events get a polite protocol fallback; everything else is acknowledged and
  ignored.
- Zalo OA Open API v3.0: ``POST {ZALO_API_BASE_URL}/v3.0/oa/message/cs`` with header
  ``access_token``; body ``{"recipient": {"user_id": ...}, "message": {...}}``; answers HTTP 200
  with ``{"error": 0, ...}`` on success and a negative ``error`` code otherwise. Text at most
  2000 characters; a "template" attachment carries at most 5 buttons of type
  ``oa.query.show`` / ``oa.query.hide`` (payload string, at most 1000 characters, title at most
  100) or ``oa.open.url``.
- Zalo's rule for consultation ("tư vấn") messages as of 2026: an OA may send them only within
  7 days of the user's last interaction (free within 48 hours). We keep each user's last
  interaction time in memory and never send outside the window (``ZALO_CS_WINDOW_HOURS``).
- Rasa 3.6 custom connectors (``InputChannel.blueprint``, ``OutputChannel.send_response``).

A webhook call is checked in this order, each step before any work the next one costs: body at
most 64 KiB (else 413); signature over the raw bytes, with the timestamp read from them by a
bounded pattern, so a forged body is never parsed (else 401); timestamp within the replay
window (else 401 ``stale``); only then ``json.loads``; then ``msg_id`` (or event, sender and
timestamp) through the shared ``ChannelState`` store, so a redelivery is handled once.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.agent import AgentMessage, DeliveryRefused, add_agent_route
from bot.channels.common import (
    MAX_BODY_BYTES,
    BackgroundTasks,
    KeyedLocks,
    LruDict,
    RetryPolicy,
    call_with_retry,
    loggable_text,
    protocol_text,
    read_limited_body,
    split_text,
)
from bot.channels.state import ChannelState, StateUnavailable, default_channel_state
from bot.logmask import PiiFilter
from bot.settings import AgentChannelSettings

logger = logging.getLogger(__name__)
logger.addFilter(PiiFilter())

CHANNEL_NAME = "zalo"
SENDER_PREFIX = "zalo:"
SIGNATURE_HEADER = "X-ZEvent-Signature"
DEFAULT_API_BASE_URL = "https://openapi.zalo.me"
CS_MESSAGE_PATH = "/v3.0/oa/message/cs"
TEXT_LIMIT = 2000
MAX_BUTTONS = 5
MAX_BUTTON_TITLE = 100
MAX_QUERY_PAYLOAD = 1000
# Events that count as the user interacting with the OA (they open the messaging window).
INTERACTION_EVENTS = frozenset({"follow", "user_click_chatnow", "user_submit_info"})
# The signed timestamp, read from the raw body before it is parsed: first match, bounded.
TIMESTAMP_PATTERN = re.compile(rb'"timestamp"\s{0,32}:\s{0,32}"?(\d{1,16})(?!\d)')
DEFAULT_REPLAY_WINDOW_SECONDS = 300.0
MAX_FUTURE_SECONDS = 60.0  # clock skew we tolerate for an event stamped in the future
# Numbered choices hold until the user's next message; one left unanswered goes after a day.
CHOICES_TTL_SECONDS = 24 * 3600.0

Clock = Callable[[], float]


@dataclass(frozen=True)
class ZaloSettings:
    """Settings of the Zalo channel; secrets come only from the environment."""

    app_id: str = ""
    oa_secret_key: str = ""
    access_token: str = ""
    api_base_url: str = DEFAULT_API_BASE_URL
    window_hours: float = 7 * 24
    free_hours: float = 48
    timeout_seconds: float = 10.0
    language: str = "vi"
    replay_window_seconds: float = DEFAULT_REPLAY_WINDOW_SECONDS
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> ZaloSettings:
        """Read ZALO_* variables; ``overrides`` (keys of the credentials.yml block) win.

        Secrets reach credentials.yml only as ``${VAR}`` references, which Rasa expands.
        """
        env = os.environ if env is None else env
        overrides = overrides or {}

        def pick(key: str, var: str, default: Any) -> Any:
            return overrides.get(key) or env.get(var) or default

        return cls(
            app_id=str(pick("app_id", "ZALO_APP_ID", "")),
            oa_secret_key=str(pick("oa_secret_key", "ZALO_OA_SECRET_KEY", "")),
            access_token=str(pick("access_token", "ZALO_OA_ACCESS_TOKEN", "")),
            api_base_url=str(pick("api_base_url", "ZALO_API_BASE_URL", DEFAULT_API_BASE_URL)),
            window_hours=float(pick("window_hours", "ZALO_CS_WINDOW_HOURS", 7 * 24)),
            timeout_seconds=float(pick("timeout_seconds", "ZALO_TIMEOUT_SECONDS", 10.0)),
            language=str(pick("language", "ZALO_FALLBACK_LANGUAGE", "vi")),
            replay_window_seconds=float(
                pick(
                    "replay_window_seconds",
                    "ZALO_REPLAY_WINDOW_SECONDS",
                    DEFAULT_REPLAY_WINDOW_SECONDS,
                )
            ),
            retry=replace(
                RetryPolicy(), attempts=max(1, int(pick("send_attempts", "ZALO_SEND_ATTEMPTS", 3)))
            ),
        )


def zalo_signature(app_id: str, body: bytes, timestamp: str, oa_secret_key: str) -> str:
    """The value Zalo puts in ``X-ZEvent-Signature`` for this request."""
    digest = hashlib.sha256(
        app_id.encode() + body + timestamp.encode() + oa_secret_key.encode()
    ).hexdigest()
    return f"mac={digest}"


class Refused(Exception):
    """A webhook call we do not act on; the message is the reason, for the log."""


def signed_timestamp(body: bytes) -> str | None:
    """The body's ``timestamp`` field as Zalo signs it, read without parsing the JSON."""
    match = TIMESTAMP_PATTERN.search(body)
    return match.group(1).decode("ascii") if match else None


def verify_signature(settings: ZaloSettings, body: bytes, header: str | None) -> str:
    """The signed timestamp of an authentic request; raises ``Refused`` otherwise.

    Works on the raw bytes only: the timestamp is part of the signed body, so it cannot be
    changed without the OA secret key, and a forged body never reaches ``json.loads``.
    """
    if not settings.app_id or not settings.oa_secret_key:
        raise Refused("ZALO_APP_ID or ZALO_OA_SECRET_KEY is not set")
    if not header:
        raise Refused(f"no {SIGNATURE_HEADER} header")
    timestamp = signed_timestamp(body)
    if timestamp is None:
        raise Refused("body without a timestamp")
    provided = header.strip()
    if not provided.startswith("mac="):
        provided = f"mac={provided}"
    expected = zalo_signature(settings.app_id, body, timestamp, settings.oa_secret_key)
    if not hmac.compare_digest(provided.encode(), expected.encode()):
        raise Refused("wrong signature")
    return timestamp


def check_fresh(timestamp: str, now: float, window_seconds: float) -> None:
    """Refuse an event stamped (in ms) longer than the window ago, or too far in the future.

    Zalo signs the timestamp, so a captured request cannot be made fresh again: without this
    check it could be replayed at any time later.
    """
    age = now - int(timestamp) / 1000
    if age > window_seconds:
        raise Refused(f"event {age:.0f} s old (replay window {window_seconds:.0f} s)")
    if age < -MAX_FUTURE_SECONDS:
        raise Refused(f"event stamped {-age:.0f} s in the future")


@dataclass
class Interaction:
    at: float
    message_id: str | None = None
    sent: int = 0


class InteractionLog:
    """When each user last interacted with the OA: the customer-service window rule."""

    def __init__(self, settings: ZaloSettings, clock: Clock = time.time) -> None:
        self.window_seconds = settings.window_hours * 3600
        self.free_seconds = settings.free_hours * 3600
        self.clock = clock
        self._last: LruDict[str, Interaction] = LruDict(200_000)

    def note_user(self, user_id: str, message_id: str | None = None) -> None:
        self._last.set(user_id, Interaction(at=self.clock(), message_id=message_id))

    def can_send(self, user_id: str) -> bool:
        last = self._last.get(user_id)
        return last is not None and self.clock() - last.at <= self.window_seconds

    def note_sent(self, user_id: str) -> None:
        last = self._last.get(user_id)
        if last is None:
            return
        last.sent += 1
        if self.clock() - last.at > self.free_seconds:
            logger.info("zalo: message to user %s sent after the free 48 h window", user_id)


class ButtonChoices:
    """The choices last offered to each user, so a reply "2" means the second button.

    Kept in the channel state (shared by every replica: the answer may reach another one than
    the offer) for one turn: the next message of the user takes them, whatever it says.
    """

    def __init__(self, state: ChannelState, ttl_seconds: float = CHOICES_TTL_SECONDS) -> None:
        self.state = state
        self.ttl_seconds = ttl_seconds

    @staticmethod
    def key(user_id: str) -> str:
        return f"choices:{user_id}"

    async def offer(self, user_id: str, payloads: Sequence[str]) -> None:
        """Raises ``StateUnavailable`` if the choices cannot be kept."""
        value = json.dumps(list(payloads), ensure_ascii=False)
        await self.state.put(CHANNEL_NAME, self.key(user_id), value, self.ttl_seconds)

    async def resolve(self, user_id: str, text: str) -> str:
        """The payload for a numeric answer to the last choices; the choices hold one turn.

        Raises ``StateUnavailable`` if the choices cannot be read.
        """
        raw = await self.state.pop(CHANNEL_NAME, self.key(user_id))
        answer = text.strip().rstrip(".")
        if raw is None or not answer.isdigit():
            return text
        try:
            choices = json.loads(raw)
        except ValueError:
            return text
        if isinstance(choices, list) and 1 <= int(answer) <= len(choices):
            return str(choices[int(answer) - 1])
        return text


def to_zalo_buttons(buttons: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
    """Rasa buttons -> Zalo template buttons; ``None`` if Zalo cannot show them all."""
    if not buttons or len(buttons) > MAX_BUTTONS:
        return None
    mapped: list[dict[str, Any]] = []
    for button in buttons:
        title = str(button.get("title") or button.get("payload") or "")
        if not title or len(title) > MAX_BUTTON_TITLE:
            return None
        url = button.get("url")
        if url:
            mapped.append({"title": title, "type": "oa.open.url", "payload": {"url": str(url)}})
            continue
        payload = str(button.get("payload") or title)
        if len(payload) > MAX_QUERY_PAYLOAD:
            return None
        # An intent payload ("/affirm") would look odd in the chat: send it hidden.
        kind = "oa.query.hide" if payload.startswith("/") else "oa.query.show"
        mapped.append({"title": title, "type": kind, "payload": payload})
    return mapped


class ZaloApiError(Exception):
    """Zalo answered with a non-zero ``error`` code (not retried)."""


class ZaloClient:
    """The OA message API (v3.0 ``/oa/message/cs``) on ``httpx.AsyncClient``."""

    def __init__(
        self, settings: ZaloSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.settings.api_base_url.rstrip("/"),
                timeout=httpx.Timeout(self.settings.timeout_seconds),
                transport=self._transport,
            )
        return self._client

    async def send_cs(self, user_id: str, message: Mapping[str, Any]) -> bool:
        """Send one consultation message; retries transient failures, never raises."""
        body = {"recipient": {"user_id": user_id}, "message": dict(message)}
        headers = {"access_token": self.settings.access_token}

        async def post() -> dict[str, Any]:
            reply = await self.client.post(CS_MESSAGE_PATH, json=body, headers=headers)
            reply.raise_for_status()
            data = reply.json()
            if not isinstance(data, dict) or data.get("error", 0) != 0:
                code = data.get("error") if isinstance(data, dict) else None
                text = data.get("message") if isinstance(data, dict) else None
                raise ZaloApiError(f"error {code}: {text}")
            return data

        try:
            data = await call_with_retry(
                post, policy=self.settings.retry, retry_delay=_zalo_retry_delay, what="Zalo send"
            )
        except ZaloApiError as exc:
            logger.error("zalo: message to user %s refused: %s", user_id, exc)
            return False
        except httpx.HTTPError as exc:
            logger.error(
                "zalo: message to user %s failed for good: %s", user_id, type(exc).__name__
            )
            return False
        quota = (data.get("data") or {}).get("quota") or {}
        logger.debug("zalo: sent to user %s (quota %s)", user_id, quota.get("quota_type"))
        return True

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def _zalo_retry_delay(exc: BaseException) -> float | None:
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return 0.0 if status >= 500 or status == 429 else None
    if isinstance(exc, httpx.TransportError):  # timeouts, connection errors
        return 0.0
    return None


class ZaloOutput(OutputChannel):
    """Sends Rasa's replies as Zalo consultation messages, only inside the allowed window."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL_NAME

    def __init__(
        self,
        client: ZaloClient,
        interactions: InteractionLog,
        choices: ButtonChoices,
        language: str = "vi",
    ) -> None:
        self.client = client
        self.interactions = interactions
        self.choices = choices
        self.language = language

    async def _send(self, user_id: str, message: Mapping[str, Any]) -> bool:
        ok = await self.client.send_cs(user_id, message)
        if ok:
            self.interactions.note_sent(user_id)
        return ok

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        user_id = recipient_id.removeprefix(SENDER_PREFIX)
        if not self.interactions.can_send(user_id):
            logger.warning(
                "zalo: reply to user %s not sent: outside the customer-service window "
                "(%.0f h after the user's last interaction)",
                user_id,
                self.interactions.window_seconds / 3600,
            )
            return
        text = str(message.get("text") or "")
        buttons = message.get("buttons") or message.get("quick_replies") or []
        if buttons:
            await self._send_with_buttons(user_id, text, buttons)
        else:
            for chunk in split_text(text, TEXT_LIMIT):
                await self._send(user_id, {"text": chunk})
        image = message.get("image")
        if image:
            media = {"media_type": "image", "url": str(image)}
            await self._send(
                user_id,
                {
                    "attachment": {
                        "type": "template",
                        "payload": {"template_type": "media", "elements": [media]},
                    }
                },
            )
        custom = message.get("custom")
        if isinstance(custom, Mapping) and isinstance(custom.get("zalo"), Mapping):
            # e.g. a "request_user_info" template written in the domain's custom payload
            await self._send(user_id, custom["zalo"])

    async def _send_with_buttons(
        self, user_id: str, text: str, buttons: Sequence[Mapping[str, Any]]
    ) -> None:
        chunks = split_text(text, TEXT_LIMIT) or [""]
        for chunk in chunks[:-1]:
            await self._send(user_id, {"text": chunk})
        payloads = [str(b.get("payload") or b.get("title") or "") for b in buttons]
        try:
            await self.choices.offer(user_id, payloads)
        except StateUnavailable as exc:
            # The buttons still work (they carry their payloads); a typed number will not.
            logger.error("zalo: choices for user %s not kept: %s", user_id, exc)
        zalo_buttons = to_zalo_buttons(buttons)
        if zalo_buttons is not None:
            template = {"type": "template", "payload": {"buttons": zalo_buttons}}
            if await self._send(user_id, {"text": chunks[-1], "attachment": template}):
                return
            logger.warning(
                "zalo: buttons for user %s not accepted; sending a numbered list", user_id
            )
        lines = [f"{i}. {b.get('title') or b.get('payload')}" for i, b in enumerate(buttons, 1)]
        numbered = "\n".join(
            part
            for part in (
                chunks[-1],
                "\n".join(lines),
                protocol_text("choose_by_number", self.language),
            )
            if part
        )
        for chunk in split_text(numbered, TEXT_LIMIT):
            await self._send(user_id, {"text": chunk})

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_response(recipient_id, {"text": text, "buttons": buttons})

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"image": image})

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        await self.send_response(recipient_id, {"custom": json_message})


class ZaloInput(InputChannel):
    """Rasa input channel for Zalo OA webhooks (``/webhooks/zalo/webhook``).

    ``clock`` (seconds since the epoch) serves the replay window and the customer-service
    window; ``state`` keeps the de-duplication ids and the numbered choices
    (``default_channel_state()``: Redis at ``SHARED_STATE_URL``, else SQLite at
    ``CHANNEL_STATE_DB``). The customer-service window (``InteractionLog``) stays in memory: a
    reply always goes out from the replica that received the message it answers.
    """

    @classmethod
    def name(cls) -> str:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Secrets in the credentials.yml block should be ``${VAR}`` references."""
        return cls(ZaloSettings.from_env(overrides=credentials or {}))

    def __init__(
        self,
        settings: ZaloSettings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = time.time,
        state: ChannelState | None = None,
        agent_settings: AgentChannelSettings | None = None,
    ) -> None:
        self.settings = settings or ZaloSettings.from_env()
        self.agent_settings = agent_settings or AgentChannelSettings.from_env()
        self.clock = clock
        self.client = ZaloClient(self.settings, transport=transport)
        self.interactions = InteractionLog(self.settings, clock=clock)
        self.state = state or default_channel_state()
        self.choices = ButtonChoices(self.state)
        self.tasks = BackgroundTasks()
        self._locks = KeyedLocks()
        if not self.settings.app_id or not self.settings.oa_secret_key:
            logger.error("zalo: ZALO_APP_ID / ZALO_OA_SECRET_KEY not set; every webhook is refused")
        if not self.settings.access_token:
            logger.error("zalo: ZALO_OA_ACCESS_TOKEN is not set; replies will be refused by Zalo")

    def get_output_channel(self) -> OutputChannel:
        return self.output()

    def output(self) -> ZaloOutput:
        return ZaloOutput(self.client, self.interactions, self.choices, self.settings.language)

    async def deliver_agent_message(self, message: AgentMessage) -> None:
        """A call-centre agent's text to ``zalo:<user_id>``, only inside the customer-service
        window: counted from the user's last event seen by this process, or from their last
        message in the tracker (which every replica shares)."""
        user_id = message.conversation_id.removeprefix(SENDER_PREFIX)
        in_tracker = message.last_user_at is not None and (
            self.clock() - message.last_user_at <= self.interactions.window_seconds
        )
        if not (self.interactions.can_send(user_id) or in_tracker):
            raise DeliveryRefused(409, "zalo_window_closed")
        for chunk in split_text(message.text, TEXT_LIMIT):
            if not await self.client.send_cs(user_id, {"text": chunk}):
                raise DeliveryRefused(502, "delivery_failed")
            self.interactions.note_sent(user_id)

    async def aclose(self) -> None:
        await self.tasks.wait_idle()
        await self.client.aclose()
        await self.state.aclose()

    async def _process_text(
        self,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        user_id: str,
        text: str,
        message_id: str | None,
    ) -> None:
        async with self._locks.hold(user_id):
            try:
                text = await self.choices.resolve(user_id, text)
            except StateUnavailable as exc:
                logger.error(
                    "zalo: choices of user %s unreadable; text passed on: %s", user_id, exc
                )
            logger.debug("zalo: user %s -> rasa: %s", user_id, loggable_text(text))
            try:
                await on_new_message(
                    UserMessage(
                        text,
                        self.output(),
                        f"{SENDER_PREFIX}{user_id}",
                        input_channel=self.name(),
                        message_id=message_id,
                        metadata={"platform": "zalo"},
                    )
                )
            except Exception:
                logger.exception("zalo: handling a message of user %s failed", user_id)

    async def _send_protocol(self, user_id: str, key: str) -> None:
        text = protocol_text(key, self.settings.language)
        await self.output().send_response(f"{SENDER_PREFIX}{user_id}", {"text": text})

    async def handle_event(
        self,
        data: Mapping[str, Any],
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        *,
        timestamp: str,
    ) -> str:
        """Record the interaction and schedule the work; returns what was done (for tests).

        ``timestamp`` is the verified one. Raises ``StateUnavailable`` if the de-duplication
        store cannot answer.
        """
        event = str(data.get("event_name") or "")
        sender = data.get("sender") if isinstance(data.get("sender"), Mapping) else {}
        user_id = str((sender or {}).get("id") or "")
        message = data.get("message") if isinstance(data.get("message"), Mapping) else {}
        message_id = (message or {}).get("msg_id")
        if not user_id or not (event.startswith("user_send_") or event in INTERACTION_EVENTS):
            logger.debug("zalo: event %r ignored", event)
            return "ignored"
        # Events without a msg_id (user_submit_info, ...) are told apart by who, what and when.
        key = f"msg:{message_id}" if message_id else f"event:{event}:{user_id}:{timestamp}"
        if await self.state.seen_before(CHANNEL_NAME, key):
            logger.info("zalo: %s delivered twice; ignored", key)
            return "duplicate"
        self.interactions.note_user(user_id, str(message_id) if message_id else None)
        if event == "user_send_text":
            text = str((message or {}).get("text") or "")
            self.tasks.spawn(
                self._process_text(on_new_message, user_id, text, message_id),
                name=f"zalo-{user_id}",
            )
            return "forwarded"
        if event.startswith("user_send_"):
            self.tasks.spawn(
                self._send_protocol(user_id, "unsupported_content"), name=f"zalo-{user_id}"
            )
            return "unsupported"
        return "noted"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("zalo_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        # stream=True: the body is read by read_limited_body, which stops at 64 KiB.
        @webhook.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request) -> HTTPResponse:
            caller = request.remote_addr or request.ip
            body = await read_limited_body(request)
            if body is None:
                logger.warning(
                    "zalo: webhook call from %s refused: body over %s bytes", caller, MAX_BODY_BYTES
                )
                return response.json({"status": "payload too large"}, status=413)
            try:
                timestamp = verify_signature(
                    self.settings, body, request.headers.get(SIGNATURE_HEADER)
                )
            except Refused as exc:
                logger.warning("zalo: webhook call from %s refused: %s", caller, exc)
                return response.json({"status": "unauthorized"}, status=401)
            try:
                check_fresh(timestamp, self.clock(), self.settings.replay_window_seconds)
            except Refused as exc:
                logger.warning("zalo: signed webhook call from %s refused: %s", caller, exc)
                return response.json({"status": "stale"}, status=401)
            try:
                data = json.loads(body)
            except (ValueError, RecursionError) as exc:
                logger.warning("zalo: signed but unreadable event refused: %s", type(exc).__name__)
                return response.json({"status": "bad request"}, status=400)
            if not isinstance(data, Mapping):
                return response.json({"status": "ignored"})
            try:
                outcome = await self.handle_event(data, on_new_message, timestamp=timestamp)
            except StateUnavailable as exc:
                # Not knowing whether it was handled, let Zalo deliver it again.
                logger.error("zalo: event not handled: %s", exc)
                return response.json({"status": "unavailable"}, status=503)
            return response.json({"status": outcome})

        add_agent_route(
            webhook,
            channel=CHANNEL_NAME,
            sender_prefix=SENDER_PREFIX,
            deliver=self.deliver_agent_message,
            settings=self.agent_settings,
        )

        @webhook.listener("after_server_stop")
        async def close(*_: Any) -> None:
            with contextlib.suppress(Exception):
                await self.aclose()

        return webhook
