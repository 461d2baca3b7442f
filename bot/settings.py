"""Where each service listens, how they find each other, and the secrets they share; every value
can be set in the environment. Defaults run everything on one laptop, on loopback only."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
MAX_REQUEST_BYTES = 64 * 1024  # every channel's request body (Sanic's own default is 100 MB)
_TRUE_WORDS = {"1", "true", "yes", "on"}


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _ports(value: str | None) -> list[int]:
    return [int(p) for p in (value or "").replace(",", " ").split()]


def is_true(value: object) -> bool:
    """A switch as written in the environment or a credentials file: 1, true, yes, on."""
    return str(value or "").strip().lower() in _TRUE_WORDS


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SettingsError(Exception):
    """A combination of settings the launcher refuses to start with."""


@dataclass
class Settings:
    host: str = field(default_factory=lambda: _env("BIND_HOST", "127.0.0.1"))
    rasa_port: int = field(default_factory=lambda: int(_env("RASA_PORT", "5005")))
    actions_port: int = field(default_factory=lambda: int(_env("ACTIONS_PORT", "5055")))
    identity_port: int = field(default_factory=lambda: int(_env("IDENTITY_PORT", "8000")))
    portal_port: int = field(default_factory=lambda: int(_env("PORTAL_PORT", "8001")))
    webchat_port: int = field(default_factory=lambda: int(_env("WEBCHAT_PORT", "8080")))
    # The content service and staff console (console/); unset: WEBCHAT_PORT + 10 (8090), so
    # stacks started on other ports (tests, bench) never share one.
    staff_port: int = field(default_factory=lambda: int(_env("STAFF_PORT", "0")))
    # The sandbox runs unless the actions are pointed at other (production) APIs.
    start_sandbox: bool = field(
        default_factory=lambda: (
            _env("START_SANDBOX", "1") == "1"
            and "IDENTITY_API_URL" not in os.environ
            and "PORTAL_API_URL" not in os.environ
        )
    )
    # Sandbox mode (test citizens, readable SMS outbox, open REST channel) is never a default:
    # `make run`, `make serve` and the tests switch it on; it is refused off loopback.
    sandbox_mode: bool = field(default_factory=lambda: is_true(os.environ.get("SANDBOX_MODE")))
    model: str = field(default_factory=lambda: _env("RASA_MODEL", str(ROOT / "models")))
    endpoints_template: str = field(
        default_factory=lambda: _env("ENDPOINTS", str(ROOT / "bot" / "endpoints.yml"))
    )
    var_dir: Path = field(default_factory=lambda: Path(_env("VAR_DIR", str(VAR))))
    # Opens the development REST channel outside sandbox mode, for whoever holds it.
    rest_channel_token: str = field(default_factory=lambda: _env("REST_CHANNEL_TOKEN", ""))
    log_level: str = field(default_factory=lambda: _env("LOG_LEVEL", "INFO").upper())
    retention_days: int = field(default_factory=lambda: int(_env("RETENTION_DAYS", "30")))
    # Origins allowed to call Rasa from a browser (the web chat); default: the demo page.
    webchat_origins: list[str] = field(
        default_factory=lambda: os.environ.get("WEBCHAT_ORIGINS", "").replace(",", " ").split()
    )
    # Sanic worker processes of each Rasa server, on one port: each loads the model (~650 MB)
    # and takes messages, one conversation at a time through the lock store (SQLite on a
    # laptop, Redis in scaled mode). Rasa's processing is single-threaded, so by default two
    # on a machine with two cores or more; in scaled mode the replicas are the unit, one each.
    rasa_workers: int = field(default_factory=lambda: int(_env("RASA_WORKERS", "0")))
    # Scaled mode (`make serve-scaled`): PostgreSQL, Redis, several Rasa replicas and action
    # servers behind HAProxy, which takes the usual ports (RASA_PORT, ACTIONS_PORT).
    scaled: bool = field(default_factory=lambda: is_true(os.environ.get("SCALED")))
    rasa_replicas: int = field(default_factory=lambda: int(_env("RASA_REPLICAS", "2")))
    action_replicas: int = field(default_factory=lambda: int(_env("ACTION_REPLICAS", "2")))
    # Replica i listens on base + i (base defaults: RASA_PORT + 100, ACTIONS_PORT + 100).
    rasa_replica_ports: list[int] = field(
        default_factory=lambda: _ports(os.environ.get("RASA_REPLICA_PORTS"))
    )
    action_replica_ports: list[int] = field(
        default_factory=lambda: _ports(os.environ.get("ACTION_REPLICA_PORTS"))
    )
    # PostgreSQL and Redis are started by the launcher unless POSTGRES_HOST / REDIS_HOST point
    # at servers of their own (then give POSTGRES_PASSWORD / REDIS_PASSWORD too).
    postgres_host: str = field(default_factory=lambda: _env("POSTGRES_HOST", "127.0.0.1"))
    postgres_port: int = field(default_factory=lambda: int(_env("POSTGRES_PORT", "55432")))
    postgres_db: str = field(default_factory=lambda: _env("POSTGRES_DB", "civic"))
    postgres_user: str = field(default_factory=lambda: _env("POSTGRES_USER", "civic"))
    start_postgres: bool = field(default_factory=lambda: "POSTGRES_HOST" not in os.environ)
    # PostgreSQL's data (initdb refuses root: as root the server runs as the `postgres` user,
    # so this folder and its parents must be reachable by that user).
    postgres_dir: Path | None = field(
        default_factory=lambda: (
            Path(os.environ["POSTGRES_DATA_DIR"]) if os.environ.get("POSTGRES_DATA_DIR") else None
        )
    )
    redis_host: str = field(default_factory=lambda: _env("REDIS_HOST", "127.0.0.1"))
    redis_port: int = field(default_factory=lambda: int(_env("REDIS_PORT", "56379")))
    start_redis: bool = field(default_factory=lambda: "REDIS_HOST" not in os.environ)
    # Connections each Rasa replica keeps to PostgreSQL (Rasa's own default, 50 + 100 per
    # process, would exceed PostgreSQL's 100 connections with two replicas).
    sql_pool_size: int = field(default_factory=lambda: int(_env("SQL_POOL_SIZE", "5")))
    sql_max_overflow: int = field(default_factory=lambda: int(_env("SQL_MAX_OVERFLOW", "10")))
    # How long a ticket for a conversation's lock lives, counted from when the message arrived
    # (Rasa's default). It bounds how long a replica that died holding a lock blocks that
    # conversation; shorter is unsafe: a burst of messages to one conversation that takes longer
    # than this lets two replicas handle it at once, and an event is lost (measured: 15 s lost
    # one of 16 concurrent messages, tests/e2e/test_scaled.py).
    lock_lifetime_seconds: int = field(
        default_factory=lambda: int(_env("TICKET_LOCK_LIFETIME", "60"))
    )

    _made: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.rasa_workers <= 0:
            self.rasa_workers = 1 if self.scaled else min(2, os.cpu_count() or 1)
        if not self.rasa_replica_ports:
            self.rasa_replica_ports = [self.rasa_port + 100 + i for i in range(self.rasa_replicas)]
        if not self.action_replica_ports:
            self.action_replica_ports = [
                self.actions_port + 100 + i for i in range(self.action_replicas)
            ]
        self.rasa_replicas = len(self.rasa_replica_ports)
        self.action_replicas = len(self.action_replica_ports)
        if not self.staff_port:
            self.staff_port = self.webchat_port + 10
        if self.postgres_dir is None:
            self.postgres_dir = self.var_dir / "postgres"
        if self.scaled and "ENDPOINTS" not in os.environ:
            self.endpoints_template = str(ROOT / "bot" / "endpoints.scaled.yml")
        if not self.webchat_origins:
            self.webchat_origins = [
                f"http://127.0.0.1:{self.webchat_port}",
                f"http://localhost:{self.webchat_port}",
            ]

    def check(self) -> None:
        """Refuse combinations that would expose test data or an open API."""
        if self.sandbox_mode and not is_loopback(self.host):
            raise SettingsError(
                f"SANDBOX_MODE=1 serves test data, the SMS outbox and the open REST channel: it "
                f"only runs on a loopback address, not BIND_HOST={self.host}. Unset SANDBOX_MODE "
                f"(and point IDENTITY_API_URL/PORTAL_API_URL at the real systems) or bind to "
                f"127.0.0.1."
            )
        if "*" in self.webchat_origins:
            raise SettingsError("WEBCHAT_ORIGINS must list origins; '*' is refused")

    @property
    def secrets_dir(self) -> Path:
        return self.var_dir / "secrets"

    @property
    def rasa_token_file(self) -> Path:
        """Where local tools (tests, the staff console) read Rasa's API token (mode 0600)."""
        return self.secrets_dir / "rasa_token"

    @property
    def rasa_url(self) -> str:
        return f"http://{self.host}:{self.rasa_port}"

    @property
    def identity_url(self) -> str:
        return _env("IDENTITY_API_URL", f"http://{self.host}:{self.identity_port}")

    @property
    def portal_url(self) -> str:
        return _env("PORTAL_API_URL", f"http://{self.host}:{self.portal_port}")

    @property
    def webchat_url(self) -> str:
        return f"http://{self.host}:{self.webchat_port}"

    @property
    def staff_url(self) -> str:
        return f"http://{self.host}:{self.staff_port}"

    def secret(self, name: str, env_name: str, *, fresh: bool = False) -> str:
        """A secret from the environment, else one kept in var/secrets (0600), made once.

        ``fresh`` makes a new one at every start (Rasa's API token: nothing needs it to last).
        """
        if os.environ.get(env_name):
            return os.environ[env_name]
        if name in self._made:
            return self._made[name]
        self.secrets_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.secrets_dir, 0o700)
        path = self.secrets_dir / name
        if path.exists() and not fresh:
            value = path.read_text(encoding="utf-8").strip()
            self._made[name] = value
            return value
        value = secrets.token_urlsafe(32)
        self._made[name] = value
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
        os.chmod(path, 0o600)
        return value

    def service_env(self) -> dict[str, str]:
        """Environment every child process gets: how to reach the others, where to store."""
        env = dict(os.environ)
        env.update(
            {
                "ACTION_SERVER_URL": _env(
                    "ACTION_SERVER_URL", f"http://{self.host}:{self.actions_port}/webhook"
                ),
                "TRACKER_SQLITE_PATH": _env(
                    "TRACKER_SQLITE_PATH", str(self.var_dir / "trackers.db")
                ),
                "LOCK_SQLITE_PATH": _env("LOCK_SQLITE_PATH", str(self.var_dir / "locks.db")),
                "CHANNEL_STATE_DB": _env(
                    "CHANNEL_STATE_DB", str(self.var_dir / "channel_state.db")
                ),
                "RETENTION_DAYS": str(self.retention_days),
                "CONTENT_SERVICE_URL": _env("CONTENT_SERVICE_URL", self.staff_url),
                "CONTENT_DB_URL": _env(
                    "CONTENT_DB_URL", f"sqlite:///{self.var_dir / 'content.db'}"
                ),
                "SANDBOX_MODE": "1" if self.sandbox_mode else "0",
                "LOG_LEVEL": self.log_level,
                "IDENTITY_API_URL": self.identity_url,
                "PORTAL_API_URL": self.portal_url,
                "IDENTITY_PORT": str(self.identity_port),
                "PORTAL_PORT": str(self.portal_port),
                "SANDBOX_HOST": self.host,
                "SANIC_HOST": self.host,
                "IDENTITY_DB_URL": _env(
                    "IDENTITY_DB_URL", f"sqlite:///{self.var_dir / 'sandbox' / 'identity.db'}"
                ),
                "PORTAL_DB_URL": _env(
                    "PORTAL_DB_URL", f"sqlite:///{self.var_dir / 'sandbox' / 'portal.db'}"
                ),
            }
        )
        if self.scaled:
            env.update(self.scaled_env())
        if self.start_sandbox and not env.get("SANDBOX_TOKEN_SECRET"):
            env["SANDBOX_TOKEN_SECRET"] = secrets.token_hex(32)
        return env

    def scaled_env(self) -> dict[str, str]:
        """How every replica reaches the shared PostgreSQL and Redis (bot/endpoints.scaled.yml)."""
        redis_password = self.secret("redis_password", "REDIS_PASSWORD")
        return {
            "POSTGRES_HOST": self.postgres_host,
            "POSTGRES_PORT": str(self.postgres_port),
            "POSTGRES_DB": self.postgres_db,
            "POSTGRES_USER": self.postgres_user,
            "POSTGRES_PASSWORD": self.secret("postgres_password", "POSTGRES_PASSWORD"),
            "SQL_POOL_SIZE": str(self.sql_pool_size),
            "SQL_MAX_OVERFLOW": str(self.sql_max_overflow),
            "REDIS_HOST": self.redis_host,
            "REDIS_PORT": str(self.redis_port),
            "REDIS_PASSWORD": redis_password,
            "REDIS_DB": "0",  # Rasa's lock store
            # Channel state and identity proofs, shared by every replica (database 1).
            "SHARED_STATE_URL": f"redis://:{redis_password}@{self.redis_host}:{self.redis_port}/1",
            "TICKET_LOCK_LIFETIME": str(self.lock_lifetime_seconds),
        }

    def rasa_env(self, env: dict[str, str]) -> dict[str, str]:
        """Rasa's own secrets, and the body cap (not for the action server: it receives whole
        trackers). Rasa's API token is made afresh at every start unless RASA_AUTH_TOKEN is set.
        """
        return {
            **env,
            "SANIC_REQUEST_MAX_SIZE": str(MAX_REQUEST_BYTES),
            "SANIC_WORKERS": str(self.rasa_workers),
            # Several workers share one listening socket, and a connection stays with the
            # worker that accepted it: with keep-alive, a burst of clients opening their
            # connections at once can land mostly on one worker for good (measured: 21 msg/s
            # in one run, 41 in the next, at 20 conversations). A connection per request goes
            # to whichever worker is free to accept it.
            "SANIC_KEEP_ALIVE": "true" if self.rasa_workers == 1 else "false",
            # Nothing leaves the machine: no usage telemetry, no error reports to Rasa's Sentry
            # (an exception's report would carry conversation data).
            "RASA_TELEMETRY_ENABLED": "false",
            "RASA_AUTH_TOKEN": self.secret("rasa_token", "RASA_AUTH_TOKEN", fresh=True),
            "WEBCHAT_SECRET": self.secret("webchat_secret", "WEBCHAT_SECRET"),
        }

    def content_env(self, env: dict[str, str]) -> dict[str, str]:
        """Where the content service listens, the key of its staff sessions, and the token its
        internal routes (FAQ entries, unanswered questions) ask of the action servers."""
        return {
            **env,
            "BIND_HOST": self.host,
            "STAFF_PORT": str(self.staff_port),
            "STAFF_SESSION_SECRET": self.secret("staff_session_secret", "STAFF_SESSION_SECRET"),
            "CONTENT_INTERNAL_TOKEN": self._internal_token(),
            # The call-centre desk reads trackers and hands conversations back (Rasa's HTTP API).
            "RASA_URL": self.rasa_url,
            "RASA_AUTH_TOKEN": self.secret("rasa_token", "RASA_AUTH_TOKEN", fresh=True),
        }

    def _internal_token(self) -> str:
        return self.secret("content_internal_token", "CONTENT_INTERNAL_TOKEN")

    def actions_env(self, env: dict[str, str]) -> dict[str, str]:
        """The key of the conversation references the action server sends the identity API."""
        values = {
            "CLIENT_REF_SECRET": self.secret("client_ref_secret", "CLIENT_REF_SECRET"),
            "CONTENT_INTERNAL_TOKEN": self._internal_token(),
        }
        if self.scaled:  # identity proofs in Redis, encrypted: the action servers alone hold it
            values["IDENTITY_STORE_KEY"] = self.secret("identity_store_key", "IDENTITY_STORE_KEY")
        return {**env, **values}


