"""Telegram long polling for laptops without a public address.

    python -m bot.channels.telegram_polling [--delete-webhook] [--poll-timeout 25]

Fetches updates with getUpdates (Telegram Bot API 10.0 through python-telegram-bot 22.8),
forwards each message to Rasa's REST channel (``POST {RASA_URL}/webhooks/rest/webhook``, Rasa
3.6) as sender ``telegram:<chat_id>`` with ``input_channel: telegram_ptb`` (so channel-specific
responses match the webhook mode), and sends the replies with the same ``send_rasa_reply`` as the
webhook. Settings: TELEGRAM_BOT_TOKEN, TELEGRAM_API_BASE_URL, RASA_URL (default
http://127.0.0.1:5005), RASA_TIMEOUT_SECONDS (default 60), SHARED_STATE_URL or CHANNEL_STATE_DB
(see ``bot.channels.state``).

An update is confirmed to Telegram only by the next getUpdates call, so after a crash or a
restart Telegram sends the last batch again; its update ids are in the ``ChannelState`` store
(shared with the webhook), so they are not handled twice.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Mapping
from typing import Any

import httpx
from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError

from bot.channels.common import (
    BackgroundTasks,
    KeyedLocks,
    RetryPolicy,
    call_with_retry,
)
from bot.channels.state import ChannelState, StateUnavailable, default_channel_state
from bot.channels.telegram import (
    CHANNEL_NAME,
    SENDER_PREFIX,
    STATE_CHANNEL,
    CallbackStore,
    TelegramConversations,
    TelegramSettings,
    make_bot,
    send_rasa_reply,
    update_chat_key,
)
from bot.logmask import PiiFilter, install_pii_filter

logger = logging.getLogger(__name__)
logger.addFilter(PiiFilter())

DEFAULT_RASA_URL = "http://127.0.0.1:5005"
REST_WEBHOOK = "/webhooks/rest/webhook"
ALLOWED_UPDATES = ("message", "callback_query")


class RasaUnavailable(Exception):
    """Rasa could not be reached, or answered with an error."""


class RasaRestClient:
    """Posts a citizen's message to Rasa's REST channel and returns the reply dicts."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 60.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        token: str = "",
    ) -> None:
        # The REST channel is open in sandbox mode; elsewhere it wants REST_CHANNEL_TOKEN.
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_seconds, connect=5.0),
            transport=transport,
            headers={"Authorization": f"Bearer {token}"} if token else None,
        )
        self._retry = retry or RetryPolicy()

    async def send(self, sender: str, text: str, metadata: Mapping[str, Any]) -> list[dict]:
        body = {
            "sender": sender,
            "message": text,
            "input_channel": CHANNEL_NAME,
            "metadata": dict(metadata),
        }

        async def post() -> httpx.Response:
            reply = await self._client.post(REST_WEBHOOK, json=body)
            if reply.status_code in (502, 503, 504):
                raise RasaUnavailable(f"Rasa answered {reply.status_code}")
            return reply

        try:
            reply = await call_with_retry(
                post, policy=self._retry, retry_delay=_rasa_retry_delay, what="Rasa REST call"
            )
        except (httpx.HTTPError, RasaUnavailable) as exc:
            raise RasaUnavailable(str(exc) or type(exc).__name__) from exc
        if reply.status_code != 200:
            raise RasaUnavailable(f"Rasa answered {reply.status_code}")
        data = reply.json()
        return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []

    async def aclose(self) -> None:
        await self._client.aclose()


def _rasa_retry_delay(exc: BaseException) -> float | None:
    # Only retry when the message surely did not reach Rasa: a read timeout may mean Rasa is
    # still working on it, and sending it again would make the citizen say it twice.
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | RasaUnavailable):
        return 0.0
    return None


