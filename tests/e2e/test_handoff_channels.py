"""The handoff journey of tests/e2e/test_handoff.py over Telegram and Zalo (issue 17), against
local fakes of the Telegram Bot API and the Zalo OA message API run by this test on free ports.

A stack of its own is started with both channels enabled through the environment the launcher
passes on (bot/channels/README.md): the tokens and secrets, `TELEGRAM_API_BASE_URL` and
`ZALO_API_BASE_URL` pointed at the fakes, and a one-minute Zalo customer-service window
(`ZALO_CS_WINDOW_HOURS`) so that "outside the window" takes a minute, not seven days.

For each channel the citizen's update, as the platform delivers it to the webhook (Telegram with
the secret-token header, Zalo signed with the OA secret key), asks for a person; the fake
platform receives the queued answer; while queued the citizen's messages get no answer; the
agent (the console's JSON API) takes the conversation and writes; the fake platform receives
exactly that text, addressed to that chat / user; the tracker has it as a bot event with
`from_agent`; the agent hands back; the fake receives the hand-back line and the rating
question, and the citizen's next message is answered by the bot again through the fake.
For Zalo, an agent's message after the window has closed is refused (the console's 502 with the
channel's `zalo_window_closed`), nothing reaches the platform or the tracker, and once the
citizen writes again the agent's message goes through.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiohttp import web

from bot.channels.telegram import SECRET_HEADER
from bot.channels.zalo import CS_MESSAGE_PATH, SIGNATURE_HEADER, zalo_signature
from console.settings import DEMO_ACCOUNTS
from tests.channels.channel_fakes import FakeTelegramApi, telegram_message_update
from tests.e2e.conftest import Stack, start_stack
from tests.e2e.test_handoff import agent_headers, desk, said, tracker_events
from tests.ports import free_port

pytestmark = pytest.mark.e2e

ASK_FOR_A_PERSON = "cho tôi gặp nhân viên"
WHILE_WAITING = "alo, có ai không?"
STILL_THERE = "anh ơi, còn đó không?"
AGENT_TEXT = "Em chào anh ạ, em là tổng đài viên, em hỗ trợ anh ngay."
AGENT_NAME = DEMO_ACCOUNTS["agent"].split("@", 1)[0]  # what the desk sends as `agent`
TELEGRAM_SECRET = "e2e-telegram-webhook-secret"
ZALO_APP_ID = "4300000000000000001"
ZALO_OA_ID = "579745863508352884"
ZALO_SECRET = "e2e-oa-secret-key"
ZALO_TOKEN = "e2e-oa-access-token"
ZALO_WINDOW_SECONDS = 60.0
WAIT_SECONDS = 60.0  # for a reply that the platform is sent in the background (Zalo)


# --- the fake platforms, served from a thread (these tests are synchronous) -------------------


class ThreadedServer:
    """An aiohttp application on a free port (tests/ports.py), in an event loop of its own."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.port = 0

    def start(self) -> str:
        self.thread.start()
        self.port = free_port()

        async def serve() -> None:
            self.runner = web.AppRunner(self.app, access_log=None)
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

        asyncio.run_coroutine_threadsafe(serve(), self.loop).result(timeout=10)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def serve_telegram(api: FakeTelegramApi) -> ThreadedServer:
    """tests/channels' fake Bot API (its handler, same routes) on a port of tests/ports.py."""
    app = web.Application()
    app.router.add_route("POST", "/bot{token}/{method}", api._handle)
    server = ThreadedServer(app)
    api.base_url = f"{server.start()}/bot"
    return server


