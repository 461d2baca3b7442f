"""The staff console in Debian's headless Chromium (Playwright, as tests/e2e/test_webchat.py
drives it): the editor signs in, rewords the greeting and a fee answer and submits them; the
reviewer signs in and publishes both; Rasa's NLG endpoint answers the new wording within 5 s;
a rollback in the page restores the old one.

The content service runs as `python -m console` on a free port with its own SQLite file, in
sandbox mode (the demo accounts). The citizen-on-Rasa version of this journey is
tests/e2e/test_content.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.settings import DEFAULT_DEMO_PASSWORD, DEMO_ACCOUNTS, ROOT
from tests.e2e.conftest import free_port
from tests.e2e.test_webchat import LAUNCH_ARGS, TIMEOUT_MS, chromium_path  # noqa: F401

pytestmark = pytest.mark.e2e

GREETING = "utter_greet"
FEE = "utter_procedure_fee"
NEW_GREETING = "Chào bạn! Tôi là trợ lý dịch vụ công, bạn cần tra cứu gì hôm nay?"
NEW_FEE = "Mức lệ phí {procedure_name}{variant_name} hiện nay: {fee}"
FEE_SLOTS = {"procedure_name": "cấp hộ chiếu", "variant_name": "", "fee": "200.000 đồng"}


@pytest.fixture
def console_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "CONTENT_DB_URL": f"sqlite:///{tmp_path / 'content.db'}",
        "SANDBOX_MODE": "1",
        "STAFF_PORT": str(port),
        "BIND_HOST": "127.0.0.1",
        "CONTENT_REFRESH_SECONDS": "1",
    }
    log = (tmp_path / "console.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "console"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the console did not start:\n{(tmp_path / 'console.log').read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
async def page(chromium_path: str) -> AsyncIterator[Any]:  # noqa: F811
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=LAUNCH_ARGS
        )
        try:
            context = await browser.new_context(locale="vi-VN")
            context.set_default_timeout(TIMEOUT_MS / 4)
            yield await context.new_page()
        finally:
            await browser.close()


def nlg_text(url: str, name: str, slots: dict[str, str] | None = None) -> str:
    """What Rasa's NLG call gets for this reply (rasa/core/nlg/callback.py's request)."""
    body = {
        "response": name,
        "id": None,
        "arguments": {},
        "tracker": {"sender_id": "browser-test", "slots": {"language": "vi", **(slots or {})}},
        "channel": {"name": "rest"},
    }
    answer = httpx.post(f"{url}/nlg", json=body, timeout=5)
    answer.raise_for_status()
    return str(answer.json()["text"])


def seen_within(url: str, name: str, wanted: str, timeout: float, **slots: str) -> float:
    started = time.monotonic()
    while nlg_text(url, name, slots) != wanted:
        if time.monotonic() - started > timeout:
            pytest.fail(f"{name} still says {nlg_text(url, name, slots)!r} after {timeout} s")
        time.sleep(0.1)
    return time.monotonic() - started


async def sign_in(page: Any, url: str, role: str) -> None:
    """By keyboard, as on a laptop: the email field has focus, Tab to the password, Enter."""
    await page.goto(f"{url}/")
    assert "/signin" in page.url
    # Chromium applies autofocus in a rendering step after "load": on a busy machine the first
    # keys could arrive before it (CI once typed the password into the email field).
    await page.wait_for_function("document.activeElement?.id === 'email'", timeout=10_000)
    await page.keyboard.type(DEMO_ACCOUNTS[role])
    await page.keyboard.press("Tab")
    await page.keyboard.type(DEFAULT_DEMO_PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{url}/responses")
    assert await page.get_by_text(DEMO_ACCOUNTS[role]).is_visible()


async def sign_out(page: Any) -> None:
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/signin")


async def open_reply(page: Any, search: str, name: str) -> None:
    """Search as one types (htmx), then open the reply from the results."""
    await page.get_by_label("Search by words or name").fill(search)
    link = page.locator("#results").get_by_role("link", name=name, exact=True)
    await link.wait_for()
    await link.click()
    await page.wait_for_url(f"**/responses/{name}*")


async def reword_and_submit(page: Any, text: str, preview_text: str) -> None:
    field = page.locator("#text-vi")  # the Vietnamese default text ("Text" in Tiếng Việt)
    await field.fill(text)
    # The live preview shows the unsaved wording as the web chat would (htmx, nothing saved).
    preview = page.locator('#preview [data-channel="Web chat"][data-language="vi"]')
    await preview.filter(has_text=preview_text).wait_for()
    await page.get_by_role("button", name="Submit for review").click()
    await page.locator("#notice").filter(has_text="Submitted for review").wait_for()
    assert await page.locator("#state").inner_text() == "submitted"
    assert await page.locator("#publish").count() == 0  # an editor is shown no publish button


async def test_editor_rewords_reviewer_publishes_nlg_serves_it_rollback_restores(
    console_url: str, page: Any
) -> None:
    url = console_url
    old_greeting = nlg_text(url, GREETING)
    old_fee = nlg_text(url, FEE, FEE_SLOTS)
    assert old_fee == "Lệ phí cấp hộ chiếu: 200.000 đồng"

    await sign_in(page, url, "editor")
    await open_reply(page, "utter_greet", GREETING)
    await reword_and_submit(page, NEW_GREETING, NEW_GREETING)
    await page.goto(f"{url}/responses")
    await open_reply(page, "le phi", FEE)  # no diacritics: the search folds accents
    await reword_and_submit(page, NEW_FEE, "Mức lệ phí {procedure_name}{variant_name} hiện nay")
    assert nlg_text(url, GREETING) == old_greeting  # submitted is not published
    await sign_out(page)

    await sign_in(page, url, "reviewer")
    waits = []
    for search, name, wanted, slots in (
        ("utter_greet", GREETING, NEW_GREETING, {}),
        ("lệ phí", FEE, "Mức lệ phí cấp hộ chiếu hiện nay: 200.000 đồng", FEE_SLOTS),
    ):
        await page.goto(f"{url}/responses")
        await open_reply(page, search, name)
        await page.locator("#publish").click()
        await page.locator("#notice").filter(has_text="Published").wait_for()
        waits.append(seen_within(url, name, wanted, 5.0, **slots))
    assert max(waits) < 5.0

    # Rollback in one click (and a confirm) on the greeting's page.
    page.once("dialog", lambda dialog: dialog.accept())
    await page.goto(f"{url}/responses/{GREETING}")
    await page.get_by_role("button", name="Roll back to version 1").click()
    await page.locator("#notice").filter(has_text="Rolled back").wait_for()
    seen_within(url, GREETING, old_greeting, 5.0)
    assert nlg_text(url, FEE, FEE_SLOTS) != old_fee  # the other reply stays as published
