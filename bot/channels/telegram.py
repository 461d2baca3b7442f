"""Telegram channel for Rasa, built on python-telegram-bot's ``telegram.Bot``.

API versions this module follows:
- python-telegram-bot 22.8 (``telegram.Bot(token, base_url=..., request=HTTPXRequest(...))``,
  ``Update.de_json``, ``InlineKeyboardMarkup``, ``send_chat_action``), which speaks
  Telegram Bot API 10.0;
- Telegram Bot API: ``setWebhook(secret_token=...)`` makes Telegram send the secret in the
  ``X-Telegram-Bot-Api-Secret-Token`` header; ``callback_data`` is 1-64 bytes; a message text
  is at most 4096 characters;
- Rasa 3.6 custom connectors (``InputChannel.blueprint``, ``OutputChannel.send_response``).

Two ways in, one way out: the webhook (``TelegramInput``, route
``/webhooks/telegram_ptb/webhook``) and the long-polling runner (``bot.channels.telegram_polling``)
both hand updates to ``TelegramConversations.handle_update`` and both send Rasa's replies with
``send_rasa_reply``. No reply wording lives here: texts come from the domain, and the few
protocol fallbacks from ``messages.yml``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from telegram import Bot, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest

from bot.channels.agent import AgentMessage, DeliveryRefused, add_agent_route
from bot.channels.common import (
    MAX_BODY_BYTES,
    KeyedLocks,
    RetryPolicy,
    call_with_retry,
    loggable_text,
    normalise_language,
    protocol_text,
    read_limited_body,
    split_text,
)
from bot.channels.state import ChannelState, StateUnavailable, default_channel_state
from bot.logmask import PiiFilter
from bot.settings import AgentChannelSettings

logger = logging.getLogger(__name__)
logger.addFilter(PiiFilter())

CHANNEL_NAME = "telegram_ptb"
# Name of the bot's update ids in the channel state: the webhook and the poller share it, so
# switching between them does not handle an update twice.
STATE_CHANNEL = "telegram"
SENDER_PREFIX = "telegram:"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
# Telegram allows 4096 characters; we stay below to leave room for entity expansion.
TEXT_LIMIT = 4000
CALLBACK_DATA_LIMIT = 64
SHORT_ID_PREFIX = "~cb:"
# How long a button with a long payload can still be pressed, and a /lang choice remembered.
CALLBACK_TTL_SECONDS = 7 * 24 * 3600.0
LANGUAGE_TTL_SECONDS = 30 * 24 * 3600.0
TYPING_REFRESH_SECONDS = 4.5  # Telegram shows "typing…" for about 5 seconds per action
SHORT_TITLE = 18  # buttons whose titles are all this short go two to a row
CUSTOM_METHODS = frozenset(
    {"send_message", "send_photo", "send_document", "send_location", "send_venue", "send_contact"}
)

Deliver = Callable[[int | str, str, dict[str, Any]], Awaitable[None]]


def switch_language_payload(language: str) -> str:
    """The Rasa payload that asks the assistant to change language (intent switch_language)."""
    return "/switch_language" + json.dumps({"language": language}, separators=(",", ":"))


COMMANDS: dict[str, str] = {
    "start": "/greet",
    "help": "/help",
    "vi": switch_language_payload("vi"),
    "en": switch_language_payload("en"),
}


@dataclass(frozen=True)
class TelegramSettings:
    """Settings of the Telegram channel; secrets come only from the environment."""

    token: str = ""
    webhook_secret: str = ""
    api_base_url: str = DEFAULT_API_BASE_URL
    timeout_seconds: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> TelegramSettings:
        """Read TELEGRAM_* variables; ``overrides`` (keys of the credentials.yml block) win.

        Secrets reach credentials.yml only as ``${VAR}`` references, which Rasa expands.
        """
        env = os.environ if env is None else env
        overrides = overrides or {}
        attempts = int(overrides.get("send_attempts") or env.get("TELEGRAM_SEND_ATTEMPTS") or 3)
        timeout = float(
            overrides.get("timeout_seconds") or env.get("TELEGRAM_TIMEOUT_SECONDS") or 10.0
        )
        return cls(
            token=str(overrides.get("token") or env.get("TELEGRAM_BOT_TOKEN", "")),
            webhook_secret=str(
                overrides.get("webhook_secret") or env.get("TELEGRAM_WEBHOOK_SECRET", "")
            ),
            api_base_url=str(
                overrides.get("api_base_url")
                or env.get("TELEGRAM_API_BASE_URL")
                or DEFAULT_API_BASE_URL
            ),
            timeout_seconds=timeout,
            retry=replace(RetryPolicy(), attempts=max(1, attempts)),
        )


def make_bot(settings: TelegramSettings, get_updates_timeout: float | None = None) -> Bot:
    """A ``telegram.Bot`` with explicit timeouts; ``base_url`` lets tests point it at a fake."""
    timeout = settings.timeout_seconds
    request = HTTPXRequest(connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout)
    get_updates_request = HTTPXRequest(
        connect_timeout=timeout,
        read_timeout=(get_updates_timeout or 0) + timeout,
        write_timeout=timeout,
    )
    return Bot(
        settings.token,
        base_url=settings.api_base_url,
        request=request,
        get_updates_request=get_updates_request,
    )


def chat_id_from_sender(sender_id: str) -> int | str:
    """``telegram:12345`` -> 12345 (the Rasa sender id of a Telegram chat)."""
    raw = sender_id[len(SENDER_PREFIX) :] if sender_id.startswith(SENDER_PREFIX) else sender_id
    try:
        return int(raw)
    except ValueError:
        return raw


class CallbackStore:
    """Maps Rasa button payloads to Telegram ``callback_data`` (at most 64 bytes) and back.

    Short payloads travel as they are; longer ones get a stable short id (a hash of the
    payload) kept in the channel state for ``CALLBACK_TTL_SECONDS``, so a press reaching any
    replica, also after a restart, finds it. An older button is reported as expired
    (``button_expired``).
    """

    def __init__(self, state: ChannelState, ttl_seconds: float = CALLBACK_TTL_SECONDS) -> None:
        self.state = state
        self.ttl_seconds = ttl_seconds

    @staticmethod
    def fits(payload: str) -> bool:
        return len(payload.encode()) <= CALLBACK_DATA_LIMIT and not payload.startswith(
            SHORT_ID_PREFIX
        )

    async def encode(self, payload: str) -> str:
        """Raises ``StateUnavailable`` if a long payload cannot be kept."""
        if self.fits(payload):
            return payload
        short = SHORT_ID_PREFIX + hashlib.sha256(payload.encode()).hexdigest()[:24]
        await self.state.put(STATE_CHANNEL, f"callback:{short}", payload, self.ttl_seconds)
        return short

    async def decode(self, data: str) -> str | None:
        """The payload of a pressed button; ``None`` if it has expired.

        Raises ``StateUnavailable`` if the store cannot answer.
        """
        if data.startswith(SHORT_ID_PREFIX):
            return await self.state.get(STATE_CHANNEL, f"callback:{data}")
        return data


def telegram_retry_delay(exc: BaseException) -> float | None:
    """Which Telegram errors are worth another try, and after how long."""
    if isinstance(exc, RetryAfter):
        wait = exc.retry_after
        return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
    if isinstance(exc, BadRequest):  # our request is wrong: trying again will not help
        return None
    if isinstance(exc, NetworkError):  # timeouts, 5xx, connection errors
        return 0.0
    return None


async def _deliver(
    call: Callable[[], Awaitable[Any]], *, retry: RetryPolicy, what: str, chat_id: int | str
) -> bool:
    """Run one Telegram call with retries; log (never raise) when it finally fails."""
    try:
        await call_with_retry(call, policy=retry, retry_delay=telegram_retry_delay, what=what)
        return True
    except TelegramError as exc:
        logger.error("telegram %s to chat %s failed for good: %s", what, chat_id, exc)
    except Exception:
        logger.exception("telegram %s to chat %s failed unexpectedly", what, chat_id)
    return False


async def build_keyboard(
    buttons: Sequence[Mapping[str, Any]], callbacks: CallbackStore
) -> InlineKeyboardMarkup | None:
    """Rasa buttons (``title``, ``payload`` or ``url``) -> an inline keyboard.

    A button whose long payload cannot be kept (channel state down) is left out, logged; the
    others still go, and ``None`` if none is left.
    """
    keys: list[InlineKeyboardButton] = []
    for button in buttons:
        title = str(button.get("title") or button.get("payload") or "")
        url = button.get("url")
        if url:
            keys.append(InlineKeyboardButton(title, url=str(url)))
            continue
        payload = str(button.get("payload") or title)
        try:
            data = await callbacks.encode(payload)
        except StateUnavailable as exc:
            logger.error("telegram: button %r left out: %s", title, exc)
            continue
        keys.append(InlineKeyboardButton(title, callback_data=data))
    if not keys:
        return None
    per_row = 2 if all(len(str(key.text)) <= SHORT_TITLE for key in keys) else 1
    rows = [keys[i : i + per_row] for i in range(0, len(keys), per_row)]
    return InlineKeyboardMarkup(rows)


async def send_rasa_reply(
    bot: Bot,
    chat_id: int | str,
    reply: Mapping[str, Any],
    *,
    callbacks: CallbackStore,
    retry: RetryPolicy,
) -> bool:
    """Send one Rasa reply dict (text, buttons, image, custom) to a chat.

    Shared by the webhook's output channel and the polling runner. Long texts are split at
    paragraph or sentence boundaries; buttons ride on the last chunk. Returns ``False`` if any
    part could not be delivered after the retries (already logged); never raises.
    """
    ok = True
    text = str(reply.get("text") or "")
    buttons = reply.get("buttons") or reply.get("quick_replies") or []
    chunks = split_text(text, TEXT_LIMIT)
    markup = await build_keyboard(buttons, callbacks) if buttons else None
    if markup is not None and not chunks:
        logger.warning("telegram: buttons without text cannot be sent; skipped (chat %s)", chat_id)
        markup = None
    for index, chunk in enumerate(chunks):
        keyboard = markup if index == len(chunks) - 1 else None
        ok &= await _deliver(
            functools.partial(bot.send_message, chat_id=chat_id, text=chunk, reply_markup=keyboard),
            retry=retry,
            what="sendMessage",
            chat_id=chat_id,
        )
    image = reply.get("image")
    if image:
        ok &= await _deliver(
            lambda: bot.send_photo(chat_id=chat_id, photo=str(image)),
            retry=retry,
            what="sendPhoto",
            chat_id=chat_id,
        )
    custom = reply.get("custom")
    if isinstance(custom, Mapping):
        ok &= await _send_custom(bot, chat_id, custom, retry=retry)
    return ok


async def _send_custom(
    bot: Bot, chat_id: int | str, custom: Mapping[str, Any], *, retry: RetryPolicy
) -> bool:
    """``custom: {telegram: {method: send_photo, photo: ..., caption: ...}}`` from the domain."""
    spec = custom.get("telegram")
    if not isinstance(spec, Mapping):
        logger.debug("telegram: custom payload without a 'telegram' key ignored")
        return True
    params = {key: value for key, value in spec.items() if key not in ("method", "chat_id")}
    method = str(spec.get("method") or "send_message")
    if method not in CUSTOM_METHODS:
        logger.warning("telegram: custom method %r is not allowed; ignored", method)
        return True
    send = getattr(bot, method)
    return await _deliver(
        lambda: send(chat_id=chat_id, **params), retry=retry, what=method, chat_id=chat_id
    )


class TelegramOutput(OutputChannel):
    """Rasa output channel that sends every reply through ``send_rasa_reply``."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL_NAME

    def __init__(self, bot: Bot, callbacks: CallbackStore, retry: RetryPolicy) -> None:
        self.bot = bot
        self.callbacks = callbacks
        self.retry = retry

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        await send_rasa_reply(
            self.bot,
            chat_id_from_sender(recipient_id),
            message,
            callbacks=self.callbacks,
            retry=self.retry,
        )

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


