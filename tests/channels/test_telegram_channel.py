"""Telegram webhook channel against a fake Bot API: message in -> reply out."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.channels.common import MAX_BODY_BYTES, RetryPolicy, protocol_text
from bot.channels.state import (
    ChannelState,
    RedisChannelState,
    SqliteChannelState,
    StateUnavailable,
)
from bot.channels.telegram import (
    SECRET_HEADER,
    TelegramInput,
    TelegramSettings,
    switch_language_payload,
)
from tests.channels.channel_fakes import (
    FakeTelegramApi,
    RecordingRasa,
    serve_channel,
    telegram_callback_update,
    telegram_message_update,
)

SECRET = "s3cret-Token_1"
HEADERS = {SECRET_HEADER: SECRET}
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
BUTTONS = [
    {"title": "Tra cứu hồ sơ", "payload": "/check_status"},
    {"title": "Lệ phí", "payload": "/ask_fee"},
]


@pytest.fixture(autouse=True)
def state_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every channel of these tests keeps its de-duplication state in a file of its own."""
    path = tmp_path / "channel_state.db"
    monkeypatch.setenv("CHANNEL_STATE_DB", str(path))
    monkeypatch.delenv("SHARED_STATE_URL", raising=False)
    return path


def make_channel(
    api: FakeTelegramApi, state: ChannelState | None = None, **changes: object
) -> TelegramInput:
    settings = TelegramSettings(
        token=api.token,
        webhook_secret=SECRET,
        api_base_url=api.base_url,
        timeout_seconds=2.0,
        retry=FAST_RETRY,
    )
    return TelegramInput(replace(settings, **changes), state=state)  # type: ignore[arg-type]


def greet_with_buttons(message: object) -> list[dict]:
    return [{"text": "Chào bạn! Tôi có thể giúp gì?", "buttons": BUTTONS}]


async def test_message_reaches_rasa_and_reply_with_buttons_is_sent(fake_telegram):
    rasa = RecordingRasa(reply=greet_with_buttons)
    async with serve_channel(make_channel(fake_telegram), rasa) as client:
        reply = await client.post(
            "/webhooks/telegram_ptb/webhook", json=telegram_message_update(1), headers=HEADERS
        )
    assert reply.status_code == 200
    [message] = rasa.messages
    assert message.text == "xin chào"
    assert message.sender_id == "telegram:111"
    assert message.input_channel == "telegram_ptb"
    [sent] = fake_telegram.calls_to("sendMessage")
    assert sent.params["chat_id"] == "111"
    assert sent.params["text"] == "Chào bạn! Tôi có thể giúp gì?"
    keyboard = sent.params["reply_markup"]["inline_keyboard"]
    flat = [button for row in keyboard for button in row]
    assert [(b["text"], b["callback_data"]) for b in flat] == [
        ("Tra cứu hồ sơ", "/check_status"),
        ("Lệ phí", "/ask_fee"),
    ]
    assert fake_telegram.calls_to("sendChatAction")[0].params["action"] == "typing"


@pytest.mark.parametrize("headers", [{}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: ""}])
async def test_missing_or_wrong_secret_is_refused(fake_telegram, caplog, headers):
    rasa = RecordingRasa(reply=greet_with_buttons)
    caplog.set_level(logging.WARNING, logger="bot.channels.telegram")
    async with serve_channel(make_channel(fake_telegram), rasa) as client:
        reply = await client.post(
            "/webhooks/telegram_ptb/webhook", json=telegram_message_update(1), headers=headers
        )
    assert reply.status_code == 403
    assert rasa.messages == []
    assert fake_telegram.calls == []
    assert any("refused" in record.getMessage() for record in caplog.records)


async def test_unset_secret_refuses_everything(fake_telegram):
    rasa = RecordingRasa()
    async with serve_channel(make_channel(fake_telegram, webhook_secret=""), rasa) as client:
        reply = await client.post(
            "/webhooks/telegram_ptb/webhook",
            json=telegram_message_update(1),
            headers={SECRET_HEADER: ""},
        )
    assert reply.status_code == 403
    assert rasa.messages == []


