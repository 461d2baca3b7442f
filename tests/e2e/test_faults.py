"""Back ends slow, failing, answering garbage or down, and the action server down: what the
citizen sees and how long they wait (docs/FAULTS.md), through the real stack.

Faults come from the sandbox's switch (POST /sandbox/faults) or from stopping a service. These
tests run on a stack of their own (a short breaker cool-down, services stopped and started) so
that the shared ``stack`` of the other tests is never disturbed.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from bot.launcher import Supervisor
from bot.rasa_server import DEFAULT_ACTION_TIMEOUT_SECONDS
from bot.settings import ROOT
from tests.e2e.conftest import Stack, start_stack

pytestmark = pytest.mark.e2e

LIMIT_SECONDS = 3.0  # what the citizen may wait for a clear answer
# A hung action server (it takes connections, never answers): Rasa waits this long, then apologises.
ACTIONS_LIMIT_SECONDS = DEFAULT_ACTION_TIMEOUT_SECONDS + 1.5
COOLDOWN_SECONDS = 4  # the breaker's, for this stack
BREAKER_FAILURES = 3

AN_ID, AN_PHONE = "001090001234", "0912345678"
AN_DOSSIER = "000.00.10.H26-261110-0001"
BINH_DOSSIER = "000.00.20.H29-261115-0003"

# Measured waits, printed at the end of the module (pytest -s) for docs/FAULTS.md.
WAITED: dict[str, float] = {}


def response_text(name: str, language: str = "vi") -> str:
    """A reply as the communications team wrote it in bot/domain (the vi default or en)."""
    for path in (ROOT / "bot" / "domain").glob("*.yml"):
        variations = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("responses", {})
        for variation in variations.get(name, []):
            english = any(c.get("value") == "en" for c in variation.get("condition") or [])
            if english == (language == "en"):
                return str(variation["text"])
    raise KeyError(name)


UNAVAILABLE = response_text("utter_service_unavailable")
UNAVAILABLE_EN = response_text("utter_service_unavailable", "en")
ACTION_SERVER_DOWN = response_text("utter_action_server_down")


def texts(replies: list[dict[str, Any]]) -> list[str]:
    return [r.get("text", "") for r in replies]


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Supervisor, Stack]]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BREAKER_FAILURES", str(BREAKER_FAILURES))
        env.setenv("BREAKER_COOLDOWN_SECONDS", str(COOLDOWN_SECONDS))
        supervisor, stack = start_stack(tmp_path_factory.mktemp("faults"))
    yield supervisor, stack
    supervisor.stop()
    if WAITED:
        print("\nwaits measured:", ", ".join(f"{k} {v:.2f} s" for k, v in WAITED.items()))


@pytest.fixture
def stack(faulty: tuple[Supervisor, Stack]) -> Stack:
    return faulty[1]


@pytest.fixture
def supervisor(faulty: tuple[Supervisor, Stack]) -> Supervisor:
    return faulty[0]


@pytest.fixture
def sender() -> str:
    return f"faults-{uuid.uuid4().hex[:10]}"


def set_fault(url: str, mode: str, delay_seconds: float = 10) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/sandbox/faults", json={"mode": mode, "delay_seconds": delay_seconds}, timeout=5
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def requests_received(url: str) -> int:
    return int(httpx.get(f"{url}/sandbox/faults", timeout=5).json()["requests"])


@pytest.fixture(autouse=True)
def faults_off(stack: Stack) -> Iterator[None]:
    """Every test leaves both APIs healthy, whatever happens in it."""
    yield
    for url in (stack.identity_url, stack.portal_url):
        try:
            set_fault(url, "off")
        except httpx.HTTPError:
            pass  # the sandbox is stopped: it comes back without faults


def timed(stack: Stack, sender: str, text: str, label: str = "") -> tuple[list[str], float]:
    started = time.monotonic()
    replies = texts(stack.say(sender, text))
    waited = time.monotonic() - started
    if label:
        WAITED[label] = waited
    return replies, waited


def to_the_id_number_question(stack: Stack, sender: str) -> None:
    offered = texts(stack.say(sender, f"hồ sơ {AN_DOSSIER} của tôi đến đâu rồi"))
    assert any(AN_DOSSIER in t for t in offered)
    asked = texts(stack.say(sender, "/affirm"))
    assert response_text("utter_ask_id_number") in asked


def the_code_is_sent(replies: list[str]) -> bool:
    return any("*******" + AN_PHONE[-3:] in t for t in replies)


# --- identity API ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["slow", "error"])
def test_identity_api_slow_or_500_the_citizen_is_told_within_3s_and_can_verify_later(
    stack: Stack, sender: str, mode: str
) -> None:
    to_the_id_number_question(stack, sender)
    set_fault(stack.identity_url, mode, delay_seconds=10)
    replies, waited = timed(stack, sender, AN_ID, f"identity {mode}")
    assert UNAVAILABLE in replies
    assert waited < LIMIT_SECONDS

    set_fault(stack.identity_url, "off")
    to_the_id_number_question(stack, sender)  # the conversation goes on
    assert the_code_is_sent(texts(stack.say(sender, AN_ID)))


# --- portal API ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["malformed", "slow", "error"])
def test_portal_api_malformed_slow_or_500_the_citizen_is_told_within_3s(
    stack: Stack, sender: str, mode: str
) -> None:
    set_fault(stack.portal_url, mode, delay_seconds=10)
    replies, waited = timed(stack, sender, f"hồ sơ {BINH_DOSSIER} đến đâu rồi", f"portal {mode}")
    assert UNAVAILABLE in replies
    assert waited < LIMIT_SECONDS

    set_fault(stack.portal_url, "off")
    replies, _ = timed(stack, sender, f"còn hồ sơ {BINH_DOSSIER} thì sao")
    assert any(BINH_DOSSIER in t for t in replies) and UNAVAILABLE not in replies


def test_portal_slow_a_procedure_question_needing_several_calls_is_answered_within_3s(
    stack: Stack, sender: str
) -> None:
    """The procedure form asks the catalogue up to three times in one message."""
    set_fault(stack.portal_url, "slow", delay_seconds=10)
    replies, waited = timed(stack, sender, "làm hộ chiếu cần giấy tờ gì", "portal slow, procedure")
    assert waited < LIMIT_SECONDS
    # The message's calls share one budget (actions/clients/budget.py): the action itself says
    # the portal is not answering, before Rasa's wait for the action server runs out.
    assert UNAVAILABLE in replies and ACTION_SERVER_DOWN not in replies

    set_fault(stack.portal_url, "off")
    replies, _ = timed(stack, sender, "làm hộ chiếu cần giấy tờ gì")
    assert UNAVAILABLE not in replies and ACTION_SERVER_DOWN not in replies
    assert replies


def test_english_conversations_are_told_in_english(stack: Stack, sender: str) -> None:
    set_fault(stack.portal_url, "error")
    replies, waited = timed(stack, sender, f"Where is my dossier {BINH_DOSSIER}?")
    assert UNAVAILABLE_EN in replies and waited < LIMIT_SECONDS
    set_fault(stack.portal_url, "off")
    replies, _ = timed(stack, sender, f"Where is my dossier {BINH_DOSSIER}?")
    assert any(BINH_DOSSIER in t for t in replies) and UNAVAILABLE_EN not in replies


# --- the circuit breaker ---------------------------------------------------------------------


def test_the_breaker_stops_calling_a_failing_portal_and_recovers_by_itself(
    stack: Stack, sender: str
) -> None:
    replies, _ = timed(stack, sender, f"hồ sơ {BINH_DOSSIER} đến đâu rồi")
    assert UNAVAILABLE not in replies  # healthy, so the breaker starts closed and counting at 0
    set_fault(stack.portal_url, "error")
    for _ in range(BREAKER_FAILURES):
        replies, _ = timed(stack, sender, f"hồ sơ {BINH_DOSSIER} đến đâu rồi")
        assert UNAVAILABLE in replies
    assert requests_received(stack.portal_url) == BREAKER_FAILURES

    for _ in range(3):  # open: the citizen is told at once, the portal is not called
        replies, waited = timed(stack, sender, f"hồ sơ {BINH_DOSSIER} đến đâu rồi", "breaker open")
        assert UNAVAILABLE in replies and waited < 1.0
    assert requests_received(stack.portal_url) == BREAKER_FAILURES
    assert "circuit portal open" in stack.logs()

    set_fault(stack.portal_url, "off")  # the portal is back; the breaker waits its cool-down
    time.sleep(COOLDOWN_SECONDS + 0.5)
    replies, _ = timed(stack, sender, f"hồ sơ {BINH_DOSSIER} đến đâu rồi")
    assert any(BINH_DOSSIER in t for t in replies) and UNAVAILABLE not in replies
    assert requests_received(stack.portal_url) == 1  # the trial call, which closed it
    assert "circuit portal closed" in stack.logs()


# --- services down (last: they stop and start processes) ------------------------------------


def test_sandbox_down_the_citizen_is_told_within_3s_and_it_goes_on_when_back(
    stack: Stack, supervisor: Supervisor, sender: str
) -> None:
    other = f"{sender}-id"
    to_the_id_number_question(stack, other)
    supervisor.stop_service("sandbox")
    try:
        replies, waited = timed(stack, sender, f"hồ sơ {BINH_DOSSIER} đến đâu rồi", "portal down")
        assert UNAVAILABLE in replies and waited < LIMIT_SECONDS
        replies, waited = timed(stack, other, AN_ID, "identity down")
        assert UNAVAILABLE in replies and waited < LIMIT_SECONDS
    finally:
        supervisor.start_service("sandbox")

    replies, _ = timed(stack, sender, f"hồ sơ {BINH_DOSSIER} đến đâu rồi")
    assert any(BINH_DOSSIER in t for t in replies) and UNAVAILABLE not in replies
    to_the_id_number_question(stack, other)
    assert the_code_is_sent(texts(stack.say(other, AN_ID)))


def test_action_server_hung_the_citizen_gets_an_apology_within_rasas_wait(
    stack: Stack, supervisor: Supervisor, sender: str
) -> None:
    """A process that accepts connections and never answers (SIGSTOP), Rasa's worst case."""
    process = supervisor.service("actions").process
    assert process is not None
    os.killpg(process.pid, signal.SIGSTOP)
    try:
        replies, waited = timed(
            stack, sender, f"hồ sơ {BINH_DOSSIER} đến đâu rồi", "action server hung"
        )
        assert ACTION_SERVER_DOWN in replies and waited < ACTIONS_LIMIT_SECONDS
        assert replies.count(ACTION_SERVER_DOWN) == 1
    finally:
        os.killpg(process.pid, signal.SIGCONT)
    replies, _ = timed(stack, sender, f"còn hồ sơ {BINH_DOSSIER} thì sao")
    assert any(BINH_DOSSIER in t for t in replies) and ACTION_SERVER_DOWN not in replies