_VAR_REF = re.compile(r"\$\{(\w+)\}")


def active_credentials(template: str, environ: dict[str, str]) -> str:
    """Keep the channel blocks of a credentials file whose ${VARS} are all set in ``environ``."""
    import yaml

    data = yaml.safe_load(template) or {}
    kept: dict[str, object] = {}
    for channel, config in data.items():
        names = _VAR_REF.findall(yaml.safe_dump(config)) if config else []
        if all(environ.get(n) for n in names):
            kept[channel] = config
    return yaml.safe_dump(kept, sort_keys=False)


# --- Agent messages (call-centre handoff) ------------------------------------------------------


@dataclass(frozen=True)
class AgentChannelSettings:
    """What the channels' agent routes need in the Rasa process (bot/channels/agent.py).

    ``token`` is Rasa's own API token (RASA_AUTH_TOKEN, which bot/rasa_server.py gives to
    ``--auth-token``): the console that may use Rasa's API may also speak to citizens. Unset,
    every agent message is refused. The web chat's inbox holds a request up to
    ``inbox_wait_seconds`` (WEBCHAT_INBOX_WAIT_SECONDS) and reads the tracker store every
    ``inbox_poll_seconds`` (WEBCHAT_INBOX_POLL_SECONDS) meanwhile, so an agent's message recorded
    by another replica is seen too.
    """

    token: str = field(default="", repr=False)
    inbox_wait_seconds: float = 25.0
    inbox_poll_seconds: float = 1.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> AgentChannelSettings:
        env = dict(os.environ) if environ is None else environ

        def seconds(name: str, default: float) -> float:
            raw = (env.get(name) or "").strip()
            try:
                value = float(raw) if raw else default
            except ValueError:
                raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
            if value <= 0:
                raise SettingsError(f"{name} must be positive, got {raw!r}")
            return value

        return cls(
            token=env.get("RASA_AUTH_TOKEN") or "",
            inbox_wait_seconds=seconds("WEBCHAT_INBOX_WAIT_SECONDS", cls.inbox_wait_seconds),
            inbox_poll_seconds=seconds("WEBCHAT_INBOX_POLL_SECONDS", cls.inbox_poll_seconds),
        )
