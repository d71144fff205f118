"""Engines: SQLite (the embedded default) or PostgreSQL.

An engine is made in the process that uses it and never crosses a fork: `pars-ws serve` lets each
gunicorn worker build its own (no preload), and the gunicorn master never opens the database.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event


def sqlite_file(url: str) -> str | None:
    """The file an SQLite URL names; None for another database or an in-memory one."""
    if not url.startswith("sqlite") or "///" not in url:
        return None
    path = url.split("///", 1)[1]
    return path if path and path != ":memory:" else None


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    # A connection the server closed (a restart) is found on checkout and replaced.
    return create_engine(url, pool_pre_ping=True)


def _sqlite_engine(url: str) -> Engine:
    path = sqlite_file(url)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        # SQLAlchemy's documented recipe: the driver starts no transaction, _begin below does.
        dbapi_conn.isolation_level = None
        # WAL lets readers run beside the one writer; FULL makes every commit durable (a record
        # answered Accepted survives a power cut, as on PostgreSQL).
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=60000"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # A unit of work that writes takes the write lock at BEGIN (Store.transaction sets `write`):
        # one that read first and wrote later would fail at once ("database is locked") if another
        # writer committed in between.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine
