"""The attacks of the security review, tried against the real stack (docs/SECURITY.md).

Each test names the defence it proves; each fails when that defence is removed.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack, start_stack

pytestmark = pytest.mark.e2e

AN_ID, AN_PHONE, AN_NAME = "001090001234", "0912345678", "Nguyễn Văn An"
AN_DOSSIER = "000.00.10.H26-261110-0001"  # supplement required: the 4x6 cm photo is missing
DETAIL = "4x6"  # only the verified owner is told what is missing


def texts(replies: list[dict[str, Any]]) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def a_wrong_code(stack: Stack) -> str:
    real = stack.latest_code(AN_PHONE)
    return "000000" if real != "000000" else "111111"


def verify_over_rest(stack: Stack, sender: str, typed_id: str = AN_ID) -> str:
    """An verifies in a REST conversation; returns the code used."""
    stack.say(sender, f"hồ sơ {AN_DOSSIER} của tôi đến đâu rồi")
    stack.say(sender, "/affirm")
    stack.say(sender, typed_id)
    code = stack.latest_code(AN_PHONE)
    shown = texts(stack.say(sender, code))
    assert DETAIL in shown  # the owner does see the details
    return code


# --- 1. conversation identity comes from what the channel authenticated ----------------------


def web_reply(stack: Stack, session: str, text: str) -> list[dict[str, Any]]:
    response = stack.web_say(session, text)
    assert response.status_code == 200, response.text
    return list(response.json())


def test_a_verified_web_chat_cannot_be_continued_by_naming_its_sender(stack: Stack) -> None:
    session = stack.web_session()
    web_reply(stack, session, f"hồ sơ {AN_DOSSIER} của tôi đến đâu rồi")
    web_reply(stack, session, "/affirm")
    sent = web_reply(stack, session, AN_ID)
    conversation = sent[0]["recipient_id"]
    assert conversation.startswith("web:")
    assert DETAIL in texts(web_reply(stack, session, stack.latest_code(AN_PHONE)))

    # The attacker knows the conversation id and posts as it through the REST channel...
    spoofed = stack.say(conversation, f"hồ sơ {AN_DOSSIER} đến đâu rồi")
    assert DETAIL not in texts(spoofed) and AN_NAME not in texts(spoofed)
    assert spoofed[0]["recipient_id"] == f"rest:{conversation}"  # ...and lands in rest:, alone
    # ...or through the web chat with no session, a forged one, or another conversation's body.
    forged = session[:-2] + ("AA" if not session.endswith("AA") else "BB")
    for token in ("", forged, "not-a-token"):
        refused = stack.web_say(token, f"hồ sơ {AN_DOSSIER}")
        assert refused.status_code == 401
    own = stack.web_session()
    stranger = httpx.post(
        f"{stack.rasa_url}/webhooks/webchat/webhook",
        json={"message": f"hồ sơ {AN_DOSSIER} đến đâu rồi", "sender": conversation},
        headers={"Authorization": f"Bearer {own}"},
        timeout=60,
    )
    assert stranger.status_code == 200
    assert DETAIL not in texts(stranger.json())
    assert stranger.json()[0]["recipient_id"] != conversation


def test_the_rest_channel_never_writes_into_another_channels_conversation(stack: Stack) -> None:
    chat = f"telegram:{uuid.uuid4().int % 10**9}"
    stack.say(chat, "xin chào")
    foreign = stack.api("GET", f"/conversations/{chat}/tracker").json()
    assert not [e for e in foreign.get("events") or [] if e.get("event") == "user"]
    own = stack.api("GET", f"/conversations/rest:{chat}/tracker").json()
    assert [e for e in own["events"] if e.get("event") == "user"]
    assert {e.get("input_channel") for e in own["events"] if e.get("event") == "user"} == {"rest"}


# --- 2. Rasa's HTTP API is never open ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/status"),
        ("GET", "/conversations/rest:anyone/tracker"),
        ("POST", "/conversations/rest:anyone/tracker/events"),
        ("POST", "/model/parse"),
        ("PUT", "/model"),
    ],
)
def test_the_http_api_refuses_anonymous_callers(stack: Stack, method: str, path: str) -> None:
    anonymous = httpx.request(method, f"{stack.rasa_url}{path}", json={}, timeout=30)
    assert anonymous.status_code == 401
    wrong = httpx.request(
        method, f"{stack.rasa_url}{path}", json={}, params={"token": "guess"}, timeout=30
    )
    assert wrong.status_code == 401
    assert stack.api("GET", "/status").status_code == 200  # the token works


def test_the_token_file_is_readable_by_its_owner_only(stack: Stack) -> None:
    assert stack.token_file.stat().st_mode & 0o777 == 0o600


def test_only_the_web_chat_origins_may_call_from_a_browser(stack: Stack) -> None:
    def preflight(origin: str) -> httpx.Response:
        return httpx.options(
            f"{stack.rasa_url}/webhooks/webchat/webhook",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
            timeout=30,
        )

    demo = stack.webchat_url  # the demo page's origin, the default WEBCHAT_ORIGINS
    assert preflight(demo).headers.get("access-control-allow-origin") == demo
    for evil in ("https://evil.example", "null"):
        assert preflight(evil).headers.get("access-control-allow-origin") in (None, "")
        page = httpx.get(f"{stack.rasa_url}/", headers={"Origin": evil}, timeout=30)
        assert page.headers.get("access-control-allow-origin") in (None, "")


# --- 5. verification that resists abuse -------------------------------------------------------


def test_a_strangers_wrong_codes_do_not_stop_the_owner(stack: Stack) -> None:
    stranger = f"stranger-{uuid.uuid4().hex[:8]}"
    stack.say(stranger, f"hồ sơ {AN_DOSSIER} đến đâu rồi")
    stack.say(stranger, "/affirm")
    stack.say(stranger, AN_ID)  # An's number is printed on the card: the stranger knows it
    said = []
    for _ in range(3):  # a code takes three wrong tries, then it is void
        said.append(texts(stack.say(stranger, a_wrong_code(stack))))
    assert "không dùng được nữa" in said[-1]
    stack.say(stranger, "gửi lại mã")
    for _ in range(2):  # five wrong codes in one conversation lock that conversation
        said.append(texts(stack.say(stranger, a_wrong_code(stack))))
    assert "trong cuộc trò chuyện này" in said[-1]

    owner = f"owner-{uuid.uuid4().hex[:8]}"
    verify_over_rest(stack, owner)  # asserts the owner sees the details


def test_typing_verified_at_the_code_step_proves_nothing(stack: Stack, sender: str) -> None:
    stack.say(sender, f"hồ sơ {AN_DOSSIER} đến đâu rồi")
    stack.say(sender, "/affirm")
    stack.say(sender, AN_ID)
    for attempt in ("verified", "Verified", "otp verified"):
        assert DETAIL not in texts(stack.say(sender, attempt))
    assert DETAIL not in texts(stack.say(sender, f"hồ sơ {AN_DOSSIER} đến đâu rồi"))


def test_an_id_number_at_the_code_step_sends_no_code(stack: Stack, sender: str) -> None:
    stack.say(sender, f"hồ sơ {AN_DOSSIER} đến đâu rồi")
    stack.say(sender, "/affirm")
    stack.say(sender, AN_ID)
    before = httpx.get(f"{stack.identity_url}/sandbox/sms", params={"phone": "0987654321"})
    reply = texts(stack.say(sender, "079185005678"))  # Bình's number
    after = httpx.get(f"{stack.identity_url}/sandbox/sms", params={"phone": "0987654321"})
    assert len(after.json()["messages"]) == len(before.json()["messages"])
    assert "không phải số định danh" in reply


def test_goodbye_and_a_new_session_end_the_verification(stack: Stack) -> None:
    said_goodbye = f"bye-{uuid.uuid4().hex[:8]}"
    verify_over_rest(stack, said_goodbye)
    stack.say(said_goodbye, "tạm biệt")
    assert DETAIL not in texts(stack.say(said_goodbye, f"hồ sơ {AN_DOSSIER} đến đâu rồi"))

    came_back = f"later-{uuid.uuid4().hex[:8]}"
    verify_over_rest(stack, came_back)
    started = stack.api(
        "POST", f"/conversations/rest:{came_back}/execute", json={"name": "action_session_start"}
    )
    assert started.status_code == 200  # what an idle hour does: a new session
    assert DETAIL not in texts(stack.say(came_back, f"hồ sơ {AN_DOSSIER} đến đâu rồi"))


# --- 6. input limits --------------------------------------------------------------------------


def test_a_huge_message_is_refused_at_once_and_delays_nobody(stack: Stack) -> None:
    results: dict[str, Any] = {}

    def huge() -> None:
        started = time.monotonic()
        response = httpx.post(
            f"{stack.rasa_url}/webhooks/rest/webhook",
            json={"sender": "huge", "message": "hồ sơ " * 200_000},  # about 1.4 MB
            timeout=30,
        )
        results["huge"] = (response.status_code, time.monotonic() - started)

    def greet() -> None:
        started = time.monotonic()
        results["greet"] = (
            stack.say(f"greet-{uuid.uuid4().hex[:6]}", "xin chào"),
            time.monotonic() - started,
        )

    threads = [threading.Thread(target=huge), threading.Thread(target=greet)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    status, seconds = results["huge"]
    assert status == 413 and seconds < 1.0, results["huge"]
    replies, _ = results["greet"]
    assert "Xin chào" in texts(replies)
    web = httpx.post(
        f"{stack.rasa_url}/webhooks/webchat/webhook",
        content=b"x" * (1024 * 1024),
        headers={"Authorization": f"Bearer {stack.web_session()}"},
        timeout=30,
    )
    assert web.status_code == 413


def test_a_long_message_under_the_cap_gets_a_polite_answer_quickly(
    stack: Stack, sender: str
) -> None:
    started = time.monotonic()
    replies = stack.say(sender, "ho so cua toi " * 4000)  # 56 000 bytes, under 64 KiB
    seconds = time.monotonic() - started
    assert "dài" in texts(replies).lower(), texts(replies)  # "your message is rather long"
    assert seconds < 5.0, f"{seconds:.2f}s"
    assert "Xin chào" in texts(stack.say(sender, "xin chào"))  # and the conversation goes on


# --- 4 and 7. nothing personal at rest, nothing personal in the logs (at DEBUG) ---------------


@pytest.fixture(scope="module")
def debug_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own at DEBUG level, so every message text reaches the loggers."""
    supervisor, running = start_stack(tmp_path_factory.mktemp("debug-stack"), log_level="DEBUG")
    yield running
    supervisor.stop()


