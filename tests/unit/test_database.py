"""The engine and unit of work: SQLite's settings and transactions, PostgreSQL's dead connections."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import text

from pars_ws.adapters.database import make_engine, sqlite_file
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


def test_sqlite_runs_in_wal_mode_and_every_commit_is_durable(sqlite_store):
    _, store = sqlite_store
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def _other_writer(path) -> sqlite3.Connection:
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    return other


def test_a_write_transaction_takes_the_write_lock_at_begin_and_a_read_does_not(sqlite_store):
    path, store = sqlite_store
    other = _other_writer(path)
    try:
        with store.transaction(write=False) as uow:
            uow.ping()
            other.execute("BEGIN IMMEDIATE")  # a reader does not stand in a writer's way
            other.execute("ROLLBACK")
        with store.transaction() as uow:
            uow.ping()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()


def test_a_writer_that_reads_first_is_not_refused_when_another_writes_meanwhile(sqlite_store):
    """A deferred transaction that read before another process committed could not write after it
    ("database is locked" at once); a unit of work that writes holds the lock from BEGIN instead."""
    path, store = sqlite_store
    other = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    errors = []

    def write_meanwhile():
        try:
            other.execute("INSERT INTO t (body) VALUES ('other')")
        except sqlite3.Error as exc:
            errors.append(exc)

    try:
        with store.transaction() as uow:
            conn = uow.learners.conn
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
            meanwhile = threading.Thread(target=write_meanwhile)
            meanwhile.start()
            meanwhile.join(0.5)
            assert meanwhile.is_alive()  # waiting for this unit of work's lock
            conn.exec_driver_sql("INSERT INTO t (body) VALUES ('mine')")
        meanwhile.join(30)
        assert not errors
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT body FROM t ORDER BY id").scalars().all() == ["mine", "other"]
    finally:
        other.close()


def test_a_writing_unit_of_work_holds_the_lock_file_and_a_reading_one_does_not(sqlite_store):
    path, store = sqlite_store
    lock_file = f"{path}.write-lock"
    with store.transaction() as uow:
        uow.ping()
        assert not lock_is_free(lock_file)
    assert lock_is_free(lock_file)
    with store.transaction(write=False) as uow:
        uow.ping()
        assert lock_is_free(lock_file)


def test_threads_of_one_process_take_turns(sqlite_store):
    _, store = sqlite_store
    inside, overlapped = [0], []

    def write(n):
        with store.transaction() as uow:
            inside[0] += 1
            overlapped.append(inside[0] > 1)
            uow.learners.conn.exec_driver_sql("INSERT INTO t (body) VALUES (?)", (f"thread {n}",))
            time.sleep(0.01)
            inside[0] -= 1

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert overlapped == [False] * 8


@pytest.mark.parametrize("unit", ["transaction", "reads_then_writes"])
def test_a_failed_unit_of_work_leaves_nothing_and_frees_the_lock(sqlite_store, unit):
    path, store = sqlite_store
    with pytest.raises(RuntimeError):
        with getattr(store, unit)() as uow:
            uow.start_writing()  # nothing to do in a plain transaction
            uow.learners.conn.exec_driver_sql("INSERT INTO t (body) VALUES ('rolled back')")
            raise RuntimeError("a use case failed")
    assert lock_is_free(f"{path}.write-lock")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0


def test_a_unit_of_work_that_reads_then_writes_takes_the_writers_turn_only_to_write(sqlite_store):
    """What a save reads first (sign-in, activities, registry) does not keep other writers waiting;
    what it reads after start_writing() and what it writes are inside the turn."""
    path, store = sqlite_store
    lock_file = f"{path}.write-lock"
    with store.transaction() as uow:  # the lock file is made by the process's first writer
        uow.ping()
    with store.reads_then_writes() as uow:  # one that never writes takes no turn
        uow.ping()
        assert lock_is_free(lock_file)
    other = _other_writer(path)
    try:
        with store.reads_then_writes() as uow:
            conn = uow.learners.conn
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
            assert lock_is_free(lock_file)
            other.execute("BEGIN IMMEDIATE")  # another writer commits meanwhile
            other.execute("INSERT INTO t (body) VALUES ('other')")
            other.execute("COMMIT")
            uow.start_writing()
            assert not lock_is_free(lock_file)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1  # the writing part sees it
            conn.exec_driver_sql("INSERT INTO t (body) VALUES ('mine')")
        assert lock_is_free(lock_file)
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT body FROM t ORDER BY id").scalars().all() == ["other", "mine"]
    finally:
        other.close()


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL runs only when PARS_TEST_DATABASE_URL is set")
def test_a_unit_of_work_that_reads_then_writes_is_one_transaction_on_postgresql():
    engine = make_engine(PG_URL)
    try:
        with Store(engine).reads_then_writes() as uow:
            before = uow.learners.conn.execute(text("SELECT txid_current()")).scalar()
            uow.start_writing()
            assert uow.learners.conn.execute(text("SELECT txid_current()")).scalar() == before
    finally:
        engine.dispose()


def test_the_file_an_sqlite_url_names():
    assert sqlite_file("sqlite:////srv/pars/pars.db") == "/srv/pars/pars.db"
    assert sqlite_file("sqlite:///relative.db") == "relative.db"
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql://u@h/db") is None


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL runs only when PARS_TEST_DATABASE_URL is set")
def test_a_postgresql_connection_the_server_closed_is_replaced_on_checkout():
    engine = make_engine(PG_URL)
    admin = make_engine(PG_URL)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with admin.connect() as conn:  # as a server restart would
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        with engine.connect() as conn:  # the pooled connection is dead: pre-ping replaces it
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()
        admin.dispose()
