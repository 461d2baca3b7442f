"""A real ``redis-server`` for tests: a free port on loopback, no persistence, its own folder.

Importable by any test (channel state, identity store, the scaled-mode end-to-end tests):

    process, url = start_redis(tmp_path)
    ...
    stop_redis(process)

``RedisServer`` wraps the same with ``stop()``/``start()`` on the same port, so a test can take
Redis down and bring it back; the ``redis_server`` fixture (tests/conftest.py) yields one.
Skips the test when redis-server is not installed (Debian package ``redis-server``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.ports import free_port

REDIS_SERVER = "/usr/bin/redis-server"
START_TIMEOUT_SECONDS = 10.0


def redis_binary() -> str:
    found = shutil.which("redis-server") or (REDIS_SERVER if Path(REDIS_SERVER).exists() else None)
    if found is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return found


def _answers(port: int) -> bool:
    """True once the server answers PING on ``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(directory: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start redis-server on ``port`` (a free one by default); returns it and its URL.

    No RDB snapshots, no append-only file, bound to 127.0.0.1; files (the log) in ``directory``.
    """
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / f"redis-{port}.log"
    command = [
        redis_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
        "--logfile",
        str(log),
        "--protected-mode",
        "yes",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_redis(process)
            detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"redis-server did not start on port {port}: {detail}")
        time.sleep(0.02)
    return process, f"redis://127.0.0.1:{port}/0"


def stop_redis(process: subprocess.Popen[bytes]) -> None:
    """Stop the server (SIGTERM, then SIGKILL) and wait for it to go."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


class RedisServer:
    """One redis-server a test can stop and start again on the same port (and URL)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process, self.url = start_redis(self.directory, self.port)

    def stop(self) -> None:
        if self.process is not None:
            stop_redis(self.process)
            self.process = None
