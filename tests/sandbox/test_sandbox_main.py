"""`python -m sandbox` serves both apps on the given ports and stops cleanly on a signal; in
sandbox mode it listens on loopback only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sandbox.__main__ import is_loopback
from tests.sandbox.helpers import FIXTURE_CATALOGUE

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"sandbox exited early with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).json() == {"status": "ok"}:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not healthy after {timeout}s")


def sandbox_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "IDENTITY_DB_URL": f"sqlite:///{tmp_path}/identity.db",
        "PORTAL_DB_URL": f"sqlite:///{tmp_path}/portal.db",
        "PORTAL_CATALOGUE_DIR": str(FIXTURE_CATALOGUE),
    }


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_python_m_sandbox_serves_both_apps(tmp_path: Path, sig: signal.Signals) -> None:
    identity_port, portal_port = free_port(), free_port()
    env = {
        **sandbox_env(tmp_path),
        "PORTAL_PORT": str(portal_port),  # from the environment...
        "SANDBOX_MODE": "1",  # on the default host, 127.0.0.1
    }
    env.pop("SANDBOX_TOKEN_SECRET", None)  # ...and a secret generated at start
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--identity-port", str(identity_port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{identity_port}/health", process)
        wait_healthy(f"http://127.0.0.1:{portal_port}/health", process)
        response = httpx.get(f"http://127.0.0.1:{portal_port}/v1/dossiers/H31.05-260915-0006")
        assert response.json()["status"] == "completed"
        sms = httpx.get(f"http://127.0.0.1:{identity_port}/sandbox/sms?phone=0912345678")
        assert sms.json() == {"messages": []}
        process.send_signal(sig)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output.decode()
    assert b"Application shutdown complete" in output


def test_python_m_sandbox_fails_when_a_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "sandbox",
                "--identity-port",
                str(taken.getsockname()[1]),
                "--portal-port",
                str(free_port()),
            ],
            cwd=REPO,
            env={**sandbox_env(tmp_path), "SANDBOX_TOKEN_SECRET": "s" * 40},
            capture_output=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert b"could not start" in result.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "example.org"])
def test_python_m_sandbox_refuses_a_public_host_in_sandbox_mode(tmp_path: Path, host: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--host", host, "--identity-port", str(free_port())],
        cwd=REPO,
        env={**sandbox_env(tmp_path), "SANDBOX_MODE": "1", "SANDBOX_TOKEN_SECRET": "s" * 40},
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert "refusing to start" in lines[0]
    assert f"--host {host} is not a loopback address" in lines[0]
    assert "SANDBOX_MODE=0" in lines[0]
    assert not (tmp_path / "identity.db").exists()  # refused before anything was created


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("localhost.example.org", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
