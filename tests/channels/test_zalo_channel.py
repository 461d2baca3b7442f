"""Zalo OA channel: signed webhook in -> Rasa -> OA message API (httpx.MockTransport) out."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.channels import zalo as zalo_module
from bot.channels.common import MAX_BODY_BYTES, RetryPolicy, protocol_text
from bot.channels.state import RedisChannelState, SqliteChannelState, StateUnavailable
from bot.channels.zalo import (
    SIGNATURE_HEADER,
    ZaloInput,
    ZaloSettings,
    zalo_signature,
)
from tests.channels.channel_fakes import RecordingRasa, serve_channel

APP_ID = "4300000000000000001"
SECRET = "oa-secret-key"
TOKEN = "oa-access-token"
USER = "2468458835296117922"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
SETTINGS = ZaloSettings(
    app_id=APP_ID,
    oa_secret_key=SECRET,
    access_token=TOKEN,
    api_base_url="https://openapi.zalo.test",
    timeout_seconds=1.0,
    retry=FAST_RETRY,
)


@pytest.fixture(autouse=True)
def state_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every channel of these tests keeps its de-duplication state in a file of its own."""
    path = tmp_path / "channel_state.db"
    monkeypatch.setenv("CHANNEL_STATE_DB", str(path))
    monkeypatch.delenv("SHARED_STATE_URL", raising=False)
    return path


@dataclass
class FakeZaloApi:
    """The OA message API as an ``httpx.MockTransport`` handler."""

    outcomes: list[Callable[[httpx.Request], httpx.Response]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.outcomes:
            return self.outcomes.pop(0)(request)
        return httpx.Response(
            200,
            json={
                "error": 0,
                "message": "Success",
                "data": {"message_id": "m1", "user_id": USER, "quota": {"quota_type": "reply"}},
            },
        )

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(r.content)["message"] for r in self.requests]

    @property
    def texts(self) -> list[str]:
        return [m.get("text", "") for m in self.messages]


class Clock:
    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def zalo_api() -> FakeZaloApi:
    return FakeZaloApi()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def channel(zalo_api: FakeZaloApi, clock: Clock) -> ZaloInput:
    return ZaloInput(SETTINGS, transport=httpx.MockTransport(zalo_api), clock=clock)


NOW_MS = "1780000000000"  # the fixture clock's time, as Zalo stamps events


def text_event(
    text: str, msg_id: str = "msg-1", event: str = "user_send_text", timestamp: str = NOW_MS
) -> dict[str, Any]:
    return {
        "app_id": APP_ID,
        "user_id_by_app": "552177279717587730",
        "event_name": event,
        "timestamp": timestamp,
        "sender": {"id": USER},
        "recipient": {"id": "579745863508352884"},
        "message": {"text": text, "msg_id": msg_id},
    }


def signed(event: dict[str, Any], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event, ensure_ascii=False).encode()
    return body, sign_body(body, str(event["timestamp"]), secret)


def sign_body(body: bytes, timestamp: str, secret: str = SECRET) -> dict[str, str]:
    signature = zalo_signature(APP_ID, body, timestamp, secret)
    return {SIGNATURE_HEADER: signature, "Content-Type": "application/json"}


async def post_event(client: httpx.AsyncClient, event: dict[str, Any], **kwargs: Any):
    body, headers = signed(event, **kwargs)
    return await client.post("/webhooks/zalo/webhook", content=body, headers=headers)


def greet(message: object) -> list[dict]:
    return [
        {
            "text": "Chào bạn! Bạn cần hỗ trợ gì?",
            "buttons": [
                {"title": "Tra cứu hồ sơ", "payload": "/check_status"},
                {"title": "Cấp lại CCCD", "payload": "cấp lại căn cước"},
            ],
        }
    ]


async def test_signed_text_reaches_rasa_and_reply_goes_out_as_template(channel, zalo_api):
    rasa = RecordingRasa(reply=greet)
    async with serve_channel(channel, rasa) as client:
        reply = await post_event(client, text_event("xin chào"))
        await channel.tasks.wait_idle()
    assert reply.status_code == 200
    [message] = rasa.messages
    assert (message.text, message.sender_id, message.input_channel) == (
        "xin chào",
        f"zalo:{USER}",
        "zalo",
    )
    [request] = zalo_api.requests
    assert request.url.path == "/v3.0/oa/message/cs"
    assert request.headers["access_token"] == TOKEN
    body = json.loads(request.content)
    assert body["recipient"] == {"user_id": USER}
    assert body["message"]["text"] == "Chào bạn! Bạn cần hỗ trợ gì?"
    assert body["message"]["attachment"] == {
        "type": "template",
        "payload": {
            "buttons": [
                {"title": "Tra cứu hồ sơ", "type": "oa.query.hide", "payload": "/check_status"},
                {"title": "Cấp lại CCCD", "type": "oa.query.show", "payload": "cấp lại căn cước"},
            ]
        },
    }


@pytest.mark.parametrize("problem", ["unsigned", "wrong secret", "bare wrong hex", "tampered"])
async def test_unsigned_or_badly_signed_webhooks_are_refused(channel, zalo_api, caplog, problem):
    caplog.set_level(logging.WARNING, logger="bot.channels.zalo")
    rasa = RecordingRasa(reply=greet)
    body, headers = signed(text_event("xin chào"), secret="not-the-secret")
    if problem == "unsigned":
        headers.pop(SIGNATURE_HEADER)
    elif problem == "bare wrong hex":
        headers[SIGNATURE_HEADER] = "0" * 64
    elif problem == "tampered":
        body, headers = signed(text_event("xin chào"))
        body = body.replace("xin chào".encode(), "tạm biệt".encode())
    async with serve_channel(channel, rasa) as client:
        reply = await client.post("/webhooks/zalo/webhook", content=body, headers=headers)
        await channel.tasks.wait_idle()
    assert reply.status_code == 401
    assert rasa.messages == []
    assert zalo_api.requests == []
    assert any("refused" in record.getMessage() for record in caplog.records)


async def test_signature_without_mac_prefix_is_accepted(channel):
    rasa = RecordingRasa()
    body, headers = signed(text_event("xin chào"))
    headers[SIGNATURE_HEADER] = headers[SIGNATURE_HEADER].removeprefix("mac=")
    async with serve_channel(channel, rasa) as client:
        reply = await client.post("/webhooks/zalo/webhook", content=body, headers=headers)
        await channel.tasks.wait_idle()
    assert reply.status_code == 200
    assert rasa.texts == ["xin chào"]


async def test_missing_configuration_refuses_all(zalo_api):
    unconfigured = ZaloInput(
        ZaloSettings(app_id=APP_ID, oa_secret_key="", access_token=TOKEN),
        transport=httpx.MockTransport(zalo_api),
    )
    rasa = RecordingRasa()
    async with serve_channel(unconfigured, rasa) as client:
        reply = await post_event(client, text_event("xin chào"), secret="")
    assert reply.status_code == 401
    assert rasa.messages == []


async def test_other_events_are_acknowledged_and_ignored(channel, zalo_api):
    rasa = RecordingRasa(reply=greet)
    async with serve_channel(channel, rasa) as client:
        seen = await post_event(client, text_event("", event="user_seen_message"))
        oa_echo = await post_event(client, text_event("Chào bạn", event="oa_send_text"))
        await channel.tasks.wait_idle()
    assert (seen.status_code, seen.json()["status"]) == (200, "ignored")
    assert (oa_echo.status_code, oa_echo.json()["status"]) == (200, "ignored")
    assert rasa.messages == []
    assert zalo_api.requests == []


async def test_a_picture_gets_the_polite_protocol_fallback(channel, zalo_api):
    rasa = RecordingRasa()
    async with serve_channel(channel, rasa) as client:
        reply = await post_event(client, text_event("", event="user_send_image"))
        await channel.tasks.wait_idle()
    assert reply.status_code == 200
    assert rasa.messages == []
    assert zalo_api.texts == [protocol_text("unsupported_content", "vi")]


async def test_too_many_buttons_become_a_numbered_list_and_a_number_selects(channel, zalo_api):
    options = [{"title": f"Thủ tục {i}", "payload": f'/choose{{"n":{i}}}'} for i in range(1, 7)]

    def offer(message: object) -> list[dict]:
        if message.text == "xin chào":  # type: ignore[attr-defined]
            return [{"text": "Bạn muốn hỏi thủ tục nào?", "buttons": options}]
        return []

    rasa = RecordingRasa(reply=offer)
    async with serve_channel(channel, rasa) as client:
        await post_event(client, text_event("xin chào", msg_id="a"))
        await channel.tasks.wait_idle()
        await post_event(client, text_event("2", msg_id="b"))
        await channel.tasks.wait_idle()
        await post_event(client, text_event("2", msg_id="c"))
        await channel.tasks.wait_idle()
    [listing] = zalo_api.messages
    assert "attachment" not in listing
    assert listing["text"].startswith("Bạn muốn hỏi thủ tục nào?\n1. Thủ tục 1\n2. Thủ tục 2")
    assert listing["text"].endswith(protocol_text("choose_by_number", "vi"))
    # the number picks the payload once; afterwards "2" is just text again
    assert rasa.texts == ["xin chào", '/choose{"n":2}', "2"]


async def test_template_refused_by_zalo_falls_back_to_a_numbered_list(channel, zalo_api):
    zalo_api.outcomes.append(
        lambda request: httpx.Response(200, json={"error": -201, "message": "invalid template"})
    )
    async with serve_channel(channel, RecordingRasa(reply=greet)) as client:
        await post_event(client, text_event("xin chào"))
        await channel.tasks.wait_idle()
    template, listing = zalo_api.messages
    assert "attachment" in template
    assert "1. Tra cứu hồ sơ\n2. Cấp lại CCCD" in listing["text"]


async def test_long_text_is_split_under_2000_characters(channel, zalo_api):
    long_text = "\n\n".join(f"Bước {i}: " + "nộp hồ sơ trực tuyến. " * 30 for i in range(10))

    async with serve_channel(channel, RecordingRasa(lambda m: [{"text": long_text}])) as client:
        await post_event(client, text_event("hướng dẫn"))
        await channel.tasks.wait_idle()
    assert len(zalo_api.texts) >= 3
    assert all(len(text) <= 2000 for text in zalo_api.texts)
    assert " ".join(zalo_api.texts).split() == long_text.split()


async def test_no_reply_outside_the_customer_service_window(channel, zalo_api, clock, caplog):
    caplog.set_level(logging.WARNING, logger="bot.channels.zalo")
    async with serve_channel(channel, RecordingRasa(reply=greet)) as client:
        await post_event(client, text_event("xin chào"))
        await channel.tasks.wait_idle()
    assert len(zalo_api.requests) == 1

    clock.now += 6 * 24 * 3600  # six days later: still allowed (7-day rule)
    await channel.output().send_response(f"zalo:{USER}", {"text": "Nhắc lịch hẹn"})
    assert len(zalo_api.requests) == 2

    clock.now += 2 * 24 * 3600  # eight days after the last interaction: not allowed
    await channel.output().send_response(f"zalo:{USER}", {"text": "Nhắc lịch hẹn"})
    await channel.output().send_response("zalo:someone-who-never-wrote", {"text": "Xin chào"})
    assert len(zalo_api.requests) == 2
    assert sum("outside the customer-service window" in r.getMessage() for r in caplog.records) == 2


