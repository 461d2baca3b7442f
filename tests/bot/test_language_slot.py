"""Rasa fills the `language` slot from the NLU's language itself, with no action server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from rasa.core.actions.action import ActionExtractSlots
from rasa.core.channels import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.language_slot import install_in_process_language_slot
from bot.settings import ROOT


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "bot" / "domain"))


@pytest.fixture(autouse=True)
def in_process() -> Iterator[None]:
    original = ActionExtractSlots._run_custom_action
    install_in_process_language_slot()
    yield
    ActionExtractSlots._run_custom_action = original  # type: ignore[method-assign]


def nobody_listens() -> EndpointConfig:
    """The action server's address, with nothing there: a round trip would fail."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return EndpointConfig(f"http://127.0.0.1:{port}/webhook")


async def slots_after(domain: Domain, slot: str, **parse: Any) -> dict[str, Any]:
    tracker = DialogueStateTracker.from_events(
        "citizen", [ActionExecuted("action_listen")], slots=domain.slots
    )
    tracker.update(SlotSet("language", slot))
    intent = {"name": parse.pop("intent", "greet"), "confidence": 0.9}
    tracker.update(UserUttered("text", intent, [], {"intent": intent, **parse}))
    events = await ActionExtractSlots(nobody_listens()).run(
        CollectingOutputChannel(), TemplatedNaturalLanguageGenerator({}), tracker, domain
    )
    return {e.key: e.value for e in events if isinstance(e, SlotSet)}


async def test_an_english_message_switches_the_replies_to_english(domain: Domain) -> None:
    assert await slots_after(domain, "vi", language="en") == {"language": "en"}


async def test_a_message_that_does_not_say_keeps_the_language(domain: Domain) -> None:
    assert await slots_after(domain, "en", language=None) == {}
    assert await slots_after(domain, "en", language="en") == {}
    assert await slots_after(domain, "en", language="fr") == {}


async def test_asking_to_switch_is_left_to_action_switch_language(domain: Domain) -> None:
    assert await slots_after(domain, "vi", intent="switch_language", language="vi") == {}
