"""The action server down, hung or failing: Rasa answers with the apology, not silence, in time;
a form in progress keeps what it had; a validation's rejection still goes through."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.core.actions.forms import FormAction
from rasa.core.channels import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.core.processor import MessageProcessor
from rasa.shared.core.constants import REQUESTED_SLOT
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    Event,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig

from bot import rasa_server
from bot.settings import ROOT

TIMEOUT = 0.5


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "bot" / "domain"))


@pytest.fixture(autouse=True)
def apology() -> Iterator[None]:
    """The patch for each test, and Rasa as it was afterwards."""
    run, handle = RemoteAction.run, MessageProcessor.handle_message
    rasa_server.install_action_server_apology(TIMEOUT)
    yield
    RemoteAction.run = run  # type: ignore[method-assign]
    MessageProcessor.handle_message = handle  # type: ignore[method-assign]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeActionServer:
    """An action server on a free port that answers what the test says, and counts calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.answer: Any = lambda: web.json_response({"events": [], "responses": []})
        self.delay = 0.0
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.calls.append((await request.json())["next_action"])
        await asyncio.sleep(self.delay)
        return self.answer()  # type: ignore[no-any-return]


@pytest.fixture
async def server() -> AsyncIterator[FakeActionServer]:
    fake = FakeActionServer()
    app = web.Application()
    app.router.add_post("/webhook", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = closed_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.url = f"http://127.0.0.1:{port}/webhook"
    yield fake
    await runner.cleanup()


def tracker_of(domain: Domain, *events: Event, language: str = "vi") -> DialogueStateTracker:
    tracker = DialogueStateTracker.from_events(
        "rest:test",
        [ActionExecuted("action_listen"), SlotSet("language", language), *events],
        slots=domain.slots,
    )
    return tracker


def apology_text(domain: Domain, language: str) -> str:
    for variation in domain.responses[rasa_server.ACTION_SERVER_DOWN]:
        english = any(c.get("value") == "en" for c in variation.get("condition") or [])
        if english == (language == "en"):
            return str(variation["text"])
    raise AssertionError("no such variation")


async def run_action(
    name: str, url: str, domain: Domain, tracker: DialogueStateTracker
) -> list[Event]:
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    action = RemoteAction(name, EndpointConfig(url))
    return await action.run(CollectingOutputChannel(), nlg, tracker, domain)


def said(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, BotUttered)]


@pytest.mark.parametrize("language", ["vi", "en"])
async def test_an_action_server_that_is_down_gets_the_apology(
    domain: Domain, language: str
) -> None:
    tracker = tracker_of(domain, UserUttered("hồ sơ của tôi"), language=language)
    url = f"http://127.0.0.1:{closed_port()}/webhook"
    events = await run_action("action_dossier_status", url, domain, tracker)
    assert said(events) == [apology_text(domain, language)]
    assert events[0].metadata["utter_action"] == "utter_action_server_down"


async def test_a_hung_action_server_gets_the_apology_within_the_timeout(
    domain: Domain, server: FakeActionServer
) -> None:
    server.delay = 30
    started = time.monotonic()
    events = await run_action("action_dossier_status", server.url, domain, tracker_of(domain))
    assert time.monotonic() - started < TIMEOUT + 0.3
    assert said(events) == [apology_text(domain, "vi")]


@pytest.mark.parametrize("status", [500, 502, 503, 404])
async def test_an_action_server_error_gets_the_apology(
    domain: Domain, server: FakeActionServer, status: int
) -> None:
    server.answer = lambda: web.json_response({"error": "boom"}, status=status)
    events = await run_action("action_dossier_status", server.url, domain, tracker_of(domain))
    assert said(events) == [apology_text(domain, "vi")]


async def test_a_working_action_server_is_untouched(
    domain: Domain, server: FakeActionServer
) -> None:
    server.answer = lambda: web.json_response(
        {"events": [{"event": "slot", "name": "dossier_code", "value": None}], "responses": []}
    )
    events = await run_action("action_dossier_status", server.url, domain, tracker_of(domain))
    assert events == [SlotSet("dossier_code", None)]


async def test_a_validation_that_rejects_still_rejects(
    domain: Domain, server: FakeActionServer
) -> None:
    server.answer = lambda: web.json_response(
        {"action_name": "validate_identity_form", "error": "no"}, status=400
    )
    with pytest.raises(ActionExecutionRejection):
        await run_action("validate_identity_form", server.url, domain, tracker_of(domain))


async def test_a_slot_mapping_action_fails_quietly_for_rasa_to_go_on(domain: Domain) -> None:
    """Rasa's slot extraction catches RasaException and goes on: no apology for a greeting."""
    url = f"http://127.0.0.1:{closed_port()}/webhook"
    with pytest.raises(RasaException):
        await run_action("action_detect_language", url, domain, tracker_of(domain))


async def test_one_message_waits_for_a_hung_action_server_once(
    domain: Domain, server: FakeActionServer
) -> None:
    server.delay = 30
    token = rasa_server._turn.set(rasa_server._Turn(ends_at=time.monotonic() + TIMEOUT))
    try:
        started = time.monotonic()
        with pytest.raises(RasaException):
            await run_action("action_detect_language", server.url, domain, tracker_of(domain))
        tracker = tracker_of(domain)
        events = await run_action("action_dossier_status", server.url, domain, tracker)
        assert time.monotonic() - started < TIMEOUT + 0.3
        assert said(events) == [apology_text(domain, "vi")]
        assert server.calls == ["action_detect_language"]  # the second did not wait again
    finally:
        rasa_server._turn.reset(token)


