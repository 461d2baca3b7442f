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
from console.db import transaction
from console.rasa_format import (
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
        self.snapshot = Snapshot(counter, responses)  # one assignment: readers see old or new

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
        variations = self.variations(name)
        if variations is None:
            return None
        message = render(variations, name, slots, channel, arguments)
        return nlg_reply(message) if message is not None else None

    def export(self) -> dict[str, Any]:
        """Everything published, in Rasa's response format (the bot's fallback copy)."""
        snapshot = self.snapshot
        return {"version": snapshot.counter, "responses": snapshot.responses}
