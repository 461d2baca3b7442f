from __future__ import annotations

import logging

import httpx
import pytest

from actions.clients import CircuitBreaker, PortalClient, ServiceUnavailable
from actions.clients.breaker import State
from tests.actions.helpers import json_response


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_n_failures_in_a_row_and_refuses_calls() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("portal", failures=3, cooldown=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state is State.CLOSED
    breaker.allow()
    breaker.failure()
    assert breaker.state is State.OPEN
    assert not breaker.allow()
    clock.now += 9.9
    assert not breaker.allow()


def test_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker("portal", failures=2, cooldown=10, clock=FakeClock())
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert breaker.state is State.CLOSED


def test_after_the_cooldown_one_trial_goes_through_and_its_success_closes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("portal", failures=1, cooldown=10, clock=clock)
    breaker.failure()
    clock.now += 10
    assert breaker.state is State.HALF_OPEN
    assert breaker.allow()  # the trial
    assert not breaker.allow()  # nobody else while it is under way
    breaker.success()
    assert breaker.state is State.CLOSED
    assert breaker.allow() and breaker.allow()


def test_a_failed_trial_opens_it_for_another_cooldown() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("portal", failures=1, cooldown=10, clock=clock)
    breaker.failure()
    clock.now += 10
    assert breaker.allow()
    breaker.failure()
    assert breaker.state is State.OPEN
    clock.now += 9
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_a_trial_that_never_reports_does_not_block_forever() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("portal", failures=1, cooldown=10, clock=clock)
    breaker.failure()
    clock.now += 10
    assert breaker.allow()  # the trial's task is cancelled: no success, no failure
    clock.now += 10
    assert breaker.allow()


def test_state_changes_are_logged_by_name_only(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("identity", failures=1, cooldown=5, clock=clock)
    with caplog.at_level(logging.WARNING, logger="actions.clients.breaker"):
        breaker.failure()
        clock.now += 5
        breaker.allow()
        breaker.success()
    assert [r.getMessage() for r in caplog.records] == [
        "circuit identity open (1 failed calls in a row): calls fail at once for 5 s",
        "circuit identity half-open: one trial call",
        "circuit identity closed: the trial call succeeded",
    ]


async def test_the_client_stops_calling_a_dead_back_end_and_recovers_by_itself() -> None:
    clock = FakeClock()
    calls = []
    healthy = False

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if healthy:
            return json_response(200, {"items": []})
        return json_response(500, {"error": "boom"})

    portal = PortalClient(
        "http://portal.test",
        transport=httpx.MockTransport(handler),
        breaker=CircuitBreaker("portal", failures=3, cooldown=30, clock=clock),
        backoff=0,
    )
    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            await portal.search_procedures("x", "vi")
    assert len(calls) == 3
    for _ in range(5):  # open: fails at once, nothing is sent
        with pytest.raises(ServiceUnavailable, match="circuit portal open"):
            await portal.search_procedures("x", "vi")
    assert len(calls) == 3

    clock.now += 30  # the cool-down: one trial, which fails: open again
    with pytest.raises(ServiceUnavailable):
        await portal.search_procedures("x", "vi")
    assert len(calls) == 4
    with pytest.raises(ServiceUnavailable, match="circuit portal open"):
        await portal.search_procedures("x", "vi")

    healthy = True
    clock.now += 30
    assert await portal.search_procedures("x", "vi") == []  # the trial succeeds: closed
    assert await portal.search_procedures("y", "vi") == []  # (another question: not cached)
    assert len(calls) == 6


async def test_refusals_and_garbage_count_as_what_they_are() -> None:
    """A 4xx is an answer (the back end works); malformed JSON is a failure."""
    clock = FakeClock()
    answers = iter(
        [httpx.Response(200, content=b'{"items": [')] * 2
        + [json_response(404, {"error": "procedure_not_found"})]
        + [httpx.Response(200, content=b"<html>")] * 2
    )
    breaker = CircuitBreaker("portal", failures=3, cooldown=30, clock=clock)
    portal = PortalClient(
        "http://portal.test",
        transport=httpx.MockTransport(lambda r: next(answers)),
        breaker=breaker,
    )
    for _ in range(2):
        with pytest.raises(ServiceUnavailable):
            await portal.search_procedures("x", "vi")
    with pytest.raises(Exception, match="procedure_not_found"):
        await portal.get_procedure("nope", "vi")
    for _ in range(2):
        with pytest.raises(ServiceUnavailable):
            await portal.search_procedures("x", "vi")
    assert breaker.state is State.CLOSED  # 2 + (reset) + 2: never 3 in a row