class FakeZaloOa:
    """The OA message API v3.0 (`POST /v3.0/oa/message/cs`), as the channel tests' fake
    answers it: success with a quota, or Zalo's -216 for a wrong access token."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        token = request.headers.get("access_token")
        self.requests.append({"access_token": token, **body})
        if token != ZALO_TOKEN:
            return web.json_response({"error": -216, "message": "Access token is invalid"})
        return web.json_response(
            {
                "error": 0,
                "message": "Success",
                "data": {
                    "message_id": uuid.uuid4().hex,
                    "user_id": body["recipient"]["user_id"],
                    "quota": {"quota_type": "reply"},
                },
            }
        )

    def messages_to(self, user_id: str) -> list[dict[str, Any]]:
        return [dict(r["message"]) for r in self.requests if r["recipient"] == {"user_id": user_id}]


def serve_zalo(api: FakeZaloOa) -> tuple[ThreadedServer, str]:
    app = web.Application()
    app.router.add_route("POST", CS_MESSAGE_PATH, api.handle)
    server = ThreadedServer(app)
    return server, server.start()


def wait_until(check: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.2)


# --- the stack with both channels -------------------------------------------------------------


class Platforms:
    def __init__(self, stack: Stack, telegram: FakeTelegramApi, zalo: FakeZaloOa) -> None:
        self.stack = stack
        self.telegram = telegram
        self.zalo = zalo


@pytest.fixture(scope="module")
def platforms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platforms]:
    telegram, zalo = FakeTelegramApi(), FakeZaloOa()
    telegram_server = serve_telegram(telegram)
    zalo_server, zalo_url = serve_zalo(zalo)
    # The launcher gives its environment to Rasa and writes the credentials blocks whose
    # variables are all set (bot.settings.active_credentials); undone once the module is done.
    patch = pytest.MonkeyPatch()
    for name, value in {
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "ZALO_APP_ID": ZALO_APP_ID,
        "ZALO_OA_SECRET_KEY": ZALO_SECRET,
        "ZALO_OA_ACCESS_TOKEN": ZALO_TOKEN,
        "ZALO_API_BASE_URL": zalo_url,
        "ZALO_CS_WINDOW_HOURS": str(ZALO_WINDOW_SECONDS / 3600),
    }.items():
        patch.setenv(name, value)
    try:
        supervisor, stack = start_stack(tmp_path_factory.mktemp("channels-stack"))
    except BaseException:
        patch.undo()
        telegram_server.stop()
        zalo_server.stop()
        raise
    try:
        credentials = (stack.var_dir / "credentials.yml").read_text(encoding="utf-8")
        assert "bot.channels.telegram.TelegramInput" in credentials
        assert "bot.channels.zalo.ZaloInput" in credentials
        yield Platforms(stack, telegram, zalo)
    finally:
        supervisor.stop()
        patch.undo()
        telegram_server.stop()
        zalo_server.stop()


# --- citizens, as each platform delivers their messages -----------------------------------------


class TelegramCitizen:
    channel = "telegram_ptb"

    def __init__(self, platforms: Platforms) -> None:
        self.stack = platforms.stack
        self.api = platforms.telegram
        self.chat_id = random.randrange(10**9, 2 * 10**9)
        self.conversation_id = f"telegram:{self.chat_id}"
        self._update_id = random.randrange(10**6, 10**8)

    def say(self, text: str) -> None:
        """The update as Telegram posts it to the webhook (handled before the 200)."""
        self._update_id += 1
        answer = httpx.post(
            f"{self.stack.rasa_url}/webhooks/telegram_ptb/webhook",
            json=telegram_message_update(self._update_id, text, chat_id=self.chat_id),
            headers={SECRET_HEADER: TELEGRAM_SECRET},
            timeout=60,
        )
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}, answer.text

    def received(self) -> list[dict[str, Any]]:
        """Every sendMessage to this chat: its text and inline keyboard."""
        return [
            {"text": call.params["text"], "markup": call.params.get("reply_markup")}
            for call in self.api.calls_to("sendMessage")
            if call.params.get("chat_id") == str(self.chat_id)
        ]

    def exactly(self, text: str) -> dict[str, Any]:
        return {"text": text, "markup": None}


class ZaloCitizen:
    channel = "zalo"

    def __init__(self, platforms: Platforms) -> None:
        self.stack = platforms.stack
        self.api = platforms.zalo
        self.user_id = str(random.randrange(10**18, 9 * 10**18))
        self.conversation_id = f"zalo:{self.user_id}"

    def say(self, text: str) -> None:
        """A `user_send_text` event signed as Zalo signs it (answered 200 at once; Rasa works in
        the background)."""
        timestamp = str(int(time.time() * 1000))
        event = {
            "app_id": ZALO_APP_ID,
            "user_id_by_app": str(random.randrange(10**17, 9 * 10**17)),
            "event_name": "user_send_text",
            "timestamp": timestamp,
            "sender": {"id": self.user_id},
            "recipient": {"id": ZALO_OA_ID},
            "message": {"text": text, "msg_id": uuid.uuid4().hex},
        }
        body = json.dumps(event, ensure_ascii=False).encode()
        answer = httpx.post(
            f"{self.stack.rasa_url}/webhooks/zalo/webhook",
            content=body,
            headers={
                SIGNATURE_HEADER: zalo_signature(ZALO_APP_ID, body, timestamp, ZALO_SECRET),
                "Content-Type": "application/json",
            },
            timeout=30,
        )
        assert answer.status_code == 200 and answer.json() == {"status": "forwarded"}, answer.text

    def received(self) -> list[dict[str, Any]]:
        return self.api.messages_to(self.user_id)

    def exactly(self, text: str) -> dict[str, Any]:
        return {"text": text}


Citizen = TelegramCitizen | ZaloCitizen


def handled(citizen: Citizen, text: str) -> list[dict[str, Any]]:
    """Wait until Rasa has recorded the citizen's ``text`` (it saves the tracker after the
    message's replies went out); the conversation's events."""

    def check() -> list[dict[str, Any]] | None:
        answer = citizen.stack.api("GET", f"/conversations/{citizen.conversation_id}/tracker")
        if answer.status_code != 200:
            return None
        events = list(answer.json()["events"])
        users = [e for e in events if e.get("event") == "user"]
        return events if users and users[-1].get("text") == text else None

    return list(wait_until(check, f"Rasa records {text!r} of {citizen.conversation_id}"))


def say_and_read(citizen: Citizen, text: str, count: int) -> list[dict[str, Any]]:
    """The citizen writes; the ``count`` messages the platform is then sent to them, and no more
    once Rasa has handled the message."""
    before = len(citizen.received())
    citizen.say(text)
    wait_until(
        lambda: len(citizen.received()) >= before + count,
        f"{count} message(s) to {citizen.conversation_id} after {text!r}",
    )
    handled(citizen, text)
    new = citizen.received()[before:]
    assert len(new) == count, new
    return new


def agent_lines(stack: Stack, conversation_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in tracker_events(stack, conversation_id)
        if e.get("event") == "bot" and (e.get("metadata") or {}).get("from_agent")
    ]


def ask_for_a_person(citizen: Citizen, headers: dict[str, str]) -> str:
    """Queued: the answer reaches the platform, the conversation is paused and in the desk's
    queue; a message while waiting gets no answer. The desk path of the conversation."""
    stack = citizen.stack
    (queued,) = say_and_read(citizen, ASK_FOR_A_PERSON, 1)
    assert said(str(queued["text"]), "utter_handoff_queued"), queued
    assert any(e.get("event") == "pause" for e in tracker_events(stack, citizen.conversation_id))

    before = len(citizen.received())
    citizen.say(WHILE_WAITING)
    handled(citizen, WHILE_WAITING)
    assert citizen.received()[before:] == [], "the bot answered a paused conversation"

    queue = desk(stack, "GET", "/api/handoff/queue", headers)["queue"]
    (entry,) = [q for q in queue if q["conversation_id"] == citizen.conversation_id]
    assert (entry["channel"], entry["reason"], entry["language"], entry["status"]) == (
        citizen.channel,
        "request_human",
        "vi",
        "waiting",
    )
    path = f"/api/handoff/{quote(citizen.conversation_id, safe='')}"
    before = len(citizen.received())
    taken = desk(stack, "POST", f"{path}/take", headers)
    # The citizen is told a person joined, through the platform (utter_handoff_agent_joined).
    assert taken["joined"] == {"sent": True, "problem": None}, taken
    (joined,) = wait_until(
        lambda: citizen.received()[before:] or None, "the agent-joined line on the platform"
    )
    assert said(str(joined["text"]), "utter_handoff_agent_joined"), joined
    return path


def agent_texts(stack: Stack, conversation_id: str) -> list[tuple[str, str]]:
    """The agent's lines in the tracker after the take's agent-joined line."""
    return [
        (e["text"], e["metadata"]["from_agent"])
        for e in agent_lines(stack, conversation_id)
        if not said(str(e["text"]), "utter_handoff_agent_joined")
    ]


def agent_writes(citizen: Citizen, path: str, headers: dict[str, str]) -> None:
    """The agent's text reaches the platform exactly, addressed to the citizen, and the tracker
    as a bot event from the agent."""
    before = len(citizen.received())
    sent = desk(citizen.stack, "POST", f"{path}/messages", headers, json={"text": AGENT_TEXT})
    assert sent == {"sent": True}
    assert citizen.received()[before:] == [citizen.exactly(AGENT_TEXT)]
    assert agent_texts(citizen.stack, citizen.conversation_id) == [(AGENT_TEXT, AGENT_NAME)]


def hand_back_and_talk_to_the_bot(citizen: Citizen, path: str, headers: dict[str, str]) -> None:
    before = len(citizen.received())
    released = desk(citizen.stack, "POST", f"{path}/release", headers)
    assert released["status"] == "released"
    assert released["returned"] == {"sent": True, "by": "action_handoff_returned", "problem": None}
    returned, rating = wait_until(
        lambda: citizen.received()[before:] if len(citizen.received()) >= before + 2 else None,
        "the hand-back line and the rating question",
    )
    assert said(str(returned["text"]), "utter_handoff_returned"), returned
    assert said(str(rating["text"]), "utter_handoff_rating"), rating

    (greeted,) = say_and_read(citizen, "xin chào", 1)
    assert said(str(greeted["text"]), "utter_greet"), greeted


def journey(citizen: Citizen) -> None:
    headers = agent_headers(citizen.stack)
    assert desk(citizen.stack, "GET", "/api/handoff/queue", headers)["open"]  # OFFICE_HOURS
    path = ask_for_a_person(citizen, headers)
    agent_writes(citizen, path, headers)
    hand_back_and_talk_to_the_bot(citizen, path, headers)


def test_telegram_citizen_is_answered_by_an_agent_then_by_the_bot(platforms: Platforms) -> None:
    citizen = TelegramCitizen(platforms)
    journey(citizen)
    # the keyboards went as Telegram's inline keyboards, the agent's text with none
    keyboards = [m["markup"] for m in citizen.received() if m["markup"]]
    assert keyboards and all("inline_keyboard" in k for k in keyboards)


def test_zalo_citizen_is_answered_by_an_agent_then_by_the_bot(platforms: Platforms) -> None:
    citizen = ZaloCitizen(platforms)
    journey(citizen)
    tokens = {r["access_token"] for r in platforms.zalo.requests}
    assert tokens == {ZALO_TOKEN}


def test_zalo_agent_message_outside_the_window_is_refused_and_not_recorded(
    platforms: Platforms,
) -> None:
    """The window (one minute here, `ZALO_CS_WINDOW_HOURS`) counts from the citizen's last
    message; after it the channel refuses (409 `zalo_window_closed`, which the console gives
    the agent as its 502 with the channel's error), the platform is sent nothing and the tracker
    records nothing; once the citizen writes again, the agent's message goes through."""
    stack = platforms.stack
    citizen = ZaloCitizen(platforms)
    headers = agent_headers(stack)
    path = ask_for_a_person(citizen, headers)
    wrote_at = max(
        float(e["timestamp"])
        for e in tracker_events(stack, citizen.conversation_id)
        if e.get("event") == "user"
    )
    time.sleep(max(0.0, wrote_at + ZALO_WINDOW_SECONDS + 2 - time.time()))

    before = len(citizen.received())
    assert stack.settings is not None
    refused = httpx.post(
        f"{stack.settings.staff_url}{path}/messages",
        headers=headers,
        json={"text": AGENT_TEXT},
        timeout=30,
    )
    assert refused.status_code == 502, refused.text
    assert "zalo_window_closed" in refused.json()["detail"], refused.text
    assert citizen.received()[before:] == []
    assert agent_texts(stack, citizen.conversation_id) == []

    before = len(citizen.received())
    citizen.say(STILL_THERE)  # paused: recorded, not answered, and the window is open again
    handled(citizen, STILL_THERE)
    assert citizen.received()[before:] == []
    agent_writes(citizen, path, headers)
    desk(stack, "POST", f"{path}/release", headers)