async def test_long_text_is_split_at_paragraphs_and_buttons_ride_on_the_last_part(fake_telegram):
    paragraphs = [f"Đoạn {i}. " + "Thủ tục hành chính công trực tuyến. " * 40 for i in range(12)]
    long_text = "\n\n".join(paragraphs)
    assert len(long_text) > 4096 * 2

    def long_reply(message: object) -> list[dict]:
        return [{"text": long_text, "buttons": BUTTONS}]

    async with serve_channel(make_channel(fake_telegram), RecordingRasa(long_reply)) as client:
        await client.post(
            "/webhooks/telegram_ptb/webhook", json=telegram_message_update(1), headers=HEADERS
        )
    sent = fake_telegram.calls_to("sendMessage")
    assert len(sent) >= 3
    assert all(len(call.params["text"]) <= 4096 for call in sent)
    # every part starts at a paragraph start, nothing is lost
    assert all(call.params["text"].startswith("Đoạn ") for call in sent)
    joined = " ".join(call.params["text"] for call in sent)
    assert joined.split() == long_text.split()
    assert [("reply_markup" in call.params) for call in sent] == [False] * (len(sent) - 1) + [True]


async def test_long_payload_gets_a_short_callback_id_and_a_press_sends_the_payload(fake_telegram):
    long_payload = (
        '/inform{"dossier_code":"000.00.10.H26-261110-0001","procedure":"birth_registration"}'
    )
    assert len(long_payload.encode()) > 64

    def offer(message: object) -> list[dict]:
        if message.text == "xin chào":  # type: ignore[attr-defined]
            return [
                {"text": "Chọn hồ sơ", "buttons": [{"title": "Hồ sơ 1", "payload": long_payload}]}
            ]
        return [{"text": "Đã nhận."}]

    rasa = RecordingRasa(offer)
    async with serve_channel(make_channel(fake_telegram), rasa) as client:
        await client.post(
            "/webhooks/telegram_ptb/webhook", json=telegram_message_update(1), headers=HEADERS
        )
        [offered] = fake_telegram.calls_to("sendMessage")
        data = offered.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        assert len(data.encode()) <= 64
        assert data != long_payload

        pressed = await client.post(
            "/webhooks/telegram_ptb/webhook",
            json=telegram_callback_update(2, data),
            headers=HEADERS,
        )
    assert pressed.status_code == 200
    assert rasa.texts == ["xin chào", long_payload]
    assert fake_telegram.calls_to("answerCallbackQuery")[0].params["callback_query_id"] == "cq2"
    assert fake_telegram.sent_texts()[-1] == "Đã nhận."


async def test_unknown_short_callback_id_is_reported_expired(fake_telegram):
    rasa = RecordingRasa()
    async with serve_channel(make_channel(fake_telegram), rasa) as client:
        await client.post(
            "/webhooks/telegram_ptb/webhook",
            json=telegram_callback_update(5, "~cb:0123456789abcdef01234567"),
            headers=HEADERS,
        )
    assert rasa.messages == []
    assert fake_telegram.sent_texts() == [protocol_text("button_expired", "vi")]


@pytest.mark.parametrize(
    ("command", "payload"),
    [
        ("/start", "/greet"),
        ("/start@civic_bot deeplink", "/greet"),
        ("/help", "/help"),
        ("/lang en", switch_language_payload("en")),
        ("/lang vi", '/switch_language{"language":"vi"}'),
        ("/en", switch_language_payload("en")),
        ("/vi", switch_language_payload("vi")),
        ("/weather today", "weather today"),
    ],
)
async def test_commands_become_rasa_payloads(fake_telegram, command, payload):
    rasa = RecordingRasa()
    async with serve_channel(make_channel(fake_telegram), rasa) as client:
        await client.post(
            "/webhooks/telegram_ptb/webhook",
            json=telegram_message_update(1, text=command),
            headers=HEADERS,
        )
    assert rasa.texts == [payload]


async def test_lang_without_a_known_language_shows_usage_in_the_chats_language(fake_telegram):
    rasa = RecordingRasa()
    async with serve_channel(make_channel(fake_telegram), rasa) as client:
        await client.post(
            "/webhooks/telegram_ptb/webhook",
            json=telegram_message_update(1, text="/lang fr", language_code="en"),
            headers=HEADERS,
        )
    assert rasa.messages == []
    assert fake_telegram.sent_texts() == [protocol_text("lang_usage", "en")]


