"""Statements of the SOAP and batch hot paths, compiled once and run on the driver's own cursor.

A Core execute spent 50-90 µs of Python per statement (cache key, parameter and result
processing, events) around 10-30 µs of SQLite work: most of a one-record SaveLearnerActivity.
A Prepared statement keeps what SQLAlchemy compiled (SQL text, bind and result processors of
the column types, per dialect) and errors still reach callers as SQLAlchemy's exceptions, so
values read and written are exactly those of a Core execute. It runs inside the Connection's
transaction, on the same DBAPI connection.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from collections import deque, namedtuple
from operator import itemgetter
from typing import Any, Sequence

from sqlalchemy import Connection, Engine, event
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ClauseElement

from .database import begin_statement


def bind_processor(type_, dialect):
    """The type's bind processor, except that SQLite's DATETIME and DATE, in their default storage
    formats, are written by the types' own C isoformat(): the same text as SQLAlchemy's %-format of
    a dict of seven (three) fields, at a fraction of the cost (several per saved record)."""
    slow = type_.bind_processor(dialect)
    if slow is None or dialect.name != "sqlite":
        return slow
    if isinstance(type_, sqlite.DATETIME) and type_._storage_format == sqlite.DATETIME._storage_format:
        def process(value):
            # "YYYY-MM-DD HH:MM:SS.ffffff": the offset of an aware value is cut, as the format drops it.
            return value.isoformat(" ", "microseconds")[:26] if type(value) is dt.datetime else slow(value)
        return process
    if isinstance(type_, sqlite.DATE) and type_._storage_format == sqlite.DATE._storage_format:
        def process(value):
            return value.isoformat() if type(value) is dt.date else slow(value)
        return process
    return slow


# An array parameter (`CAST(:name AS TYPE[])`, as the statements that take many rows at once write
# them) goes to PostgreSQL in binary: in text, psycopg quotes and escapes every element in Python,
# which cost 22 us of client CPU per row of a 250-record chunk's insert; in binary, 6.
_ARRAY_PARAMETER = re.compile(r"CAST\(%\((\w+)\)s AS ([^()\[\]]+\[\])\)")


class _Compiled:
    def __init__(self, stmt: ClauseElement, dialect, keys: Sequence[str] | None, writes: bool | None = None):
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None)
        self.writes = bool(compiled.isinsert or compiled.isupdate or compiled.isdelete) if writes is None else writes
        if ("POSTCOMPILE" in compiled.string or getattr(compiled, "insert_prefetch", None)
                or getattr(compiled, "update_prefetch", None)
                or any(bind.callable is not None for bind in compiled.binds.values())):
            raise ValueError("prepared statements take no expanding parameters, Python-side defaults "
                             "or values computed per execution")
        self.sql = compiled.string
        if dialect.name == "postgresql":
            self.sql = _ARRAY_PARAMETER.sub(r"CAST(%(\1)b AS \2)", self.sql)
        self.positional = dialect.paramstyle in ("qmark", "numeric", "format")
        self.names = tuple(compiled.positiontup or ()) if self.positional else None
        # Values the statement itself carries (`.values(status="Deleted")`), under the caller's.
        self.defaults = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        self.bind = {name: proc for name, bind in compiled.binds.items()
                     if (proc := bind_processor(bind.type.dialect_impl(dialect), dialect)) is not None}
        columns = list(getattr(stmt, "exported_columns", ()))
        self.row = namedtuple("Row", [c.key for c in columns]) if columns else None
        self.types = [c.type.dialect_impl(dialect) for c in columns]
        self.dialect = dialect
        self.results: list | None = None  # built from the first cursor.description (PostgreSQL's type codes)
        if self.positional:
            # The values in the driver's order, picked in C; then the few that need converting.
            self.pick = (itemgetter(*self.names) if len(self.names) > 1
                         else (lambda p: (p[self.names[0]],)) if self.names else (lambda p: ()))
            self.converted = [(i, self.bind[n]) for i, n in enumerate(self.names) if n in self.bind]

    def parameters(self, params: dict) -> Any:
        if self.defaults:
            params = {**self.defaults, **params}
        if self.positional:
            values = self.pick(params)
            if not self.converted:
                return values
            values = list(values)
            for i, convert in self.converted:
                values[i] = convert(values[i])
            return values
        bind = self.bind
        return {n: bind[n](v) if n in bind else v for n, v in params.items()} if bind else params

    def result_processors(self, cursor) -> list:
        # From the first run's description: psycopg builds it anew, column by column, on each read.
        if self.results is None:
            self.results = [t.result_processor(self.dialect, d[1]) for t, d in zip(self.types, cursor.description)]
        return self.results


class Prepared:
    """One statement; `keys` names the parameters an INSERT is compiled for (every column it fills);
    `writes` says whether a text() statement writes (Core statements tell by themselves)."""

    def __init__(self, stmt: ClauseElement, keys: Sequence[str] | None = None, *, writes: bool | None = None):
        self.stmt = stmt
        self.keys = keys
        self.writes = writes
        self._by_dialect: dict[str, _Compiled] = {}

    def _for(self, conn: Connection) -> _Compiled:
        compiled = self._by_dialect.get(conn.dialect.name)
        if compiled is None:
            compiled = self._by_dialect[conn.dialect.name] = _Compiled(self.stmt, conn.dialect, self.keys, self.writes)
        return compiled

    def rows(self, conn: Connection, params: dict) -> list:
        """Every row the statement returns, as named tuples of the statement's column keys."""
        c = self._for(conn)
        cursor, raw = _run(conn, c, c.parameters(params))
        try:
            fetched = cursor.fetchall()
            procs = c.result_processors(cursor)
        except Exception as exc:  # noqa: BLE001 - wrapped and re-raised as SQLAlchemy would
            conn._handle_dbapi_exception(exc, c.sql, raw, cursor, None)
        finally:
            cursor.close()
        row = c.row
        if not any(procs):
            return [row._make(r) for r in fetched]
        return [row._make([p(v) if p else v for p, v in zip(procs, r)]) for r in fetched]

    def first(self, conn: Connection, params: dict):
        found = self.rows(conn, params)
        return found[0] if found else None

    def run(self, conn: Connection, params: dict) -> int:
        """Run a statement that returns no rows; the number of rows it changed."""
        c = self._for(conn)
        cursor, _ = _run(conn, c, c.parameters(params))
        count = cursor.rowcount
        cursor.close()
        return count

    def insert(self, conn: Connection, params: dict) -> int | None:
        """Run an INSERT on SQLite: the new row's rowid, or None when ON CONFLICT DO NOTHING skipped
        it. Cheaper than RETURNING it (no result rows to step through, fetch and build)."""
        c = self._for(conn)
        cursor, _ = _run(conn, c, c.parameters(params))
        pk = cursor.lastrowid if cursor.rowcount == 1 else None
        cursor.close()
        return pk

    def run_many(self, conn: Connection, many: Sequence[dict]) -> None:
        c = self._for(conn)
        cursor, _ = _run(conn, c, [c.parameters(p) for p in many], many=True)
        cursor.close()


