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


def workers_of(pid: int) -> list[int]:
    """Rasa's Sanic workers: the processes forked by its main process."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return sorted(found)


def test_a_dead_rasa_worker_is_replaced_while_the_other_answers(
    crashing: tuple[Supervisor, Stack],
) -> None:
    supervisor, stack = crashing
    rasa = supervisor.service("rasa")
    assert rasa.process is not None and supervisor.settings.rasa_workers == 2
    restarts = rasa.restarts
    workers = workers_of(rasa.process.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    sender = f"crash-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    answer = texts(stack.say(sender, "mất căn cước thì làm lại thế nào, hết bao nhiêu tiền?"))
    assert "50.000 đồng" in answer
    print(f"answered {time.monotonic() - started:.1f}s after a worker was killed")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = workers_of(rasa.process.pid)
        if len(now) == 2 and workers[0] not in now:
            break
        time.sleep(0.5)
    assert len(now) == 2 and workers[0] not in now, now
    assert rasa.restarts == restarts  # the service itself was never restarted
    for i in range(4):  # both workers answer (the kernel spreads connections)
        question = "mất căn cước thì làm lại thế nào, hết bao nhiêu tiền?"
        again = texts(stack.say(f"{sender}-{i}", question))
        assert "50.000 đồng" in again