STICKER = {
    "sticker": {
        "file_id": "f",
        "file_unique_id": "u",
        "width": 1,
        "height": 1,
        "is_animated": False,
        "is_video": False,
        "type": "regular",
    }
}


async def test_non_text_message_gets_the_protocol_fallback(fake_telegram):
    rasa = RecordingRasa()
    update = telegram_message_update(1, text=None, **STICKER)
    async with serve_channel(make_channel(fake_telegram), rasa) as client:
        reply = await client.post("/webhooks/telegram_ptb/webhook", json=update, headers=HEADERS)
    assert reply.status_code == 200
    assert rasa.messages == []
    assert fake_telegram.sent_texts() == [protocol_text("unsupported_content", "vi")]


async def test_redelivered_update_is_handled_once(fake_telegram):
    rasa = RecordingRasa(reply=greet_with_buttons)
    async with serve_channel(make_channel(fake_telegram), rasa) as client:
        for _ in range(2):
            reply = await client.post(
                "/webhooks/telegram_ptb/webhook", json=telegram_message_update(7), headers=HEADERS
            )
            assert reply.status_code == 200
    assert rasa.texts == ["xin chào"]
    assert len(fake_telegram.calls_to("sendMessage")) == 1


async def test_api_500_is_retried_and_the_reply_still_arrives(fake_telegram):
    fake_telegram.failures["sendMessage"] = [500, 502]
    rasa = RecordingRasa(reply=greet_with_buttons)
    async with serve_channel(make_channel(fake_telegram), rasa) as client:
        reply = await client.post(
            "/webhooks/telegram_ptb/webhook", json=telegram_message_update(1), headers=HEADERS
        )
    assert reply.status_code == 200
    assert rasa.texts == ["xin chào"]
    assert len(fake_telegram.calls_to("sendMessage")) == 3  # two failures, then delivered


async def test_slow_api_times_out_is_retried_and_the_reply_still_arrives(fake_telegram):
    fake_telegram.delays["sendMessage"] = [2.0]
    rasa = RecordingRasa(reply=greet_with_buttons)
    channel = make_channel(fake_telegram, timeout_seconds=0.3)
    async with serve_channel(channel, rasa) as client:
        reply = await client.post(
            "/webhooks/telegram_ptb/webhook", json=telegram_message_update(1), headers=HEADERS
        )
    assert reply.status_code == 200
    assert rasa.texts == ["xin chào"]
    assert len(fake_telegram.calls_to("sendMessage")) == 2


async def test_api_down_for_good_keeps_the_citizens_message_and_answers_200(fake_telegram, caplog):
    fake_telegram.failures["sendMessage"] = [500] * 10
    caplog.set_level(logging.ERROR, logger="bot.channels.telegram")
    rasa = RecordingRasa(reply=greet_with_buttons)
    async with serve_channel(make_channel(fake_telegram), rasa) as client:
        reply = await client.post(
            "/webhooks/telegram_ptb/webhook", json=telegram_message_update(1), headers=HEADERS
        )
    assert reply.status_code == 200  # Telegram must not redeliver forever
    assert rasa.texts == ["xin chào"]  # the citizen's message reached Rasa
    assert len(fake_telegram.calls_to("sendMessage")) == FAST_RETRY.attempts
    assert any("failed for good" in record.getMessage() for record in caplog.records)


async def test_image_and_custom_payloads(fake_telegram):
    def media(message: object) -> list[dict]:
        return [
            {"image": "https://example.org/mau-to-khai.png"},
            {
                "custom": {
                    "telegram": {"method": "send_location", "latitude": 21.0, "longitude": 105.8}
                }
            },
            {"custom": {"telegram": {"method": "ban_chat_member", "user_id": 1}}},
        ]

    async with serve_channel(make_channel(fake_telegram), RecordingRasa(media)) as client:
        await client.post(
            "/webhooks/telegram_ptb/webhook", json=telegram_message_update(1), headers=HEADERS
        )
    assert fake_telegram.calls_to("sendPhoto")[0].params["photo"] == (
        "https://example.org/mau-to-khai.png"
    )
    assert fake_telegram.calls_to("sendLocation")[0].params["latitude"] == "21.0"
    assert fake_telegram.calls_to("banChatMember") == []


