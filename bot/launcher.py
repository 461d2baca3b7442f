"""Starts every service as a plain process, waits until each answers, and stops them all together.

python -m bot.launcher          # foreground, logs prefixed by service; Ctrl-C stops everything
python -m bot.launcher --chat   # logs go to var/logs/, a terminal chat opens; quitting stops all
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from bot.settings import ROOT, Settings, SettingsError, active_credentials

PY = sys.executable


@dataclass
class Service:
    name: str
    command: list[str]
    health: Callable[[httpx.Client], bool]
    env: Callable[[dict[str, str]], dict[str, str]] = dict
    # Extra Popen arguments (e.g. ``user`` for PostgreSQL, which refuses to run as root).
    popen: dict[str, Any] = field(default_factory=dict)
    before_start: Callable[[], object] | None = None  # e.g. initdb, write a config file
    after_start: Callable[[], object] | None = None  # e.g. create the database
    stop_signal: int = signal.SIGTERM
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0  # how many times the supervisor restarted it
    crashes: int = 0  # crashes since it last ran stably (sets the back-off)
    restart_at: float | None = None
    held: bool = False  # stopped on purpose: not restarted
    stage: int = 1  # services of a lower stage answer before the next stage starts


def _ok(url: str, method: str = "GET") -> Callable[[httpx.Client], bool]:
    def check(client: httpx.Client) -> bool:
        try:
            return client.request(method, url, timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    return check


def _rasa(settings: Settings, model: str, name: str, port: int) -> Service:
    var = settings.var_dir
    return Service(
        name,
        [
            # Rasa's command line with log masking; the API token comes from the
            # environment (RASA_AUTH_TOKEN), never the command line, which `ps` shows.
            PY,
            "-m",
            "bot.rasa_server",
            "run",
            "--model",
            model,
            "--enable-api",
            "--cors",
            *settings.webchat_origins,
            "--interface",
            settings.host,
            "--port",
            str(port),
            "--endpoints",
            str(var / "endpoints.yml"),
            "--credentials",
            str(var / "credentials.yml"),
            "--logging-config-file",
            str(ROOT / "bot" / "logging.yml"),
        ]
        + (["--debug"] if settings.log_level == "DEBUG" else []),
        _ok(f"http://{settings.host}:{port}/"),
        settings.rasa_env,
    )


def _actions(settings: Settings, name: str, port: int) -> Service:
    return Service(
        name,
        [PY, "-m", "bot.action_server", "--port", str(port)],
        _ok(f"http://{settings.host}:{port}/health"),
        settings.actions_env,
    )


def _content(settings: Settings) -> Service:
    """The content service (Rasa's NLG endpoint) and staff console; one in scaled mode too."""
    return Service(
        "content",
        [PY, "-m", "console"],
        _ok(f"{settings.staff_url}/health"),
        settings.content_env,
    )


def _scaled_infrastructure(settings: Settings) -> list[Service]:
    """PostgreSQL and Redis (unless given elsewhere), started before everything else."""
    from bot import scaled

    found: list[Service] = []
    if settings.start_postgres:
        password = settings.secret("postgres_password", "POSTGRES_PASSWORD")
        found.append(
            Service(
                "postgres",
                scaled.postgres_command(settings),
                scaled.postgres_ready(settings, password),
                popen=scaled._as_postgres_user(),
                before_start=functools.partial(scaled.init_postgres, settings, password),
                after_start=functools.partial(scaled.create_database, settings, password),
                stop_signal=scaled.POSTGRES_STOP_SIGNAL,
                stage=0,
            )
        )
    if settings.start_redis:
        redis_password = settings.secret("redis_password", "REDIS_PASSWORD")
        config = settings.var_dir / "redis" / "redis.conf"
        found.append(
            Service(
                "redis",
                [scaled.executable("redis-server"), str(config)],
                scaled.redis_ready(settings, redis_password),
                before_start=functools.partial(scaled.write_redis_config, settings, redis_password),
                stage=0,
            )
        )
    return found


def _balancer(settings: Settings) -> Service:
    from bot import scaled

    return Service(
        "haproxy",
        [scaled.executable("haproxy"), "-db", "-f", str(settings.var_dir / "haproxy.cfg")],
        _ok(f"{settings.rasa_url}/"),  # up once a replica answers through it
        before_start=functools.partial(scaled.write_haproxy_config, settings),
        stop_signal=signal.SIGUSR1,  # soft stop: finish the requests under way
    )


def services(settings: Settings, model: str) -> list[Service]:
    found: list[Service] = []
    if settings.scaled:
        found += _scaled_infrastructure(settings)
    if settings.start_sandbox:
        found.append(
            Service(
                "sandbox",
                [PY, "-m", "sandbox"],
                lambda c: (
                    _ok(f"{settings.identity_url}/health")(c)
                    and _ok(f"{settings.portal_url}/health")(c)
                ),
            )
        )
    found.append(_content(settings))
    if settings.scaled:
        found += [
            _actions(settings, f"actions-{i}", port)
            for i, port in enumerate(settings.action_replica_ports, 1)
        ]
        found += [
            _rasa(settings, model, f"rasa-{i}", port)
            for i, port in enumerate(settings.rasa_replica_ports, 1)
        ]
        found.append(_balancer(settings))
    else:
        found.append(_actions(settings, "actions", settings.actions_port))
        found.append(_rasa(settings, model, "rasa", settings.rasa_port))
    webchat = ROOT / "bot" / "webchat"
    if webchat.is_dir():
        found.append(
            Service(
                "webchat",
                [
                    PY,
                    "-m",
                    "http.server",
                    str(settings.webchat_port),
                    "--bind",
                    settings.host,
                    "--directory",
                    str(webchat),
                ],
                _ok(f"{settings.webchat_url}/"),
            )
        )
    return found


def prepare(settings: Settings) -> dict[str, str]:
    """Write the effective endpoints/credentials into var/ and return the services' environment."""
    settings.check()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    env = settings.service_env()
    (settings.var_dir / "sandbox").mkdir(exist_ok=True)
    (settings.var_dir / "logs").mkdir(exist_ok=True)
    (settings.var_dir / "endpoints.yml").write_text(
        Path(settings.endpoints_template).read_text(encoding="utf-8"), encoding="utf-8"
    )
    template = (ROOT / "bot" / "credentials.yml").read_text(encoding="utf-8")
    (settings.var_dir / "credentials.yml").write_text(
        active_credentials(template, settings.rasa_env(env)), encoding="utf-8"
    )
    return env


def _pump(stream: IO[bytes], prefix: str) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{prefix} {line.decode('utf-8', 'replace')}")
        sys.stdout.flush()


BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
# A service that ran this long since its last start counts as healthy again: its next crash
# is restarted after the first back-off, not the last one.
STABLE_AFTER_SECONDS = 60.0


# Lines of a service's log shown when it dies while starting (the log is already masked).
START_FAILURE_LINES = 12


def _last_lines(path: Path, count: int) -> list[str]:
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 16384))
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-count:]


