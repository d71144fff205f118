"""Learner search, the activity learner summary and record histories (SQLAlchemy 2 Core), inside a
unit of work. Every query is scoped to one environment and provider."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from sqlalchemy import Connection, Select, and_, case, exists, func, or_, select

from ..domain.engine import learner_key
from ..domain.records import Status
from ..domain.search import (
    ActivitySummary,
    BatchOrigin,
    Event,
    LearnerResult,
    RawRequest,
    RecordHistory,
    SearchFilter,
    SummaryFilter,
)
from . import tables as t
from .audit import read_audit_copy
from .learner_store import record_from_row

_LR, _A, _REG = t.learner_records, t.activities, t.registrations


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)


def _search_query(environment: str, provider_pk: int, f: SearchFilter) -> Select:
    q = (
        select(_LR, _A.c.title.label("activity_title"), _A.c.provider_activity_id.label("provider_activity_id"))
        .select_from(
            _LR.outerjoin(_A, and_(_A.c.environment == _LR.c.environment, _A.c.activity_id == _LR.c.activity_id))
        )
        .where(_LR.c.environment == environment, _LR.c.provider_pk == provider_pk)
    )
    q = q.where(_LR.c.deleted_at.is_(None) if f.status is None else _LR.c.status == f.status.value)
    if f.title:
        q = q.where(_A.c.title.icontains(f.title, autoescape=True))
    if f.last_name:
        q = q.where(_LR.c.last_name.icontains(f.last_name, autoescape=True))
    if f.submitted_from:
        q = q.where(_LR.c.submitted_at >= _day_start(f.submitted_from))
    if f.submitted_to:  # the whole last day (UTC)
        q = q.where(_LR.c.submitted_at < _day_start(f.submitted_to + dt.timedelta(days=1)))
    if f.completed_from:
        q = q.where(_LR.c.completion_date >= f.completed_from)
    if f.completed_to:
        q = q.where(_LR.c.completion_date <= f.completed_to)
    if f.board:
        q = q.where(_LR.c.board == f.board)
    if f.activity_id:
        q = q.where(_LR.c.activity_id == f.activity_id)
    if f.provider_activity_id:
        q = q.where(func.lower(_A.c.provider_activity_id) == f.provider_activity_id.lower())
    if f.learner_id:
        # A learner reported by NPI is found by the NPI and by the registry learner's ID.
        q = q.where(or_(_LR.c.learner_key == learner_key(f.learner_id), _LR.c.npi == f.learner_id.strip()))
    if f.id_type:
        q = q.where(func.lower(_LR.c.learner_id_type) == f.id_type.lower())
    return q.order_by(_LR.c.submitted_at.desc(), _LR.c.id.desc())


def _learner_result(row) -> LearnerResult:
    return LearnerResult(record_from_row(row), row.activity_title, row.provider_activity_id)


def _summary_query(environment: str, provider_pk: int, f: SummaryFilter) -> Select:
    def count(status: Status):
        return func.coalesce(func.sum(case((_LR.c.status == status.value, 1), else_=0)), 0)

    counts = (
        select(
            _LR.c.activity_id,
            count(Status.SUBMITTED).label("submitted"),
            count(Status.ACCEPTED).label("accepted"),
            count(Status.REJECTED).label("rejected"),
            func.max(_LR.c.updated_at).label("last_updated"),
        )
        .where(_LR.c.environment == environment, _LR.c.provider_pk == provider_pk)
        .group_by(_LR.c.activity_id)
        .subquery()
    )
    q = (
        select(
            _A.c.id,
            _A.c.activity_id,
            _A.c.provider_activity_id,
            _A.c.title,
            _A.c.activity_type,
            counts.c.submitted,
            counts.c.accepted,
            counts.c.rejected,
            counts.c.last_updated,
        )
        .select_from(_A.outerjoin(counts, counts.c.activity_id == _A.c.activity_id))
        .where(
            _A.c.environment == environment, _A.c.provider_pk == provider_pk, _A.c.reporting_year == f.reporting_year
        )
    )
    if f.title:
        q = q.where(_A.c.title.icontains(f.title, autoescape=True))
    if f.provider_activity_id:
        q = q.where(func.lower(_A.c.provider_activity_id) == f.provider_activity_id.lower())
    if f.board:
        q = q.where(exists().where(_REG.c.activity_pk == _A.c.id, _REG.c.board == f.board))
    return q.order_by(_A.c.activity_id)


class SearchStore:
    def __init__(self, conn: Connection):
        self.conn = conn

    def _count(self, q: Select) -> int:
        return self.conn.execute(select(func.count()).select_from(q.order_by(None).subquery())).scalar_one()

    # -- learner search -------------------------------------------------------------------------
    def learners(
        self, environment: str, provider_pk: int, f: SearchFilter, *, limit: int, offset: int
    ) -> tuple[int, list[LearnerResult]]:
        """(how many records the filter finds, newest first: those from offset to offset + limit)."""
        q = _search_query(environment, provider_pk, f)
        rows = self.conn.execute(q.limit(limit).offset(offset)).all()
        return self._count(q), [_learner_result(r) for r in rows]

    def all_learners(self, environment: str, provider_pk: int, f: SearchFilter, chunk: int) -> Iterator[LearnerResult]:
        """Every record the filter finds, newest first, read `chunk` rows at a time."""
        rows = self.conn.execute(_search_query(environment, provider_pk, f).execution_options(yield_per=chunk))
        yield from map(_learner_result, rows)

    # -- activity learner summary ---------------------------------------------------------------
    def summaries(
        self, environment: str, provider_pk: int, f: SummaryFilter, *, limit: int | None = None, offset: int = 0
    ) -> tuple[int, list[ActivitySummary]]:
        q = _summary_query(environment, provider_pk, f)
        rows = self.conn.execute(q.limit(limit).offset(offset)).all()
        boards: dict[int, list[str]] = {}
        if rows:
            for r in self.conn.execute(
                select(_REG.c.activity_pk, _REG.c.board)
                .where(_REG.c.activity_pk.in_([row.id for row in rows]))
                .order_by(_REG.c.board)
            ):
                boards.setdefault(r.activity_pk, []).append(r.board)
        items = [
            ActivitySummary(
                activity_id=row.activity_id,
                provider_activity_id=row.provider_activity_id,
                title=row.title,
                activity_type=row.activity_type,
                boards=tuple(boards.get(row.id, ())),
                last_updated=row.last_updated,
                submitted=int(row.submitted or 0),
                accepted=int(row.accepted or 0),
                rejected=int(row.rejected or 0),
            )
            for row in rows
        ]
        return self._count(q), items

    # -- record history -------------------------------------------------------------------------
    def histories(self, environment: str, provider_pk: int, credit_id: str) -> list[RecordHistory]:
        """Every record (live or deleted) of this provider with that CreditID, oldest first."""
        ev, raw, b = t.record_events, t.raw_requests, t.batches
        rows = self.conn.execute(
            select(_LR)
            .where(_LR.c.environment == environment, _LR.c.provider_pk == provider_pk, _LR.c.credit_id == credit_id)
            .order_by(_LR.c.id)
        ).all()
        found = []
        for row in rows:
            events = [
                Event(e.status, e.at, e.code, e.note)
                for e in self.conn.execute(select(ev).where(ev.c.record_pk == row.id).order_by(ev.c.at, ev.c.id))
            ]
            request = batch = None
            if row.request_pk is not None:
                r = self.conn.execute(select(raw).where(raw.c.id == row.request_pk)).one()
                request = RawRequest(r.source, r.received_at, r.correlation_id, read_audit_copy(r.body))
            if row.batch_pk is not None:
                file_name = self.conn.execute(select(b.c.file_name).where(b.c.id == row.batch_pk)).scalar()
                batch = BatchOrigin(row.batch_pk, file_name, row.batch_row)
            found.append(RecordHistory(record_from_row(row), row.deleted_at, events, request, batch))
        return found