async def test_the_apology_is_said_once_per_message(domain: Domain) -> None:
    url = f"http://127.0.0.1:{closed_port()}/webhook"
    tracker = tracker_of(domain, UserUttered("hồ sơ"))
    first = await run_action("action_dossier_status", url, domain, tracker)
    tracker.update_with_events(first, domain)
    assert said(await run_action("action_ask_variant", url, domain, tracker)) == []
    tracker.update_with_events([ActionExecuted("action_listen"), UserUttered("lại")], domain)
    assert said(await run_action("action_dossier_status", url, domain, tracker))


async def test_the_message_time_is_shared_by_all_its_actions(
    domain: Domain, server: FakeActionServer
) -> None:
    """Three slow (not dead) actions in one message still answer within the message's time."""
    server.delay = TIMEOUT * 0.6
    token = rasa_server._turn.set(rasa_server._Turn(ends_at=time.monotonic() + TIMEOUT))
    try:
        started = time.monotonic()
        tracker = tracker_of(domain, UserUttered("hộ chiếu"))
        for name in ("action_ask_variant", "action_procedure_info", "action_anything_else"):
            tracker.update_with_events(await run_action(name, server.url, domain, tracker), domain)
        assert time.monotonic() - started < TIMEOUT + 0.3
        assert server.calls == ["action_ask_variant", "action_procedure_info"]
        assert said(list(tracker.events)) == [apology_text(domain, "vi")]
    finally:
        rasa_server._turn.reset(token)


async def test_a_form_whose_validation_fails_keeps_its_place_and_asks_again(
    domain: Domain,
) -> None:
    """The identity form asked for the ID number; the citizen typed it; the action server is
    down. The form must neither take the unchecked number nor stop: it asks again."""
    tracker = tracker_of(
        domain,
        UserUttered("có"),
        ActiveLoop("identity_form"),
        SlotSet(REQUESTED_SLOT, "id_number"),
        BotUttered("Bạn nhập số định danh cá nhân ..."),
        ActionExecuted("action_listen"),
        UserUttered("001090001234"),
        SlotSet("id_number", "001090001234"),  # what Rasa's slot extraction did
    )
    url = f"http://127.0.0.1:{closed_port()}/webhook"
    form = FormAction("identity_form", EndpointConfig(url))
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    events = await form.run(CollectingOutputChannel(), nlg, tracker, domain)

    assert SlotSet("id_number", None) in events  # the unchecked number is not kept
    assert ActiveLoop(None) not in events  # the form goes on
    asked = said(events)
    assert asked[0] == apology_text(domain, "vi")
    assert asked[1] == domain.responses["utter_ask_id_number"][0]["text"]
    assert len(asked) == 2


async def test_a_failed_validation_keeps_slots_filled_before_this_message(
    domain: Domain,
) -> None:
    tracker = tracker_of(
        domain,
        UserUttered("hồ sơ 000.00.10.H26-261110-0001"),
        SlotSet("dossier_code", "000.00.10.H26-261110-0001"),
        ActionExecuted("action_listen"),
        UserUttered("000.00.20.H29-261115-0003"),
        SlotSet("dossier_code", "000.00.20.H29-261115-0003"),
        ActionExecuted("dossier_form"),
        SlotSet("dossier_code", "000.00.20.H29-261115-0003"),  # the candidate under validation
    )
    restored = rasa_server._restore_form_slots("validate_dossier_form", tracker, domain)
    assert restored == [SlotSet("dossier_code", "000.00.10.H26-261110-0001")]
    assert rasa_server._restore_form_slots("action_dossier_status", tracker, domain) == []


def test_the_actions_deadline_fits_in_rasas_wait() -> None:
    """An action whose back end is slow answers "service unavailable" before Rasa gives up."""
    from actions.clients import ClientSettings

    margin = rasa_server.DEFAULT_ACTION_TIMEOUT_SECONDS - ClientSettings().deadline
    assert margin >= 0.2


def test_the_timeout_comes_from_the_environment() -> None:
    assert rasa_server.action_timeout({}) == rasa_server.DEFAULT_ACTION_TIMEOUT_SECONDS <= 10
    assert rasa_server.action_timeout({"ACTION_TIMEOUT_SECONDS": "1.5"}) == 1.5
    for bad in ("0", "soon"):
        with pytest.raises(SystemExit, match="ACTION_TIMEOUT_SECONDS"):
            rasa_server.action_timeout({"ACTION_TIMEOUT_SECONDS": bad})


def test_a_paused_conversation_keeps_its_session_until_resumed() -> None:
    """Handed to an agent (actions/handoff.py), a citizen silent for longer than the session
    expiry must not get a new session: its reset would end the pause and the bot would answer."""
    from types import SimpleNamespace

    from rasa.shared.core.events import ConversationPaused, ConversationResumed

    rasa_server.install_paused_sessions_never_expire()
    rasa_server.install_paused_sessions_never_expire()  # twice: still one wrapper
    processor: Any = SimpleNamespace(
        domain=Domain.from_dict({"session_config": {"session_expiration_time": 60}})
    )
    tracker = DialogueStateTracker("rest:handoff", slots=[])
    tracker.update(UserUttered("cho tôi gặp nhân viên", timestamp=time.time() - 2 * 3600))
    assert MessageProcessor._has_session_expired(processor, tracker)
    tracker.update(ConversationPaused())
    assert not MessageProcessor._has_session_expired(processor, tracker)
    tracker.update(ConversationResumed())
    assert MessageProcessor._has_session_expired(processor, tracker)