class DriverConnection:
    """A transaction on a pooled DBAPI connection with no SQLAlchemy Connection around it, for
    statements that are all Prepared (SaveLearnerActivity's): checking a Connection out, beginning
    and committing through SQLAlchemy's events cost about as much as that call's statements.
    Errors come out as SQLAlchemy's, a dead connection invalidated as SQLAlchemy would.

    On PostgreSQL the connection is in autocommit while it is ours: at READ COMMITTED every statement
    reads its own snapshot inside a transaction or not, so reads need no BEGIN. The first write
    statement sends it, unless the caller declared that write the transaction's only one (lone_write):
    then it commits by itself, which saves the BEGIN and COMMIT round trips of a one-record save (two
    of its five)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect
        self.pid = os.getpid()
        self.autocommit = self.dialect.name == "postgresql"
        self._lone, self._writes = False, 0
        try:
            self.connection = engine.raw_connection()  # .driver_connection, as on a Connection
            if self.autocommit:
                self.connection.driver_connection.autocommit = True
        except self.dialect.loaded_dbapi.Error as exc:  # as Engine.connect() raises it
            Connection._handle_dbapi_exception_noconnection(exc, self.dialect, engine)

    def begin(self) -> None:
        self._lone, self._writes = False, 0
        statement = begin_statement(self.dialect.name, write=True)
        if statement is not None:
            self._call(lambda: self.connection.driver_connection.execute(statement), statement)

    def lone_write(self) -> None:
        """The next write statement is this transaction's last: it may commit by itself."""
        self._lone = True

    def before_write(self) -> None:
        if not self.autocommit:
            return
        self._writes += 1
        if self._lone and self._writes > 1:
            raise RuntimeError("a write after the one declared the transaction's only one")
        if self._writes == 1 and not self._lone:
            self._call(lambda: self.connection.driver_connection.execute("BEGIN"), "BEGIN")

    def commit(self) -> None:
        # psycopg sends COMMIT only inside a transaction: none after reads and a lone write.
        self._call(self.connection.driver_connection.commit, "COMMIT")

    def rollback(self) -> None:
        if self.connection.is_valid:
            self.connection.driver_connection.rollback()

    def close(self) -> None:
        if self.autocommit and self.connection.is_valid:
            try:  # back to what the pool's other users expect
                self.connection.driver_connection.autocommit = False
            except self.dialect.loaded_dbapi.Error:  # still in a transaction: the pool discards it
                self.connection.invalidate()
        self.connection.close()

    def _call(self, fn, statement: str):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - wrapped as SQLAlchemy would
            self._handle_dbapi_exception(exc, statement, None, None, None)

    def _handle_dbapi_exception(self, exc, statement, params, cursor, _context):
        dbapi_error = self.dialect.loaded_dbapi.Error
        if not isinstance(exc, dbapi_error):
            raise exc
        disconnect = self.dialect.is_disconnect(exc, self.connection.driver_connection, cursor)
        if disconnect:
            # The server went away: this connection is closed, and every pooled one as old as it is
            # replaced at its next checkout (what SQLAlchemy's Connection does on a disconnect).
            self.engine.pool._invalidate(self.connection, exc)
        raise DBAPIError.instance(statement, params, exc, dbapi_error, connection_invalidated=disconnect,
                                  dialect=self.dialect) from exc


