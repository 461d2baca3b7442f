"""Messenger is Rasa's own ``facebook`` connector (``bot.channels.messenger.MessengerInput``, a
subclass adding the agent route): check how it guards its webhook."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from rasa.core.channels import facebook
from rasa.core.channels.facebook import FacebookInput

from bot.channels.messenger import MessengerInput
from tests.channels.channel_fakes import RecordingRasa, serve_channel

VERIFY = "verify-token-from-env"
APP_SECRET = "app-secret-from-env"
PAGE_TOKEN = "page-access-token-from-env"


def make_channel(secret: str = APP_SECRET) -> FacebookInput:
    channel = MessengerInput.from_credentials(
        {"verify": VERIFY, "secret": secret, "page-access-token": PAGE_TOKEN}
    )
    assert isinstance(channel, MessengerInput) and isinstance(channel, FacebookInput)
    assert channel.name() == "facebook"
    return channel


def message_event(text: str = "xin chào") -> bytes:
    event = {
        "object": "page",
        "entry": [
            {
                "id": "page-1",
                "time": 1780000000000,
                "messaging": [
                    {
                        "sender": {"id": "psid-1"},
                        "recipient": {"id": "page-1"},
                        "timestamp": 1780000000000,
                        "message": {"mid": "m1", "text": text},
                    }
                ],
            }
        ],
    }
    return json.dumps(event, ensure_ascii=False).encode()


def hub_signature(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


async def test_verify_token_handshake_is_accepted():
    async with serve_channel(make_channel(), RecordingRasa()) as client:
        reply = await client.get(
            "/webhooks/facebook/webhook",
            params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "4242"},
        )
    assert reply.status_code == 200
    assert reply.text == "4242"


async def test_wrong_verify_token_does_not_echo_the_challenge():
    async with serve_channel(make_channel(), RecordingRasa()) as client:
        reply = await client.get(
            "/webhooks/facebook/webhook",
            params={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "4242"},
        )
    assert "4242" not in reply.text


@pytest.mark.parametrize(
    "signature", [None, "sha1=" + "0" * 40, hub_signature(message_event(), "other-secret")]
)
async def test_wrong_hub_signature_is_refused(signature):
    rasa = RecordingRasa()
    headers = {"Content-Type": "application/json"}
    if signature:
        headers["X-Hub-Signature"] = signature
    async with serve_channel(make_channel(), rasa) as client:
        reply = await client.post(
            "/webhooks/facebook/webhook", content=message_event(), headers=headers
        )
    # Rasa 3.6 answers 200 "not validated" (not 4xx) and drops the message.
    assert reply.text == "not validated"
    assert rasa.messages == []


async def test_correctly_signed_message_reaches_rasa(monkeypatch):
    sent_actions: list[str] = []

    async def no_network(self: object, recipient_id: str, sender_action: str) -> None:
        sent_actions.append(sender_action)

    monkeypatch.setattr(facebook.MessengerBot, "send_action", no_network)
    rasa = RecordingRasa()
    body = message_event()
    headers = {"Content-Type": "application/json", "X-Hub-Signature": hub_signature(body)}
    async with serve_channel(make_channel(), rasa) as client:
        reply = await client.post("/webhooks/facebook/webhook", content=body, headers=headers)
    assert reply.text == "success"
    assert rasa.texts == ["xin chào"]
    assert rasa.messages[0].sender_id == "psid-1"
    assert sent_actions == ["mark_seen", "typing_on", "typing_off"]


async def test_no_app_secret_refuses_even_a_signature_made_with_the_empty_key(monkeypatch):
    monkeypatch.delenv("FACEBOOK_APP_SECRET", raising=False)
    rasa = RecordingRasa()
    body = message_event()
    headers = {"Content-Type": "application/json", "X-Hub-Signature": hub_signature(body, "")}
    async with serve_channel(make_channel(secret=""), rasa) as client:
        reply = await client.post("/webhooks/facebook/webhook", content=body, headers=headers)
    assert reply.text == "not validated"
    assert rasa.messages == []
