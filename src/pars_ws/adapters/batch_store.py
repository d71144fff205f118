"""Storage of uploaded batches and their per-row results (SQLAlchemy 2 Core), inside a caller's transaction.

Reads by batch are scoped to one provider and environment (`batch`, `history`), so one provider never
sees another's batch; the reads that take a batch ID alone (`content`, `failed_results`, `processed`,
`counts`) come after the caller has found the batch that way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from ..domain.records import Status
from . import tables as t

ACTIVE = ("queued", "processing")


class BatchStore:
    def __init__(self, conn: Connection):
        self.conn = conn

    # -- upload ---------------------------------------------------------------------------------
    def insert(self, *, content: bytes, **values) -> int:
        """A new queued batch; IntegrityError when the provider already has one queued or processing."""
        batch_id = self.conn.execute(
            insert(t.batches).values(status="queued", **values).returning(t.batches.c.id)
        ).scalar_one()
        self.conn.execute(insert(t.batch_files).values(batch_pk=batch_id, content=content))
        return batch_id

    def content(self, batch_id: int) -> bytes:
        """The uploaded file."""
        return self.conn.execute(
            select(t.batch_files.c.content).where(t.batch_files.c.batch_pk == batch_id)
        ).scalar_one()

    def same_content_since(self, environment: str, provider_pk: int, sha256: str, since: dt.datetime):
        """The latest batch with this content uploaded since `since` (failed ones do not count), or None."""
        b = t.batches
        return self.conn.execute(
            select(b.c.id, b.c.file_name, b.c.uploaded_at)
            .where(
                b.c.environment == environment,
                b.c.provider_pk == provider_pk,
                b.c.content_sha256 == sha256,
                b.c.uploaded_at >= since,
                b.c.status != "failed",
            )
            .order_by(b.c.uploaded_at.desc())
            .limit(1)
        ).first()

    def active(self, environment: str, provider_pk: int):
        """The provider's queued or processing batch, or None."""
        b = t.batches
        return self.conn.execute(
            select(b.c.id).where(b.c.environment == environment, b.c.provider_pk == provider_pk, b.c.status.in_(ACTIVE))
        ).first()

    # -- reading --------------------------------------------------------------------------------
    _SUMMARY = list(t.batches.c)

    def batch(self, environment: str, provider_pk: int, batch_id: int, *, with_content: bool = False):
        b, f = t.batches, t.batch_files
        query = select(*self._SUMMARY)
        if with_content:
            query = query.add_columns(f.c.content).join_from(b, f, f.c.batch_pk == b.c.id)
        return self.conn.execute(
            query.where(b.c.id == batch_id, b.c.environment == environment, b.c.provider_pk == provider_pk)
        ).first()

    def history(self, environment: str, provider_pk: int, since: dt.datetime) -> list:
        b = t.batches
        return self.conn.execute(
            select(*self._SUMMARY)
            .where(
                b.c.environment == environment,
                b.c.provider_pk == provider_pk,
                b.c.uploaded_at >= since,
            )
            .order_by(b.c.uploaded_at.desc(), b.c.id.desc())
        ).all()

    def failed_results(self, batch_id: int) -> list:
        r = t.batch_results
        return self.conn.execute(
            select(r.c.row_index, r.c.codes).where(r.c.batch_pk == batch_id, r.c.codes != "").order_by(r.c.row_index)
        ).all()

    def processed(self, batch_id: int) -> list:
        """Rows that were stored or deleted, with the stored record's fields where the row added one."""
        r, lr = t.batch_results, t.learner_records
        return self.conn.execute(
            select(
                r.c.row_index,
                r.c.status.label("result"),
                r.c.credit_id,
                lr.c.activity_id,
                lr.c.board,
                lr.c.learner_id_type,
                lr.c.learner_id,
                lr.c.first_name,
                lr.c.last_name,
                lr.c.completion_date,
                lr.c.credits,
                lr.c.status,
            )
            .select_from(r.outerjoin(lr, and_(lr.c.batch_pk == r.c.batch_pk, lr.c.batch_row == r.c.row_index)))
            .where(r.c.batch_pk == batch_id, r.c.status != Status.NOT_PROCESSED.value)
            .order_by(r.c.row_index)
        ).all()

    # -- processing -----------------------------------------------------------------------------
    @staticmethod
    def _claimable(stale_before: dt.datetime):
        b = t.batches
        return or_(b.c.status == "queued", and_(b.c.status == "processing", b.c.heartbeat_at < stale_before))

    def any_claimable(self, stale_before: dt.datetime) -> bool:
        """Whether claim() would find a batch: an idle worker asks this in a read, which takes no write lock."""
        return (
            self.conn.execute(select(t.batches.c.id).where(self._claimable(stale_before)).limit(1)).first() is not None
        )

    def claim(self, claim: str, now: dt.datetime, stale_before: dt.datetime):
        """Take the oldest queued batch, or one whose worker stopped sending heartbeats; None if there is none.

        One statement: on PostgreSQL the candidate row is locked with SKIP LOCKED, so concurrent
        workers pick different batches without waiting; SQLite runs it under its single write lock.
        The condition is checked again on the row updated, so a claim never takes a live batch.
        """
        b = t.batches
        claimable = self._claimable(stale_before)
        candidate = (
            select(b.c.id)
            .where(claimable)
            .order_by(b.c.uploaded_at, b.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        return self.conn.execute(
            update(b)
            .where(b.c.id == candidate, claimable)
            .values(
                status="processing",
                claimed_by=claim,
                heartbeat_at=now,
                attempts=b.c.attempts + 1,
                started_at=func.coalesce(b.c.started_at, now),
            )
            .returning(*self._SUMMARY)
        ).first()

    def advance(
        self,
        batch_id: int,
        claim: str,
        *,
        rows_from: int,
        rows_to: int,
        processed: int,
        failed: int,
        finished: bool,
        now: dt.datetime,
    ) -> bool:
        """Move the resume point on, only if this claim still holds the batch at `rows_from`."""
        b = t.batches
        values = dict(
            rows_done=rows_to,
            heartbeat_at=now,
            records_processed=b.c.records_processed + processed,
            records_failed=b.c.records_failed + failed,
        )
        if finished:
            values.update(status="done", finished_at=now)
        result = self.conn.execute(
            update(b)
            .where(
                b.c.id == batch_id,
                b.c.claimed_by == claim,
                b.c.status == "processing",
                b.c.rows_done == rows_from,
            )
            .values(**values)
        )
        return result.rowcount == 1

    def release(self, batch_id: int, claim: str) -> None:
        """Hand a batch this claim holds back to the queue, to be resumed where it stopped (a worker
        that was asked to stop): not counted as a failed attempt."""
        b = t.batches
        self.conn.execute(
            update(b)
            .where(b.c.id == batch_id, b.c.claimed_by == claim, b.c.status == "processing")
            .values(status="queued", claimed_by=None, attempts=b.c.attempts - 1)
        )

    def add_results(self, batch_id: int, rows: Iterable[tuple[int, str, str, str | None]]) -> None:
        """(row index, status, comma-separated codes, CreditID) per row."""
        results = [dict(batch_pk=batch_id, row_index=i, status=s, codes=c, credit_id=cid) for i, s, c, cid in rows]
        if results:  # an empty list would insert one row of defaults
            self.conn.execute(insert(t.batch_results), results)

    def fail(self, batch_id: int, message: str, now: dt.datetime) -> None:
        self.conn.execute(
            update(t.batches)
            .where(t.batches.c.id == batch_id)
            .values(status="failed", message=message, finished_at=now)
        )

    def counts(self, batch_id: int):
        b = t.batches
        return self.conn.execute(
            select(b.c.records_total, b.c.records_processed, b.c.records_failed).where(b.c.id == batch_id)
        ).one()

    def uploader(self, batch):
        """Provider and credential of a batch, for acting on the provider's behalf."""
        p, c = t.providers, t.credentials
        return self.conn.execute(
            select(p.c.provider_id, p.c.name, p.c.domain, p.c.email, c.c.username)
            .select_from(p.outerjoin(c, c.c.id == batch.credential_pk))
            .where(p.c.id == batch.provider_pk)
        ).one()
