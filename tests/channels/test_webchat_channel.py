"""Web chat channel: the conversation comes only from a signed session token, never the body."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from typing import Any

import httpx
import pytest
from rasa.core.channels.channel import UserMessage, register
from rasa.core.run import create_http_input_channels
from sanic import Sanic

from bot.channels.webchat import SessionTokens, WebChatInput, WebChatSettings
from tests.channels.channel_fakes import RecordingRasa, serve_channel

SECRET = "test-webchat-secret-0123456789abcdef"
TTL = 3600
ID_NUMBER = "001090001234"


class Clock:
    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def channel(clock: Clock) -> WebChatInput:
    return WebChatInput(WebChatSettings(secret=SECRET, session_ttl_seconds=TTL), clock=clock)


def greeting(message: UserMessage) -> list[dict[str, Any]]:
    return [
        {"text": "Xin chào!"},
        {"text": "Bạn cần gì?", "buttons": [{"title": "Hồ sơ", "payload": "/ask_dossier"}]},
    ]


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def with_claims(token: str, **changes: Any) -> str:
    """The same MAC on a payload with ``changes``: what a forger without the secret can do."""
    data = {**claims(token), **changes}
    raw = json.dumps(data, separators=(",", ":")).encode()
    payload = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return f"{payload}.{token.split('.')[1]}"


async def new_session(client: httpx.AsyncClient, body: Any = None) -> str:
    response = await client.post("/webhooks/webchat/session", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["session"])


async def say(
    client: httpx.AsyncClient, token: str | None, message: Any = "xin chào", **extra: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body = {"message": message, "metadata": {"language": "vi"}, **extra}
    return await client.post("/webhooks/webchat/webhook", json=body, headers=headers)


async def test_a_session_is_a_conversation_that_its_token_continues(channel):
    rasa = RecordingRasa(reply=greeting)
    async with serve_channel(channel, rasa) as client:
        response = await client.post("/webhooks/webchat/session")
        assert response.status_code == 200
        assert response.json()["expires_in"] == TTL
        assert response.headers["cache-control"] == "no-store"
        token = response.json()["session"]
        first = await say(client, token)
        second = await say(client, token, "/ask_dossier")
        other = await say(client, await new_session(client))

    session_id = claims(token)["sid"]
    assert len(session_id) == 22  # secrets.token_urlsafe(16): 128 random bits
    assert [m.sender_id for m in rasa.messages[:2]] == [f"web:{session_id}"] * 2
    assert rasa.messages[2].sender_id != rasa.messages[0].sender_id
    assert rasa.texts[:2] == ["xin chào", "/ask_dossier"]
    assert first.status_code == second.status_code == other.status_code == 200
    # the replies exactly as Rasa's REST channel returns them
    assert first.json() == [
        {"recipient_id": f"web:{session_id}", "text": "Xin chào!"},
        {
            "recipient_id": f"web:{session_id}",
            "text": "Bạn cần gì?",
            "buttons": [{"title": "Hồ sơ", "payload": "/ask_dossier"}],
        },
    ]
    assert rasa.messages[0].input_channel == "webchat"
    assert rasa.messages[0].metadata == {"platform": "webchat", "language": "vi"}


async def test_a_sender_in_the_body_is_ignored(channel):
    rasa = RecordingRasa()
    async with serve_channel(channel, rasa) as client:
        victim = await new_session(client)
        await say(client, victim, "tôi là chủ hồ sơ")
        attacker = await new_session(client)
        response = await say(client, attacker, "cho xem hồ sơ", sender=rasa.messages[0].sender_id)

    assert response.status_code == 200
    assert rasa.messages[1].sender_id == f"web:{claims(attacker)['sid']}"
    assert rasa.messages[1].sender_id != rasa.messages[0].sender_id


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-token"],
    ids=["no-header", "empty", "bearer-alone", "basic", "garbage"],
)
async def test_no_token_is_refused_before_rasa(channel, authorization):
    rasa = RecordingRasa()
    headers = {} if authorization is None else {"Authorization": authorization}
    async with serve_channel(channel, rasa) as client:
        response = await client.post(
            "/webhooks/webchat/webhook", json={"message": "xin chào"}, headers=headers
        )
    assert response.status_code == 401
    assert response.json() == {"error": "session_invalid"}
    assert rasa.messages == []


def flip_mac_character(token: str) -> str:
    payload, mac = token.split(".")
    i = len(mac) // 2
    return f"{payload}.{mac[:i]}{'A' if mac[i] != 'A' else 'B'}{mac[i + 1 :]}"


async def test_a_token_with_one_character_of_its_mac_changed_is_refused(channel):
    rasa = RecordingRasa()
    async with serve_channel(channel, rasa) as client:
        token = await new_session(client)
        response = await say(client, flip_mac_character(token))
    assert response.status_code == 401
    assert rasa.messages == []


async def test_a_token_signed_with_another_secret_is_refused(channel, clock):
    rasa = RecordingRasa()
    forged, _ = SessionTokens("some-other-secret-0123456789abcdef", TTL, clock).issue()
    async with serve_channel(channel, rasa) as client:
        response = await say(client, forged)
    assert response.status_code == 401
    assert rasa.messages == []


async def test_a_token_naming_another_conversation_is_refused(channel):
    """Knowing the victim's session id and holding a valid MAC of one's own is not enough."""
    rasa = RecordingRasa()
    async with serve_channel(channel, rasa) as client:
        victim = await new_session(client)
        attacker = await new_session(client)
        response = await say(client, with_claims(attacker, sid=claims(victim)["sid"]))
        extended = await say(client, with_claims(attacker, exp=claims(attacker)["exp"] + 10**6))
    assert response.status_code == extended.status_code == 401
    assert rasa.messages == []


async def test_an_expired_token_is_refused(channel, clock):
    rasa = RecordingRasa()
    async with serve_channel(channel, rasa) as client:
        token = await new_session(client)
        clock.now += TTL - 1
        assert (await say(client, token, "still here")).status_code == 200
        clock.now += 1
        response = await say(client, token, "too late")
    assert response.status_code == 401
    assert response.json() == {"error": "session_invalid"}
    assert rasa.texts == ["still here"]


async def test_renewal_keeps_the_conversation(channel, clock):
    rasa = RecordingRasa()
    async with serve_channel(channel, rasa) as client:
        old = await new_session(client)
        await say(client, old, "trước")
        clock.now += TTL - 60
        renewed = await new_session(client, {"session": old})
        clock.now += TTL - 60  # the old token has expired by now, the renewed one has not
        assert (await say(client, old, "cũ")).status_code == 401
        response = await say(client, renewed, "sau")

    assert renewed != old
    assert response.status_code == 200
    assert rasa.texts == ["trước", "sau"]
    assert rasa.messages[0].sender_id == rasa.messages[1].sender_id


async def test_renewing_an_invalid_or_expired_token_starts_a_new_conversation(channel, clock):
    async with serve_channel(channel, RecordingRasa()) as client:
        old = await new_session(client)
        forged = await new_session(client, {"session": flip_mac_character(old)})
        hijack = await new_session(client, {"session": with_claims(forged, sid=claims(old)["sid"])})
        clock.now += TTL
        expired = await new_session(client, {"session": old})
    sessions = {claims(token)["sid"] for token in (old, forged, hijack, expired)}
    assert len(sessions) == 4


async def test_a_100_kib_body_is_refused_before_rasa(channel):
    rasa = RecordingRasa()
    async with serve_channel(channel, rasa) as client:
        token = await new_session(client)
        response = await say(client, token, "a" * 100 * 1024)
        session = await client.post("/webhooks/webchat/session", content=b" " * 100 * 1024)
        fits = await say(client, token, "a" * 60_000)
    assert response.status_code == session.status_code == 413
    assert response.json() == {"error": "too_large"}
    assert fits.status_code == 200
    assert [len(text or "") for text in rasa.texts] == [60_000]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b"\xff\xfe", b"", b'{"message": 42}', b'{"text": "hi"}'],
    ids=["broken", "list", "not-utf8", "empty", "number", "no-message"],
)
async def test_a_body_that_is_not_a_message_is_a_bad_request(channel, body):
    rasa = RecordingRasa()
    async with serve_channel(channel, rasa) as client:
        token = await new_session(client)
        response = await client.post(
            "/webhooks/webchat/webhook",
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json() == {"error": "bad_request"}
    assert rasa.messages == []


async def test_without_a_secret_the_channel_answers_503_and_says_why_at_start(caplog):
    rasa = RecordingRasa()
    with caplog.at_level(logging.ERROR, logger="bot.channels.webchat"):
        channel = WebChatInput(WebChatSettings(secret=""))
    assert "WEBCHAT_SECRET is not set" in caplog.text
    async with serve_channel(channel, rasa) as client:
        session = await client.post("/webhooks/webchat/session")
        message = await say(client, "anything")
    assert session.status_code == message.status_code == 503
    assert rasa.messages == []


async def test_only_the_language_reaches_the_tracker_as_metadata(channel):
    rasa = RecordingRasa()
    async with serve_channel(channel, rasa) as client:
        token = await new_session(client)
        headers = {"Authorization": f"Bearer {token}"}
        for metadata in ({"language": "en", "is_verified": True}, {"language": "fr"}, "vi"):
            await client.post(
                "/webhooks/webchat/webhook",
                json={"message": "hi", "metadata": metadata, "input_channel": "rest"},
                headers=headers,
            )
    assert [m.metadata for m in rasa.messages] == [
        {"platform": "webchat", "language": "en"},
        {"platform": "webchat"},
        {"platform": "webchat"},
    ]
    assert {m.input_channel for m in rasa.messages} == {"webchat"}


async def test_logs_never_hold_the_citizens_words(channel, caplog):
    text = f"Số căn cước của tôi là {ID_NUMBER}, hồ sơ bí mật"

    def fail(message: UserMessage) -> list[dict[str, Any]]:
        raise RuntimeError(f"cannot handle {message.text}")

    with caplog.at_level(logging.DEBUG, logger="bot.channels.webchat"):
        async with serve_channel(channel, RecordingRasa(reply=fail)) as client:
            token = await new_session(client)
            response = await say(client, token, text)
            await say(client, "forged." + token.split(".")[1], text)
    assert response.status_code == 200 and response.json() == []
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert "webchat" in logged and "bí mật" not in logged
    assert ID_NUMBER not in caplog.text  # masked even at DEBUG


def test_settings_come_from_the_credentials_block_then_the_environment(monkeypatch):
    monkeypatch.setenv("WEBCHAT_SECRET", "from-env")
    monkeypatch.setenv("WEBCHAT_SESSION_TTL_SECONDS", "600")
    from_env = WebChatInput.from_credentials(None)
    block = WebChatInput.from_credentials({"secret": "from-block", "session_ttl_seconds": 120})
    monkeypatch.delenv("WEBCHAT_SESSION_TTL_SECONDS")
    default = WebChatInput.from_credentials({"secret": "s"})
    assert isinstance(from_env, WebChatInput) and isinstance(block, WebChatInput)
    assert isinstance(default, WebChatInput)
    assert (from_env.settings.secret, from_env.settings.session_ttl_seconds) == ("from-env", 600)
    assert (block.settings.secret, block.settings.session_ttl_seconds) == ("from-block", 120)
    assert default.settings.session_ttl_seconds == 86_400


def test_the_documented_credentials_block_mounts_the_routes(tmp_path, monkeypatch):
    monkeypatch.setenv("WEBCHAT_SECRET", SECRET)
    credentials = tmp_path / "credentials.yml"
    credentials.write_text(
        "rest:\n\nbot.channels.webchat.WebChatInput:\n  secret: ${WEBCHAT_SECRET}\n",
        encoding="utf-8",
    )
    channels = create_http_input_channels(None, str(credentials))
    webchat = next(c for c in channels if isinstance(c, WebChatInput))
    assert webchat.settings.secret == SECRET

    Sanic.test_mode = True
    app = Sanic(f"webchat-wiring-{uuid.uuid4().hex[:8]}", configure_logging=False)
    register(channels, app, route="/webhooks/")
    paths = {route.path for route in app.router.routes}
    assert {"webhooks/webchat/session", "webhooks/webchat/webhook"} <= paths
