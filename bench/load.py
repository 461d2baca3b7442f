"""Closed-loop load: N conversations at once, each sends, waits for the reply, sends the next."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx

from bench.procs import Sampler, Usage
from bench.systems import System
from bot.rasa_server import ACTION_SERVER_DOWN

REQUEST_TIMEOUT = 30.0  # one message; a slower reply counts as an error


class ConversationError(Exception):
    """A message got no usable reply: the conversation stops, the next one starts."""


class TimeUp(Exception):
    """The level's time is over; the conversation stops before its next message."""


@dataclass
class Conversation:
    sender: str
    answered: int = 0  # messages that got a reply (HTTP 200, a non-empty list), warm-up too
    measured: int = 0  # of which sent in the measured window
    completed: bool = False  # ran its whole script
    user_events: int | None = None  # in the tracker store afterwards; None: not read
    # Replies that were the apology Rasa gives when the action server is down or a turn's
    # custom actions take longer than ACTION_TIMEOUT_SECONDS (bot/rasa_server.py), in the
    # measured window: answered messages, but not the answer the script asked for.
    apologies: int = 0


@dataclass
class LevelResult:
    """What one concurrency level measured on one system.

    Warm-up and measurement are one continuous run: conversations under way when measuring
    starts go on; only messages sent from then on are timed and counted.
    """

    system: str
    concurrency: int
    measure_from: float = 0.0  # time.monotonic() when the measured window began
    measure_from_wall: float = 0.0  # the same moment as time.time() (tracker timestamps)
    duration: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, measured answers only
    errors: Counter[str] = field(default_factory=Counter)  # in the measured window
    notes: Counter[str] = field(default_factory=Counter)  # script outcomes, warm-up errors
    conversations: list[Conversation] = field(default_factory=list)  # warm-up ones too
    services: dict[str, int] = field(default_factory=dict)  # service -> session leader pid
    usage: dict[str, Usage] = field(default_factory=dict)  # per service, measured window
    client_cpu: float = 0.0

    def measuring(self) -> bool:
        return time.monotonic() >= self.measure_from

    @property
    def answered(self) -> int:
        return len(self.latencies)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def measured_conversations(self) -> list[Conversation]:
        return [c for c in self.conversations if c.measured]

    @property
    def user_events(self) -> int:
        return sum(c.user_events or 0 for c in self.conversations)

    @property
    def apologies(self) -> int:
        return sum(c.apologies for c in self.conversations)

    @property
    def trackers_missing(self) -> int:
        return sum(1 for c in self.conversations if c.answered and c.user_events is None)

    @property
    def lost(self) -> int:
        """Answered messages with no user event in the tracker store (unread trackers count)."""
        return sum(max(0, c.answered - (c.user_events or 0)) for c in self.conversations)


