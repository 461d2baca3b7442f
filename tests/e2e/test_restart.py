"""The embedded stack survives its own processes crashing: the launcher brings each back, and a
conversation goes on from the tracker store where it was."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from bot.launcher import Supervisor
from tests.e2e.conftest import Stack, start_stack
from tests.e2e.test_dossier_journey import AN_ID, texts

pytestmark = pytest.mark.e2e

DOSSIER = "000.00.10.H26-261110-0001"


@pytest.fixture(scope="module")
def crashing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Supervisor, Stack]]:
    supervisor, stack = start_stack(tmp_path_factory.mktemp("restart"))
    yield supervisor, stack
    supervisor.stop()


def wait_until_answering(stack: Stack, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(f"{stack.rasa_url}/", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"Rasa did not come back within {timeout:.0f}s")


def test_rasa_killed_mid_form_resumes_the_form(crashing: tuple[Supervisor, Stack]) -> None:
    supervisor, stack = crashing
    sender = f"crash-{uuid.uuid4().hex[:8]}"
    stack.say(sender, f"tra cứu hồ sơ {DOSSIER}")
    assert "12" in texts(stack.say(sender, "/affirm"))  # the identity form asks for the ID
    rasa = supervisor.service("rasa")
    assert rasa.process is not None
    os.killpg(rasa.process.pid, signal.SIGKILL)
    took = wait_until_answering(stack, timeout=240)
    print(f"Rasa answered again {took:.0f}s after it was killed")
    assert rasa.restarts == 1
    # The form was half-filled in the tracker store: the ID number is taken as its answer.
    assert "*******678" in texts(stack.say(sender, AN_ID))


def test_a_crashed_sandbox_comes_back_and_the_rest_never_stopped(
    crashing: tuple[Supervisor, Stack],
) -> None:
    supervisor, stack = crashing
    sandbox, rasa = supervisor.service("sandbox"), supervisor.service("rasa")
    assert sandbox.process is not None and rasa.process is not None
    rasa_pid = rasa.process.pid
    os.killpg(sandbox.process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{stack.portal_url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    assert sandbox.restarts == 1
    assert rasa.process.pid == rasa_pid and rasa.process.poll() is None
    sender = f"crash-{uuid.uuid4().hex[:8]}"
    answer = texts(stack.say(sender, "mất căn cước thì làm lại thế nào, hết bao nhiêu tiền?"))
    assert "50.000 đồng" in answer  # the fee, from the portal API that crashed
