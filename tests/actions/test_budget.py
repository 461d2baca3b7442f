"""One message's back-end budget: several actions of one message share one deadline, and a
back end that failed for the message is not waited on again in it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from rasa_sdk import Action
from rasa_sdk.executor import ActionExecutor

from actions.clients import PortalClient, ServiceUnavailable
from actions.clients import budget as message_budget
from actions.clients.budget import MessageBudgets, message_key

HANG = 30.0


def call(sender: str = "c1", message_id: str = "m1", action: str = "action_x") -> dict[str, Any]:
    return {
        "next_action": action,
        "sender_id": sender,
        "tracker": {
            "sender_id": sender,
            "events": [
                {"event": "action", "name": "action_listen"},
                {"event": "user", "text": "hi", "message_id": message_id, "timestamp": 1.0},
                {"event": "action", "name": "action_listen"},
            ],
            "slots": {},
            "latest_message": {},
        },
        "domain": {},
    }


def hanging_portal(calls: list[str]) -> PortalClient:
    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        await asyncio.sleep(HANG)
        return httpx.Response(200, json={})

    return PortalClient(
        "http://portal.test",
        transport=httpx.MockTransport(handler),
        timeout=0.4,
        deadline=0.4,
        retries=0,
        backoff=0,
    )


async def in_message(budgets: MessageBudgets, action_call: dict[str, Any], work: Any) -> Any:
    token = budgets.enter(action_call)
    try:
        return await work()
    finally:
        budgets.leave(token)


async def test_a_back_end_that_failed_for_a_message_is_not_waited_on_again_in_it() -> None:
    calls: list[str] = []
    portal = hanging_portal(calls)
    budgets = MessageBudgets(5.0)
    started = time.monotonic()
    for _ in range(3):  # three custom actions of one message, each asking the portal
        with pytest.raises(ServiceUnavailable):
            await in_message(budgets, call(), lambda: portal.get_dossier("X", "vi"))
    waited = time.monotonic() - started
    assert len(calls) == 1, calls
    assert waited < 1.0, f"the message waited {waited:.2f} s: 0.4 s per action"


async def test_the_next_message_tries_the_back_end_again() -> None:
    calls: list[str] = []
    portal = hanging_portal(calls)
    budgets = MessageBudgets(5.0)
    for message_id in ("m1", "m2"):
        with pytest.raises(ServiceUnavailable):
            await in_message(
                budgets, call(message_id=message_id), lambda: portal.get_dossier("X", "vi")
            )
    assert len(calls) == 2


async def test_a_call_waits_only_what_is_left_of_the_message_budget() -> None:
    calls: list[str] = []
    portal = hanging_portal(calls)
    portal._deadline = portal._attempt_timeout = 5.0  # the call alone would wait 5 s
    budgets = MessageBudgets(0.3)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        await in_message(budgets, call(), lambda: portal.get_dossier("X", "vi"))
    assert time.monotonic() - started < 1.5
    # Its time is over: the next call of the same message is not even sent.
    portal2_calls: list[str] = []
    portal2 = hanging_portal(portal2_calls)
    with pytest.raises(ServiceUnavailable):
        await in_message(budgets, call(), lambda: portal2.get_dossier("Y", "vi"))
    assert portal2_calls == []


async def test_without_an_action_call_a_client_keeps_its_own_deadline() -> None:
    assert message_budget.current() is None
    calls: list[str] = []
    portal = hanging_portal(calls)
    for _ in range(2):
        with pytest.raises(ServiceUnavailable):
            await portal.get_dossier("X", "vi")
    assert len(calls) == 2


def test_a_message_is_its_conversation_and_its_last_user_event() -> None:
    assert message_key(call("a", "m1")) == ("a", "m1")
    assert message_key(call("b", "m1")) != message_key(call("a", "m1"))
    no_id = call("a")
    no_id["tracker"]["events"][1].pop("message_id")
    assert message_key(no_id) == ("a", "1.0")


async def test_the_action_server_runs_every_action_call_inside_its_message_budget() -> None:
    seen: list[message_budget.MessageBudget | None] = []

    class Probe(Action):
        def name(self) -> str:
            return "action_probe"

        async def run(self, dispatcher: Any, tracker: Any, domain: Any) -> list[Any]:
            seen.append(message_budget.current())
            return []

    budgets = message_budget.install(2.2)
    executor = ActionExecutor()
    executor.register_action(Probe())
    await executor.run(call(action="action_probe"))
    await executor.run(call(action="action_probe"))
    await executor.run(call(message_id="m2", action="action_probe"))
    assert seen[0] is not None and seen[0] is seen[1]
    assert seen[2] is not None and seen[2] is not seen[0]
    assert budgets.seconds == 2.2
    assert message_budget.current() is None