class Supervisor:
    """Starts the services, restarts one that crashes (with back-off), stops them all.

    A crash of one service no longer stops the others: the monitor thread (started once every
    service answered) restarts it after 1, 2, 4 ... 30 s, and logs each restart. A service
    that crashes before it first answers is a configuration error and stops the start.
    """

    def __init__(
        self,
        settings: Settings,
        model: str,
        log_to_files: bool,
        services_: list[Service] | None = None,
    ) -> None:
        self.settings = settings
        self.services = services_ if services_ is not None else services(settings, model)
        self.log_to_files = log_to_files
        self._stopping = threading.Event()
        self._lock = threading.RLock()
        self._env: dict[str, str] = {}
        self._width = max(len(s.name) for s in self.services)
        self._monitor: threading.Thread | None = None

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def start(self, timeout: float = 180.0) -> None:
        self._env = prepare(self.settings)
        deadline = time.monotonic() + timeout
        for stage in sorted({s.stage for s in self.services}):
            group = [s for s in self.services if s.stage == stage]
            for service in group:
                self._spawn(service)
            self._wait_healthy(group, max(1.0, deadline - time.monotonic()))
        self._monitor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._monitor.start()

    def _spawn(self, service: Service) -> None:
        if service.before_start is not None:
            service.before_start()
        env = service.env(self._env)
        kwargs: dict[str, Any] = {"cwd": ROOT, "env": env, "start_new_session": True}
        kwargs.update(service.popen)
        if self.log_to_files:
            # The child gets its own copy of the file descriptor; ours closes at once.
            with open(self.settings.var_dir / "logs" / f"{service.name}.log", "ab") as log:
                service.process = subprocess.Popen(
                    service.command, stdout=log, stderr=subprocess.STDOUT, **kwargs
                )
        else:
            service.process = subprocess.Popen(
                service.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs
            )
            assert service.process.stdout is not None
            threading.Thread(
                target=_pump,
                args=(service.process.stdout, f"[{service.name:<{self._width}}]"),
                daemon=True,
            ).start()
        service.started_at = time.monotonic()

    def _wait_healthy(self, pending_services: list[Service], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(pending_services)
        with httpx.Client() as client:
            while pending:
                for service in list(pending):
                    self._check_alive(service)
                    if service.health(client):
                        print(f"launcher: {service.name} is up", flush=True)
                        if service.after_start is not None:
                            service.after_start()
                        pending.remove(service)
                if time.monotonic() > deadline:
                    names = ", ".join(s.name for s in pending)
                    raise RuntimeError(f"not up after {timeout:.0f}s: {names}")
                if pending:
                    time.sleep(0.5)

    def _check_alive(self, service: Service) -> None:
        if service.process is not None and service.process.poll() is not None:
            where, last = "", ""
            if self.log_to_files:
                log = self.settings.var_dir / "logs" / f"{service.name}.log"
                where = f" (see {log})"
                last = "".join(f"\n  | {line}" for line in _last_lines(log, START_FAILURE_LINES))
            raise RuntimeError(
                f"{service.name} exited with code {service.process.returncode}{where}{last}"
            )

    def _supervise(self) -> None:
        """Restart every service that exited while it was meant to run."""
        while not self._stopping.wait(0.5):
            now = time.monotonic()
            with self._lock:
                for service in self.services:
                    if service.held or service.process is None:
                        continue
                    code = service.process.poll()
                    if code is None:
                        if now - service.started_at > STABLE_AFTER_SECONDS:
                            service.crashes = 0
                        continue
                    if service.restart_at is None:
                        delay = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2**service.crashes)
                        service.crashes += 1
                        service.restart_at = now + delay
                        print(
                            f"launcher: {service.name} exited with code {code}; restart "
                            f"#{service.restarts + 1} in {delay:.0f}s",
                            flush=True,
                        )
                    elif now >= service.restart_at:
                        service.restart_at = None
                        service.restarts += 1
                        try:
                            self._spawn(service)
                        except (OSError, subprocess.SubprocessError) as exc:
                            print(f"launcher: {service.name} did not start: {exc}", flush=True)
                        else:
                            print(f"launcher: {service.name} restarted", flush=True)

    def watch(self) -> None:
        """Block until a signal asks us to stop; crashed services are restarted meanwhile."""
        while not self._stopping.wait(0.5):
            pass

    def stop_service(self, name: str) -> None:
        """Stop one service and keep it down (tests, maintenance) until start_service."""
        with self._lock:
            service = self.service(name)
            service.held = True
            service.restart_at = None
            _terminate([service])

    def start_service(self, name: str, timeout: float = 180.0) -> None:
        """Start a service stopped by stop_service (or crashed) now, and wait until it answers."""
        with self._lock:
            service = self.service(name)
            if service.process is not None and service.process.poll() is None:
                service.held = False
                return
            service.restart_at = None
            self._spawn(service)
            service.held = False
        self._wait_healthy([service], timeout)

    def stop(self) -> None:
        self._stopping.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        with self._lock:
            for service in self.services:
                service.held = True
            _terminate(list(reversed(self.services)))


