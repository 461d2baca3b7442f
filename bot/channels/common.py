"""Helpers shared by the messaging channels: fallback texts, splitting, retries, body limit.

De-duplication lives in ``bot.channels.state`` (it must survive a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Hashable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from sanic.exceptions import PayloadTooLarge
from sanic.request import Request

from bot.logmask import PiiFilter, mask_pii

logger = logging.getLogger(__name__)
logger.addFilter(PiiFilter())

MESSAGES_FILE = Path(__file__).with_name("messages.yml")
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
# Webhook bodies we accept. A Telegram update or a Zalo event is a few kilobytes; Sanic's own
# default (100 MB) would let anyone make us buffer that much per request.
MAX_BODY_BYTES = 64 * 1024

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@lru_cache(maxsize=1)
def _messages() -> dict[str, dict[str, str]]:
    with MESSAGES_FILE.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    return {lang: dict(data.get(lang) or {}) for lang in LANGUAGES}


def protocol_text(key: str, language: str | None = None) -> str:
    """A channel-level fallback text from messages.yml (never a dialogue reply)."""
    messages = _messages()
    lang = normalise_language(language)
    return messages[lang].get(key) or messages[DEFAULT_LANGUAGE][key]


def normalise_language(code: str | None) -> str:
    """Map a platform language code ("en-US", "vi") to one of ours; Vietnamese by default."""
    if code and code.lower().split("-")[0].split("_")[0] == "en":
        return "en"
    return DEFAULT_LANGUAGE


def loggable_text(text: str, limit: int = 80) -> str:
    """A citizen's text as it may appear in a log line: personal data masked, cut short."""
    masked = mask_pii(text)
    return masked if len(masked) <= limit else masked[: limit - 3] + "..."


_SEPARATORS = ("\n\n", "\n", ". ", "? ", "! ", "… ", "; ", ", ", " ")


def _pieces(text: str, limit: int, separators: tuple[str, ...]) -> list[str]:
    if len(text) <= limit:
        return [text]
    if not separators:
        return [text[i : i + limit] for i in range(0, len(text), limit)]
    sep, rest = separators[0], separators[1:]
    parts = text.split(sep)
    if len(parts) == 1:
        return _pieces(text, limit, rest)
    pieces = [part + sep for part in parts[:-1]] + [parts[-1]]
    out: list[str] = []
    for piece in pieces:
        out.extend(_pieces(piece, limit, rest))
    return out


def split_text(text: str, limit: int) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters.

    Prefers paragraph breaks, then line breaks, then sentence ends, then spaces, so a long
    answer reads naturally over several messages; only a word longer than ``limit`` is cut.
    """
    text = text.strip()
    if not text:
        return []
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    for piece in _pieces(text, limit, _SEPARATORS):
        if len((current + piece).rstrip()) <= limit:  # a trailing separator costs nothing
            current += piece
            continue
        if current.strip():
            chunks.append(current.strip())
        current = piece
    if current.strip():
        chunks.append(current.strip())
    return chunks


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter for calls to a platform API."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 4.0
    # A server-requested wait (e.g. Telegram's retry_after) longer than this is not honoured:
    # we give up instead of holding the conversation for minutes.
    max_wait: float = 10.0

    def backoff(self, attempt: int) -> float:
        delay: float = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return delay * random.uniform(0.5, 1.0)


async def call_with_retry(
    operation: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    retry_delay: Callable[[BaseException], float | None],
    what: str,
) -> T:
    """Run ``operation``; on an error that ``retry_delay`` deems transient, wait and try again.

    ``retry_delay(exc)`` returns ``None`` for permanent errors (raised at once) or the minimum
    number of seconds to wait before the next attempt (0 for plain backoff).
    """
    attempt = 1
    while True:
        try:
            return await operation()
        except Exception as exc:
            hint = retry_delay(exc)
            if hint is None or attempt >= policy.attempts:
                raise
            delay = max(hint, policy.backoff(attempt))
            if delay > policy.max_wait:
                raise
            logger.warning(
                "%s failed (attempt %s/%s: %s); retrying in %.2fs",
                what,
                attempt,
                policy.attempts,
                type(exc).__name__,
                delay,
            )
            await asyncio.sleep(delay)
            attempt += 1


class LruDict(Generic[K, V]):
    """A small in-memory mapping that forgets its oldest entries beyond ``max_size``."""

    def __init__(self, max_size: int = 10_000) -> None:
        self.max_size = max_size
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def set(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.max_size:
            self._data.popitem(last=False)

    def pop(self, key: K) -> V | None:
        return self._data.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)


class KeyedLocks:
    """One asyncio lock per conversation, so one citizen's messages are handled in order."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:
                del self._users[key]
                del self._locks[key]


class BackgroundTasks:
    """Keeps references to fire-and-forget tasks and lets tests or shutdown wait for them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def __len__(self) -> int:
        return len(self._tasks)


async def read_limited_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The body of a ``stream=True`` route, or ``None`` if it is over ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before a byte is read; a chunked
    body is read until it passes the limit. Lowering Sanic's own limit for this request also
    stops Sanic from draining the rest (up to 100 MB) after we answer: it closes the connection.
    """
    stream = request.stream
    if stream is not None:
        stream.request_max_size = limit
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    if stream is None or not stream.request_body:
        body = request.body or b""
        return body if len(body) <= limit else None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except PayloadTooLarge:
        return None
    return b"".join(chunks)