async def test_health_route(fake_telegram):
    async with serve_channel(make_channel(fake_telegram), RecordingRasa()) as client:
        reply = await client.get("/webhooks/telegram_ptb/")
    assert reply.json() == {"status": "ok"}


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "42:env-token")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "env-secret")
    monkeypatch.delenv("TELEGRAM_API_BASE_URL", raising=False)
    channel = TelegramInput.from_credentials({"send_attempts": 5})
    assert isinstance(channel, TelegramInput)
    assert channel.settings.token == "42:env-token"
    assert channel.settings.webhook_secret == "env-secret"
    assert channel.settings.api_base_url == "https://api.telegram.org/bot"
    assert channel.settings.retry.attempts == 5
    assert TelegramInput.name() == "telegram_ptb"


def test_expanded_credentials_block_wins(monkeypatch):
    """credentials.yml holds ${VAR} references; Rasa hands us the expanded values."""
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    channel = TelegramInput.from_credentials(
        {"token": "42:expanded", "webhook_secret": "expanded", "api_base_url": "http://x/bot"}
    )
    assert isinstance(channel, TelegramInput)
    assert (channel.settings.token, channel.settings.webhook_secret) == ("42:expanded", "expanded")
    assert channel.settings.api_base_url == "http://x/bot"


async def test_redelivery_after_a_restart_is_not_handled_again(fake_telegram, state_db):
    """A new channel instance on the same state file (a restart) remembers handled updates."""
    rasa = RecordingRasa(reply=lambda message: [{"text": "Đã nhận."}])
    async with serve_channel(make_channel(fake_telegram), rasa) as client:
        first = await client.post(
            "/webhooks/telegram_ptb/webhook",
            json=telegram_message_update(7, text="một"),
            headers=HEADERS,
        )
    assert first.json() == {"status": "ok"}

    restarted = make_channel(fake_telegram)
    async with serve_channel(restarted, rasa) as client:
        again = await client.post(
            "/webhooks/telegram_ptb/webhook",
            json=telegram_message_update(7, text="một"),
            headers=HEADERS,
        )
        new = await client.post(
            "/webhooks/telegram_ptb/webhook",
            json=telegram_message_update(8, text="hai"),
            headers=HEADERS,
        )
    assert state_db.exists()
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    assert new.json() == {"status": "ok"}
    assert rasa.texts == ["một", "hai"]
    assert fake_telegram.sent_texts() == ["Đã nhận.", "Đã nhận."]