def test_action_server_down_the_citizen_gets_an_apology_and_a_form_keeps_its_place(
    stack: Stack, supervisor: Supervisor, sender: str
) -> None:
    in_form = f"{sender}-form"
    to_the_id_number_question(stack, in_form)
    supervisor.stop_service("actions")
    try:
        replies, waited = timed(
            stack, sender, f"hồ sơ {BINH_DOSSIER} đến đâu rồi", "action server down"
        )
        assert ACTION_SERVER_DOWN in replies and waited < LIMIT_SECONDS
        assert replies.count(ACTION_SERVER_DOWN) == 1

        replies, waited = timed(stack, in_form, AN_ID, "action server down, in a form")
        assert ACTION_SERVER_DOWN in replies and waited < LIMIT_SECONDS
        assert response_text("utter_ask_id_number") in replies  # the form asks again
        assert replies.count(ACTION_SERVER_DOWN) == 1

        # A greeting needs no custom action (only the language detection, which Rasa skips).
        greeting, _ = timed(stack, f"{sender}-hello", "xin chào")
        assert greeting and ACTION_SERVER_DOWN not in greeting
    finally:
        supervisor.start_service("actions")

    assert the_code_is_sent(texts(stack.say(in_form, AN_ID)))  # the form goes on from there
    replies, _ = timed(stack, sender, f"hồ sơ {BINH_DOSSIER} đến đâu rồi")
    assert any(BINH_DOSSIER in t for t in replies) and ACTION_SERVER_DOWN not in replies
