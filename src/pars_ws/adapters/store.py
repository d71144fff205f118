"""The unit of work: one connection, one transaction, committed when the block ends without error.

    with store.transaction() as uow:
        uow.learners.apply(...)
        uow.batches.advance(...)

Each repository reads and writes through the unit of work's connection, so everything a use case
does commits or rolls back together.

A save reads first what saves do not change (the credential, activities, the board registry), then
the rest and writes: `Store.reads_then_writes` and `uow.start_writing()` between the two parts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from functools import cached_property

from sqlalchemy import Connection, Engine, text

from .account_store import AccountRepository
from .batch_store import BatchStore
from .database import WriteLock, sqlite_file
from .learner_store import LearnerRepository
from .outbox_store import OutboxStore
from .rems_store import RemsStore
from .review_store import ReviewStore
from .search_store import SearchStore


class UnitOfWork:
    def __init__(self, conn: Connection, start_writing: Callable[[], None] | None = None):
        self._conn = conn
        self._start_writing = start_writing

    def start_writing(self) -> None:
        """What follows may write (Store.reads_then_writes); nothing to do in any other unit of work."""
        if self._start_writing is not None:
            self._start_writing()
            self._start_writing = None

    @cached_property
    def learners(self) -> LearnerRepository:
        return LearnerRepository(self._conn)

    @cached_property
    def accounts(self) -> AccountRepository:
        return AccountRepository(self._conn)

    @cached_property
    def batches(self) -> BatchStore:
        return BatchStore(self._conn)

    @cached_property
    def review(self) -> ReviewStore:
        return ReviewStore(self._conn)

    @cached_property
    def search(self) -> SearchStore:
        return SearchStore(self._conn)

    @cached_property
    def rems(self) -> RemsStore:
        return RemsStore(self._conn)

    @cached_property
    def outbox(self) -> OutboxStore:
        return OutboxStore(self._conn)

    def ping(self) -> None:
        self._conn.execute(text("SELECT 1"))


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        database = sqlite_file(engine.url.render_as_string(hide_password=False))
        self._write_lock = WriteLock(database) if database else None

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[UnitOfWork]:
        """`write=False` for a transaction that only reads (on SQLite it takes no write lock)."""
        with self._write_lock.held() if write and self._write_lock else nullcontext():
            with self.engine.connect() as conn:
                conn = conn.execution_options(write=write)
                with conn.begin():
                    yield UnitOfWork(conn)

    @contextmanager
    def reads_then_writes(self) -> Iterator[UnitOfWork]:
        """A unit of work that reads until `uow.start_writing()`, then reads and writes. On SQLite, where
        writers take turns for a whole transaction, the reads before start_writing() are a read
        transaction of their own, outside the turn, so what they read may change before the writing
        part begins: as on PostgreSQL, where it is one transaction whose statements each see what was
        committed when they ran (READ COMMITTED)."""
        if self._write_lock is None:
            with self.transaction() as uow:
                yield uow
            return
        # The connection closes (rolling back what is not committed) before the turn is given up.
        with ExitStack() as turn, self.engine.connect() as conn:

            def start_writing() -> None:
                conn.commit()
                turn.enter_context(self._write_lock.held())
                conn.execution_options(write=True)
                conn.begin()

            conn.execution_options(write=False)
            conn.begin()
            yield UnitOfWork(conn, start_writing)
            conn.commit()
