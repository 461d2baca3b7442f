"""Web chat widget in headless Chromium (Playwright).

Most tests drive the widget against a tiny fake of our web chat channel (sessions, Bearer
tokens, a 401 and a 413 on demand); one mounts the real ``WebChatInput`` with Rasa's own CORS
set-up and a stand-in for Rasa's ``on_new_message``; the last walks a real conversation against
the full stack from tests/e2e/conftest.py (``stack.rasa_url``, ``stack.webchat_url``). Without
/usr/bin/chromium or the playwright package the tests skip on a developer machine and fail in
CI (CI must install both).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rasa.core.channels.channel import UserMessage

from bot.channels.webchat import MAX_BODY_BYTES, WebChatInput, WebChatSettings

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WEBCHAT_DIR = Path(__file__).resolve().parents[2] / "bot" / "webchat"
STRINGS = json.loads((WEBCHAT_DIR / "strings.json").read_text(encoding="utf-8"))
DOSSIER_QUESTION = "Hồ sơ 000.00.10.H26-261110-0001 của tôi đến đâu rồi?"
TIMEOUT_MS = 60_000
SESSION_PATH = "/webhooks/webchat/session"
WEBHOOK_PATH = "/webhooks/webchat/webhook"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must provide it (see bot/webchat/README.md)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Checked before any stack is started, so a missing browser costs nothing."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is missing (pip install playwright)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=LAUNCH_ARGS
        )
        try:
            yield instance
        finally:
            await instance.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    conversation: str
    body: dict[str, Any]


class FakeRasa:
    """Our web chat channel as the widget sees it, with CORS limited to the demo page's origin.

    ``refuse_next`` answers that many messages 401 and forgets their token (as after a change of
    secret); ``max_body`` (bytes) stands for a proxy with a smaller cap than Rasa's 64 KiB.
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.session_requests: list[dict[str, Any]] = []
        self.tokens: dict[str, str] = {}  # token -> conversation id
        self.expires_in = 86_400
        self.refuse_next = 0
        self.refused = 0
        self.max_body = MAX_BODY_BYTES
        self.origin = ""

    def session(self, body: dict[str, Any]) -> dict[str, Any]:
        self.session_requests.append(body)
        conversation = self.tokens.get(str(body.get("session")))
        token = secrets.token_urlsafe(24)
        self.tokens[token] = conversation or f"web:{secrets.token_urlsafe(16)}"
        return {"session": token, "expires_in": self.expires_in}

    @property
    def conversations(self) -> list[str]:
        return [item.conversation for item in self.received]

    @property
    def messages(self) -> list[str]:
        return [str(item.body.get("message")) for item in self.received]

    async def reply(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        text = body.get("message", "")
        if text == "xin chào":
            return [{"text": "Xin chào! Tôi là trợ lý ảo Dịch vụ công."}]
        if "000.00.10.H26-261110-0001" in text:
            await asyncio.sleep(0.6)  # long enough to see the typing indicator
            return [
                {"text": "Để xem hồ sơ, tôi cần xác minh danh tính của bạn."},
                {
                    "text": "Bạn có đồng ý xác minh không?",
                    "buttons": [
                        {"title": "Đồng ý", "payload": "/affirm"},
                        {"title": "Để sau", "payload": "/deny"},
                    ],
                },
            ]
        if text == "/affirm":
            return [{"text": "Vui lòng nhập số căn cước 12 chữ số."}]
        if text.startswith("/switch_language"):
            return [{"text": "I will answer in English."}]
        return [{"text": "Tôi chưa hiểu câu hỏi."}]


async def _serve(app: Any) -> tuple[Any, str]:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def _serve_widget_folder() -> tuple[Any, str]:
    """The widget folder, as the launcher's static server serves it."""
    from aiohttp import web

    app = web.Application()
    app.router.add_static("/", WEBCHAT_DIR)
    return await _serve(app)


@pytest.fixture
async def servers() -> AsyncIterator[tuple[str, str, FakeRasa]]:
    """The widget folder on one port, the fake web chat channel on another."""
    from aiohttp import web

    fake = FakeRasa()

    @web.middleware
    async def cors(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method == "OPTIONS":
            response: web.StreamResponse = web.Response(status=204)
        else:
            response = await handler(request)
        if request.headers.get("Origin") == fake.origin:
            response.headers["Access-Control-Allow-Origin"] = fake.origin
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
            response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        return response

    async def session(request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw) if raw.strip() else {}
        return web.json_response(fake.session(body), headers={"Cache-Control": "no-store"})

    async def webhook(request: web.Request) -> web.Response:
        raw = await request.read()
        if len(raw) > fake.max_body:
            return web.json_response({"error": "too_large"}, status=413)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        conversation = fake.tokens.get(token) if scheme == "Bearer" else None
        if conversation is not None and fake.refuse_next > 0:
            fake.refuse_next -= 1
            del fake.tokens[token]
            conversation = None
        if conversation is None:
            fake.refused += 1
            return web.json_response({"error": "session_invalid"}, status=401)
        body = json.loads(raw)
        fake.received.append(Received(conversation, body))
        return web.json_response(await fake.reply(body))

    rasa_app = web.Application(middlewares=[cors])
    for path, handler in ((SESSION_PATH, session), (WEBHOOK_PATH, webhook)):
        rasa_app.router.add_route("POST", path, handler)
        rasa_app.router.add_route("OPTIONS", path, handler)

    static_runner, webchat_url = await _serve_widget_folder()
    rasa_runner, rasa_url = await _serve(rasa_app)
    fake.origin = webchat_url
    try:
        yield webchat_url, rasa_url, fake
    finally:
        for runner in (static_runner, rasa_runner):
            await runner.cleanup()


async def _open_widget(page: Any) -> None:
    launcher = page.locator("#cw-launcher")
    await launcher.focus()
    await page.keyboard.press("Enter")
    await page.locator("#cw-input").wait_for(state="visible")


async def test_widget_with_fake_rasa_on_a_phone_screen(browser, servers):
    from playwright.async_api import expect

    webchat_url, rasa_url, fake = servers
    vi = STRINGS["vi"]
    context = await browser.new_context(viewport={"width": 360, "height": 740})
    page = await context.new_page()
    await page.goto(f"{webchat_url}/index.html?rasa={rasa_url}")
    await expect(page.locator("#cw-launcher")).to_have_accessible_name(vi["launcher"])
    await _open_widget(page)

    # labelled input, log announced politely
    await expect(page.get_by_label(vi["input_label"])).to_be_focused()
    log = page.locator("#cw-log")
    await expect(log).to_have_attribute("aria-live", "polite")
    await expect(log).to_have_attribute("role", "log")
    await expect(page.locator("#cw-input")).to_have_attribute("maxlength", "2000")

    await page.keyboard.type("xin chào")
    await page.keyboard.press("Enter")
    await expect(log.locator(".cw-msg--user")).to_have_text([f"{vi['you']}: xin chào"])
    await expect(log.locator(".cw-msg--bot").last).to_contain_text("Tôi là trợ lý ảo")

    await page.locator("#cw-input").fill(DOSSIER_QUESTION)
    await page.keyboard.press("Enter")
    await expect(page.locator("#cw-typing")).to_be_visible()
    await expect(page.locator("#cw-typing")).to_contain_text(vi["typing"])
    buttons = log.locator(".cw-quick button")
    await expect(buttons).to_have_count(2)
    await expect(page.locator("#cw-typing")).to_be_hidden()

    # keyboard only: from the input, Shift+Tab reaches the quick replies in the log
    await page.locator("#cw-input").focus()
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Shift+Tab")
    await expect(buttons.first).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(log.locator(".cw-msg--user").last).to_contain_text("Đồng ý")
    await expect(log.locator(".cw-msg--bot").last).to_contain_text("số căn cước")
    await expect(buttons.first).to_be_disabled()
    assert fake.messages == ["xin chào", DOSSIER_QUESTION, "/affirm"]
    # one server-issued session for the whole conversation; the widget names no sender
    assert len(fake.session_requests) == 1
    assert len(set(fake.conversations)) == 1
    assert all("sender" not in item.body for item in fake.received)
    assert fake.received[0].body["metadata"] == {"language": "vi"}

    # usable at 360px: nothing sticks out sideways
    overflow = await page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 360

    # language switch: interface strings change and the assistant is told
    await page.locator("#cw-lang").click()
    await expect(page.get_by_label(STRINGS["en"]["input_label"])).to_be_visible()
    await expect(log.locator(".cw-msg--bot").last).to_contain_text("English")
    assert fake.messages[-1] == '/switch_language{"language":"en"}'

    assert fake.received[-1].body["metadata"] == {"language": "en"}

    # the same conversation survives a reload (the token is in sessionStorage) ...
    await page.reload()
    await _open_widget(page)
    await page.locator("#cw-input").fill("xin chào")
    await page.keyboard.press("Enter")
    await expect(page.locator(".cw-msg--bot").last).to_contain_text("Tôi là trợ lý ảo")
    assert fake.conversations[-1] == fake.conversations[0]
    assert len(fake.session_requests) == 1

    # ... and a new tab starts a conversation of its own
    tab = await context.new_page()
    await tab.goto(f"{webchat_url}/index.html?rasa={rasa_url}")
    await _open_widget(tab)
    await tab.locator("#cw-input").fill("xin chào")
    await tab.keyboard.press("Enter")
    await expect(tab.locator(".cw-msg--bot").last).to_contain_text("Tôi là trợ lý ảo")
    assert fake.conversations[-1] != fake.conversations[0]
    assert fake.session_requests[-1] == {}
    await context.close()


async def _say(page: Any, text: str) -> None:
    await page.locator("#cw-input").fill(text)
    await page.keyboard.press("Enter")


async def test_widget_renews_its_session_and_recovers_from_a_refused_one(browser, servers):
    from playwright.async_api import expect

    webchat_url, rasa_url, fake = servers
    en = STRINGS["en"]
    page = await browser.new_page(viewport={"width": 360, "height": 740})
    await page.goto(f"{webchat_url}/index.html?rasa={rasa_url}&lang=en")
    await _open_widget(page)
    bot_messages = page.locator("#cw-log .cw-msg--bot")

    # a token of 2 s is renewed 0.5 s before it expires: same conversation, old token sent
    fake.expires_in = 2
    await _say(page, "xin chào")
    await expect(bot_messages).to_have_count(1)
    first_token = next(iter(fake.tokens))
    fake.expires_in = 86_400
    await page.wait_for_timeout(1700)
    await _say(page, "xin chào")
    await expect(bot_messages).to_have_count(2)
    assert fake.session_requests == [{}, {"session": first_token}]
    assert fake.conversations == [fake.conversations[0]] * 2

    # the server refuses the token once (401): one fresh session, the message sent again
    fake.refuse_next = 1
    await _say(page, "xin chào")
    await expect(bot_messages).to_have_count(3)
    await expect(page.locator(".cw-msg--error")).to_have_count(0)
    assert fake.refused == 1 and fake.session_requests[-1] == {}
    assert fake.messages.count("xin chào") == 3
    assert fake.conversations[-1] != fake.conversations[0]

    # refused for good: the polite error with "Send again", and no endless loop of sessions
    sessions_before = len(fake.session_requests)
    fake.refuse_next = 2
    await _say(page, "xin chào")
    error = page.locator(".cw-msg--error")
    await expect(error).to_contain_text(en["error_unreachable"])
    assert fake.refused == 3 and len(fake.session_requests) == sessions_before + 1
    await error.get_by_role("button", name=en["retry"]).click()
    await expect(bot_messages).to_have_count(4)
    await expect(error).to_have_count(0)

    # too long for the server (413): says so, and offers no "Send again"
    fake.max_body = 1000
    long_text = "ệ" * 2500
    await page.locator("#cw-input").fill(long_text)
    typed = await page.locator("#cw-input").input_value()
    assert len(typed) == 2000  # maxlength
    await page.keyboard.press("Enter")
    await expect(error).to_contain_text(en["error_too_long"])
    await expect(error.get_by_role("button")).to_have_count(0)
    await expect(page.locator("#cw-typing")).to_be_hidden()
    assert len(fake.received) == 4
    await page.close()


async def test_widget_explains_politely_when_rasa_is_unreachable(browser, servers):
    from playwright.async_api import expect

    webchat_url, _, _ = servers
    closed_port = _free_port()
    page = await browser.new_page(viewport={"width": 360, "height": 740})
    await page.goto(f"{webchat_url}/index.html?rasa=http://127.0.0.1:{closed_port}&lang=en")
    await _open_widget(page)
    await page.locator("#cw-input").fill("hello")
    await page.keyboard.press("Enter")
    error = page.locator(".cw-msg--error")
    await expect(error).to_contain_text(STRINGS["en"]["error_unreachable"])
    await expect(error.get_by_role("button", name=STRINGS["en"]["retry"])).to_be_visible()
    await page.close()


@dataclass
class EchoRasa:
    """A stand-in for Rasa's ``on_new_message`` behind the real channel."""

    messages: list[UserMessage]

    async def __call__(self, message: UserMessage) -> None:
        self.messages.append(message)
        await message.output_channel.send_text_message(
            message.sender_id, f"Đã nhận: {message.text}"
        )


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def real_channel() -> AsyncIterator[tuple[str, str, EchoRasa, Clock]]:
    """The widget folder, and ``WebChatInput`` in Sanic with CORS as Rasa sets it up."""
    from rasa.server import configure_cors
    from sanic import Sanic

    static_runner, webchat_url = await _serve_widget_folder()
    clock = Clock()
    rasa = EchoRasa([])
    channel = WebChatInput(
        WebChatSettings(secret=secrets.token_urlsafe(32), session_ttl_seconds=3600), clock=clock
    )
    Sanic.test_mode = True
    app = Sanic(f"webchat-e2e-{uuid.uuid4().hex[:8]}", configure_logging=False)
    configure_cors(app, [webchat_url])  # what `rasa run --cors <origin>` does
    app.blueprint(channel.blueprint(rasa), url_prefix="/webhooks/webchat")
    port = _free_port()
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield webchat_url, f"http://127.0.0.1:{port}", rasa, clock
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()
        await static_runner.cleanup()


async def test_widget_with_the_real_webchat_channel(browser, real_channel):
    from playwright.async_api import expect

    webchat_url, rasa_url, rasa, clock = real_channel
    page = await browser.new_page(viewport={"width": 360, "height": 740})
    await page.goto(f"{webchat_url}/index.html?rasa={rasa_url}")
    await _open_widget(page)
    bot_messages = page.locator("#cw-log .cw-msg--bot")
    await _say(page, "xin chào")
    await expect(bot_messages.last).to_have_text(f"{STRINGS['vi']['bot']}: Đã nhận: xin chào")

    await page.reload()
    await _open_widget(page)
    await _say(page, "vẫn là tôi")
    await expect(bot_messages.last).to_contain_text("Đã nhận: vẫn là tôi")
    first = rasa.messages[0]
    assert first.sender_id.startswith("web:") and rasa.messages[1].sender_id == first.sender_id
    assert first.input_channel == "webchat"
    assert first.metadata == {"platform": "webchat", "language": "vi"}

    # the server's clock passes the token's expiry: 401, a new session, the message delivered
    clock.now += 3600
    await _say(page, "sau một giờ")
    await expect(bot_messages.last).to_contain_text("Đã nhận: sau một giờ")
    await expect(page.locator(".cw-msg--error")).to_have_count(0)
    assert [m.text for m in rasa.messages] == ["xin chào", "vẫn là tôi", "sau một giờ"]
    assert rasa.messages[2].sender_id not in (first.sender_id, "")
    await page.close()


async def test_webchat_conversation_against_the_stack(chromium_path, stack, browser):
    from playwright.async_api import expect

    page = await browser.new_page(viewport={"width": 390, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    await page.goto(f"{stack.webchat_url}/index.html?rasa={stack.rasa_url}")
    await _open_widget(page)
    log = page.locator("#cw-log")
    bot_messages = log.locator(".cw-msg--bot")

    await page.locator("#cw-input").fill("xin chào")
    await page.keyboard.press("Enter")
    await expect(bot_messages.first).to_be_visible()
    await expect(page.locator(".cw-msg--error")).to_have_count(0)
    await expect(page.locator("#cw-typing")).to_be_hidden()

    before = await bot_messages.count()
    await page.locator("#cw-input").fill(DOSSIER_QUESTION)
    await page.keyboard.press("Enter")
    await expect(bot_messages).not_to_have_count(before)
    quick_replies = log.locator(".cw-quick").last.locator("button:not([disabled])")
    await expect(quick_replies.first).to_be_visible()
    await expect(page.locator("#cw-typing")).to_be_hidden()

    after_question = await bot_messages.count()
    title = (await quick_replies.first.inner_text()).strip()
    await quick_replies.first.click()
    await expect(log.locator(".cw-msg--user").last).to_contain_text(title)
    await expect(bot_messages).not_to_have_count(after_question)
    await expect(page.locator(".cw-msg--error")).to_have_count(0)

    # the rest of the dossier journey, typed: ID number, then the code from the SMS outbox
    await expect(bot_messages.last).to_contain_text("12 số")
    await page.locator("#cw-input").fill("001090001234")
    await page.keyboard.press("Enter")
    # the phone the code went to, masked (the sandbox's mask keeps the last digits)
    await expect(log).to_contain_text(re.compile(r"\*{4,}678"))
    await expect(log).not_to_contain_text("0912345678")
    await page.locator("#cw-input").fill(stack.latest_code("0912345678"))
    await page.keyboard.press("Enter")
    await expect(log).to_contain_text("Ảnh chân dung 4x6 cm")
    await expect(log).to_contain_text("Việc bạn cần làm tiếp theo")
    # the whole journey went through the signed web chat channel, never the REST channel
    paths = {url[len(stack.rasa_url) :] for url in requests if url.startswith(stack.rasa_url)}
    assert paths == {"/webhooks/webchat/session", "/webhooks/webchat/webhook"}
    await page.close()