async def in_chunks(body: bytes, size: int = 16_384) -> AsyncIterator[bytes]:
    """The body sent with Transfer-Encoding: chunked (no Content-Length to refuse it by)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def padded_update(update_id: int, size: int) -> bytes:
    """A valid update whose JSON body is exactly ``size`` bytes."""
    body = json.dumps(telegram_message_update(update_id, text="")).encode()
    body = json.dumps(telegram_message_update(update_id, text="a" * (size - len(body)))).encode()
    assert len(body) == size
    return body


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_over_64_kib_is_refused_with_413_before_parsing(fake_telegram, chunked):
    rasa = RecordingRasa(reply=greet_with_buttons)
    body = padded_update(9, MAX_BODY_BYTES + 1)
    content = in_chunks(body) if chunked else body
    headers = {**HEADERS, "Content-Type": "application/json"}
    async with serve_channel(make_channel(fake_telegram), rasa) as client:
        reply = await client.post(
            "/webhooks/telegram_ptb/webhook", content=content, headers=headers
        )
    assert reply.status_code == 413
    assert rasa.messages == []
    assert fake_telegram.calls == []


async def test_body_of_exactly_64_kib_is_accepted(fake_telegram):
    rasa = RecordingRasa()
    body = padded_update(9, MAX_BODY_BYTES)
    headers = {**HEADERS, "Content-Type": "application/json"}
    async with serve_channel(make_channel(fake_telegram), rasa) as client:
        reply = await client.post("/webhooks/telegram_ptb/webhook", content=body, headers=headers)
    assert reply.status_code == 200
    [text] = rasa.texts
    assert text and set(text) == {"a"}


async def test_state_store_failing_answers_503_so_telegram_redelivers(fake_telegram, tmp_path):
    """Not knowing whether an update was handled, the channel neither guesses nor drops it."""
    rasa = RecordingRasa()
    channel = make_channel(fake_telegram, state=SqliteChannelState(tmp_path))  # a directory
    async with serve_channel(channel, rasa) as client:
        reply = await client.post(
            "/webhooks/telegram_ptb/webhook", json=telegram_message_update(1), headers=HEADERS
        )
    assert reply.status_code == 503
    assert rasa.messages == []


LONG_PAYLOAD = (
    '/inform{"dossier_code":"000.00.10.H26-261110-0001","procedure":"birth_registration"}'
)


def offer_long_payload(message: object) -> list[dict]:
    if message.text == "xin chào":  # type: ignore[attr-defined]
        return [
            {
                "text": "Chọn hồ sơ",
                "buttons": [
                    {"title": "Hồ sơ 1", "payload": LONG_PAYLOAD},
                    {"title": "Lệ phí", "payload": "/ask_fee"},
                ],
            }
        ]
    return [{"text": "Đã nhận."}]


async def post_update(client, update: dict) -> object:
    return await client.post("/webhooks/telegram_ptb/webhook", json=update, headers=HEADERS)


async def test_two_replicas_on_one_redis_share_buttons_languages_and_update_ids(
    fake_telegram, redis_server
):
    """A button offered by one replica is pressed on another; what /en chose, and which updates
    were handled, are known to both."""
    rasa = RecordingRasa(offer_long_payload)
    one = make_channel(fake_telegram, state=RedisChannelState(redis_server.url))
    two = make_channel(fake_telegram, state=RedisChannelState(redis_server.url))
    async with serve_channel(one, rasa) as first, serve_channel(two, rasa) as second:
        await post_update(first, telegram_message_update(1))
        [offered] = fake_telegram.calls_to("sendMessage")
        data = offered.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        assert data.startswith("~cb:")
        pressed = await post_update(second, telegram_callback_update(2, data))
        again = await post_update(second, telegram_message_update(1))
        await post_update(first, telegram_message_update(3, text="/en"))
        await post_update(second, telegram_message_update(4, text=None, **STICKER))
    assert pressed.json() == {"status": "ok"}
    assert again.json() == {"status": "duplicate"}
    assert rasa.texts == ["xin chào", LONG_PAYLOAD, switch_language_payload("en")]
    assert fake_telegram.sent_texts()[-1] == protocol_text("unsupported_content", "en")


async def test_redis_down_answers_503_and_the_redelivery_once_it_is_back_is_handled(
    fake_telegram, redis_server
):
    rasa = RecordingRasa(reply=lambda message: [{"text": "Đã nhận."}])
    channel = make_channel(
        fake_telegram, state=RedisChannelState(redis_server.url, timeout_seconds=0.5)
    )
    async with serve_channel(channel, rasa) as client:
        redis_server.stop()
        down = await post_update(client, telegram_message_update(5, text="một"))
        redis_server.start()
        back = await post_update(client, telegram_message_update(5, text="một"))
        twice = await post_update(client, telegram_message_update(5, text="một"))
    assert down.status_code == 503
    assert back.json() == {"status": "ok"}
    assert twice.json() == {"status": "duplicate"}
    assert rasa.texts == ["một"]


class ValuesDown(SqliteChannelState):
    """De-duplication works, values do not: the store failing between two calls."""

    async def put(self, channel: str, key: str, value: str, ttl_seconds: float) -> None:
        raise StateUnavailable("values down")

    async def get(self, channel: str, key: str) -> str | None:
        raise StateUnavailable("values down")


async def test_buttons_that_cannot_be_kept_are_left_out_and_a_press_gets_an_apology(
    fake_telegram, tmp_path, caplog
):
    rasa = RecordingRasa(offer_long_payload)
    channel = make_channel(fake_telegram, state=ValuesDown(tmp_path / "state.db"))
    async with serve_channel(channel, rasa) as client:
        await post_update(client, telegram_message_update(1))
        pressed = await post_update(client, telegram_callback_update(2, "~cb:" + "0" * 24))
    [offered, apology] = fake_telegram.calls_to("sendMessage")
    keys = [key for row in offered.params["reply_markup"]["inline_keyboard"] for key in row]
    assert [key["callback_data"] for key in keys] == ["/ask_fee"]
    assert pressed.json() == {"status": "ok"}
    assert apology.params["text"] == protocol_text("service_unavailable", "vi")
    assert rasa.texts == ["xin chào"]
    assert any("left out" in record.getMessage() for record in caplog.records)