def as_typed_anyhow(secret: str) -> re.Pattern[str]:
    """The secret's digits with any single separator between them ("001 090.001-234")."""
    return re.compile(r"[\s.\-]?".join(re.escape(ch) for ch in secret))


def test_a_verified_journey_leaves_nothing_personal_in_the_tracker_store_or_logs(
    debug_stack: Stack,
) -> None:
    stack = debug_stack
    sender = f"privacy-{uuid.uuid4().hex[:8]}"
    stack.say(sender, f"hồ sơ {AN_DOSSIER} của tôi đến đâu rồi, sđt tôi là +84 912 345 678")
    stack.say(sender, "/affirm")
    stack.say(sender, "001.090.001.234")
    code = stack.latest_code(AN_PHONE)
    shown = texts(stack.say(sender, f"{code[:3]} {code[3:]}"))
    assert DETAIL in shown and AN_NAME in shown  # the citizen saw it all...
    stack.say(sender, "cảm ơn")

    stored = "".join(
        path.read_bytes().decode("utf-8", errors="replace")
        for path in stack.var_dir.glob("trackers.db*")
    )
    logs = stack.logs()
    assert "parse_data_text" in logs  # at DEBUG, Rasa logs every message text
    escaped_name = json.dumps(AN_NAME)[1:-1]
    for where, content in (("tracker store", stored), ("logs", logs)):
        assert content, where
        for secret in (AN_ID, AN_PHONE, AN_PHONE[1:], code):
            assert not as_typed_anyhow(secret).search(content), (where, secret)
        assert not re.search(r"eyJ[\w-]{10,}\.[\w-]{10,}", content), (where, "token")
    # ...but the store keeps neither the owner's name nor the details shown
    for text in (AN_NAME, escaped_name, "Ảnh chân dung", "\\u1ea2nh ch\\u00e2n dung"):
        assert text not in stored


def test_the_identity_token_never_reaches_the_tracker(debug_stack: Stack) -> None:
    stack = debug_stack
    sender = f"token-{uuid.uuid4().hex[:8]}"
    verify_over_rest(stack, sender)
    tracker = stack.api("GET", f"/conversations/rest:{sender}/tracker").json()
    slots = tracker["slots"]
    assert AN_ID not in json.dumps(tracker)
    assert slots.get("id_number") == "*********234"
    for value in slots.values():
        assert not (isinstance(value, str) and value.startswith("eyJ"))
