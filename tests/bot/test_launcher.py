"""The launcher keeps the assistant up: a crashed service comes back by itself, the others never
stop for it, and stopping leaves no process behind."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import launcher
from bot.launcher import Service, Supervisor, _ok
from bot.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def web_service(name: str) -> Service:
    port = free_port()
    return Service(
        name,
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        _ok(f"http://127.0.0.1:{port}/"),
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(condition: object, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


@pytest.fixture()
def supervisor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Supervisor]:
    monkeypatch.setattr(launcher, "BACKOFF_FIRST_SECONDS", 0.2)
    settings = Settings(var_dir=tmp_path, start_sandbox=False, sandbox_mode=True)
    running = Supervisor(
        settings, "unused", log_to_files=True, services_=[web_service("a"), web_service("b")]
    )
    running.start(timeout=30)
    yield running
    running.stop()


def test_a_crashed_service_is_restarted_and_the_others_keep_running(
    supervisor: Supervisor,
) -> None:
    a, b = supervisor.service("a"), supervisor.service("b")
    assert a.process is not None and b.process is not None
    first_a, first_b = a.process.pid, b.process.pid
    os.killpg(first_a, signal.SIGKILL)
    assert wait_for(lambda: a.process is not None and a.process.pid != first_a), "not restarted"
    assert wait_for(lambda: a.process is not None and a.process.poll() is None)
    assert a.restarts == 1
    assert b.process.pid == first_b and b.process.poll() is None
    log = (supervisor.settings.var_dir / "logs" / "a.log").read_text()
    assert "Serving HTTP" in log  # the restarted process logs to the same file


def test_repeated_crashes_wait_longer_each_time(supervisor: Supervisor) -> None:
    a = supervisor.service("a")
    delays = []
    for _ in range(3):
        assert a.process is not None
        pid = a.process.pid
        os.killpg(pid, signal.SIGKILL)
        assert wait_for(lambda: a.restart_at is not None, 5)
        assert a.restart_at is not None
        delays.append(a.restart_at - time.monotonic())
        assert wait_for(lambda: a.process is not None and a.process.pid != pid, 10)
    assert delays[0] < delays[1] < delays[2]


def test_a_service_stopped_on_purpose_stays_down_until_started(supervisor: Supervisor) -> None:
    a = supervisor.service("a")
    supervisor.stop_service("a")
    assert a.process is not None
    pid = a.process.pid
    time.sleep(1.0)  # several back-off periods
    assert a.process.pid == pid and a.process.poll() is not None
    supervisor.start_service("a", timeout=15)
    assert a.process.poll() is None and a.restarts == 0


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, start_sandbox=False, sandbox_mode=True)
    running = Supervisor(settings, "unused", log_to_files=True, services_=[web_service("a")])
    running.start(timeout=30)
    process = running.service("a").process
    assert process is not None
    running.stop()
    assert not alive(process.pid)
    time.sleep(1.0)  # the monitor must not bring it back after stop
    assert running.service("a").process is process


def test_a_service_that_dies_while_starting_says_why_in_the_error(tmp_path: Path) -> None:
    """`make run` (and a CI log) shows the dying service's last log lines, not only its code."""
    settings = Settings(var_dir=tmp_path, start_sandbox=False, sandbox_mode=True)
    dying = Service(
        "dying",
        [sys.executable, "-c", "import sys; print('cannot bind: port taken'); sys.exit(3)"],
        _ok(f"http://127.0.0.1:{free_port()}/"),
    )
    running = Supervisor(settings, "unused", log_to_files=True, services_=[dying])
    try:
        with pytest.raises(RuntimeError) as failure:
            running.start(timeout=20)
    finally:
        running.stop()
    assert "dying exited with code 3" in str(failure.value)
    assert "cannot bind: port taken" in str(failure.value)