class TelegramConversations:
    """Turns Telegram updates into user messages for Rasa, shared by webhook and polling.

    Handles commands (/start, /help, /lang, /vi, /en), button presses (callback queries,
    answered at once), content Rasa cannot read, and the "typing…" indicator while Rasa works.
    A chat's /lang choice is kept in the channel state (``callbacks.state``), like the buttons.
    """

    def __init__(self, bot: Bot, callbacks: CallbackStore, retry: RetryPolicy) -> None:
        self.bot = bot
        self.callbacks = callbacks
        self.retry = retry
        self.state = callbacks.state

    async def language(self, chat_id: int | str, language_code: str | None) -> str:
        """The chat's language for protocol fallbacks: /lang choice, else the user's app."""
        try:
            chosen = await self.state.get(STATE_CHANNEL, f"language:{chat_id}")
        except StateUnavailable as exc:
            logger.warning("telegram: language of chat %s unknown: %s", chat_id, exc)
            chosen = None
        return chosen or normalise_language(language_code)

    async def remember_language(self, chat_id: int | str, language: str) -> None:
        try:
            await self.state.put(
                STATE_CHANNEL, f"language:{chat_id}", language, LANGUAGE_TTL_SECONDS
            )
        except StateUnavailable as exc:
            logger.warning("telegram: language of chat %s not kept: %s", chat_id, exc)

    async def send_protocol(self, chat_id: int | str, key: str, language: str) -> None:
        await send_rasa_reply(
            self.bot,
            chat_id,
            {"text": protocol_text(key, language)},
            callbacks=self.callbacks,
            retry=self.retry,
        )

    async def handle_update(self, update: Update, deliver: Deliver) -> None:
        if update.callback_query is not None:
            await self._handle_callback(update.callback_query, deliver)
            return
        message = update.message
        if message is None:
            logger.debug("telegram: update %s without a new message ignored", update.update_id)
            return
        chat_id = message.chat.id
        user = message.from_user
        code = user.language_code if user else None
        metadata = {"platform": "telegram", "language_code": code}
        if not message.text:
            language = await self.language(chat_id, code)
            await self.send_protocol(chat_id, "unsupported_content", language)
            return
        text = await self._command_to_text(chat_id, message.text)
        if text is None:
            await self.send_protocol(chat_id, "lang_usage", await self.language(chat_id, code))
            return
        await self.forward(chat_id, text, metadata, deliver)

    async def _command_to_text(self, chat_id: int | str, text: str) -> str | None:
        """Map bot commands to Rasa payloads; ``None`` means "show the /lang usage"."""
        if not text.startswith("/"):
            return text
        head, _, rest = text.partition(" ")
        command = head[1:].split("@", 1)[0].lower()
        argument = rest.strip().lower()
        if command == "lang":
            if argument not in ("vi", "en"):
                return None
            command = argument
        if command in ("vi", "en"):
            await self.remember_language(chat_id, command)
        if command in COMMANDS:
            return COMMANDS[command]
        # An unknown command: pass its words on as plain text, never as an intent payload.
        return f"{command} {rest}".strip()

    async def _handle_callback(self, query: CallbackQuery, deliver: Deliver) -> None:
        await _deliver(
            lambda: query.answer(),
            retry=self.retry,
            what="answerCallbackQuery",
            chat_id=query.from_user.id,
        )
        chat_id = query.message.chat.id if query.message else query.from_user.id
        code = query.from_user.language_code
        metadata = {"platform": "telegram", "language_code": code}
        try:
            payload = await self.callbacks.decode(query.data or "")
        except StateUnavailable as exc:
            logger.error("telegram: button pressed in chat %s unreadable: %s", chat_id, exc)
            language = normalise_language(code)
            await self.send_protocol(chat_id, "service_unavailable", language)
            return
        if payload is None:
            await self.send_protocol(chat_id, "button_expired", await self.language(chat_id, code))
            return
        await self.forward(chat_id, payload, metadata, deliver)

    async def forward(
        self, chat_id: int | str, text: str, metadata: dict[str, Any], deliver: Deliver
    ) -> None:
        """Hand the text to Rasa while showing "typing…" in the chat."""
        logger.debug("telegram: chat %s -> rasa: %s", chat_id, loggable_text(text))
        typing = asyncio.get_running_loop().create_task(self._keep_typing(chat_id))
        try:
            await deliver(chat_id, text, metadata)
        finally:
            typing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await typing

    async def _keep_typing(self, chat_id: int | str) -> None:
        while True:
            try:
                await self.bot.send_chat_action(chat_id=chat_id, action=ChatAction.TYPING)
            except TelegramError as exc:  # cosmetic: never retried, never fatal
                logger.debug("telegram sendChatAction to %s failed: %s", chat_id, exc)
            await asyncio.sleep(TYPING_REFRESH_SECONDS)


