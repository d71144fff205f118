"""The board review's queries on a database holding many records: only the due ones are read
(ix_learner_records_due), oldest first, whatever else the table holds, and never a held one before
its hold ends."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import delete, insert, select, text

from pars_ws.adapters import review_store
from pars_ws.adapters import tables as t
from pars_ws.domain.review import reviewing_boards
from pars_ws.service import review
from tests.conftest import SANDBOX_PASSWORD, SANDBOX_USER

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.timezone.utc)
CUTOFF = NOW - dt.timedelta(seconds=5)


def _rows(
    provider_pk: int, boards: list[str], count: int, status: str, submitted_at: dt.datetime, tag: str, step: int = 1
):
    """`step` microseconds between submissions: negative, the rows inserted last were submitted first."""
    return [
        dict(
            environment="sandbox",
            provider_pk=provider_pk,
            credit_id=f"{tag}-{i}",
            activity_id="100000001",
            board=boards[i % len(boards)],
            learner_id=f"L{i}",
            learner_key=f"l{i}",
            first_name="Ann",
            last_name="Lee",
            completion_date=dt.date(2026, 6, 1),
            credits=Decimal("1"),
            credit_types="",
            source="SOAP",
            status=status,
            submitted_at=submitted_at + dt.timedelta(microseconds=i * step),
            updated_at=submitted_at,
        )
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def stored(services):
    """Many Accepted records, many Submitted ones not yet due, and a few due (submitted earlier, the
    last inserted first: id order is not submission order)."""
    account = services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    boards = reviewing_boards(services.catalogue)
    with services.engine.begin() as conn:
        conn.execute(
            insert(t.learner_records),
            _rows(account.provider_pk, boards, 3000, "Accepted", NOW - dt.timedelta(days=30), "old"),
        )
        conn.execute(
            insert(t.learner_records),
            _rows(account.provider_pk, boards, 3000, "Submitted", NOW - dt.timedelta(seconds=1), "fresh"),
        )
        conn.execute(
            insert(t.learner_records),
            _rows(account.provider_pk, boards, 7, "Submitted", NOW - dt.timedelta(minutes=5), "due", step=-1),
        )
        conn.execute(text("ANALYZE"))
    return boards


def _plan(services, query) -> str:
    with services.engine.begin() as conn:
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        return "\n".join(str(row[-1]) for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))


def test_the_review_reads_due_records_by_index(services, stored, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's query plan (PostgreSQL's planner takes the index range by itself)")
    due = review_store.due("sandbox", stored, CUTOFF, NOW)
    for query in (
        select(t.learner_records.c.id).where(due).limit(1),
        review_store.due_chunk(due, postgresql=False, limit=review.CHUNK),
    ):
        plan = _plan(services, query)
        assert "ix_learner_records_due" in plan and "submitted_at<" in plan.replace(" ", ""), plan
        assert "SCAN lr" not in plan and "SCAN learner_records" not in plan, plan


def test_the_review_takes_only_due_records_oldest_first(services, stored):
    due = review_store.due("sandbox", stored, CUTOFF, NOW)
    with services.engine.begin() as conn:
        rows = conn.execute(review_store.due_chunk(due, postgresql=False, limit=review.CHUNK)).all()
    assert [r.credit_id for r in rows] == [f"due-{i}" for i in reversed(range(7))]


def test_a_held_record_is_due_only_once_its_hold_has_ended(services, stored):
    """Sandbox hold=N: submitted long before the cutoff, yet not taken while review_after is ahead."""
    account = services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    lr = t.learner_records
    rows = _rows(account.provider_pk, stored, 4, "Submitted", NOW - dt.timedelta(hours=1), "held")
    for i, row in enumerate(rows):  # held until: just past, exactly now, a second ahead, a day ahead
        row["review_after"] = NOW + dt.timedelta(seconds=(-1, 0, 1, 86400)[i])
    try:
        with services.engine.begin() as conn:
            conn.execute(insert(lr), rows)
            taken = conn.execute(
                review_store.due_chunk(
                    review_store.due("sandbox", stored, CUTOFF, NOW), postgresql=False, limit=review.CHUNK
                )
            ).all()
            later = conn.execute(
                review_store.due_chunk(
                    review_store.due("sandbox", stored, CUTOFF, NOW + dt.timedelta(days=2)),
                    postgresql=False,
                    limit=review.CHUNK,
                )
            ).all()
        held = {f"held-{i}" for i in range(4)}
        assert {r.credit_id for r in taken} & held == {"held-0", "held-1"}
        assert {r.credit_id for r in later} & held == held
        assert [r.credit_id for r in taken][:2] == ["held-0", "held-1"]  # submitted first: still oldest first
    finally:
        with services.engine.begin() as conn:
            conn.execute(delete(lr).where(lr.c.credit_id.like("held-%")))


def test_the_worker_looks_again_at_once_only_while_a_full_chunk_was_due(services, stored, monkeypatch):
    """Runs last: it reviews the due records the tests above read."""
    from pars_ws.entrypoints.worker import run_once

    monkeypatch.setattr(review, "CHUNK", 5)
    monkeypatch.setattr(review, "due_cutoff", lambda environment, now, settings: CUTOFF)
    assert run_once(services, "test-worker") is True  # 5 of the 7 due records: more are waiting
    assert run_once(services, "test-worker") is False  # the last 2: caught up, wait for the next poll
    assert run_once(services, "test-worker") is False  # nothing due
    with services.engine.begin() as conn:
        left = conn.execute(
            select(t.learner_records.c.credit_id).where(
                t.learner_records.c.credit_id.like("due-%"), t.learner_records.c.status == "Submitted"
            )
        ).all()
    assert left == []