class DriverConnections:
    """Where one engine's driver transactions get their connection: the one the last transaction
    committed on, kept for the next, else a new one from the pool. Checking a connection out of
    SQLAlchemy's pool and back in cost about 3% of a one-record save's CPU. Only a connection whose
    transaction committed is kept, only in the process that opened it; engine.dispose() closes it."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._kept: deque[DriverConnection] = deque()  # append() and pop() are atomic across threads
        self._inherited: list[DriverConnection] = []  # a parent's, after a fork: never used nor closed
        event.listen(engine, "engine_disposed", self._close_kept)

    def take(self) -> DriverConnection:
        conn = self._pop_own()
        return conn if conn is not None else DriverConnection(self.engine)

    def give_back(self, conn: DriverConnection, committed: bool) -> None:
        if committed and not self._kept and conn.connection.is_valid:
            self._kept.append(conn)
        else:
            conn.close()  # to the pool, which resets (rolls back) or discards it

    def _close_kept(self, _engine) -> None:
        while (conn := self._pop_own()) is not None:
            conn.close()

    def _pop_own(self) -> DriverConnection | None:
        """A kept connection this process opened, or None."""
        while True:
            try:
                conn = self._kept.pop()
            except IndexError:
                return None
            if conn.pid == os.getpid():
                return conn
            # A parent's: closing it would end the parent's session (PostgreSQL) or share its file handle.
            self._inherited.append(conn)


def _run(conn: Connection | DriverConnection, c: _Compiled, params, many: bool = False):
    if c.writes and type(conn) is DriverConnection:
        conn.before_write()
    # Connection.connection is the pooled DBAPI connection of the Connection's own transaction.
    cursor = conn.connection.driver_connection.cursor()
    try:
        (cursor.executemany if many else cursor.execute)(c.sql, params)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy wraps it (and invalidates a dead connection)
        cursor.close()
        conn._handle_dbapi_exception(exc, c.sql, params, cursor, None)
    return cursor, params
