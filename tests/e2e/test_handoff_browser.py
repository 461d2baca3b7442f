"""The handoff journey in two browser pages of one headless Chromium (Debian's, driven by
Playwright as in tests/e2e/test_webchat.py): the citizen in the web chat widget
(``stack.webchat_url``), the call-centre agent in the staff console (``stack.settings.staff_url``),
each in a browser context of their own (own cookies, own sessionStorage).

The agent opens the desk; the citizen asks for a person and reads the queue's answer; the entry
appears in the agent's queue by itself (server-sent events), with its summary and no words of
the citizen; the agent takes it (a second agent's take through the API gets 409), reads the
masked transcript, inserts a canned reply, edits and sends it; the widget shows it, labelled as
from a person, without the citizen sending anything (the inbox long-poll); the agent hands back;
the widget shows the hand-back line and the rating question, and the bot answers the citizen's
next question (a passport) again. Expected wordings come from the domain and the sandbox's
content, not from this file. The REST-level version is tests/e2e/test_handoff.py.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

from console.settings import DEFAULT_DEMO_PASSWORD, DEMO_ACCOUNTS
from tests.e2e.conftest import Stack
from tests.e2e.test_handoff import domain_responses, said
from tests.e2e.test_webchat import STRINGS, TIMEOUT_MS, _open_widget, browser, chromium_path  # noqa: F401

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
LIVE_MS = 15_000  # a live update (queue, inbox) must show within this
ASK_FOR_A_PERSON = "cho tôi gặp nhân viên"
PHONE = "0912345678"
WHILE_WAITING = f"Số điện thoại của tôi là {PHONE}"
ADDED_BY_THE_AGENT = " Em là tổng đài viên, em sẽ hỗ trợ anh ngay ạ."
PASSPORT_QUESTION = "làm hộ chiếu cần giấy tờ gì"
PASSPORT = yaml.safe_load(
    (ROOT / "sandbox" / "portal" / "data" / "procedures" / "passport.yml").read_text("utf-8")
)


def texts_of(response: str, language: str = "vi") -> list[str]:
    """The response's published wordings in ``language`` (the default one has no condition)."""
    found = []
    for variation in domain_responses()[response]:
        conditions = variation.get("condition") or []
        wanted = [c["value"] for c in conditions if c.get("name") == "language"]
        if (wanted == [language]) or (not wanted and language == "vi"):
            found.append(str(variation["text"]))
    assert found, f"{response} has no {language} wording in bot/domain"
    return found


def conversation_of(token: str) -> str:
    """The conversation id a web chat token stands for (bot/channels/webchat.py: web:<sid>)."""
    payload = token.split(".", 1)[0]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"web:{claims['sid']}"


