"""Web chat widget in headless Chromium (Playwright).

One test drives the widget against a tiny fake Rasa (always runnable where Chromium is);
the other walks a real conversation against the full stack from tests/e2e/conftest.py
(``stack.rasa_url``, ``stack.webchat_url``). Without /usr/bin/chromium or the playwright
package the tests skip on a developer machine and fail in CI (CI must install both).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

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


class FakeRasa:
    """Rasa's REST channel as the widget sees it, with CORS like ``rasa run --cors "*"``."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

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


@pytest.fixture
async def servers() -> AsyncIterator[tuple[str, str, FakeRasa]]:
    """The widget folder on one port (like the launcher's static server), fake Rasa on another."""
    from aiohttp import web

    fake = FakeRasa()

    @web.middleware
    async def cors(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method == "OPTIONS":
            response: web.StreamResponse = web.Response(status=204)
        else:
            response = await handler(request)
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        return response

    async def webhook(request: web.Request) -> web.Response:
        body = await request.json()
        fake.received.append(body)
        return web.json_response(await fake.reply(body))

    rasa_app = web.Application(middlewares=[cors])
    rasa_app.router.add_route("POST", "/webhooks/rest/webhook", webhook)
    rasa_app.router.add_route("OPTIONS", "/webhooks/rest/webhook", webhook)
    static_app = web.Application()
    static_app.router.add_static("/", WEBCHAT_DIR)

    runners = []
    urls = []
    for app in (static_app, rasa_app):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = _free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        urls.append(f"http://127.0.0.1:{port}")
    try:
        yield urls[0], urls[1], fake
    finally:
        for runner in runners:
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
    page = await browser.new_page(viewport={"width": 360, "height": 740})
    await page.goto(f"{webchat_url}/index.html?rasa={rasa_url}")
    await expect(page.locator("#cw-launcher")).to_have_accessible_name(vi["launcher"])
    await _open_widget(page)

    # labelled input, log announced politely
    await expect(page.get_by_label(vi["input_label"])).to_be_focused()
    log = page.locator("#cw-log")
    await expect(log).to_have_attribute("aria-live", "polite")
    await expect(log).to_have_attribute("role", "log")

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
    assert [body["message"] for body in fake.received] == ["xin chào", DOSSIER_QUESTION, "/affirm"]
    senders = {body["sender"] for body in fake.received}
    assert len(senders) == 1 and next(iter(senders)).startswith("web-")

    # usable at 360px: nothing sticks out sideways
    overflow = await page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 360

    # language switch: interface strings change and the assistant is told
    await page.locator("#cw-lang").click()
    await expect(page.get_by_label(STRINGS["en"]["input_label"])).to_be_visible()
    await expect(log.locator(".cw-msg--bot").last).to_contain_text("English")
    assert fake.received[-1]["message"] == '/switch_language{"language":"en"}'

    # the same sender id survives a reload (sessionStorage)
    await page.reload()
    await _open_widget(page)
    await page.locator("#cw-input").fill("xin chào")
    await page.keyboard.press("Enter")
    await expect(page.locator(".cw-msg--bot").last).to_contain_text("Tôi là trợ lý ảo")
    assert fake.received[-1]["sender"] in senders
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


async def test_webchat_conversation_against_the_stack(chromium_path, stack, browser):
    from playwright.async_api import expect

    page = await browser.new_page(viewport={"width": 390, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)
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
    await expect(log).to_contain_text("091****678")
    await page.locator("#cw-input").fill(stack.latest_code("0912345678"))
    await page.keyboard.press("Enter")
    await expect(log).to_contain_text("Ảnh chân dung 4x6 cm")
    await expect(log).to_contain_text("Việc bạn cần làm tiếp theo")
    await page.close()
