"""A circuit breaker per back end: stop calling a back end that keeps failing, retry it later.

Closed: calls go through; ``failures`` failed calls in a row open it. Open: calls fail at once
(the caller raises ServiceUnavailable) for ``cooldown`` seconds. Half-open: one trial call goes
through; its success closes the breaker, its failure opens it for another cool-down. State
changes are logged with the back end's name only (no path, no personal data).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import Enum

logger = logging.getLogger(__name__)


class State(str, Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failures: int = 3,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or cooldown <= 0:
            raise ValueError("a breaker needs failures >= 1 and cooldown > 0")
        self.name = name
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._state = State.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial_started_at: float | None = None

    @property
    def state(self) -> State:
        if self._state is State.OPEN and self._clock() >= self._opened_at + self.cooldown:
            return State.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one (the trial) at a time."""
        if self._state is State.CLOSED:
            return True
        now = self._clock()
        if self._state is State.OPEN:
            if now < self._opened_at + self.cooldown:
                return False
            self._state = State.HALF_OPEN
            logger.warning("circuit %s half-open: one trial call", self.name)
        # Half-open: a trial that never reported back (its task was cancelled) does not block
        # the back end forever; after a cool-down another trial may go.
        if self._trial_started_at is not None and now < self._trial_started_at + self.cooldown:
            return False
        self._trial_started_at = now
        return True

    def success(self) -> None:
        if self._state is not State.CLOSED:
            logger.warning("circuit %s closed: the trial call succeeded", self.name)
        self._state = State.CLOSED
        self._consecutive = 0
        self._trial_started_at = None

    def failure(self) -> None:
        self._consecutive += 1
        if self._state is State.HALF_OPEN:
            self._open("the trial call failed")
        elif self._state is State.CLOSED and self._consecutive >= self.failures:
            self._open(f"{self._consecutive} failed calls in a row")

    def release(self) -> None:
        """A call ended without an answer either way (cancelled): free the trial slot."""
        self._trial_started_at = None

    def _open(self, why: str) -> None:
        self._state = State.OPEN
        self._opened_at = self._clock()
        self._trial_started_at = None
        logger.warning(
            "circuit %s open (%s): calls fail at once for %.0f s", self.name, why, self.cooldown
        )