async def sign_in(page: Any, staff_url: str, email: str) -> None:
    await page.goto(f"{staff_url}/desk")
    assert "/signin" in page.url
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(DEFAULT_DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{staff_url}/desk")


def api_login(staff_url: str, email: str) -> dict[str, str]:
    answer = httpx.post(
        f"{staff_url}/api/login",
        json={"email": email, "password": DEFAULT_DEMO_PASSWORD},
        timeout=10,
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['token']}"}


async def bot_text(item: Any) -> str:
    """A widget bubble's text as Rasa sent it (without the screen-reader prefix)."""
    return str(await item.locator(".cw-msg__text").text_content())


async def test_citizen_in_the_widget_and_agent_at_the_desk(
    chromium_path: str,  # noqa: F811
    stack: Stack,
    browser: Any,  # noqa: F811
) -> None:
    from playwright.async_api import expect

    assert stack.settings is not None
    staff_url = stack.settings.staff_url
    vi = STRINGS["vi"]

    agent_context = await browser.new_context(locale="vi-VN")
    agent_context.set_default_timeout(LIVE_MS)
    citizen_context = await browser.new_context(
        locale="vi-VN", viewport={"width": 390, "height": 800}
    )
    citizen_context.set_default_timeout(LIVE_MS)
    desk = await agent_context.new_page()
    widget = await citizen_context.new_page()
    sent_by_citizen: list[str] = []
    widget.on(
        "request",
        lambda r: (
            sent_by_citizen.append(r.post_data or "")
            if r.method == "POST" and r.url.endswith("/webhooks/webchat/webhook")
            else None
        ),
    )

    # The agent is at the desk first (that makes them online: a person can answer).
    await sign_in(desk, staff_url, DEMO_ACCOUNTS["agent"])
    await expect(desk.locator("#queue")).to_contain_text("Open now")
    await desk.evaluate("window.__deskNotReloaded = true")

    # 1. The citizen asks for a person: the queue's answer.
    await widget.goto(f"{stack.webchat_url}/index.html?rasa={stack.rasa_url}")
    await _open_widget(widget)
    log = widget.locator("#cw-log")
    replies = log.locator(".cw-msg--bot:not(.cw-msg--agent)")
    await widget.locator("#cw-input").fill(ASK_FOR_A_PERSON)
    await widget.keyboard.press("Enter")
    await expect(replies).to_have_count(1, timeout=TIMEOUT_MS)
    queued = await bot_text(replies.first)
    assert said(queued, "utter_handoff_queued"), queued
    token = await widget.evaluate(
        "JSON.parse(sessionStorage.getItem('civic-webchat-session')).token"
    )
    conversation_id = conversation_of(token)
    # Waiting (paused): what the citizen writes is kept for the agent, the bot says nothing.
    await widget.locator("#cw-input").fill(WHILE_WAITING)
    await widget.keyboard.press("Enter")
    await expect(log.locator(".cw-msg--user")).to_have_count(2)
    await expect(widget.locator("#cw-typing")).to_be_hidden(timeout=TIMEOUT_MS)
    await expect(replies).to_have_count(1)

    # 2. The entry appears in the agent's queue by itself, with its summary, no personal data.
    session_id = conversation_id.split(":", 1)[1]
    row = desk.locator("#queue tr").filter(has=desk.locator(f'a[href$="{session_id}"]'))
    await expect(row).to_have_count(1, timeout=LIVE_MS)
    assert await desk.evaluate("window.__deskNotReloaded === true")  # live, not reloaded
    cells = [c.strip() for c in await row.locator("td").all_inner_texts()]
    state, channel, language, _, summary, agent, _ = cells
    assert state.startswith("waiting")
    assert re.fullmatch(r"web ?chat", channel, re.I), channel
    assert language == "vi"
    assert "not verified" in summary and agent == ""
    queue_text = await desk.locator("#queue").inner_text()
    for private in (ASK_FOR_A_PERSON, WHILE_WAITING, PHONE, session_id):
        assert private not in queue_text

    # 3. The agent opens and takes it; the masked transcript shows the citizen's messages.
    await row.get_by_role("link", name="Open").click()
    await desk.wait_for_url(f"**/desk/*{session_id}")
    await desk.get_by_role("button", name="Take", exact=True).click()
    await expect(desk.locator(".notice")).to_contain_text("You hold this conversation")
    transcript = desk.locator("#transcript")
    await expect(transcript.locator(".desk-citizen").first).to_contain_text(ASK_FOR_A_PERSON)
    await expect(transcript.locator(".desk-citizen")).to_have_count(2)
    await expect(transcript.locator(".desk-citizen").last).to_contain_text("Số điện thoại")
    await expect(transcript).not_to_contain_text(PHONE)
    assert queued.split(".")[0] in await transcript.inner_text()  # the bot's answer too

    # 6. Another agent (the admin) cannot take it from the holder: 409.
    path = f"/api/handoff/{quote(conversation_id, safe='')}"
    admin = api_login(staff_url, DEMO_ACCOUNTS["admin"])
    taken_again = httpx.post(f"{staff_url}{path}/take", headers=admin, timeout=10)
    assert taken_again.status_code == 409, taken_again.text
    assert DEMO_ACCOUNTS["agent"] in taken_again.text

    # Insert a canned answer, edit it, send it.
    canned = desk.locator(".desk-suggestions [data-insert]")
    await expect(canned.first).to_be_visible()
    inserted = str(await canned.first.get_attribute("data-insert"))
    assert inserted
    await canned.first.click()
    reply = desk.get_by_label("Reply to the citizen")
    await expect(reply).to_have_value(inserted)
    await expect(reply).to_be_focused()
    await desk.keyboard.press("Control+End")  # edit: the agent adds a sentence of their own
    await desk.keyboard.type(ADDED_BY_THE_AGENT)
    written = inserted + ADDED_BY_THE_AGENT
    await expect(reply).to_have_value(written)
    posts_before = len(sent_by_citizen)
    await desk.get_by_role("button", name="Send", exact=True).click()
    await expect(desk.locator(".notice")).to_contain_text("Sent to the citizen")

    # 4. The widget shows it, from a person, without the citizen sending anything.
    from_agent = log.locator(".cw-msg--agent")
    # (first the take's line: utter_handoff_agent_joined, from the agent too)
    await expect(from_agent).to_have_count(2, timeout=LIVE_MS)
    await expect(from_agent.locator(".cw-msg__who")).to_have_text([vi["agent"]] * 2)
    assert said(await bot_text(from_agent.first), "utter_handoff_agent_joined")
    assert (await bot_text(from_agent.last)).strip() == written.strip()
    assert len(sent_by_citizen) == posts_before
    await expect(log.locator(".cw-msg--user")).to_have_count(2)
    await expect(transcript.locator(".desk-agent").last).to_contain_text(ADDED_BY_THE_AGENT.strip())

    # 5. The agent hands back: the citizen is told and asked for a rating, by the bot.
    await desk.get_by_role("button", name="Hand back to the bot").click()
    await expect(desk.locator(".notice")).to_contain_text("Handed back to the bot")
    await expect(desk.locator(".notice")).not_to_contain_text("was not told")
    returned_line = texts_of("utter_handoff_returned")[0]
    rating_line = texts_of("utter_handoff_rating")[0]
    await expect(replies.filter(has_text=returned_line)).to_have_count(1, timeout=LIVE_MS)
    await expect(replies.filter(has_text=rating_line)).to_have_count(1, timeout=LIVE_MS)
    rating_buttons = log.locator(".cw-quick").last.locator("button")
    await expect(rating_buttons).to_have_text(["1", "2", "3", "4", "5"])
    assert len(sent_by_citizen) == posts_before
    await expect(from_agent).to_have_count(2)

    # The citizen asks about passports: the bot answers again (not the agent).
    before = await replies.count()
    await widget.locator("#cw-input").fill(PASSPORT_QUESTION)
    await widget.keyboard.press("Enter")
    await expect(replies).not_to_have_count(before, timeout=TIMEOUT_MS)
    await expect(widget.locator("#cw-typing")).to_be_hidden(timeout=TIMEOUT_MS)
    answer = [await bot_text(replies.nth(n)) for n in range(before, await replies.count())]
    name = PASSPORT["name"]["vi"]
    assert any(name.lower() in text.lower() for text in answer), answer
    assert any(said(text, "utter_ask_variant") for text in answer), answer
    cases = log.locator(".cw-quick").last.locator("button")
    variant_names = {v["name"]["vi"] for v in PASSPORT["variants"]}
    titles = [t.strip() for t in await cases.all_inner_texts()]
    assert variant_names & set(titles), titles
    await expect(from_agent).to_have_count(2)

    # ... and its checklist, from the sandbox's passport content.
    chosen = next(t for t in titles if t in variant_names)
    before = await replies.count()
    await cases.filter(has_text=chosen).first.click()
    await expect(replies).not_to_have_count(before, timeout=TIMEOUT_MS)
    (variant,) = [v for v in PASSPORT["variants"] if v["name"]["vi"] == chosen]
    await expect(log).to_contain_text(variant["documents"]["vi"][0], timeout=TIMEOUT_MS)
    await expect(from_agent).to_have_count(2)

    # The desk: the conversation is back with the bot, nobody holds it any more.
    handoff = httpx.get(f"{staff_url}{path}/transcript", headers=admin, timeout=10)
    assert handoff.status_code == 200, handoff.text
    assert handoff.json()["handoff"]["status"] == "released"
    await agent_context.close()
    await citizen_context.close()
