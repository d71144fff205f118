"""Engines: SQLite (the embedded default) or PostgreSQL.

An engine is made in the process that uses it and never crosses a fork: `pars-ws serve` lets each
gunicorn worker build its own (no preload), and the gunicorn master never opens the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event


def sqlite_file(url: str) -> str | None:
    """The file an SQLite URL names; None for another database or an in-memory one."""
    if not url.startswith("sqlite") or "///" not in url:
        return None
    path = url.split("///", 1)[1]
    return path if path and path != ":memory:" else None


class WriteLock:
    """Writers to one SQLite file take turns through a lock file beside it (flock) before BEGIN
    IMMEDIATE: the kernel wakes the next writer the moment the lock is free, where SQLite's own busy
    handler would sleep it for 1 to 100 ms (bench/README.md: "writer lock").

    The file is opened in the process that writes, the first time it does (after any fork), and
    closed on exec; threads of one process take turns through a lock of their own (flock does not
    tell them apart)."""

    def __init__(self, database: str):
        self.path = database + ".write-lock"
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    @contextlib.contextmanager
    def held(self):
        with self._threads:
            if self._pid != os.getpid():  # a new process: a file of its own
                self._fd, self._pid = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600), os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
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
