"""Shared channel helpers: text splitting, fallback texts, retries, the body limit."""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path

import pytest
import yaml

from bot.channels.common import (
    MAX_BODY_BYTES,
    MESSAGES_FILE,
    KeyedLocks,
    RetryPolicy,
    call_with_retry,
    loggable_text,
    normalise_language,
    protocol_text,
    split_text,
)
from bot.channels.telegram import SECRET_HEADER, TelegramInput, TelegramSettings
from bot.channels.zalo import ZaloInput, ZaloSettings
from tests.channels.channel_fakes import RecordingRasa, serve_channel

CHANNELS = Path(__file__).resolve().parents[2] / "bot" / "channels"


def test_short_text_is_one_chunk():
    assert split_text("  Xin chào!  ", 100) == ["Xin chào!"]
    assert split_text("   ", 100) == []


def test_split_prefers_paragraphs_then_sentences_then_words():
    text = "Một hai ba. Bốn năm sáu.\n\nBảy tám chín mười."
    assert split_text(text, 30) == ["Một hai ba. Bốn năm sáu.", "Bảy tám chín mười."]
    assert split_text("Câu một dài. Câu hai dài. Câu ba dài.", 26) == [
        "Câu một dài. Câu hai dài.",
        "Câu ba dài.",
    ]
    assert split_text("aaaa bbbb cccc", 9) == ["aaaa bbbb", "cccc"]
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


@pytest.mark.parametrize("limit", [50, 200, 4000])
def test_split_never_exceeds_the_limit_and_keeps_every_word(limit):
    text = "\n\n".join(
        f"Đoạn {i}. " + "Công dân nộp hồ sơ trực tuyến trên Cổng Dịch vụ công. " * (i + 1)
        for i in range(30)
    )
    chunks = split_text(text, limit)
    assert all(0 < len(chunk) <= limit for chunk in chunks)
    assert " ".join(chunks).split() == text.split()


def test_fallback_texts_exist_in_both_languages():
    data = yaml.safe_load(MESSAGES_FILE.read_text(encoding="utf-8"))
    assert set(data) == {"vi", "en"}
    assert set(data["vi"]) == set(data["en"])
    assert protocol_text("service_unavailable", "en") == data["en"]["service_unavailable"]
    assert protocol_text("service_unavailable", "fr") == data["vi"]["service_unavailable"]


def _string_literals(path: Path) -> list[str]:
    """Every string constant of a module except docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_channel_code_has_no_vietnamese_reply_text():
    """Words a citizen reads live in the domain or messages.yml, not in channel code."""
    vietnamese = re.compile(
        r"[ăâđêôơưáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ]"
    )
    modules = sorted(CHANNELS.glob("*.py"))
    assert modules
    for path in modules:
        found = [text for text in _string_literals(path) if vietnamese.search(text.lower())]
        assert found == [], f"{path.name} holds citizen-facing text: {found}"


def test_language_codes():
    assert normalise_language("en-US") == "en"
    assert normalise_language("en_GB") == "en"
    assert normalise_language("vi") == "vi"
    assert normalise_language(None) == "vi"
    assert normalise_language("fr") == "vi"


def test_loggable_text_masks_personal_data():
    text = "CCCD 001099012345, số 0912345678, mã 123456"
    masked = loggable_text(text)
    assert "001099012345" not in masked
    assert "0912345678" not in masked
    assert "123456" not in masked.replace("******", "")


async def test_retry_gives_up_after_the_bounded_attempts():
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    policy = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.002)
    with pytest.raises(ConnectionError):
        await call_with_retry(flaky, policy=policy, retry_delay=lambda exc: 0.0, what="test")
    assert calls == 4


async def test_retry_does_not_repeat_permanent_errors_or_long_waits():
    calls = 0

    async def refused() -> str:
        nonlocal calls
        calls += 1
        raise ValueError("bad request")

    policy = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002, max_wait=1.0)
    with pytest.raises(ValueError):
        await call_with_retry(refused, policy=policy, retry_delay=lambda exc: None, what="t")
    with pytest.raises(ValueError):
        await call_with_retry(refused, policy=policy, retry_delay=lambda exc: 60.0, what="t")
    assert calls == 2


async def test_keyed_locks_are_released():
    locks = KeyedLocks()
    async with locks.hold("a"):
        async with locks.hold("b"):
            pass
    assert locks._locks == {}


def _channel(name: str):
    if name == "telegram_ptb":
        return TelegramInput(TelegramSettings(token="1:token", webhook_secret="secret"))
    return ZaloInput(ZaloSettings(app_id="app", oa_secret_key="key", access_token="token"))


@pytest.mark.parametrize("name", ["telegram_ptb", "zalo"])
async def test_a_huge_declared_body_is_refused_before_it_is_sent(name, tmp_path, monkeypatch):
    """413 at once from the headers: the webhook never waits for (or buffers) a 10 MB body."""
    monkeypatch.setenv("CHANNEL_STATE_DB", str(tmp_path / "state.db"))
    rasa = RecordingRasa()
    async with serve_channel(_channel(name), rasa) as client:
        port = client.base_url.port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            f"POST /webhooks/{name}/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"{SECRET_HEADER}: secret\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10 * 1024 * 1024}\r\n\r\n"
        )
        writer.write(head.encode() + b'{"update_id": 1, ')  # and nothing more
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=5)
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 413")
    assert rasa.messages == []
    assert MAX_BODY_BYTES == 65536