class TelegramPoller:
    """The polling loop: getUpdates -> Rasa REST -> send_rasa_reply, one chat at a time."""

    def __init__(
        self,
        settings: TelegramSettings,
        rasa: RasaRestClient,
        *,
        poll_timeout: int = 25,
        bot: Bot | None = None,
        state: ChannelState | None = None,
    ) -> None:
        self.settings = settings
        self.rasa = rasa
        self.poll_timeout = poll_timeout
        self.bot = bot or make_bot(settings, get_updates_timeout=poll_timeout)
        self.state = state or default_channel_state()
        self.callbacks = CallbackStore(self.state)
        self.conversations = TelegramConversations(self.bot, self.callbacks, settings.retry)
        self.tasks = BackgroundTasks()
        self._locks = KeyedLocks()

    async def deliver(self, chat_id: int | str, text: str, metadata: dict[str, Any]) -> None:
        try:
            replies = await self.rasa.send(f"{SENDER_PREFIX}{chat_id}", text, metadata)
        except RasaUnavailable as exc:
            logger.error("telegram polling: Rasa unavailable for chat %s: %s", chat_id, exc)
            language = await self.conversations.language(chat_id, metadata.get("language_code"))
            await self.conversations.send_protocol(chat_id, "service_unavailable", language)
            return
        for reply in replies:
            await send_rasa_reply(
                self.bot, chat_id, reply, callbacks=self.callbacks, retry=self.settings.retry
            )

    async def handle(self, update: Update) -> None:
        try:
            async with self._locks.hold(update_chat_key(update)):
                await self.conversations.handle_update(update, self.deliver)
        except Exception:
            logger.exception("telegram polling: handling update %s failed", update.update_id)

    async def run(self, stop: asyncio.Event, *, delete_webhook: bool = False) -> None:
        """Poll until ``stop`` is set, then wait for the updates being handled."""
        if delete_webhook:
            await self.bot.delete_webhook()
            logger.info("telegram polling: webhook deleted")
        offset: int | None = None
        failures = 0
        while not stop.is_set():
            try:
                updates = await self.bot.get_updates(
                    offset=offset, timeout=self.poll_timeout, allowed_updates=ALLOWED_UPDATES
                )
                failures = 0
            except Conflict:
                logger.error(
                    "telegram polling: a webhook is set for this bot; run with "
                    "--delete-webhook (the webhook stops receiving) or stop the other poller"
                )
                raise
            except InvalidToken:
                logger.error("telegram polling: TELEGRAM_BOT_TOKEN was rejected")
                raise
            except NetworkError as exc:
                failures += 1
                delay = self.settings.retry.backoff(min(failures, 6))
                logger.warning(
                    "telegram polling: getUpdates failed (%s); retry in %.1fs", exc, delay
                )
                await _sleep_or_stop(stop, delay)
                continue
            for update in updates:
                try:
                    duplicate = await self.state.seen_before(STATE_CHANNEL, str(update.update_id))
                except StateUnavailable as exc:
                    # The offset stays before this update, so the next getUpdates brings it back.
                    logger.error("telegram polling: update %s held back: %s", update.update_id, exc)
                    await _sleep_or_stop(stop, self.settings.retry.backoff(6))
                    break
                offset = update.update_id + 1
                if duplicate:
                    logger.info("telegram polling: update %s seen before", update.update_id)
                    continue
                self.tasks.spawn(self.handle(update), name=f"telegram-update-{update.update_id}")
        await self.tasks.wait_idle()

    async def aclose(self) -> None:
        await self.rasa.aclose()
        await self.state.aclose()
        try:
            await self.bot.shutdown()
        except TelegramError:
            logger.debug("telegram polling: bot shutdown failed", exc_info=True)


async def _sleep_or_stop(stop: asyncio.Event, delay: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=delay)
    except asyncio.TimeoutError:
        pass


async def main_async(args: argparse.Namespace) -> int:
    settings = TelegramSettings.from_env()
    if not settings.token:
        logger.error("TELEGRAM_BOT_TOKEN is not set")
        return 2
    rasa_url = os.environ.get("RASA_URL", DEFAULT_RASA_URL)
    rasa_timeout = float(os.environ.get("RASA_TIMEOUT_SECONDS", "60"))
    poller = TelegramPoller(
        settings,
        RasaRestClient(
            rasa_url,
            timeout_seconds=rasa_timeout,
            token=os.environ.get("REST_CHANNEL_TOKEN", ""),
        ),
        poll_timeout=args.poll_timeout,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logger.info("telegram polling: forwarding to %s", rasa_url)
    try:
        await poller.run(stop, delete_webhook=args.delete_webhook)
    except (Conflict, InvalidToken):
        return 1
    finally:
        await poller.aclose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--delete-webhook",
        action="store_true",
        help="remove a webhook set for this bot before polling (Telegram allows only one)",
    )
    parser.add_argument("--poll-timeout", type=int, default=25, help="getUpdates long-poll seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_pii_filter()
    # httpx logs every request URL at INFO, and Telegram URLs contain the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