class Turn:
    """One conversation's view of the system: ``say`` times a message and checks its reply.

    ``start`` is the part of the script the conversation begins with: the first conversation of
    every other loop begins half-way, so the loops do not walk the script in step.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        system: System,
        result: LevelResult,
        deadline: float,
        start: int = 0,
    ) -> None:
        self.client = client
        self.system = system
        self.result = result
        self.deadline = deadline
        self.start = start
        self.conversation = Conversation(sender=f"bench-{uuid.uuid4().hex[:12]}")

    def note(self, outcome: str) -> None:
        """Count a script outcome (verified, wrong code...) if it happened in the window."""
        if self.result.measuring():
            self.result.notes[outcome] += 1

    def error(self, kind: str, measured: bool) -> NoReturn:
        if measured:
            self.result.errors[kind] += 1
        else:
            self.result.notes[f"warm-up error: {kind}"] += 1
        raise ConversationError(kind)

    async def say(self, text: str) -> list[dict[str, Any]]:
        if time.monotonic() >= self.deadline:
            raise TimeUp  # between two messages: the level's time is over
        measured = self.result.measuring()
        started = time.perf_counter()
        try:
            response = await self.client.post(
                f"{self.system.rasa_url}/webhooks/rest/webhook",
                json={"sender": self.conversation.sender, "message": text},
                timeout=REQUEST_TIMEOUT,
            )
        except httpx.HTTPError as exc:
            self.error(type(exc).__name__, measured)
        if response.status_code != 200:
            self.error(f"HTTP {response.status_code}", measured)
        try:
            replies = response.json()
        except ValueError:
            self.error("not JSON", measured)
        if not isinstance(replies, list) or not replies:
            self.error("empty reply", measured)
        elapsed = time.perf_counter() - started
        self.conversation.answered += 1
        if measured:
            self.conversation.measured += 1
            self.result.latencies.append(elapsed)
        return replies


Script = Callable[[Turn], Awaitable[None]]


async def _worker(
    client: httpx.AsyncClient,
    system: System,
    script: Script,
    result: LevelResult,
    deadline: float,
    start: int,
) -> None:
    """Conversations back to back until the deadline (a started message is let finish)."""
    while time.monotonic() < deadline:
        turn = Turn(client, system, result, deadline, start)
        start = 0
        result.conversations.append(turn.conversation)
        try:
            await script(turn)
        except (TimeUp, ConversationError):
            continue
        turn.conversation.completed = True


async def run_level(
    system: System,
    script: Script,
    concurrency: int,
    duration: float,
    warmup: float = 0.0,
    sampler: Sampler | None = None,
) -> LevelResult:
    """``concurrency`` closed loops for ``warmup`` seconds (not measured), going on for
    ``duration`` measured seconds; then the user events of every conversation of the level
    are counted in the tracker store."""
    result = LevelResult(
        system=system.name, concurrency=concurrency, services=dict(system.services)
    )
    limits = httpx.Limits(max_connections=concurrency + 10, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        result.measure_from = time.monotonic() + warmup
        result.measure_from_wall = time.time() + warmup
        deadline = result.measure_from + duration
        tasks = [
            asyncio.create_task(_worker(client, system, script, result, deadline, start=i % 2))
            for i in range(concurrency)
        ]
        try:
            await asyncio.sleep(max(0.0, result.measure_from - time.monotonic()))
            if sampler is not None:
                sampler.start()
            cpu0, started = time.process_time(), time.perf_counter()
            try:
                # A stuck message cannot hold the run: what still runs then is cancelled.
                _, pending = await asyncio.wait(tasks, timeout=duration + REQUEST_TIMEOUT * 2)
            finally:
                result.duration = time.perf_counter() - started
                result.client_cpu = time.process_time() - cpu0
                if sampler is not None:
                    result.usage = sampler.stop()
        finally:
            for task in tasks:
                task.cancel()  # on an interruption too; asyncio.run collects them
        if pending:
            result.errors["cancelled at the level's time limit"] += len(pending)
        for task in tasks:
            error = task.exception() if task.done() and not task.cancelled() else None
            if error is not None:
                raise error  # a bug in a script, not a failed message
        await count_user_events(client, system, result)
    return result


async def count_user_events(
    client: httpx.AsyncClient, system: System, result: LevelResult, parallel: int = 8
) -> None:
    """User events in the tracker store of every conversation (Rasa's HTTP API), and the
    apologies for an action server that was down or late said in the measured window."""
    gate = asyncio.Semaphore(parallel)

    async def one(conversation: Conversation) -> None:
        async with gate:
            try:
                response = await client.get(
                    f"{system.rasa_url}/conversations/"
                    f"{system.conversation_id(conversation.sender)}/tracker",
                    params={"token": system.token},
                    timeout=REQUEST_TIMEOUT,
                )
                response.raise_for_status()
                events = response.json().get("events") or []
            except (httpx.HTTPError, ValueError):
                return
            conversation.user_events = sum(1 for e in events if e.get("event") == "user")
            conversation.apologies = sum(
                1
                for e in events
                if e.get("event") == "bot"
                and (e.get("metadata") or {}).get("utter_action") == ACTION_SERVER_DOWN
                and float(e.get("timestamp") or 0) >= result.measure_from_wall
            )

    await asyncio.gather(*(one(c) for c in result.conversations if c.answered))
