"""One citizen message's time for the back ends, shared by every custom action Rasa runs for it.

Rasa may run several custom actions for one message (a slot mapping, a form's validation, the
answer), and each may call the identity or portal API. With a deadline per call only, a slow
back end made the citizen wait one deadline per call; the Rasa side then had to cut the whole
message short after 2.5 s, which under heavy load also cut short healthy actions that were
merely queued (docs/FAULTS.md). Here the action server gives each message one budget
(``API_DEADLINE_SECONDS``, 2.2 s, from the first action call of that message): every call of
that message waits at most what is left of it, and a back end that already failed for this
message is not tried again in it (the answer is "unavailable" at once, not after another wait).

A message is told apart by its conversation and its last user event (message id, or its
timestamp when the channel gave none), both in the tracker Rasa sends with every call.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

# Messages remembered at once; a message's budget is over within seconds, so this only bounds
# memory when many conversations are busy together.
KEEP = 2048


@dataclass
class MessageBudget:
    ends_at: float
    clock: Callable[[], float] = time.monotonic
    failed: set[str] = field(default_factory=set)

    def left(self) -> float:
        return self.ends_at - self.clock()


_current: ContextVar[MessageBudget | None] = ContextVar("message_budget", default=None)


def current() -> MessageBudget | None:
    """The budget of the message whose action is running, None outside an action call."""
    return _current.get()


def message_key(action_call: Mapping[str, Any]) -> tuple[str, str]:
    """(conversation, message) for an action call: its sender and its last user event."""
    tracker = action_call.get("tracker") or {}
    sender = str(action_call.get("sender_id") or tracker.get("sender_id") or "")
    for event in reversed(tracker.get("events") or []):
        if isinstance(event, dict) and event.get("event") == "user":
            return sender, str(event.get("message_id") or event.get("timestamp") or "")
    return sender, ""


class MessageBudgets:
    """The budgets of recent messages, keyed by :func:`message_key`."""

    def __init__(
        self, seconds: float, *, clock: Callable[[], float] = time.monotonic, keep: int = KEEP
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self._keep = keep
        self._budgets: OrderedDict[tuple[str, str], MessageBudget] = OrderedDict()

    def for_call(self, action_call: Mapping[str, Any]) -> MessageBudget:
        key = message_key(action_call)
        budget = self._budgets.get(key)
        if budget is None:
            budget = MessageBudget(self._clock() + self.seconds, self._clock)
            self._budgets[key] = budget
            while len(self._budgets) > self._keep:
                self._budgets.popitem(last=False)
        return budget

    def enter(self, action_call: Mapping[str, Any]) -> Any:
        """Make the call's message budget current (for this task); returns the reset token."""
        return _current.set(self.for_call(action_call))

    @staticmethod
    def leave(token: Any) -> None:
        _current.reset(token)


def install(seconds: float) -> MessageBudgets:
    """Every action call the rasa-sdk executor runs gets its message's budget."""
    from rasa_sdk.executor import ActionExecutor

    run = ActionExecutor.run
    if getattr(run, "_budgeted", None) is not None:
        budgets: MessageBudgets = run._budgeted  # type: ignore[attr-defined]
        budgets.seconds = seconds
        return budgets
    budgets = MessageBudgets(seconds)

    async def budgeted(self: ActionExecutor, action_call: Any) -> Any:
        token = budgets.enter(action_call)
        try:
            return await run(self, action_call)
        finally:
            budgets.leave(token)

    budgeted._budgeted = budgets  # type: ignore[attr-defined]
    ActionExecutor.run = budgeted  # type: ignore[method-assign]
    return budgets
