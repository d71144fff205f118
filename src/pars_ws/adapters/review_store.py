"""Storage side of the board review (SQLAlchemy 2 Core), inside a caller's transaction: which Submitted
records are due, and their new status with its event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Connection, and_, insert, or_, select, update

from ..domain.records import Status
from . import tables as t


def due(
    environment: str,
    boards: Sequence[str],
    submitted_before: dt.datetime,
    now: dt.datetime,
    provider_pk: int | None = None,
):
    """The condition a Submitted record due for review meets (of one provider, if given): submitted
    before the cutoff and not held (sandbox hold=N) past now."""
    lr = t.learner_records
    # review_after is read from the rows ix_learner_records_due finds: held records are few.
    conds = [
        lr.c.environment == environment,
        lr.c.status == Status.SUBMITTED.value,
        lr.c.board.in_(boards),
        lr.c.deleted_at.is_(None),
        lr.c.submitted_at <= submitted_before,
        or_(lr.c.review_after.is_(None), lr.c.review_after <= now),
    ]
    if provider_pk is not None:
        conds.append(lr.c.provider_pk == provider_pk)
    return and_(*conds)


def due_chunk(condition, *, postgresql: bool, limit: int):
    """The next `limit` due records, oldest first, with the registry's answer for each learner."""
    lr, rl = t.learner_records, t.registry_learners
    query = (
        select(
            lr.c.id,
            lr.c.provider_pk,
            lr.c.credit_id,
            lr.c.activity_id,
            lr.c.board,
            lr.c.learner_id,
            lr.c.first_name,
            lr.c.last_name,
            lr.c.completion_date,
            rl.c.review_reject_code,
        )
        .select_from(
            lr.outerjoin(
                rl,
                and_(
                    rl.c.environment == lr.c.environment, rl.c.board == lr.c.board, rl.c.learner_key == lr.c.learner_key
                ),
            )
        )
        # By submission time, read from ix_learner_records_due: ordered by id, SQLite's planner
        # walked the whole table in id order to reach the newest (due) records.
        .where(condition)
        .order_by(lr.c.submitted_at, lr.c.id)
        .limit(limit)
    )
    # PostgreSQL: concurrent workers take disjoint rows; SQLite: the write lock taken at BEGIN.
    return query.with_for_update(of=lr, skip_locked=True) if postgresql else query


class ReviewStore:
    def __init__(self, conn: Connection):
        self.conn = conn

    def any_due(self, condition) -> bool:
        lr = t.learner_records
        return self.conn.execute(select(lr.c.id).where(condition).limit(1)).first() is not None

    def take_due(self, condition, limit: int) -> list:
        return self.conn.execute(
            due_chunk(condition, postgresql=self.conn.dialect.name == "postgresql", limit=limit)
        ).all()

    def set_status(self, record_pks: Sequence[int], status: Status, code: int | None, now: dt.datetime) -> None:
        """The new status of these records, and one event each."""
        lr = t.learner_records
        self.conn.execute(
            update(lr).where(lr.c.id.in_(record_pks)).values(status=status.value, reject_code=code, updated_at=now)
        )
        self.conn.execute(
            insert(t.record_events),
            [dict(record_pk=pk, status=status.value, at=now, code=code, note="board review") for pk in record_pks],
        )
