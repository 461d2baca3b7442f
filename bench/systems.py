"""The systems under load (the stock bot; the project stack, embedded or scaled), each started
on free loopback ports and always stopped."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
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
def stock_bot(model: Path, log_dir: Path, timeout: float = 300) -> Iterator[System]:
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
                # A throwaway token on loopback; the stock CLI takes it only here. One argument:
                # a token that begins with "-" would be taken for an option.
                f"--auth-token={token}",
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


ACTION_SERVERS = 2  # scaled mode's action servers, whatever the number of Rasa replicas


def system_name(replicas: int | None) -> str:
    """``project`` (embedded mode) or ``scaled-<replicas>``."""
    return "project" if replicas is None else f"scaled-{replicas}"


def replicas_of(name: str) -> int | None:
    """The inverse of system_name: None for ``project``, N for ``scaled-N``."""
    if name == "project":
        return None
    prefix, _, count = name.partition("-")
    if prefix != "scaled" or not count.isdigit() or int(count) < 1:
        raise ValueError(f"not a project system: {name}")
    return int(count)


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (held open together while they are chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


@contextmanager
def _postgres_parent(scaled: bool) -> Iterator[Path | None]:
    """As root PostgreSQL runs as the `postgres` user, who cannot enter a private temporary
    folder: its data goes to a world-traversable folder of its own under /tmp, removed after."""
    if not scaled:
        yield None
        return
    parent = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    os.chmod(parent, 0o755)  # noqa: S103 (traversable by `postgres`; the data folder is 0700)
    try:
        yield parent
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@contextmanager
def project_stack(
    var_dir: Path, timeout: float = 300, replicas: int | None = None
) -> Iterator[System]:
    """The real launcher, as the end-to-end fixtures start it: sandbox mode, free ports, its
    data in ``var_dir``, the trained models/current.tar.gz.

    ``replicas`` None: embedded mode (one Rasa, one action server, SQLite), System ``project``.
    ``replicas`` N: scaled mode, System ``scaled-N``: PostgreSQL, Redis, N Rasa replicas and
    ACTION_SERVERS action servers behind HAProxy, which takes the Rasa port.
    """
    from bot.launcher import Supervisor

    if not PROJECT_MODEL.exists():
        raise RuntimeError("no trained model: run `make train` (make bench does it)")
    scaled = replicas is not None
    ports = free_ports(8 + (replicas or 0) + ACTION_SERVERS)
    with _postgres_parent(scaled) as pg_parent:
        extra: dict[str, object] = {}
        if scaled:
            assert replicas is not None and pg_parent is not None
            extra = {
                "rasa_replica_ports": [ports.pop() for _ in range(replicas)],
                "action_replica_ports": [ports.pop() for _ in range(ACTION_SERVERS)],
                "postgres_port": ports.pop(),
                "redis_port": ports.pop(),
                "postgres_dir": pg_parent / "data",
            }
        settings = Settings(
            host="127.0.0.1",
            rasa_port=ports.pop(),
            actions_port=ports.pop(),
            identity_port=ports.pop(),
            portal_port=ports.pop(),
            webchat_port=ports.pop(),
            staff_port=ports.pop(),
            start_sandbox=True,
            sandbox_mode=True,
            # Explicit: `make bench SCALED=1` puts SCALED=1 in the environment, which Settings
            # would otherwise read for the embedded system too.
            scaled=scaled,
            model=str(PROJECT_MODEL),
            var_dir=var_dir,
            **extra,  # type: ignore[arg-type]
        )
        name = system_name(replicas)
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
                    """A service that exited or was restarted (the launcher restarts crashed
                    services) spoils the level: its CPU and memory were not all sampled."""
                    for service in supervisor.services:
                        log = var_dir / "logs" / f"{service.name}.log"
                        if service.restarts:
                            raise RuntimeError(
                                f"{name}: {service.name} crashed and was restarted"
                                f" {service.restarts} time(s) (see {log})"
                            )
                        if service.process is not None and service.process.poll() is not None:
                            raise RuntimeError(
                                f"{name}: {service.name} exited with code"
                                f" {service.process.returncode} (see {log})"
                            )

                yield System(
                    name=name,
                    rasa_url=settings.rasa_url,
                    token=token,
                    services=services,
                    conversation_id=lambda sender: f"rest:{sender}",
                    identity_url=f"http://127.0.0.1:{settings.identity_port}",
                    alive=alive,
                )
            finally:
                supervisor.stop()
