"""Facebook Messenger: Rasa 3.6's own ``facebook`` connector, plus the call-centre agent route.

``MessengerInput`` is Rasa's ``FacebookInput`` (same name ``facebook``, same webhook
``GET/POST /webhooks/facebook/webhook``: verify token, ``X-Hub-Signature`` check, replies through
``fbmessenger``), with two additions:

- ``POST /webhooks/facebook/agent`` (``bot/channels/agent.py``): a call-centre agent's text to
  the citizen, sent with the Messenger Send API
  (``POST {MESSENGER_API_BASE_URL}/{MESSENGER_API_VERSION}/me/messages?access_token=<page token>``,
  ``messaging_type: MESSAGE_TAG``, ``tag: HUMAN_AGENT``). The human-agent tag lets a page answer
  up to 7 days after the user's last message (the standard window is 24 hours); after that the
  route refuses with 409 ``messenger_window_closed``, counted from the citizen's last message in
  the tracker. Rasa's connector uses the sender's page-scoped id (PSID, a numeric string) as the
  conversation id, with no prefix, so the recipient is the conversation id itself.
- a webhook signature is never accepted when no app secret is configured (Rasa's check would
  accept an HMAC made with an empty key).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.facebook import FacebookInput
from sanic import Blueprint

from bot.channels.agent import AgentMessage, DeliveryRefused, add_agent_route
from bot.channels.common import split_text
from bot.logmask import PiiFilter
from bot.settings import AgentChannelSettings

logger = logging.getLogger(__name__)
logger.addFilter(PiiFilter())

CHANNEL_NAME = "facebook"
DEFAULT_API_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v24.0"
# The Send API's limit for a text message.
TEXT_LIMIT = 2000
# Messenger's HUMAN_AGENT tag: a reply up to 7 days after the user's last message.
HUMAN_AGENT_WINDOW_HOURS = 7 * 24.0
# Page-scoped ids are numeric strings; every other channel of ours has a prefix ("telegram:").
_PSID = re.compile(r"[0-9]{1,64}")

Clock = Callable[[], float]


@dataclass(frozen=True)
class MessengerSettings:
    """Settings of the Messenger channel; secrets come only from the environment."""

    verify: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    page_access_token: str = field(default="", repr=False)
    api_base_url: str = DEFAULT_API_BASE_URL
    api_version: str = DEFAULT_API_VERSION
    timeout_seconds: float = 2.5
    window_hours: float = HUMAN_AGENT_WINDOW_HOURS

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> MessengerSettings:
        """FACEBOOK_* / MESSENGER_* variables; ``overrides`` (the credentials.yml block, with
        Rasa's key names ``verify``, ``secret``, ``page-access-token``) win."""
        env = os.environ if env is None else env
        overrides = overrides or {}

        def pick(key: str, var: str, default: Any) -> Any:
            return overrides.get(key) or env.get(var) or default

        version = str(pick("api_version", "MESSENGER_API_VERSION", DEFAULT_API_VERSION))
        return cls(
            verify=str(pick("verify", "FACEBOOK_VERIFY_TOKEN", "")),
            secret=str(pick("secret", "FACEBOOK_APP_SECRET", "")),
            page_access_token=str(pick("page-access-token", "FACEBOOK_PAGE_ACCESS_TOKEN", "")),
            api_base_url=str(pick("api_base_url", "MESSENGER_API_BASE_URL", DEFAULT_API_BASE_URL)),
            api_version=version if version.startswith("v") else f"v{version}",
            timeout_seconds=float(pick("timeout_seconds", "MESSENGER_TIMEOUT_SECONDS", 2.5)),
            window_hours=float(
                pick("window_hours", "MESSENGER_AGENT_WINDOW_HOURS", HUMAN_AGENT_WINDOW_HOURS)
            ),
        )


def human_agent_message(psid: str, text: str) -> dict[str, Any]:
    """The Send API body of an agent's text, with the HUMAN_AGENT tag."""
    return {
        "recipient": {"id": psid},
        "message": {"text": text},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
    }


class SendApi:
    """``POST /{version}/me/messages`` on ``httpx.AsyncClient``; one attempt, a short timeout
    (the console waits for the agent route), never raises."""

    def __init__(
        self, settings: MessengerSettings, transport: httpx.AsyncBaseTransport | None = None
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

    async def send(self, body: dict[str, Any]) -> bool:
        psid = body["recipient"]["id"]
        try:
            reply = await self.client.post(
                f"/{self.settings.api_version}/me/messages",
                params={"access_token": self.settings.page_access_token},
                json=body,
            )
        except httpx.HTTPError as exc:  # the URL carries the token: log the kind only
            logger.error("messenger: message to %s failed: %s", psid, type(exc).__name__)
            return False
        try:
            data = reply.json()
        except ValueError:
            data = None
        error = data.get("error") if isinstance(data, dict) else None
        if reply.status_code != 200 or error is not None or not isinstance(data, dict):
            details = error if isinstance(error, dict) else {}
            logger.error(
                "messenger: message to %s refused: HTTP %s, code %s, subcode %s",
                psid,
                reply.status_code,
                details.get("code"),
                details.get("error_subcode"),
            )
            return False
        return True

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class MessengerInput(FacebookInput):
    """Rasa's ``facebook`` input channel with the agent route (see the module docstring)."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Rasa's keys (``verify``, ``secret``, ``page-access-token``), as ``${VAR}`` references
        in credentials.yml; a key left out falls back to its environment variable."""
        return cls(settings=MessengerSettings.from_env(overrides=credentials or {}))

    def __init__(
        self,
        fb_verify: str | None = None,
        fb_secret: str | None = None,
        fb_access_token: str | None = None,
        *,
        settings: MessengerSettings | None = None,
        agent_settings: AgentChannelSettings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = time.time,
    ) -> None:
        settings = settings or MessengerSettings.from_env()
        settings = replace(  # Rasa's positional arguments, if given, win
            settings,
            verify=settings.verify if fb_verify is None else fb_verify,
            secret=settings.secret if fb_secret is None else fb_secret,
            page_access_token=(
                settings.page_access_token if fb_access_token is None else fb_access_token
            ),
        )
        super().__init__(settings.verify, settings.secret, settings.page_access_token)
        self.settings = settings
        self.agent_settings = agent_settings or AgentChannelSettings.from_env()
        self.send_api = SendApi(settings, transport=transport)
        self.clock = clock
        # httpx logs each request URL at INFO, and Send API URLs carry the page token.
        logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))
        if not settings.secret:
            logger.error("messenger: FACEBOOK_APP_SECRET is not set; every webhook is refused")
        if not settings.page_access_token:
            logger.error("messenger: FACEBOOK_PAGE_ACCESS_TOKEN is not set; agent messages get 503")

    @staticmethod
    def validate_hub_signature(
        app_secret: str, request_payload: bytes, hub_signature_header: str
    ) -> bool:
        """Rasa's check, but never with an empty app secret (anyone can make that HMAC)."""
        if not app_secret:
            return False
        return FacebookInput.validate_hub_signature(
            app_secret, request_payload, hub_signature_header
        )

    async def deliver_agent_message(self, message: AgentMessage) -> None:
        """A call-centre agent's text to the PSID that is the conversation id, tagged
        HUMAN_AGENT, only within 7 days of the citizen's last message in the tracker."""
        psid = message.conversation_id
        if not _PSID.fullmatch(psid):  # another channel's conversation ("telegram:…")
            raise DeliveryRefused(404, "unknown_conversation")
        if not self.settings.page_access_token:
            raise DeliveryRefused(503, "unavailable")
        window = self.settings.window_hours * 3600
        if message.last_user_at is None or self.clock() - message.last_user_at > window:
            raise DeliveryRefused(409, "messenger_window_closed")
        for chunk in split_text(message.text, TEXT_LIMIT):
            if not await self.send_api.send(human_agent_message(psid, chunk)):
                raise DeliveryRefused(502, "delivery_failed")

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(on_new_message)
        add_agent_route(
            webhook,
            channel=CHANNEL_NAME,
            sender_prefix="",
            deliver=self.deliver_agent_message,
            settings=self.agent_settings,
        )

        @webhook.listener("after_server_stop")
        async def close(*_: Any) -> None:
            await self.send_api.aclose()

        return webhook
