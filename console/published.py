"""What citizens get: the live version of every reply, held in memory and rendered from there.

Every process polls the publish counter (raised in the same transaction as each publish and
rollback) every `refresh_seconds` and reloads when it moved, so a change published by any
process is served by all of them within about a second. A publish in this process reloads at
once. Replies the store does not hold are rendered from the domain.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from console import content as store
from console.checks import brace_problem
from console.db import transaction
from console.rasa_format import (
    MESSAGE_KEYS,
    DomainResponse,
    Variations,
    nlg_reply,
    render,
    variations_from_content,
)

logger = logging.getLogger("console.published")


@dataclass
class Snapshot:
    counter: int
    responses: dict[str, Variations]
    # Replies with a text Rasa cannot fill in (console.checks.brace_problem): stored before the
    # checks refused such texts, or written around them. Served from their fallback.
    unfillable: frozenset[str] = frozenset()


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def fillable(variations: Variations) -> bool:
    """True when Rasa's interpolator can fill in every string it would fill in."""
    return not any(
        brace_problem(text)
        for variation in variations
        for key in MESSAGE_KEYS
        for text in _strings(variation.get(key))
    )


def _doubled(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("{", "{{").replace("}", "}}")
    if isinstance(value, dict):
        return {k: _doubled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_doubled(item) for item in value]
    return value


def literal(variations: Variations) -> Variations:
    """Every brace doubled: Rasa's interpolator then shows the texts as they are."""
    return [
        {k: _doubled(v) if k in MESSAGE_KEYS else v for k, v in variation.items()}
        for variation in variations
    ]


@dataclass
class PublishedContent:
    engine: Engine
    domain: dict[str, DomainResponse]
    snapshot: Snapshot = field(default_factory=lambda: Snapshot(-1, {}))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def counter(self) -> int:
        return self.snapshot.counter

    def load(self) -> None:
        with transaction(self.engine) as session:
            counter, contents = store.live_contents(session)
        responses = {name: variations_from_content(c) for name, c in contents.items()}
        unfillable = frozenset(name for name, v in responses.items() if not fillable(v))
        for name in sorted(unfillable):  # the name only: never a text or a slot
            logger.error("%s has a text Rasa cannot fill in: served from its fallback", name)
        # One assignment: readers see the old snapshot or the new one.
        self.snapshot = Snapshot(counter, responses, unfillable)

    def refresh(self) -> bool:
        """Reload if anything was published since the last load; True if it reloaded."""
        with self._lock:
            with transaction(self.engine) as session:
                counter = store.published_counter(session)
            if counter == self.snapshot.counter:
                return False
            self.load()
            logger.info(
                "published content %d loaded (%d replies)", counter, len(self.snapshot.responses)
            )
            return True

    async def poll(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # a database hiccup must not stop the polling
                logger.exception("could not refresh the published content")

    def warm_up(self) -> None:
        """Render one reply now: the first request must not pay for importing Rasa's renderer
        (about a second), longer than Rasa waits for this service."""
        for name in list(self.snapshot.responses)[:1]:
            self.render(name, {"language": "vi"}, "rest", {})

    def variations(self, name: str) -> Variations | None:
        found = self.snapshot.responses.get(name)
        if found is None and name in self.domain:
            return self.domain[name].variations
        return found

    def render(
        self, name: str, slots: dict[str, Any], channel: str, arguments: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The reply for these slots and channel. A stored text Rasa cannot fill in (an unclosed
        `{`) never fails the request: the domain's wording is served instead, else the stored
        text as it is, without its values filled in."""
        variations = self.variations(name)
        if variations is None:
            return None
        if name not in self.snapshot.unfillable:
            try:
                return self._render(variations, name, slots, channel, arguments)
            except (ValueError, IndexError, TypeError, AttributeError) as exc:
                logger.error("could not fill in %s (%s)", name, exc.__class__.__name__)
        seed = self.domain.get(name)
        if seed is not None and seed.variations is not variations and fillable(seed.variations):
            return self._render(seed.variations, name, slots, channel, arguments)
        return self._render(literal(variations), name, slots, channel, arguments)

    @staticmethod
    def _render(
        variations: Variations,
        name: str,
        slots: dict[str, Any],
        channel: str,
        arguments: dict[str, Any],
    ) -> dict[str, Any] | None:
        message = render(variations, name, slots, channel, arguments)
        return nlg_reply(message) if message is not None else None

    def export(self) -> dict[str, Any]:
        """Everything published, in Rasa's response format (the bot's fallback copy)."""
        snapshot = self.snapshot
        return {"version": snapshot.counter, "responses": snapshot.responses}
