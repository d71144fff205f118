"""Engine creation: SQLite (embedded default, WAL) or PostgreSQL."""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url


class WriterLock:
    """Writers to one SQLite file take turns through a lock file next to it (flock), before BEGIN
    IMMEDIATE: the kernel wakes the next writer the moment the lock is free, where SQLite's own busy
    handler polls with sleeps of 1 to 100 ms (seen as 100+ ms tails with a few concurrent writers).
    SQLite's busy timeout still guards against writers that do not use this lock."""

    def __init__(self, path: str):
        self.path = path + ".write-lock"
        self._threads = threading.RLock()  # flock does not exclude threads sharing one descriptor
        self._depth = 0  # a nested write transaction in the same thread must not unlock the outer one
        self._fd: int | None = None
        self._pid = 0

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # opened after a fork: its own descriptor
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
            _checkpointer.watch(self.path[:-len(".write-lock")])
        return self._fd

    def __del__(self):
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)

    @contextlib.contextmanager
    def held(self):
        with self._threads:
            fd = self._descriptor()
            if self._depth == 0:
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(fd, fcntl.LOCK_UN)


# Pages a connection lets the WAL grow to before its own commit checkpoints (SQLite's default is
# 1,000): a safety net only, the background checkpointer keeps the WAL far smaller.
AUTOCHECKPOINT_PAGES = 20_000
CHECKPOINT_SECONDS = 0.2


class _Checkpointer:
    """Copies each written SQLite file's WAL back into the database from a background thread
    (PASSIVE: it waits for no reader or writer). SQLite otherwise does it inside the commit that
    crosses its threshold, so one call in ~100 paid 13 ms of copying and fsync."""

    def __init__(self):
        self._paths: set[str] = set()
        self._lock = threading.Lock()
        self._pid = 0
        # A fork (gunicorn's workers) may come while the thread holds the lock: the child's copy
        # would stay locked for ever.
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._lock = threading.Lock()

    def watch(self, path: str) -> None:
        with self._lock:
            self._paths.add(path)
            if self._pid != os.getpid():  # threads do not survive a fork: one per process
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="pars-sqlite-checkpoint", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(CHECKPOINT_SECONDS)
            with self._lock:
                paths = list(self._paths)
            for path in paths:
                if not os.path.exists(path):
                    with self._lock:
                        self._paths.discard(path)
                    continue
                try:
                    conn = sqlite3.connect(path, timeout=1, isolation_level=None)
                    try:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    finally:
                        conn.close()
                except sqlite3.Error as exc:  # busy or gone: the next round (or the safety net) copies it
                    logging.getLogger("pars_ws").debug("checkpoint of %s skipped: %s", path, exc)


_checkpointer = _Checkpointer()


def sqlite_file(url: str) -> str | None:
    """The file an SQLite URL names; None for another database or an in-memory one."""
    if not url.startswith("sqlite") or "///" not in url:
        return None
    path = url.split("///", 1)[1]
    return path if path and path != ":memory:" else None


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = sqlite_file(url)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60, "isolation_level": None})
        if path is not None:
            engine.pars_writer_lock = WriterLock(path)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # Sent on the driver's connection: SQLAlchemy's statement machinery cost more than the
            # BEGIN itself.
            write = conn.get_execution_options().get("write", True)
            conn.connection.driver_connection.execute(begin_statement("sqlite", write))

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    # No pre-ping (a round trip on every checkout): a connection found dead raises a disconnect,
    # SQLAlchemy then replaces the whole pool, and the SOAP endpoint runs such a call again.
    # No parallel plans: every statement here is a few index seeks, and once a table holds a million
    # rows the planner would start worker processes for them (seen: 3 ms of work took 13 ms).
    options = " ".join(filter(None, (make_url(url).query.get("options"), "-c max_parallel_workers_per_gather=0")))
    return create_engine(url, pool_size=5, max_overflow=10, connect_args={"options": options})


def begin_statement(dialect: str, write: bool) -> str | None:
    """What starts a transaction on the driver's connection (None: the driver starts one itself).
    SQLite takes the write lock up front for a writer: a deferred transaction that later writes
    fails at once with "database is locked" when another process wrote meanwhile."""
    if dialect != "sqlite":
        return None
    return "BEGIN IMMEDIATE" if write else "BEGIN"


def writer_lock(engine: Engine):
    """The context manager a write transaction runs in (SQLite files: see WriterLock)."""
    lock = getattr(engine, "pars_writer_lock", None)
    return lock.held() if lock is not None else contextlib.nullcontext()
