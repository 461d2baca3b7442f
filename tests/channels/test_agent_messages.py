"""A call-centre agent's message to the citizen: `POST /webhooks/<channel>/agent` with Rasa's
token, delivered through the channel's platform (fake Telegram Bot API, Zalo on a
MockTransport), recorded in the tracker as a bot event `from_agent`, and brought to the web chat
by its inbox, to that session only."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from rasa.core.channels.channel import InputChannel
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Sanic

from bot.channels.common import RetryPolicy
from bot.channels.rest import DevRestInput, RestSettings
from bot.channels.telegram import TelegramInput, TelegramSettings
from bot.channels.webchat import WebChatInput, WebChatSettings
from bot.channels.zalo import ZaloInput, ZaloSettings
from bot.settings import AgentChannelSettings
from tests.channels.channel_fakes import FakeTelegramApi, RecordingRasa, free_port

TOKEN = "rasa-api-token-for-tests"
AGENTS = AgentChannelSettings(token=TOKEN, inbox_wait_seconds=2.0, inbox_poll_seconds=0.1)
WEBCHAT_SECRET = "test-webchat-secret-0123456789abcdef"
FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
ZALO_USER = "2468458835296117922"
TEXT = "Chào anh, em là tổng đài viên Lan. Hồ sơ của anh đang được xử lý."


@pytest.fixture(autouse=True)
def state_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "channel_state.db"
    monkeypatch.setenv("CHANNEL_STATE_DB", str(path))
    monkeypatch.delenv("SHARED_STATE_URL", raising=False)
    return path


class FakeZaloApi:
    def __init__(self, status: int = 200) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json={"error": 0, "message": "Success", "data": {}})


class Stack:
    """Channels mounted as Rasa mounts them, with Rasa's agent reduced to its two stores."""

    def __init__(self, client: httpx.AsyncClient, rasa: SimpleNamespace) -> None:
        self.client = client
        self.rasa = rasa

    async def conversation(self, sender_id: str, at: float | None = None) -> None:
        tracker = DialogueStateTracker(sender_id, slots=[])
        tracker.update(UserUttered("cho tôi gặp nhân viên", timestamp=at or time.time()))
        await self.rasa.tracker_store.save(tracker)

    async def agent_events(self, sender_id: str) -> list[BotUttered]:
        tracker = await self.rasa.tracker_store.retrieve(sender_id)
        assert tracker is not None
        return [e for e in tracker.events if isinstance(e, BotUttered)]

    async def send(
        self, channel: str, body: Any, token: str | None = TOKEN, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return await self.client.post(
            f"/webhooks/{channel}/agent", json=body, headers=headers, **kwargs
        )


@contextlib.asynccontextmanager
async def serve(*channels: InputChannel, tracker_store: Any = None) -> AsyncIterator[Stack]:
    Sanic.test_mode = True
    app = Sanic(f"agent-test-{uuid.uuid4().hex[:8]}", configure_logging=False)
    for channel in channels:
        app.blueprint(channel.blueprint(RecordingRasa()), url_prefix=f"/webhooks/{channel.name()}")
    rasa = SimpleNamespace(
        tracker_store=tracker_store or InMemoryTrackerStore(Domain.empty()),
        lock_store=InMemoryLockStore(),
    )
    app.ctx.agent = rasa
    port = free_port()
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield Stack(client, rasa)
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()


def telegram(api: FakeTelegramApi, agents: AgentChannelSettings = AGENTS) -> TelegramInput:
    settings = TelegramSettings(
        token=api.token,
        webhook_secret="hook-secret",
        api_base_url=api.base_url,
        timeout_seconds=2.0,
        retry=FAST_RETRY,
    )
    return TelegramInput(settings, agent_settings=agents)


def zalo(api: FakeZaloApi, agents: AgentChannelSettings = AGENTS) -> ZaloInput:
    settings = ZaloSettings(
        app_id="4300000000000000001",
        oa_secret_key="oa-secret",
        access_token="oa-token",
        api_base_url="https://openapi.zalo.test",
        timeout_seconds=1.0,
        retry=FAST_RETRY,
    )
    return ZaloInput(settings, transport=httpx.MockTransport(api), agent_settings=agents)


def webchat(agents: AgentChannelSettings = AGENTS) -> WebChatInput:
    return WebChatInput(WebChatSettings(secret=WEBCHAT_SECRET), agent_settings=agents)


def rest(agents: AgentChannelSettings = AGENTS) -> DevRestInput:
    return DevRestInput(RestSettings(sandbox_mode=True), agent_settings=agents)


def body(conversation_id: str, text: str = TEXT, agent: str = "Lan") -> dict[str, str]:
    return {"conversation_id": conversation_id, "text": text, "agent": agent}


async def test_telegram_agent_message_reaches_the_chat_and_the_tracker(fake_telegram, caplog):
    async with serve(telegram(fake_telegram)) as stack:
        await stack.conversation("telegram:111")
        # Our loggers (python-telegram-bot's own DEBUG lines quote every text it sends).
        with caplog.at_level(logging.DEBUG, logger="bot"):
            answer = await stack.send("telegram_ptb", body("telegram:111"))
        assert (answer.status_code, answer.json()) == (200, {"sent": True})
        (call,) = fake_telegram.calls_to("sendMessage")
        assert (call.params["chat_id"], call.params["text"]) == ("111", TEXT)
        (event,) = await stack.agent_events("telegram:111")
        assert (event.text, event.metadata) == (TEXT, {"from_agent": "Lan"})
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("bot")]
    assert ours and not any("tổng đài viên" in line for line in ours)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}],
    ids=["none", "wrong", "no scheme", "basic"],
)
@pytest.mark.parametrize("channel", ["telegram_ptb", "zalo", "webchat", "rest"])
async def test_no_or_wrong_token_is_403_and_nothing_is_sent_or_recorded(
    fake_telegram, channel: str, headers: dict[str, str]
) -> None:
    zalo_api = FakeZaloApi()
    async with serve(telegram(fake_telegram), zalo(zalo_api), webchat(), rest()) as stack:
        sender = {
            "telegram_ptb": "telegram:111",
            "zalo": f"zalo:{ZALO_USER}",
            "webchat": "web:AAAAAAAAAAAAAAAAAAAAAA",
            "rest": "rest:tester",
        }[channel]
        await stack.conversation(sender)
        answer = await stack.client.post(
            f"/webhooks/{channel}/agent", json=body(sender), headers=headers
        )
        assert answer.status_code == 403
        assert await stack.agent_events(sender) == []
    assert fake_telegram.calls_to("sendMessage") == [] and zalo_api.requests == []


