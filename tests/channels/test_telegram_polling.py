"""Long-polling runner: getUpdates on a fake Bot API -> Rasa REST (MockTransport) -> replies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bot.channels.common import RetryPolicy, protocol_text
from bot.channels.telegram import TelegramSettings
from bot.channels.telegram_polling import RasaRestClient, TelegramPoller
from tests.channels.channel_fakes import (
    FakeTelegramApi,
    telegram_callback_update,
    telegram_message_update,
)

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
DOSSIER_QUESTION = "Hồ sơ 000.00.10.H26-261110-0001 của tôi đến đâu rồi?"


@pytest.fixture(autouse=True)
def state_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every channel of these tests keeps its de-duplication state in a file of its own."""
    path = tmp_path / "channel_state.db"
    monkeypatch.setenv("CHANNEL_STATE_DB", str(path))
    monkeypatch.delenv("SHARED_STATE_URL", raising=False)
    return path


def settings_for(api: FakeTelegramApi) -> TelegramSettings:
    return TelegramSettings(
        token=api.token, api_base_url=api.base_url, timeout_seconds=2.0, retry=FAST_RETRY
    )


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


async def run_poller(poller: TelegramPoller, done: Callable[[], bool]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        await wait_until(done)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        await poller.aclose()


async def test_updates_are_forwarded_to_rasa_and_replies_sent(fake_telegram):
    posted: list[dict] = []

    def rasa(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/webhooks/rest/webhook"
        body = json.loads(request.content)
        posted.append(body)
        if body["message"] == "/affirm":
            return httpx.Response(200, json=[{"recipient_id": body["sender"], "text": "Vâng."}])
        return httpx.Response(
            200,
            json=[
                {"recipient_id": body["sender"], "text": "Tôi cần xác minh danh tính của bạn."},
                {
                    "recipient_id": body["sender"],
                    "text": "Bạn đồng ý chứ?",
                    "buttons": [{"title": "Đồng ý", "payload": "/affirm"}],
                },
            ],
        )

    fake_telegram.updates = [
        telegram_message_update(10, DOSSIER_QUESTION, chat_id=222),
        telegram_callback_update(11, "/affirm", chat_id=222),
    ]
    client = RasaRestClient(
        "http://rasa.test", transport=httpx.MockTransport(rasa), retry=FAST_RETRY
    )
    poller = TelegramPoller(settings_for(fake_telegram), client, poll_timeout=1)
    await run_poller(poller, lambda: len(fake_telegram.calls_to("sendMessage")) >= 3)

    assert [p["message"] for p in posted] == [DOSSIER_QUESTION, "/affirm"]
    assert posted[0]["sender"] == "telegram:222"
    assert posted[0]["input_channel"] == "telegram_ptb"
    assert fake_telegram.sent_texts() == [
        "Tôi cần xác minh danh tính của bạn.",
        "Bạn đồng ý chứ?",
        "Vâng.",
    ]
    keyboard = fake_telegram.calls_to("sendMessage")[1].params["reply_markup"]
    assert keyboard["inline_keyboard"][0][0]["callback_data"] == "/affirm"
    assert fake_telegram.calls_to("answerCallbackQuery")
    assert fake_telegram.calls_to("sendChatAction")
    offsets = [c.params.get("offset") for c in fake_telegram.calls_to("getUpdates")]
    assert "12" in offsets  # updates are confirmed once taken


async def test_rasa_unreachable_tells_the_citizen_politely(fake_telegram):
    attempts = 0

    def down(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise httpx.ConnectError("connection refused", request=request)

    fake_telegram.updates = [
        telegram_message_update(20, "xin chào", chat_id=333, language_code="en")
    ]
    client = RasaRestClient(
        "http://rasa.test", transport=httpx.MockTransport(down), retry=FAST_RETRY
    )
    poller = TelegramPoller(settings_for(fake_telegram), client, poll_timeout=1)
    await run_poller(poller, lambda: bool(fake_telegram.calls_to("sendMessage")))

    assert attempts == FAST_RETRY.attempts
    assert fake_telegram.sent_texts() == [protocol_text("service_unavailable", "en")]


async def test_telegram_failing_while_polling_is_retried(fake_telegram):
    fake_telegram.failures["getUpdates"] = [500]
    fake_telegram.failures["sendMessage"] = [500]
    fake_telegram.updates = [telegram_message_update(30, "xin chào", chat_id=444)]

    def rasa(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"recipient_id": "telegram:444", "text": "Chào bạn."}])

    client = RasaRestClient(
        "http://rasa.test", transport=httpx.MockTransport(rasa), retry=FAST_RETRY
    )
    poller = TelegramPoller(settings_for(fake_telegram), client, poll_timeout=1)
    await run_poller(poller, lambda: "Chào bạn." in fake_telegram.sent_texts())
    assert len(fake_telegram.calls_to("sendMessage")) == 2


async def test_updates_sent_again_after_a_restart_are_not_forwarded_twice(fake_telegram, state_db):
    """Telegram resends a batch the poller took but never confirmed (it stopped first)."""
    posted: list[str] = []

    def rasa(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content)["message"])
        return httpx.Response(200, json=[])

    def poller() -> TelegramPoller:
        client = RasaRestClient(
            "http://rasa.test", transport=httpx.MockTransport(rasa), retry=FAST_RETRY
        )
        return TelegramPoller(settings_for(fake_telegram), client, poll_timeout=1)

    fake_telegram.updates = [telegram_message_update(40, "một", chat_id=555)]
    await run_poller(poller(), lambda: posted == ["một"])

    # after the restart Telegram hands out update 40 again, then a new one
    fake_telegram.updates = [
        telegram_message_update(40, "một", chat_id=555),
        telegram_message_update(41, "hai", chat_id=555),
    ]
    await run_poller(poller(), lambda: len(posted) >= 2)
    assert state_db.exists()
    assert posted == ["một", "hai"]
    offsets = [c.params.get("offset") for c in fake_telegram.calls_to("getUpdates")]
    assert "42" in offsets  # the duplicate is confirmed too, so Telegram stops sending it