async def test_zalo_500_and_timeout_are_retried_without_losing_the_message(channel, zalo_api):
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    zalo_api.outcomes += [lambda request: httpx.Response(500), timeout]
    rasa = RecordingRasa(reply=greet)
    async with serve_channel(channel, rasa) as client:
        reply = await post_event(client, text_event("xin chào"))
        await channel.tasks.wait_idle()
    assert reply.status_code == 200
    assert rasa.texts == ["xin chào"]
    assert len(zalo_api.requests) == 3
    assert "attachment" in zalo_api.messages[-1]


async def test_zalo_down_for_good_is_logged_and_the_message_kept(channel, zalo_api, caplog):
    caplog.set_level(logging.ERROR, logger="bot.channels.zalo")
    zalo_api.outcomes += [lambda request: httpx.Response(503)] * 10
    rasa = RecordingRasa(reply=lambda m: [{"text": "Chào bạn"}])
    async with serve_channel(channel, rasa) as client:
        reply = await post_event(client, text_event("xin chào"))
        await channel.tasks.wait_idle()
    assert reply.status_code == 200
    assert rasa.texts == ["xin chào"]
    assert len(zalo_api.requests) == FAST_RETRY.attempts
    assert any("failed for good" in record.getMessage() for record in caplog.records)


async def test_zalo_error_code_is_not_retried(channel, zalo_api, caplog):
    caplog.set_level(logging.ERROR, logger="bot.channels.zalo")
    zalo_api.outcomes.append(
        lambda request: httpx.Response(
            200, json={"error": -216, "message": "Access token is invalid"}
        )
    )
    async with serve_channel(channel, RecordingRasa(lambda m: [{"text": "Chào"}])) as client:
        await post_event(client, text_event("xin chào"))
        await channel.tasks.wait_idle()
    assert len(zalo_api.requests) == 1
    assert any("-216" in record.getMessage() for record in caplog.records)


async def test_redelivered_event_is_handled_once(channel):
    rasa = RecordingRasa()
    async with serve_channel(channel, rasa) as client:
        first = await post_event(client, text_event("xin chào", msg_id="same"))
        second = await post_event(client, text_event("xin chào", msg_id="same"))
        await channel.tasks.wait_idle()
    assert (first.json()["status"], second.json()["status"]) == ("forwarded", "duplicate")
    assert rasa.texts == ["xin chào"]


async def test_image_and_custom_zalo_payloads(channel, zalo_api):
    request_info = {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "request_user_info",
                "elements": [{"title": "Cổng DVC", "subtitle": "Xin thông tin liên hệ"}],
            },
        }
    }

    def media(message: object) -> list[dict]:
        return [{"image": "https://example.org/mau.png"}, {"custom": {"zalo": request_info}}]

    async with serve_channel(channel, RecordingRasa(media)) as client:
        await post_event(client, text_event("xin chào"))
        await channel.tasks.wait_idle()
    image, info = zalo_api.messages
    assert image["attachment"]["payload"]["elements"][0] == {
        "media_type": "image",
        "url": "https://example.org/mau.png",
    }
    assert info == request_info


def test_signature_formula_matches_zalo_docs():
    body = b'{"timestamp":"1"}'
    import hashlib

    expected = hashlib.sha256(b"app" + body + b"1" + b"key").hexdigest()
    assert zalo_signature("app", body, "1", "key") == f"mac={expected}"


def test_settings_from_the_environment_or_the_expanded_credentials(monkeypatch):
    monkeypatch.setenv("ZALO_APP_ID", "env-app")
    monkeypatch.setenv("ZALO_OA_SECRET_KEY", "env-secret")
    monkeypatch.setenv("ZALO_OA_ACCESS_TOKEN", "env-token")
    monkeypatch.setenv("ZALO_API_BASE_URL", "http://127.0.0.1:9")
    channel = ZaloInput.from_credentials({"window_hours": 48})
    assert isinstance(channel, ZaloInput)
    settings = channel.settings
    assert (settings.app_id, settings.oa_secret_key, settings.access_token) == (
        "env-app",
        "env-secret",
        "env-token",
    )
    assert settings.api_base_url == "http://127.0.0.1:9"
    assert settings.window_hours == 48
    expanded = ZaloInput.from_credentials({"oa_secret_key": "from-block"})
    assert isinstance(expanded, ZaloInput)
    assert expanded.settings.oa_secret_key == "from-block"


