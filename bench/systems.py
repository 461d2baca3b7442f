"""The two systems under load, each started on free loopback ports and always stopped."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.stock import RASA, stop_group
from bot.settings import ROOT, Settings

PROJECT_MODEL = ROOT / "models" / "current.tar.gz"

# The sandbox's anti-abuse limits (codes per ID number, wrong codes per ID number and per
# conversation) would stop many concurrent conversations verifying the same four test
# citizens within minutes. Raised for the benchmark only; the shipped defaults are untouched.
BENCH_LIMITS = {
    "MAX_CODES_PER_WINDOW": "100000",
    "MAX_CODES_PER_CONVERSATION": "100",
    "ID_MAX_FAILURES": "100000",
    "CONVERSATION_MAX_FAILURES": "1000",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class System:
    """What the load generator needs to know about a running system."""

    name: str
    rasa_url: str
    token: str
    services: dict[str, int]  # service name -> pid of its session leader
    conversation_id: Callable[[str], str]  # REST sender -> tracker id
    identity_url: str = ""  # the sandbox, where the project's script reads its codes
    alive: Callable[[], None] = lambda: None  # raises when a service died


def _wait_up(url: str, process: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"stock bot exited with code {process.returncode}:\n{tail}")
            try:
                if client.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    raise RuntimeError(f"stock bot not up after {timeout:.0f}s (see {log})")


@contextmanager
def stock_bot(model: Path, log_dir: Path, timeout: float = 180) -> Iterator[System]:
    """`rasa run --enable-api` in the stock project's folder: its own credentials (rest:) and
    endpoints (in-memory tracker store, no action server), on a free loopback port."""
    port, token = free_port(), secrets.token_urlsafe(24)
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "stock-rasa.log"
    project = model.parent.parent
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                str(RASA),
                "run",
                "--enable-api",
                "--interface",
                "127.0.0.1",
                "--port",
                str(port),
                "--auth-token",
                token,  # a throwaway token on loopback; the stock CLI takes it only here
                "--model",
                str(model),
            ],
            cwd=project,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_up(f"{url}/", process, timeout, log)

        def alive() -> None:
            if process.poll() is not None:
                raise RuntimeError(f"stock bot exited with code {process.returncode} (see {log})")

        yield System(
            name="stock",
            rasa_url=url,
            token=token,
            services={"rasa": process.pid},
            conversation_id=lambda sender: sender,
            alive=alive,
        )
    finally:
        stop_group(process)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


@contextmanager
def project_stack(var_dir: Path, timeout: float = 300) -> Iterator[System]:
    """The real launcher, as the end-to-end fixture starts it: sandbox mode, free ports, its
    data in ``var_dir``, the trained models/current.tar.gz."""
    from bot.launcher import Supervisor

    if not PROJECT_MODEL.exists():
        raise RuntimeError("no trained model: run `make train` (make bench does it)")
    settings = Settings(
        host="127.0.0.1",
        rasa_port=free_port(),
        actions_port=free_port(),
        identity_port=free_port(),
        portal_port=free_port(),
        webchat_port=free_port(),
        start_sandbox=True,
        sandbox_mode=True,
        model=str(PROJECT_MODEL),
        var_dir=var_dir,
    )
    with _environment(BENCH_LIMITS):
        supervisor = Supervisor(settings, str(PROJECT_MODEL), log_to_files=True)
        try:
            supervisor.start(timeout=timeout)
            token = (
                os.environ.get("RASA_AUTH_TOKEN")
                or settings.rasa_token_file.read_text(encoding="utf-8").strip()
            )
            services = {s.name: s.process.pid for s in supervisor.services if s.process}

            def alive() -> None:
                for service in supervisor.services:
                    if service.process is not None and service.process.poll() is not None:
                        raise RuntimeError(
                            f"{service.name} exited with code {service.process.returncode}"
                            f" (see {var_dir / 'logs' / service.name}.log)"
                        )

            yield System(
                name="project",
                rasa_url=settings.rasa_url,
                token=token,
                services=services,
                conversation_id=lambda sender: f"rest:{sender}",
                identity_url=f"http://127.0.0.1:{settings.identity_port}",
                alive=alive,
            )
        finally:
            supervisor.stop()