async def test_no_token_configured_refuses_even_an_empty_bearer(fake_telegram) -> None:
    unset = replace(AGENTS, token="")
    async with serve(telegram(fake_telegram, unset), rest(unset)) as stack:
        await stack.conversation("telegram:111")
        for token in (None, "anything", TOKEN):
            assert (
                await stack.send("telegram_ptb", body("telegram:111"), token)
            ).status_code == 403
        assert (await stack.send("rest", body("rest:x"), None)).status_code == 403
    assert fake_telegram.calls_to("sendMessage") == []


@pytest.mark.parametrize(
    "payload",
    [
        {"conversation_id": "telegram:111", "text": "hi"},
        {"conversation_id": "telegram:111", "text": "", "agent": "Lan"},
        {"conversation_id": "telegram:111", "text": 5, "agent": "Lan"},
        {"conversation_id": "telegram:111", "text": "x" * 4001, "agent": "Lan"},
        ["telegram:111", "hi", "Lan"],
    ],
    ids=["no agent", "empty text", "text not a string", "text too long", "not an object"],
)
async def test_bad_body_is_422(fake_telegram, payload: Any) -> None:
    async with serve(telegram(fake_telegram)) as stack:
        await stack.conversation("telegram:111")
        assert (await stack.send("telegram_ptb", payload)).status_code == 422
        not_json = await stack.client.post(
            "/webhooks/telegram_ptb/agent",
            content=b"{not json",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert not_json.status_code == 422
    assert fake_telegram.calls_to("sendMessage") == []


async def test_unknown_or_other_channels_conversation_is_404(fake_telegram) -> None:
    async with serve(telegram(fake_telegram), webchat()) as stack:
        await stack.conversation("web:AAAAAAAAAAAAAAAAAAAAAA")
        assert (await stack.send("telegram_ptb", body("telegram:999"))).status_code == 404
        # A web chat conversation cannot be reached through the Telegram route.
        wrong = await stack.send("telegram_ptb", body("web:AAAAAAAAAAAAAAAAAAAAAA"))
        assert wrong.status_code == 404
    assert fake_telegram.calls_to("sendMessage") == []


async def test_telegram_down_is_502_and_not_recorded(fake_telegram) -> None:
    fake_telegram.failures["sendMessage"] = [500, 500]
    async with serve(telegram(fake_telegram)) as stack:
        await stack.conversation("telegram:111")
        answer = await stack.send("telegram_ptb", body("telegram:111"))
        assert (answer.status_code, answer.json()) == (502, {"error": "delivery_failed"})
        assert await stack.agent_events("telegram:111") == []


async def test_zalo_agent_message_goes_out_as_a_customer_service_message() -> None:
    api = FakeZaloApi()
    async with serve(zalo(api)) as stack:
        await stack.conversation(f"zalo:{ZALO_USER}")
        answer = await stack.send("zalo", body(f"zalo:{ZALO_USER}"))
        assert (answer.status_code, answer.json()) == (200, {"sent": True})
        (request,) = api.requests
        assert request.url.path == "/v3.0/oa/message/cs"
        assert request.headers["access_token"] == "oa-token"
        assert json.loads(request.content) == {
            "recipient": {"user_id": ZALO_USER},
            "message": {"text": TEXT},
        }
        (event,) = await stack.agent_events(f"zalo:{ZALO_USER}")
        assert event.metadata == {"from_agent": "Lan"}


async def test_zalo_outside_the_window_is_409_and_nothing_is_sent() -> None:
    api = FakeZaloApi()
    async with serve(zalo(api)) as stack:
        eight_days_ago = time.time() - 8 * 24 * 3600
        await stack.conversation(f"zalo:{ZALO_USER}", at=eight_days_ago)
        answer = await stack.send("zalo", body(f"zalo:{ZALO_USER}"))
        assert (answer.status_code, answer.json()) == (409, {"error": "zalo_window_closed"})
        assert api.requests == []
        assert await stack.agent_events(f"zalo:{ZALO_USER}") == []


async def test_rest_only_records(fake_telegram) -> None:
    async with serve(rest()) as stack:
        await stack.conversation("rest:tester")
        answer = await stack.send("rest", body("rest:tester"))
        assert (answer.status_code, answer.json()) == (200, {"sent": True})
        (event,) = await stack.agent_events("rest:tester")
        assert event.metadata == {"from_agent": "Lan"}


async def session(stack: Stack) -> tuple[str, str]:
    """A web chat session's token and its conversation id."""
    answer = await stack.client.post("/webhooks/webchat/session")
    token = str(answer.json()["session"])
    payload = token.split(".")[0]
    sid = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"]
    return token, f"web:{sid}"


async def inbox(stack: Stack, token: str, after: float | None) -> httpx.Response:
    params = {} if after is None else {"after": str(after)}
    return await stack.client.get(
        "/webhooks/webchat/inbox", params=params, headers={"Authorization": f"Bearer {token}"}
    )


async def test_webchat_inbox_brings_the_agents_message_to_that_session_only() -> None:
    async with serve(webchat()) as stack:
        mine, my_conversation = await session(stack)
        other, other_conversation = await session(stack)
        await stack.conversation(my_conversation)
        await stack.conversation(other_conversation)
        start = (await inbox(stack, mine, None)).json()
        assert start["messages"] == [] and start["after"] == pytest.approx(time.time(), abs=5)

        answer = await stack.send("webchat", body(my_conversation))
        assert (answer.status_code, answer.json()) == (200, {"sent": True})

        # No cursor (a new page): everything pushed since the session began.
        assert [m["text"] for m in (await inbox(stack, mine, None)).json()["messages"]] == [TEXT]
        got = (await inbox(stack, mine, start["after"])).json()
        assert [(m["text"], m["from_agent"]) for m in got["messages"]] == [(TEXT, "Lan")]
        assert got["after"] == got["messages"][0]["timestamp"]
        # Nothing newer than the cursor: the long-poll ends empty after its wait.
        again = (await inbox(stack, mine, got["after"])).json()
        assert again["messages"] == []
        # Another session's bearer sees nothing of it, whatever cursor it sends.
        assert (await inbox(stack, other, 0)).json()["messages"] == []


async def test_webchat_inbox_wakes_when_the_agent_writes() -> None:
    async with serve(webchat()) as stack:
        token, conversation = await session(stack)
        await stack.conversation(conversation)
        after = (await inbox(stack, token, None)).json()["after"]
        started = time.monotonic()
        waiting = asyncio.create_task(inbox(stack, token, after))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await stack.send("webchat", body(conversation, text="Em đây ạ"))
        got = (await waiting).json()
        assert [m["text"] for m in got["messages"]] == ["Em đây ạ"]
        assert time.monotonic() - started < AGENTS.inbox_wait_seconds


async def test_webchat_inbox_brings_the_handback_lines_but_not_the_bots_replies() -> None:
    async with serve(webchat()) as stack:
        token, conversation = await session(stack)
        await stack.conversation(conversation)
        tracker = await stack.rasa.tracker_store.retrieve(conversation)
        buttons = [{"title": "5", "payload": '/rate_handoff{"rating": "5"}'}]
        tracker.update(BotUttered("reply to the citizen", metadata={"utter_action": "utter_greet"}))
        tracker.update(
            BotUttered("back to the bot", metadata={"utter_action": "utter_handoff_returned"})
        )
        tracker.update(
            BotUttered(
                "rate us",
                data={"buttons": buttons},
                metadata={"utter_action": "utter_handoff_rating"},
            )
        )
        await stack.rasa.tracker_store.save(tracker)
        got = (await inbox(stack, token, 0)).json()["messages"]
        assert [(m["text"], m["from_agent"]) for m in got] == [
            ("back to the bot", None),
            ("rate us", None),
        ]
        assert got[1]["buttons"] == buttons


@pytest.mark.parametrize("header", [None, "Bearer forged.token", f"Bearer {TOKEN}"])
async def test_webchat_inbox_needs_the_web_session(header: str | None) -> None:
    async with serve(webchat()) as stack:
        headers = {"Authorization": header} if header else {}
        answer = await stack.client.get(
            "/webhooks/webchat/inbox", params={"after": "0"}, headers=headers
        )
        assert answer.status_code == 401


async def test_webchat_inbox_refuses_a_cursor_that_is_not_a_number() -> None:
    async with serve(webchat()) as stack:
        token, _ = await session(stack)
        for after in ("yesterday", "nan", "inf"):
            assert (await inbox_raw(stack, token, after)).status_code == 400


async def inbox_raw(stack: Stack, token: str, after: str) -> httpx.Response:
    return await stack.client.get(
        "/webhooks/webchat/inbox",
        params={"after": after},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_agent_settings_take_rasas_token_and_refuse_bad_waits() -> None:
    from bot.settings import SettingsError

    settings = AgentChannelSettings.from_env(
        {"RASA_AUTH_TOKEN": "t0k", "WEBCHAT_INBOX_WAIT_SECONDS": "10"}
    )
    assert (settings.token, settings.inbox_wait_seconds) == ("t0k", 10.0)
    assert AgentChannelSettings.from_env({}).token == ""
    assert "t0k" not in repr(settings)
    for bad in ("soon", "0", "-1"):
        with pytest.raises(SettingsError, match="WEBCHAT_INBOX_WAIT_SECONDS"):
            AgentChannelSettings.from_env({"WEBCHAT_INBOX_WAIT_SECONDS": bad})


async def test_webchat_shows_the_agents_words_though_the_store_keeps_them_redacted(
    tmp_path: Path,
) -> None:
    """The tracker store masks phones and long numbers at rest (bot/privacy.py); the citizen
    reads what the agent wrote from the replica that recorded it, the masked text elsewhere."""
    from bot.tracker_store import RedactingTrackerStore

    store = RedactingTrackerStore(
        domain=Domain.empty(), dialect="sqlite", db=str(tmp_path / "trackers.db")
    )
    written = "Anh gọi 0912345678 giúp em nhé."
    async with serve(webchat(), tracker_store=store) as stack:
        token, conversation = await session(stack)
        await stack.conversation(conversation)
        assert (await stack.send("webchat", body(conversation, text=written))).status_code == 200
        (stored,) = await stack.agent_events(conversation)
        assert "0912345678" not in str(stored.text)  # redacted at rest, as every event
        got = (await inbox(stack, token, 0)).json()["messages"]
        assert [m["text"] for m in got] == [written]
    async with serve(webchat(), tracker_store=store) as other_replica:
        got = (await inbox(other_replica, token, 0)).json()["messages"]
        assert [m["text"] for m in got] == [stored.text]
