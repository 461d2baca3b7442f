"""The REST channel of the development and test tools (terminal chat, end-to-end tests).

Rasa's own REST channel takes the conversation id (``sender``) and even the channel name from the
request body, so whoever knows a conversation id continues it. This one keeps that convenience
for tests but can never reach another channel's conversations:

- every conversation id is put in the ``rest:`` namespace (``rest:telegram:42`` is not the
  Telegram chat 42), and the input channel is always ``rest``;
- outside sandbox mode it is off (403) unless ``REST_CHANNEL_TOKEN`` is set, and then every
  request must carry ``Authorization: Bearer <token>``;
- bodies over 64 KiB are refused (413) before they are parsed.

Citizens never use it: the portal's web chat has its own signed sessions (bot/channels/webchat).
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.agent import AGENT_PATH, add_agent_route
from bot.settings import MAX_REQUEST_BYTES, AgentChannelSettings, is_true

logger = logging.getLogger(__name__)

CHANNEL_NAME = "rest"
SENDER_PREFIX = "rest:"
MAX_SENDER_LENGTH = 128


@dataclass(frozen=True)
class RestSettings:
    sandbox_mode: bool = False
    token: str = ""

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> RestSettings:
        env = os.environ if env is None else env
        overrides = overrides or {}
        return cls(
            sandbox_mode=is_true(overrides.get("sandbox_mode") or env.get("SANDBOX_MODE")),
            token=str(overrides.get("token") or env.get("REST_CHANNEL_TOKEN") or ""),
        )


def namespaced(sender: object) -> str | None:
    """The conversation id for a client-chosen sender, always inside ``rest:``."""
    if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_LENGTH:
        return None
    return SENDER_PREFIX + sender.strip()


class DevRestInput(RestInput):
    """Rasa's REST channel, namespaced and closed outside sandbox mode (see module docstring)."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> DevRestInput:
        return cls(RestSettings.from_env(overrides=credentials or {}))

    def __init__(
        self,
        settings: RestSettings | None = None,
        agent_settings: AgentChannelSettings | None = None,
    ) -> None:
        self.settings = settings or RestSettings.from_env()
        self.agent_settings = agent_settings or AgentChannelSettings.from_env()
        if not self.settings.sandbox_mode and not self.settings.token:
            logger.info("rest channel: off (not sandbox mode and REST_CHANNEL_TOKEN unset)")

    def refusal(self, request: Request) -> HTTPResponse | None:
        """Why this request may not go on, as the answer to send; None when it may."""
        if len(request.body or b"") > MAX_REQUEST_BYTES:
            return response.json({"error": "too_large"}, status=413)
        if self.settings.token:
            header = request.headers.get("Authorization", "")
            given = header[7:] if header.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(given.encode(), self.settings.token.encode()):
                return response.json({"error": "unauthorized"}, status=401)
        elif not self.settings.sandbox_mode:
            return response.json({"error": "rest channel is off"}, status=403)
        try:
            body = request.json
        except Exception:  # noqa: BLE001 - Sanic raises its own error type for bad JSON
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("message"), str):
            return response.json({"error": "bad_request"}, status=400)
        if namespaced(body.get("sender")) is None:
            return response.json({"error": "bad_request"}, status=400)
        return None

    async def _extract_sender(self, req: Request) -> str | None:
        return namespaced(req.json.get("sender"))

    def _extract_input_channel(self, req: Request) -> str:
        return self.name()

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        metadata = request.json.get("metadata")
        language = metadata.get("language") if isinstance(metadata, dict) else None
        return {"language": language} if language in ("vi", "en") else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(on_new_message)

        @webhook.on_request
        async def guard(request: Request) -> HTTPResponse | None:
            if request.method == "POST" and not request.path.endswith(AGENT_PATH):
                return self.refusal(request)
            return None

        # REST has no push: the agent's message is only recorded (tests read the tracker).
        add_agent_route(
            webhook,
            channel=CHANNEL_NAME,
            sender_prefix=SENDER_PREFIX,
            deliver=None,
            settings=self.agent_settings,
        )
        return webhook