def _terminate(services_: list[Service], grace: float = 10.0) -> None:
    """SIGTERM each process group, SIGKILL what is left after ``grace`` seconds."""
    running = [s for s in services_ if s.process and s.process.poll() is None]
    for service in running:
        assert service.process is not None
        try:
            os.killpg(service.process.pid, service.stop_signal)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    for service in running:
        assert service.process is not None
        try:
            service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(service.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            service.process.wait()


def resolve_model(settings: Settings) -> str:
    path = Path(settings.model)
    if path.is_dir():
        models = sorted(path.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
        if not models:
            raise SystemExit("No trained model in models/: run `make train` first.")
        return str(models[-1])
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--chat", action="store_true", help="open a terminal chat once all are up")
    args = parser.parse_args()
    settings = Settings()
    supervisor = Supervisor(settings, resolve_model(settings), log_to_files=args.chat)

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    code = 0
    try:
        supervisor.start()
        print(
            f"launcher: all services answer after {time.monotonic() - started:.1f}s"
            f" (sandbox mode {'on' if settings.sandbox_mode else 'off'})\n"
            f"  web chat    {settings.webchat_url}/index.html\n"
            f"  Rasa REST   {settings.rasa_url}/webhooks/rest/webhook (development channel)\n"
            f"  Rasa API    {settings.rasa_url} (token in {settings.rasa_token_file})\n"
            f"  identity    {settings.identity_url}/docs\n"
            f"  portal      {settings.portal_url}/docs\n"
            f"  console     {settings.staff_url}/ (replies, FAQ, unanswered questions,"
            f" spreadsheets; the call-centre desk at /desk; API at /api/docs)",
            flush=True,
        )
        if settings.sandbox_mode:
            from console.settings import DEFAULT_DEMO_PASSWORD, DEMO_ACCOUNTS

            password = os.environ.get("DEMO_STAFF_PASSWORD") or DEFAULT_DEMO_PASSWORD
            print(
                f"  staff       {', '.join(DEMO_ACCOUNTS.values())} (password {password})",
                flush=True,
            )
        if settings.scaled:
            print(
                f"  scaled      HAProxy on :{settings.rasa_port} -> Rasa replicas on "
                f"{', '.join(map(str, settings.rasa_replica_ports))}; :{settings.actions_port}"
                f" -> action servers on {', '.join(map(str, settings.action_replica_ports))}\n"
                f"              PostgreSQL :{settings.postgres_port}, Redis :{settings.redis_port};"
                f" one content service for every replica",
                flush=True,
            )
        if args.chat:
            from bot.chat import chat

            chat(settings.rasa_url, token=settings.rest_channel_token)
        else:
            supervisor.watch()
    except KeyboardInterrupt:
        pass
    except (RuntimeError, SettingsError) as exc:
        print(f"launcher: {exc}", file=sys.stderr)
        code = 1
    finally:
        # A second Ctrl-C or SIGTERM while stopping must not cut the stop short and leave
        # processes behind: stop() ends every one within its grace period anyway.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("launcher: stopping all services", flush=True)
        supervisor.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