async def test_redelivery_after_a_restart_is_not_handled_again(zalo_api, clock, state_db):
    """A new channel instance on the same state file (a restart) remembers msg_ids."""
    rasa = RecordingRasa()
    first = ZaloInput(SETTINGS, transport=httpx.MockTransport(zalo_api), clock=clock)
    async with serve_channel(first, rasa) as client:
        before = await post_event(client, text_event("một", msg_id="same"))
        await first.tasks.wait_idle()

    restarted = ZaloInput(SETTINGS, transport=httpx.MockTransport(zalo_api), clock=clock)
    async with serve_channel(restarted, rasa) as client:
        again = await post_event(client, text_event("một", msg_id="same"))
        new = await post_event(client, text_event("hai", msg_id="other"))
        await restarted.tasks.wait_idle()
    assert state_db.exists()
    assert [r.json()["status"] for r in (before, again, new)] == [
        "forwarded",
        "duplicate",
        "forwarded",
    ]
    assert rasa.texts == ["một", "hai"]


async def test_events_without_msg_id_are_told_apart_by_event_sender_and_time(channel, clock):
    def submit_info(timestamp: str) -> dict[str, Any]:
        event = text_event("", event="user_submit_info", timestamp=timestamp)
        del event["message"]
        return event

    later = str(int(NOW_MS) + 1000)
    async with serve_channel(channel, RecordingRasa()) as client:
        outcomes = [
            (await post_event(client, submit_info(stamp))).json()["status"]
            for stamp in (NOW_MS, NOW_MS, later)
        ]
    assert outcomes == ["noted", "duplicate", "noted"]


