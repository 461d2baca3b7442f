"""Engines and transactions for any SQLAlchemy URL (SQLite file by default, PostgreSQL by URL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session

from console.models import Base


def make_engine(url: str) -> Engine:
    """An engine whose transactions run one at a time for writes: SQLite takes its write lock
    at BEGIN (so two processes cannot both number a version 5), others use SERIALIZABLE."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, future=True, pool_pre_ping=True, isolation_level="SERIALIZABLE")
    database = parsed.database or ""
    if not database or database == ":memory:":
        raise ValueError("the content store needs a file (several threads and processes share it)")
    if not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, future=True, connect_args={"check_same_thread": False, "timeout": 15}
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        dbapi_connection.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_schema(engine: Engine) -> None:
    Base.metadata.create_all(engine)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: everything commits together or nothing does."""
    with Session(engine, future=True, expire_on_commit=False) as session, session.begin():
        yield session
