"""A call-centre agent's message to a Messenger citizen: `POST /webhooks/facebook/agent` with
Rasa's token, sent through a local fake of the Graph API's Send API (a real server on a free
port, reached through MESSENGER_API_BASE_URL's setting) with the HUMAN_AGENT tag and the page
token, recorded in the tracker as a bot event `from_agent`; refused after Messenger's 7-day
human-agent window, and not recorded when the Send API refuses or does not answer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from bot.channels.messenger import MessengerInput, MessengerSettings
from bot.settings import AgentChannelSettings
from tests.channels.test_agent_messages import AGENTS, TEXT, TOKEN, body, serve
from tests.ports import free_port

PSID = "6245118923841567"
PAGE_TOKEN = "page-access-token-for-tests"
VERSION = "v24.0"
DAY = 24 * 3600.0


@dataclass
class FakeGraphApi:
    """The Send API (`POST /{version}/me/messages?access_token=...`), recording each call."""

    status: int = 200
    delay: float = 0.0
    calls: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    base_url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{version}/me/messages", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.calls.append(
            (request.match_info["version"], dict(request.query), await request.json())
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            error = {"message": "(#10) outside the allowed window", "code": 10}
            return web.json_response({"error": {**error, "error_subcode": 2018278}}, status=400)
        return web.json_response({"recipient_id": PSID, "message_id": f"m_{len(self.calls)}"})


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphApi]:
    api = FakeGraphApi()
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


def messenger(
    api: FakeGraphApi, agents: AgentChannelSettings = AGENTS, timeout: float = 2.0
) -> MessengerInput:
    env = {
        "FACEBOOK_VERIFY_TOKEN": "verify",
        "FACEBOOK_APP_SECRET": "app-secret",
        "FACEBOOK_PAGE_ACCESS_TOKEN": PAGE_TOKEN,
        "MESSENGER_API_BASE_URL": api.base_url,
        "MESSENGER_API_VERSION": VERSION,
        "MESSENGER_TIMEOUT_SECONDS": str(timeout),
    }
    return MessengerInput(settings=MessengerSettings.from_env(env), agent_settings=agents)


def sent(api: FakeGraphApi) -> list[Any]:
    return [payload for _, _, payload in api.calls]


def test_settings_come_from_the_environment_and_the_credentials_block(monkeypatch):
    for name in ("MESSENGER_API_BASE_URL", "MESSENGER_API_VERSION", "FACEBOOK_PAGE_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    default = MessengerInput.from_credentials({"page-access-token": "t", "secret": "s"})
    assert isinstance(default, MessengerInput) and default.name() == "facebook"
    assert default.settings.api_base_url == "https://graph.facebook.com"
    assert default.fb_access_token == "t" and default.fb_secret == "s"
    monkeypatch.setenv("MESSENGER_API_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("MESSENGER_API_VERSION", "19.0")
    channel = MessengerInput.from_credentials({"page-access-token": "t"})
    assert isinstance(channel, MessengerInput)
    assert (channel.settings.api_base_url, channel.settings.api_version) == (
        "http://127.0.0.1:9",
        "v19.0",
    )


async def test_agent_message_reaches_the_psid_with_the_human_agent_tag(graph, caplog):
    async with serve(messenger(graph)) as stack:
        await stack.conversation(PSID)
        with caplog.at_level(logging.DEBUG, logger="bot"):
            answer = await stack.send("facebook", body(PSID))
        assert (answer.status_code, answer.json()) == (200, {"sent": True})
        ((version, query, payload),) = graph.calls
        assert version == VERSION and query == {"access_token": PAGE_TOKEN}
        assert payload == {
            "recipient": {"id": PSID},
            "message": {"text": TEXT},
            "messaging_type": "MESSAGE_TAG",
            "tag": "HUMAN_AGENT",
        }
        (event,) = await stack.agent_events(PSID)
        assert (event.text, event.metadata) == (TEXT, {"from_agent": "Lan"})
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("bot")]
    assert ours and not any("tổng đài viên" in line or PAGE_TOKEN in line for line in ours)


async def test_a_long_text_goes_in_pieces_under_the_send_api_limit(graph):
    text = ("Hồ sơ của anh đang được xử lý. " * 60 + "\n\n") * 2
    async with serve(messenger(graph)) as stack:
        await stack.conversation(PSID)
        assert (await stack.send("facebook", body(PSID, text=text.strip()))).status_code == 200
    pieces = [payload["message"]["text"] for payload in sent(graph)]
    assert len(pieces) == 2 and all(len(piece) <= 2000 for piece in pieces)
    assert all(payload["tag"] == "HUMAN_AGENT" for payload in sent(graph))


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}],
    ids=["none", "wrong", "no scheme"],
)
async def test_no_or_wrong_token_is_403_and_nothing_is_sent_or_recorded(graph, headers):
    async with serve(messenger(graph)) as stack:
        await stack.conversation(PSID)
        answer = await stack.client.post(
            "/webhooks/facebook/agent", json=body(PSID), headers=headers
        )
        assert answer.status_code == 403
        assert await stack.agent_events(PSID) == []
    assert graph.calls == []


async def test_within_seven_days_it_is_sent_after_them_refused_and_not_recorded(graph):
    now = time.time()
    async with serve(messenger(graph)) as stack:
        # Six days after the citizen's last message: outside the 24 h window, inside the tag's.
        await stack.conversation(PSID, at=now - 6 * DAY)
        assert (await stack.send("facebook", body(PSID))).status_code == 200
        late = "7390001112223334"
        await stack.conversation(late, at=now - 7 * DAY - 60)
        answer = await stack.send("facebook", body(late))
        assert (answer.status_code, answer.json()) == (409, {"error": "messenger_window_closed"})
        assert await stack.agent_events(late) == []
    assert [payload["recipient"]["id"] for payload in sent(graph)] == [PSID]


async def test_send_api_error_is_502_and_not_recorded(graph):
    graph.status = 400
    async with serve(messenger(graph)) as stack:
        await stack.conversation(PSID)
        answer = await stack.send("facebook", body(PSID))
        assert (answer.status_code, answer.json()) == (502, {"error": "delivery_failed"})
        assert await stack.agent_events(PSID) == []
    assert len(graph.calls) == 1


async def test_send_api_too_slow_is_502_and_not_recorded(graph):
    graph.delay = 1.0
    async with serve(messenger(graph, timeout=0.2)) as stack:
        await stack.conversation(PSID)
        answer = await stack.send("facebook", body(PSID))
        assert (answer.status_code, answer.json()) == (502, {"error": "delivery_failed"})
        assert await stack.agent_events(PSID) == []


async def test_another_channels_or_unknown_conversation_is_404(graph):
    async with serve(messenger(graph)) as stack:
        await stack.conversation("telegram:111")
        assert (await stack.send("facebook", body("telegram:111"))).status_code == 404
        assert await stack.agent_events("telegram:111") == []
        assert (await stack.send("facebook", body("1000000000000001"))).status_code == 404
    assert graph.calls == []
