"""The engine and unit of work around each database: SQLite's writer lock file and background WAL
checkpoints (fork-safe), PostgreSQL's connection settings and one-statement reads."""
from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import text

from pars_ws.adapters import database
from pars_ws.adapters.database import make_engine
from pars_ws.adapters.store import Store
from tests.conftest import PG_URL
from tests.support import lock_is_free


@pytest.fixture()
def sqlite_store(tmp_path):
    path = tmp_path / "pars.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    yield path, Store(engine)
    engine.dispose()


def test_a_write_transaction_holds_the_lock_file_and_a_read_does_not(sqlite_store):
    path, store = sqlite_store
    lock_file = f"{path}.write-lock"
    with store.transaction() as repo:
        repo.conn.exec_driver_sql("INSERT INTO t (body) VALUES ('x')")
        assert not lock_is_free(lock_file)
    assert lock_is_free(lock_file)
    with store.transaction(write=False) as repo:
        repo.conn.exec_driver_sql("SELECT count(*) FROM t")
        assert lock_is_free(lock_file)


def test_the_wal_is_copied_into_the_database_in_the_background(sqlite_store):
    path, store = sqlite_store
    with store.transaction(write=False) as repo:
        assert repo.conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == database.AUTOCHECKPOINT_PAGES
    before = path.stat().st_size
    with store.transaction() as repo:  # ~2 MB, far below the connections' own checkpoint threshold
        repo.conn.exec_driver_sql("INSERT INTO t (body) VALUES " + ", ".join(["(randomblob(1000))"] * 2000))
    # Committed to the WAL (the background thread may already be copying it: no assertion on the file).
    assert path.with_name(path.name + "-wal").stat().st_size > 1_000_000
    deadline = time.monotonic() + 30
    # The copy writes the file page by page: wait for all of it, not for the first page.
    while path.stat().st_size <= before + 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.stat().st_size > before + 1_000_000


def test_a_child_forked_while_the_checkpointer_holds_its_lock_can_write(sqlite_store):
    _, store = sqlite_store
    with store.transaction() as repo:  # this process's checkpointer is running
        repo.conn.exec_driver_sql("INSERT INTO t (body) VALUES ('parent')")
    with database._checkpointer._lock:  # as if the fork came in the middle of a checkpoint round
        pid = os.fork()
        if pid == 0:
            try:
                store.engine.dispose(close=False)  # the parent's pooled connections are not the child's
                with store.transaction() as repo:
                    repo.conn.exec_driver_sql("INSERT INTO t (body) VALUES ('child')")
                os._exit(0)
            except BaseException:
                os._exit(1)
    deadline = time.monotonic() + 30
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:  # stuck on the lock it inherited locked
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert done[0] == pid and os.waitstatus_to_exitcode(done[1]) == 0
    with store.transaction(write=False) as repo:
        assert repo.conn.exec_driver_sql("SELECT body FROM t ORDER BY id").scalars().all() == ["parent", "child"]


pg = pytest.mark.skipif(not PG_URL, reason="PostgreSQL runs only when PARS_TEST_DATABASE_URL is set")


@pg
def test_postgresql_plans_without_parallel_workers_and_keeps_the_urls_own_options():
    separator = "&" if "?" in PG_URL else "?"
    engine = make_engine(f"{PG_URL}{separator}options=-c%20statement_timeout%3D5000")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar() == "0"
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "5s"
    finally:
        engine.dispose()


@pg
def test_postgresql_one_statement_reads_send_no_begin():
    engine = make_engine(PG_URL)
    try:
        store = Store(engine)
        for one_statement, status in ((True, "IDLE"), (False, "INTRANS")):
            with store.transaction(write=False, one_statement=one_statement) as repo:
                repo.conn.execute(text("SELECT 1"))
                assert repo.conn.connection.driver_connection.info.transaction_status.name == status
    finally:
        engine.dispose()
