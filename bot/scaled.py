"""Scaled mode's extra processes: PostgreSQL, Redis and HAProxy, from Debian's packages.

Each is a plain process with its data and configuration under ``var/`` and listens on loopback
(``BIND_HOST``) on a non-default port. The Rasa replicas and action servers are the same
commands as in embedded mode on ports of their own; HAProxy takes the usual ports in front of
them. Only the endpoints (bot/endpoints.scaled.yml) and the environment differ.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bot.settings import Settings

# Which HTTP header or JSON field names a conversation, by channel: HAProxy sends all messages
# of one conversation to the same replica while it is up (the Redis lock store keeps them in
# order even when they are not). Web chat: its signed session; REST: the sender; Telegram: the
# chat; Zalo and Messenger: the sender's id.
CONVERSATION_KEYS = (
    "req.hdr(authorization)",
    "req.body,json_query('$.sender')",
    "req.body,json_query('$.message.chat.id')",
    "req.body,json_query('$.callback_query.message.chat.id')",
    "req.body,json_query('$.sender.id')",
)


def executable(name: str) -> str:
    """A server binary from Debian's packages (PostgreSQL's live outside PATH)."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise RuntimeError(
            f"{name} is not installed: `make services` installs PostgreSQL, Redis and HAProxy "
            f"(apt-get install postgresql redis-server haproxy)"
        )
    return found


def _as_postgres_user() -> dict[str, Any]:
    """PostgreSQL refuses to run as root: as root, run it as Debian's `postgres` user."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam("postgres")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(path, user.pw_uid, user.pw_gid)


def postgres_command(settings: Settings) -> list[str]:
    assert settings.postgres_dir is not None
    data = str(settings.postgres_dir)
    return [
        executable("postgres"),
        "-D",
        data,
        "-p",
        str(settings.postgres_port),
        "-h",
        settings.postgres_host,
        "-k",
        data,  # the Unix socket beside the data, not in /var/run/postgresql
        "-c",
        "max_connections=100",
        "-c",
        "fsync=on",
    ]


def init_postgres(settings: Settings, password: str) -> None:
    """initdb once (as the `postgres` user when we are root), password authentication only."""
    data = settings.postgres_dir
    assert data is not None
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    os.chmod(data, 0o700)
    _chown_postgres(data)
    pwfile = data.parent / f".{data.name}.pw"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(password)
    _chown_postgres(pwfile)
    try:
        subprocess.run(
            [
                executable("initdb"),
                "-D",
                str(data),
                "-U",
                settings.postgres_user,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            **_as_postgres_user(),
        )
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(
            f"initdb failed in {data}: {exc.stderr.decode(errors='replace')[-400:]}\n"
            f"(as root, the folder's parents must be readable by the postgres user: set "
            f"POSTGRES_DATA_DIR to such a place)"
        ) from exc
    finally:
        pwfile.unlink(missing_ok=True)


def _postgres_connect(settings: Settings, password: str, db: str = "postgres") -> Any:
    import psycopg2

    return psycopg2.connect(
        host=settings.postgres_host,
        port=settings.postgres_port,
        user=settings.postgres_user,
        password=password,
        dbname=db,
        connect_timeout=2,
    )


def postgres_ready(settings: Settings, password: str) -> Callable[[httpx.Client], bool]:
    def check(_client: httpx.Client) -> bool:
        import psycopg2

        try:
            _postgres_connect(settings, password).close()
        except psycopg2.Error:
            return False
        return True

    return check


def create_database(settings: Settings, password: str) -> None:
    """The tracker database, made once before any replica connects (not by N racing replicas)."""
    connection = _postgres_connect(settings, password)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.postgres_db,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{settings.postgres_db}"')
    finally:
        connection.close()


def redis_config(settings: Settings, password: str) -> str:
    """Locks and short-lived state only: no persistence, loopback, a password."""
    return "\n".join(
        [
            f"bind {settings.redis_host}",
            f"port {settings.redis_port}",
            f"requirepass {password}",
            'save ""',
            "appendonly no",
            f"dir {settings.var_dir / 'redis'}",
            "protected-mode yes",
            "loglevel notice",
            "",
        ]
    )


def write_redis_config(settings: Settings, password: str) -> Path:
    folder = settings.var_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "redis.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the password
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(redis_config(settings, password))
    return path


def redis_ready(settings: Settings, password: str) -> Callable[[httpx.Client], bool]:
    def check(_client: httpx.Client) -> bool:
        import redis

        try:
            return bool(
                redis.Redis(
                    host=settings.redis_host,
                    port=settings.redis_port,
                    password=password,
                    socket_timeout=2,
                ).ping()
            )
        except redis.RedisError:
            return False

    return check


def haproxy_config(settings: Settings) -> str:
    """Rasa replicas by conversation (consistent hash), action servers by least connections."""
    host = settings.host
    conversation = "\n".join(
        f"    http-request set-var(txn.conversation) {key} if !{{ var(txn.conversation) -m found }}"
        for key in CONVERSATION_KEYS
    )
    rasa_servers = "\n".join(
        f"    server rasa-{i} {host}:{port} check"
        for i, port in enumerate(settings.rasa_replica_ports, 1)
    )
    action_servers = "\n".join(
        f"    server actions-{i} {host}:{port} check"
        for i, port in enumerate(settings.action_replica_ports, 1)
    )
    return f"""# Written by the launcher at every start (bot/scaled.py); edits are lost.
global
    maxconn 4096
    log stdout format raw local0 notice

defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 2s
    timeout client 90s
    timeout server 90s
    timeout http-request 10s
    # A replica that refuses the connection or dies before answering: try another one.
    retries 2
    option redispatch 1
    retry-on conn-failure empty-response
    # A busy Rasa answers its health check late: 5 s to answer, out after 3 misses (a 1 s
    # check took the only replica out under load, and every message got a 503).
    timeout check 5s
    default-server inter 2s fall 3 rise 1

frontend rasa
    bind {host}:{settings.rasa_port}
    option http-buffer-request
{conversation}
    default_backend rasa_replicas

backend rasa_replicas
    balance hash var(txn.conversation)
    hash-type consistent
    option httpchk GET /
{rasa_servers}

frontend actions
    bind {host}:{settings.actions_port}
    default_backend action_servers

backend action_servers
    balance leastconn
    option httpchk GET /health
{action_servers}
"""


def write_haproxy_config(settings: Settings) -> Path:
    path = settings.var_dir / "haproxy.cfg"
    path.write_text(haproxy_config(settings), encoding="utf-8")
    check = subprocess.run(
        [executable("haproxy"), "-c", "-q", "-f", str(path)], capture_output=True, text=True
    )
    if check.returncode != 0:
        raise RuntimeError(f"haproxy refused {path}: {check.stdout}{check.stderr}")
    return path


POSTGRES_STOP_SIGNAL = signal.SIGINT  # "fast" shutdown: SIGTERM waits for every client to leave