def update_chat_key(update: Update) -> str:
    """The conversation an update belongs to, for per-chat ordering."""
    if update.callback_query is not None:
        query = update.callback_query
        return str(query.message.chat.id if query.message else query.from_user.id)
    if update.effective_chat is not None:
        return str(update.effective_chat.id)
    return f"update-{update.update_id}"


class TelegramInput(InputChannel):
    """Rasa input channel for Telegram webhooks (``/webhooks/telegram_ptb/webhook``).

    Every request must carry ``X-Telegram-Bot-Api-Secret-Token`` equal to
    ``TELEGRAM_WEBHOOK_SECRET`` (set the same value as ``secret_token`` in setWebhook) and a body
    of at most 64 KiB. Once authenticated, the webhook always answers 200, even when sending a
    reply failed, so that Telegram does not redeliver the update forever; the citizen's message
    has reached Rasa. Each ``update_id`` is recorded in the shared ``ChannelState`` before it is
    handled, so a redelivery, also after a restart or on another replica, is dropped; long
    button payloads and /lang choices live there too (``default_channel_state()``).
    """

    @classmethod
    def name(cls) -> str:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """``token``/``webhook_secret`` should be ``${VAR}`` references in credentials.yml."""
        return cls(TelegramSettings.from_env(overrides=credentials or {}))

    def __init__(
        self,
        settings: TelegramSettings | None = None,
        *,
        state: ChannelState | None = None,
        agent_settings: AgentChannelSettings | None = None,
    ) -> None:
        self.settings = settings or TelegramSettings.from_env()
        self.agent_settings = agent_settings or AgentChannelSettings.from_env()
        self.state = state or default_channel_state()
        self.callbacks = CallbackStore(self.state)
        self._bot: Bot | None = None
        self._conversations: TelegramConversations | None = None
        self._locks = KeyedLocks()
        # httpx logs each request URL at INFO, and Bot API URLs contain the bot token.
        logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))
        if not self.settings.token:
            logger.error("telegram: TELEGRAM_BOT_TOKEN is not set; the webhook will answer 503")
        if not self.settings.webhook_secret:
            logger.error(
                "telegram: TELEGRAM_WEBHOOK_SECRET is not set; every webhook call is refused"
            )

    @property
    def bot(self) -> Bot:
        """Built on first use, inside the server's event loop."""
        if self._bot is None:
            self._bot = make_bot(self.settings)
        return self._bot

    @property
    def conversations(self) -> TelegramConversations:
        if self._conversations is None:
            self._conversations = TelegramConversations(
                self.bot, self.callbacks, self.settings.retry
            )
        return self._conversations

    def get_output_channel(self) -> OutputChannel | None:
        if not self.settings.token:
            return None
        return TelegramOutput(self.bot, self.callbacks, self.settings.retry)

    def authorised(self, request: Request) -> bool:
        expected = self.settings.webhook_secret
        provided = request.headers.get(SECRET_HEADER)
        if not expected or provided is None:
            return False
        return hmac.compare_digest(provided.encode(), expected.encode())

    async def deliver_agent_message(self, message: AgentMessage) -> None:
        """A call-centre agent's text to the chat behind ``telegram:<chat_id>``."""
        if not self.settings.token:
            raise DeliveryRefused(503, "unavailable")
        sent = await send_rasa_reply(
            self.bot,
            chat_id_from_sender(message.conversation_id),
            {"text": message.text},
            callbacks=self.callbacks,
            retry=self.settings.retry,
        )
        if not sent:
            raise DeliveryRefused(502, "delivery_failed")

    async def aclose(self) -> None:
        bot, self._bot, self._conversations = self._bot, None, None
        if bot is not None:
            with contextlib.suppress(Exception):
                await bot.shutdown()
        await self.state.aclose()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("telegram_ptb_webhook", __name__)

        async def deliver(chat_id: int | str, text: str, metadata: dict[str, Any]) -> None:
            output = TelegramOutput(self.bot, self.callbacks, self.settings.retry)
            await on_new_message(
                UserMessage(
                    text,
                    output,
                    f"{SENDER_PREFIX}{chat_id}",
                    input_channel=self.name(),
                    metadata=metadata,
                )
            )

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        # stream=True: the body is read by read_limited_body, which stops at 64 KiB.
        @webhook.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request) -> HTTPResponse:
            body = await read_limited_body(request)
            if body is None:
                logger.warning(
                    "telegram: webhook call from %s refused: body over %s bytes",
                    request.remote_addr or request.ip,
                    MAX_BODY_BYTES,
                )
                return response.json({"status": "payload too large"}, status=413)
            if not self.authorised(request):
                logger.warning(
                    "telegram: webhook call from %s refused: missing or wrong %s",
                    request.remote_addr or request.ip,
                    SECRET_HEADER,
                )
                return response.json({"status": "forbidden"}, status=403)
            if not self.settings.token:
                logger.error("telegram: update received but TELEGRAM_BOT_TOKEN is not set")
                return response.json({"status": "unavailable"}, status=503)
            try:
                update = Update.de_json(json.loads(body or b"{}"), self.bot)
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
                logger.warning("telegram: unreadable update refused: %s", type(exc).__name__)
                return response.json({"status": "bad request"}, status=400)
            try:
                duplicate = await self.state.seen_before(STATE_CHANNEL, str(update.update_id))
            except StateUnavailable as exc:
                # Not knowing whether it was handled, let Telegram deliver it again later.
                logger.error("telegram: update %s not handled: %s", update.update_id, exc)
                return response.json({"status": "unavailable"}, status=503)
            if duplicate:
                logger.info("telegram: update %s delivered twice; ignored", update.update_id)
                return response.json({"status": "duplicate"})
            try:
                async with self._locks.hold(update_chat_key(update)):
                    await self.conversations.handle_update(update, deliver)
            except Exception:
                logger.exception("telegram: handling update %s failed", update.update_id)
            return response.json({"status": "ok"})

        add_agent_route(
            webhook,
            channel=CHANNEL_NAME,
            sender_prefix=SENDER_PREFIX,
            deliver=self.deliver_agent_message,
            settings=self.agent_settings,
        )

        @webhook.listener("after_server_stop")
        async def close(*_: Any) -> None:
            await self.aclose()

        return webhook