@pytest.mark.parametrize(
    ("offset_seconds", "status"),
    [(-600, 401), (-301, 401), (-240, 200), (30, 200), (120, 401)],
    ids=["10-min-old", "just-stale", "4-min-old", "30s-ahead", "2-min-ahead"],
)
async def test_signed_events_outside_the_replay_window_are_refused(
    channel, zalo_api, clock, caplog, offset_seconds, status
):
    caplog.set_level(logging.WARNING, logger="bot.channels.zalo")
    stamp = str(int((clock.now + offset_seconds) * 1000))
    rasa = RecordingRasa(reply=greet)
    async with serve_channel(channel, rasa) as client:
        reply = await post_event(client, text_event("CCCD 001099012345", timestamp=stamp))
        await channel.tasks.wait_idle()
    assert reply.status_code == status
    if status == 401:
        assert reply.json() == {"status": "stale"}
        assert rasa.messages == []
        assert zalo_api.requests == []
        [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert "refused" in warning.getMessage()
        assert "001099012345" not in caplog.text  # the message text is never logged
    else:
        assert rasa.texts == ["CCCD 001099012345"]


def test_replay_window_comes_from_the_environment(monkeypatch):
    assert ZaloSettings.from_env({}).replay_window_seconds == 300
    assert ZaloSettings.from_env({"ZALO_REPLAY_WINDOW_SECONDS": "60"}).replay_window_seconds == 60


class CountingJson:
    """Stands in for the zalo module's ``json``: counts every parse."""

    def __init__(self) -> None:
        self.parsed: list[bytes] = []

    def loads(self, body: bytes) -> Any:
        self.parsed.append(body)
        return json.loads(body)


@pytest.mark.parametrize("forgery", ["wrong secret", "tampered", "no signature", "no timestamp"])
async def test_a_forged_body_is_refused_without_being_parsed(
    channel, zalo_api, monkeypatch, forgery
):
    spy = CountingJson()
    monkeypatch.setattr(zalo_module, "json", spy)
    rasa = RecordingRasa()
    body, headers = signed(text_event("xin chào"), secret="not-the-secret")
    if forgery == "tampered":
        body, headers = signed(text_event("xin chào"))
        body = body.replace(b'"msg-1"', b'"msg-2"')
    elif forgery == "no signature":
        headers.pop(SIGNATURE_HEADER)
    elif forgery == "no timestamp":
        event = text_event("xin chào")
        del event["timestamp"]
        body = json.dumps(event).encode()
        headers = sign_body(body, NOW_MS)
    async with serve_channel(channel, rasa) as client:
        forged = await client.post("/webhooks/zalo/webhook", content=body, headers=headers)
        genuine = await post_event(client, text_event("xin chào"))
        await channel.tasks.wait_idle()
    assert forged.status_code == 401
    assert genuine.status_code == 200
    assert len(spy.parsed) == 1  # the genuine event only
    assert rasa.texts == ["xin chào"]


async def test_invalid_json_is_parsed_only_once_its_signature_holds(channel, monkeypatch):
    """Deeply nested brackets: valid for the timestamp pattern, costly and invalid as JSON."""
    spy = CountingJson()
    monkeypatch.setattr(zalo_module, "json", spy)
    body = b'{"timestamp":"' + NOW_MS.encode() + b'","message":' + b"[" * 30_000 + b"}"
    async with serve_channel(channel, RecordingRasa()) as client:
        forged = await client.post(
            "/webhooks/zalo/webhook", content=body, headers=sign_body(body, NOW_MS, "forger")
        )
        signed_garbage = await client.post(
            "/webhooks/zalo/webhook", content=body, headers=sign_body(body, NOW_MS)
        )
    assert forged.status_code == 401
    assert signed_garbage.status_code == 400
    assert spy.parsed == [body]


async def test_a_numeric_timestamp_is_signed_and_checked_the_same(channel):
    event = text_event("xin chào")
    event["timestamp"] = int(NOW_MS)
    rasa = RecordingRasa()
    async with serve_channel(channel, rasa) as client:
        reply = await post_event(client, event)
        await channel.tasks.wait_idle()
    assert reply.status_code == 200
    assert rasa.texts == ["xin chào"]


def padded_event(size: int) -> bytes:
    """A signed-able event whose JSON body is exactly ``size`` bytes."""
    body = json.dumps(text_event("")).encode()
    body = json.dumps(text_event("a" * (size - len(body)))).encode()
    assert len(body) == size
    return body


async def in_chunks(body: bytes, size: int = 16_384) -> AsyncIterator[bytes]:
    """The body sent with Transfer-Encoding: chunked (no Content-Length to refuse it by)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_over_64_kib_is_refused_with_413(channel, zalo_api, chunked):
    body = padded_event(MAX_BODY_BYTES + 1)
    headers = sign_body(body, NOW_MS)  # genuinely signed: only the size is wrong
    rasa = RecordingRasa(reply=greet)
    async with serve_channel(channel, rasa) as client:
        reply = await client.post(
            "/webhooks/zalo/webhook", content=in_chunks(body) if chunked else body, headers=headers
        )
        await channel.tasks.wait_idle()
    assert reply.status_code == 413
    assert rasa.messages == []
    assert zalo_api.requests == []


async def test_body_of_exactly_64_kib_is_accepted(channel):
    body = padded_event(MAX_BODY_BYTES)
    rasa = RecordingRasa()
    async with serve_channel(channel, rasa) as client:
        reply = await client.post(
            "/webhooks/zalo/webhook", content=body, headers=sign_body(body, NOW_MS)
        )
        await channel.tasks.wait_idle()
    assert reply.status_code == 200
    [text] = rasa.texts
    assert text and set(text) == {"a"}


async def test_state_store_failing_answers_503_and_nothing_reaches_rasa(zalo_api, clock, tmp_path):
    broken = SqliteChannelState(tmp_path)  # a directory: SQLite cannot open it
    channel = ZaloInput(
        SETTINGS, transport=httpx.MockTransport(zalo_api), clock=clock, state=broken
    )
    rasa = RecordingRasa()
    async with serve_channel(channel, rasa) as client:
        reply = await post_event(client, text_event("xin chào"))
        await channel.tasks.wait_idle()
    assert reply.status_code == 503
    assert rasa.messages == []


SIX_OPTIONS = [{"title": f"Thủ tục {i}", "payload": f'/choose{{"n":{i}}}'} for i in range(1, 7)]


def offer_six(message: object) -> list[dict]:
    if message.text == "xin chào":  # type: ignore[attr-defined]
        return [{"text": "Bạn muốn hỏi thủ tục nào?", "buttons": SIX_OPTIONS}]
    return []


async def test_a_number_offered_on_one_replica_is_answered_on_another(
    zalo_api, clock, redis_server
):
    """Two channel instances (two Rasa replicas) on one Redis: the list goes out from one, the
    citizen's "2" reaches the other, and a redelivery to either is handled once."""
    rasa = RecordingRasa(reply=offer_six)

    def replica() -> ZaloInput:
        state = RedisChannelState(redis_server.url)
        return ZaloInput(
            SETTINGS, transport=httpx.MockTransport(zalo_api), clock=clock, state=state
        )

    one, two = replica(), replica()
    async with serve_channel(one, rasa) as first, serve_channel(two, rasa) as second:
        await post_event(first, text_event("xin chào", msg_id="a"))
        await one.tasks.wait_idle()
        answer = await post_event(second, text_event("2", msg_id="b"))
        again = await post_event(first, text_event("2", msg_id="b"))
        await two.tasks.wait_idle()
        later = await post_event(first, text_event("2", msg_id="c"))
        await one.tasks.wait_idle()
    assert "1. Thủ tục 1\n2. Thủ tục 2" in zalo_api.messages[0]["text"]
    assert [r.json()["status"] for r in (answer, again, later)] == [
        "forwarded",
        "duplicate",
        "forwarded",
    ]
    assert rasa.texts == ["xin chào", '/choose{"n":2}', "2"]  # the choices held one turn


async def test_redis_down_answers_503_and_recovers_without_a_restart(zalo_api, clock, redis_server):
    state = RedisChannelState(redis_server.url, timeout_seconds=0.5)
    channel = ZaloInput(SETTINGS, transport=httpx.MockTransport(zalo_api), clock=clock, state=state)
    rasa = RecordingRasa()
    async with serve_channel(channel, rasa) as client:
        redis_server.stop()
        down = await post_event(client, text_event("xin chào", msg_id="x"))
        redis_server.start()
        back = await post_event(client, text_event("xin chào", msg_id="x"))
        await channel.tasks.wait_idle()
    assert (down.status_code, down.json()) == (503, {"status": "unavailable"})
    assert back.json() == {"status": "forwarded"}
    assert rasa.texts == ["xin chào"]


class ValuesDown(SqliteChannelState):
    """De-duplication works, values do not: the store failing between two calls."""

    async def put(self, channel: str, key: str, value: str, ttl_seconds: float) -> None:
        raise StateUnavailable("values down")

    async def pop(self, channel: str, key: str) -> str | None:
        raise StateUnavailable("values down")


async def test_choices_that_cannot_be_kept_still_show_and_a_number_goes_on_as_text(
    zalo_api, clock, tmp_path, caplog
):
    state = ValuesDown(tmp_path / "state.db")
    channel = ZaloInput(SETTINGS, transport=httpx.MockTransport(zalo_api), clock=clock, state=state)
    rasa = RecordingRasa(reply=offer_six)
    async with serve_channel(channel, rasa) as client:
        await post_event(client, text_event("xin chào", msg_id="a"))
        await channel.tasks.wait_idle()
        await post_event(client, text_event("2", msg_id="b"))
        await channel.tasks.wait_idle()
    assert "2. Thủ tục 2" in zalo_api.messages[0]["text"]
    assert rasa.texts == ["xin chào", "2"]
    assert any("not kept" in record.getMessage() for record in caplog.records)
