"""The portal's web chat channel: server-issued, signed sessions instead of client-chosen ids.

Rasa's REST channel takes the conversation id (``sender``) from the request body, so whoever
knows or guesses an id continues that conversation, including one where the citizen has proved
who they are. Here the widget first asks for a session (``POST /webhooks/webchat/session``) and
sends every message with ``Authorization: Bearer <token>`` (``POST /webhooks/webchat/webhook``);
the conversation id ``web:<session id>`` comes only from a token whose HMAC checks out.

Token: ``base64url(payload) "." base64url(HMAC-SHA256(secret, PURPOSE + base64url(payload)))``
with payload ``{"sid": <128-bit random id>, "iat": <issued at>, "exp": <expires at>}`` (Unix
seconds). Stateless: rotating the secret ends every session; a renewed token does not revoke the
one it replaced (both end at their own expiry). Replies come back as Rasa's REST channel returns
them (``CollectingOutputChannel``). No reply wording lives here; message texts are never logged
(at DEBUG only masked and cut short, via ``loggable_text``).

Messages the citizen did not ask for (a call-centre agent's, and the bot's own words when the agent
hands the conversation back) cannot ride on a reply: the widget long-polls
``GET /webhooks/webchat/inbox?after=<timestamp>`` with the same bearer, which answers, from the
tracker store (so any replica can), the bot events of that session newer than ``after`` that
carry ``from_agent`` metadata or are one of ``PUSHED_RESPONSES`` (no ``after``: since the
token was issued). ``POST /webhooks/webchat/agent``
(bot/channels/agent.py) records an agent's message and wakes this process's waiting inboxes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.core.events import BotUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.agent import FROM_AGENT, InboxSignals, add_agent_route
from bot.channels.common import LANGUAGES, LruDict, loggable_text
from bot.logmask import PiiFilter
from bot.settings import AgentChannelSettings

logger = logging.getLogger(__name__)
logger.addFilter(PiiFilter())

CHANNEL_NAME = "webchat"
SENDER_PREFIX = "web:"
DEFAULT_SESSION_TTL_SECONDS = 86_400
MAX_BODY_BYTES = 65_536
# A token we issue is about 140 characters; anything much longer is not worth decoding.
MAX_TOKEN_CHARS = 512
# Domain separation: a MAC made with the same secret for another purpose is not a session.
PURPOSE = b"civic-webchat-session/1:"
CLOCK_SKEW_SECONDS = 60
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{22}")  # secrets.token_urlsafe(16)
# The bot's words said outside the citizen's own turn (actions/handoff.py, run by the console
# through Rasa's API when an agent hands the conversation back): the inbox brings them too.
PUSHED_RESPONSES = frozenset({"utter_handoff_returned", "utter_handoff_rating"})

Clock = Callable[[], float]


@dataclass(frozen=True)
class WebChatSettings:
    """Settings of the web chat channel; the secret comes only from the environment."""

    secret: str = ""
    session_ttl_seconds: int = DEFAULT_SESSION_TTL_SECONDS

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> WebChatSettings:
        """Read WEBCHAT_* variables; ``overrides`` (keys of the credentials.yml block) win."""
        env = os.environ if env is None else env
        overrides = overrides or {}
        ttl = int(
            overrides.get("session_ttl_seconds")
            or env.get("WEBCHAT_SESSION_TTL_SECONDS")
            or DEFAULT_SESSION_TTL_SECONDS
        )
        if ttl <= 0:
            raise ValueError(f"webchat: session_ttl_seconds must be positive, not {ttl}")
        return cls(
            secret=str(overrides.get("secret") or env.get("WEBCHAT_SECRET", "")),
            session_ttl_seconds=ttl,
        )


class SessionInvalid(Exception):
    """A token we did not issue, cannot read, or that has expired; the text is for the log."""


@dataclass(frozen=True)
class Session:
    session_id: str
    issued_at: int
    expires_at: int

    @property
    def sender_id(self) -> str:
        return SENDER_PREFIX + self.session_id


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionTokens:
    """Issues and checks the signed session tokens; ``clock`` lets tests move time."""

    def __init__(self, secret: str, ttl_seconds: int, clock: Clock = time.time) -> None:
        if not secret:
            raise ValueError("webchat: a session secret is required")
        self._key = secret.encode("utf-8")
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._key, PURPOSE + payload.encode("ascii"), hashlib.sha256).digest()
        return _b64encode(digest)

    def issue(self, session_id: str | None = None) -> tuple[str, Session]:
        """A token for ``session_id`` (renewal) or for a new random session."""
        now = int(self.clock())
        session = Session(session_id or secrets.token_urlsafe(16), now, now + self.ttl_seconds)
        claims = {"sid": session.session_id, "iat": session.issued_at, "exp": session.expires_at}
        payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._mac(payload)}", session

    def verify(self, token: str) -> Session:
        """The session a token proves, or ``SessionInvalid``; the MAC is checked first."""
        if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise SessionInvalid("malformed token")
        payload, dot, mac = token.partition(".")
        if not dot or not payload or not mac:
            raise SessionInvalid("malformed token")
        if not hmac.compare_digest(self._mac(payload).encode(), mac.encode()):
            raise SessionInvalid("bad signature")
        try:
            claims = json.loads(_b64decode(payload))
            session = Session(str(claims["sid"]), int(claims["iat"]), int(claims["exp"]))
        except (ValueError, TypeError, KeyError, binascii.Error) as exc:
            raise SessionInvalid("unreadable payload") from exc
        if not SESSION_ID.fullmatch(session.session_id):
            raise SessionInvalid("unreadable payload")
        now = self.clock()
        if session.issued_at > now + CLOCK_SKEW_SECONDS:
            raise SessionInvalid("issued in the future")
        # A lowered TTL also shortens tokens issued before the change.
        if now >= min(session.expires_at, session.issued_at + self.ttl_seconds):
            raise SessionInvalid("expired")
        return session


def bearer_token(request: Request) -> str | None:
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:  # includes JSONDecodeError and UnicodeDecodeError
        return None
    return data if isinstance(data, dict) else None


def _error(code: str, status: int) -> HTTPResponse:
    return response.json({"error": code}, status=status, headers={"Cache-Control": "no-store"})


def rasa_metadata(raw: Any) -> dict[str, Any]:
    """What reaches the tracker: the platform and, if it is one of ours, the language."""
    metadata: dict[str, Any] = {"platform": CHANNEL_NAME}
    if isinstance(raw, dict) and raw.get("language") in LANGUAGES:
        metadata["language"] = raw["language"]
    return metadata


def _client(request: Request) -> str:
    return str(request.remote_addr or request.ip)


def _tag(session: Session) -> str:
    """A short, non-reversible name for a session in log lines (the id itself is not logged)."""
    return hashlib.sha256(session.session_id.encode()).hexdigest()[:8]


class WebChatInput(InputChannel):
    """Rasa input channel for the portal's web chat (``/webhooks/webchat/...``).

    ``POST session`` issues or renews a signed session; ``POST webhook`` takes a message with
    ``Authorization: Bearer <token>`` and answers with the replies, like the REST channel.
    """

    @classmethod
    def name(cls) -> str:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """``secret`` should be a ``${WEBCHAT_SECRET}`` reference in credentials.yml."""
        return cls(WebChatSettings.from_env(overrides=credentials or {}))

    def __init__(
        self,
        settings: WebChatSettings | None = None,
        clock: Clock = time.time,
        agent_settings: AgentChannelSettings | None = None,
    ) -> None:
        self.settings = settings or WebChatSettings.from_env()
        self.agent_settings = agent_settings or AgentChannelSettings.from_env()
        self.inbox_signals = InboxSignals()
        # The tracker store keeps texts redacted (bot/privacy.py): a phone or hotline an agent
        # writes is masked there. The citizen should read what the agent wrote, so this process
        # keeps the texts it recorded; an inbox on another replica shows the stored text.
        self.agent_texts: LruDict[tuple[str, float], str] = LruDict(10_000)
        self.tokens: SessionTokens | None = None
        if self.settings.secret:
            self.tokens = SessionTokens(
                self.settings.secret, self.settings.session_ttl_seconds, clock
            )
            if len(self.settings.secret) < 32:
                logger.warning(
                    "webchat: WEBCHAT_SECRET is short; use at least 32 random characters"
                )
        else:
            logger.error("webchat: WEBCHAT_SECRET is not set; the web chat will answer 503")

    def authenticate(self, request: Request) -> Session | None:
        token = bearer_token(request)
        if self.tokens is None or token is None:
            logger.info("webchat: message from %s without a session token", _client(request))
            return None
        try:
            return self.tokens.verify(token)
        except SessionInvalid as exc:
            log = logger.info if str(exc) == "expired" else logger.warning
            log("webchat: session token from %s refused: %s", _client(request), exc)
            return None

    def recorded(self, conversation_id: str, event: BotUttered) -> None:
        """An agent's message is in the tracker: keep its text as written, wake the inbox."""
        self.agent_texts.set((conversation_id, event.timestamp), event.text or "")
        self.inbox_signals.notify(conversation_id)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webchat = Blueprint("webchat_webhook", __name__)

        @webchat.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webchat.route("/session", methods=["POST"])
        async def session(request: Request) -> HTTPResponse:
            if self.tokens is None:
                return _error("unavailable", 503)
            if len(request.body) > MAX_BODY_BYTES:
                return _error("too_large", 413)
            body = _json_object(request.body) if request.body.strip() else {}
            if body is None:
                return _error("bad_request", 400)
            previous: Session | None = None
            old = body.get("session")
            if isinstance(old, str):
                try:
                    previous = self.tokens.verify(old)
                except SessionInvalid as exc:
                    logger.info("webchat: old session not renewed (%s); starting a new one", exc)
            token, issued = self.tokens.issue(previous.session_id if previous else None)
            logger.info(
                "webchat: session %s %s", _tag(issued), "renewed" if previous else "started"
            )
            return response.json(
                {"session": token, "expires_in": issued.expires_at - issued.issued_at},
                headers={"Cache-Control": "no-store"},
            )

        @webchat.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if self.tokens is None:
                return _error("unavailable", 503)
            if len(request.body) > MAX_BODY_BYTES:
                logger.info("webchat: %s-byte message refused", len(request.body))
                return _error("too_large", 413)
            session = self.authenticate(request)
            if session is None:
                return _error("session_invalid", 401)
            body = _json_object(request.body)
            if body is None or not isinstance(body.get("message"), str):
                return _error("bad_request", 400)
            text: str = body["message"]
            logger.debug("webchat: session %s -> rasa: %s", _tag(session), loggable_text(text))
            collector = CollectingOutputChannel()
            try:
                await on_new_message(
                    UserMessage(
                        text,
                        collector,
                        session.sender_id,
                        input_channel=self.name(),
                        metadata=rasa_metadata(body.get("metadata")),
                    )
                )
            except asyncio.CancelledError:
                logger.warning("webchat: turn of session %s cancelled", _tag(session))
                raise
            except Exception as exc:
                # The traceback may quote the citizen's words: only its type at ERROR.
                logger.error(
                    "webchat: handling a message of session %s failed: %s",
                    _tag(session),
                    type(exc).__name__,
                )
                logger.debug("webchat: failure details", exc_info=True)
            return response.json(collector.messages, headers={"Cache-Control": "no-store"})

        add_agent_route(
            webchat,
            channel=CHANNEL_NAME,
            sender_prefix=SENDER_PREFIX,
            deliver=None,  # the widget fetches it from the inbox
            settings=self.agent_settings,
            recorded=self.recorded,
        )

        @webchat.route("/inbox", methods=["GET"])
        async def inbox(request: Request) -> HTTPResponse:
            if self.tokens is None:
                return _error("unavailable", 503)
            session = self.authenticate(request)
            if session is None:
                return _error("session_invalid", 401)
            raw = request.args.get("after")
            try:
                # No cursor yet (a new session): everything pushed since the token was issued.
                after = float(session.issued_at - 1) if raw is None else float(raw)
            except ValueError:
                return _error("bad_request", 400)
            if after != after or after in (float("inf"), float("-inf")):  # NaN, infinities
                return _error("bad_request", 400)
            rasa = getattr(request.app.ctx, "agent", None)
            if rasa is None or rasa.tracker_store is None:
                return _error("unavailable", 503)
            settings = self.agent_settings
            loop = asyncio.get_running_loop()
            deadline = loop.time() + settings.inbox_wait_seconds
            while True:
                tracker = await rasa.tracker_store.retrieve(session.sender_id)
                messages = pushed_messages(
                    tracker.events if tracker else [], after, session.sender_id, self.agent_texts
                )
                left = deadline - loop.time()
                if messages or left <= 0:
                    break
                await self.inbox_signals.wait(
                    session.sender_id, min(settings.inbox_poll_seconds, left)
                )
            newest = max((m["timestamp"] for m in messages), default=after)
            logger.debug("webchat: inbox of session %s: %s new", _tag(session), len(messages))
            return response.json(
                {"messages": messages, "after": newest}, headers={"Cache-Control": "no-store"}
            )

        return webchat


def pushed_messages(
    events: Any,
    after: float,
    sender_id: str = "",
    originals: LruDict[tuple[str, float], str] | None = None,
) -> list[dict[str, Any]]:
    """The bot events newer than ``after`` that the citizen did not get as a reply; an agent's
    text as written when this process recorded it (``originals``), else as stored."""
    found: list[dict[str, Any]] = []
    for event in events:
        if not isinstance(event, BotUttered) or event.timestamp <= after:
            continue
        metadata = event.metadata or {}
        agent = metadata.get(FROM_AGENT)
        if not agent and metadata.get("utter_action") not in PUSHED_RESPONSES:
            continue
        data = event.data or {}
        original = originals.get((sender_id, event.timestamp)) if originals and agent else None
        found.append(
            {
                "text": original or event.text or "",
                "from_agent": str(agent) if agent else None,
                "buttons": data.get("buttons") or [],
                "timestamp": event.timestamp,
            }
        )
    return found
