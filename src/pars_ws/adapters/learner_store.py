"""Activities, board registries and learner records (SQLAlchemy 2 Core), inside a unit of work.

Every query is scoped to one environment; what the rules ask about a request's records is read
with a few statements per request (lookups_for), whatever the number of records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Connection,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ..domain.activities import Activity, RegisteredLearner, Registration
from ..domain.catalogue import NPI, Catalogue, fold
from ..domain.dates import parse_completion_date
from ..domain.engine import Judgement, learner_key
from ..domain.lookups import MemoryLookups
from ..domain.names import name_key
from ..domain.records import DOB, ReportedRecord, Source, Status, StoredRecord
from ..domain.rules import board_of
from . import tables as t
from .audit import AuditCopy

_A, _REG, _RL, _RC, _LR = t.activities, t.registrations, t.registry_learners, t.registry_completions, t.learner_records


def _lines(values: Iterable[str]) -> str:
    return "\n".join(values)


def _split(text: str) -> tuple[str, ...]:
    return tuple(v for v in text.split("\n") if v)


def _dob(month, day) -> DOB | None:
    return DOB(month, day) if month else None


def record_from_row(row) -> StoredRecord:
    return StoredRecord(
        id=row.id,
        credit_id=row.credit_id,
        activity_id=row.activity_id,
        board=row.board,
        learner_id_type=row.learner_id_type,
        learner_id=row.learner_id,
        first_name=row.first_name,
        last_name=row.last_name,
        dob=_dob(row.dob_month, row.dob_day),
        completion_date=row.completion_date,
        credits=Decimal(row.credits),
        credit_types=_split(row.credit_types),
        status=Status(row.status),
        source=Source(row.source),
        submitted_at=row.submitted_at,
        updated_at=row.updated_at,
        reject_code=row.reject_code,
        npi=row.npi,
        learner_key=row.learner_key,
        matched_learner_id=row.matched_learner_id,
    )


# PostgreSQL: a unit of work that saves holds a lock on each of its learners' buckets (a provider's
# learners hashed into LEARNER_BUCKETS) from before it reads their points until it commits, so a
# concurrent save of the same learner reads after it (710/711/717 see both). Buckets bound the locks
# a transaction takes; they are taken in order, so two saves never wait on each other in a cycle.
# (SQLite: the write lock, taken before a save reads the points, already orders saves.)
LEARNER_BUCKETS = 64
# One statement; PostgreSQL evaluates the volatile lock function after the sort (EXPLAIN VERBOSE shows
# the Result node above the Sort), so the locks are taken in order.
_LOCK_BUCKETS = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k")


def _bucket_lock(environment: str, provider_pk: int, board: str, key: str) -> int:
    bucket = hashlib.blake2b(f"{board}\n{key}".encode(), digest_size=4).digest()[0] % LEARNER_BUCKETS
    digest = hashlib.blake2b(f"pars-ws learners\n{environment}\n{provider_pk}\n{bucket}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


# -- statements the rules' lookups run (built once, with expanding parameters) ---------------------

_ACTIVITIES = (
    select(
        _A.c.provider_pk,
        _A.c.activity_id,
        _A.c.provider_activity_id,
        _A.c.title,
        _A.c.activity_type,
        _A.c.start_date,
        _A.c.end_date,
        _A.c.reporting_year,
        _A.c.credits,
        _A.c.rems,
        _REG.c.board,
        _REG.c.max_points,
        _REG.c.credit_types.label("registered_types"),
    )
    .select_from(_A.outerjoin(_REG, _REG.c.activity_pk == _A.c.id))
    .where(_A.c.environment == bindparam("environment"), _A.c.activity_id.in_(bindparam("ids", expanding=True)))
    .order_by(_A.c.id, _REG.c.board)
)


# A board's registry learners by one indexed column (learner ID, NPI or last name key), with the
# completions the board has from outside PARS for the request's activities (709).
def _registry_by(column):
    return (
        select(_RL, _RC.c.activity_id.label("done_activity"), _RC.c.completion_date.label("done_date"))
        .select_from(
            _RL.outerjoin(
                _RC,
                and_(_RC.c.learner_pk == _RL.c.id, _RC.c.activity_id.in_(bindparam("activity_ids", expanding=True))),
            )
        )
        .where(
            _RL.c.environment == bindparam("environment"),
            _RL.c.board == bindparam("board"),
            column.in_(bindparam("keys", expanding=True)),
        )
    )


_REGISTRY = {
    "keys": _registry_by(_RL.c.learner_key),
    "npis": _registry_by(_RL.c.npi),
    "names": _registry_by(_RL.c.last_name_key),
}

_MINE = and_(
    _LR.c.environment == bindparam("environment"),
    _LR.c.provider_pk == bindparam("provider_pk"),
    _LR.c.deleted_at.is_(None),
)

_LIVE_BY_CREDIT_ID = select(_LR).where(_MINE, _LR.c.credit_id.in_(bindparam("credit_ids", expanding=True)))

# What a board's learners hold of the (activity ID, learner key) pairs asked about, given as one JSON
# array of pairs, with one statement per board for a whole request or batch chunk. The pairs are the
# outer loop whatever the statistics say: each pair is one index seek, however many records are stored.
_PAIRS = {
    "sqlite": func.json_each(bindparam("pairs", type_=JSON)),
    "postgresql": func.json_array_elements(bindparam("pairs", type_=postgresql.JSON)),
}


def _pairs_asked(dialect: str):
    """The pairs as a table, their two values, and the condition naming a pair's live records."""
    asked = _PAIRS[dialect].table_valued("value").alias("asked")
    activity_id = asked.c.value.op("->>")(literal_column("0"))
    learner_key = asked.c.value.op("->>")(literal_column("1"))
    of_pair = and_(
        _MINE, _LR.c.board == bindparam("board"), _LR.c.activity_id == activity_id, _LR.c.learner_key == learner_key
    )
    return asked, activity_id, learner_key, of_pair


def _points_held(dialect: str):
    """Per pair, the points of its live records not rejected (NULL when it has none), summed by a
    subquery per pair: a GROUP BY over the join would sort all of a learner's records first."""
    asked, activity_id, learner_key, of_pair = _pairs_asked(dialect)
    points = select(func.sum(case((_LR.c.status != Status.REJECTED.value, _LR.c.credits), else_=0))).where(of_pair)
    return select(
        activity_id.label("activity_id"), learner_key.label("learner_key"), points.scalar_subquery().label("points")
    ).select_from(asked)


def _on_days(dialect: str):
    """The pairs' live records on some days (a pair without any comes back as NULLs)."""
    asked, _, _, of_pair = _pairs_asked(dialect)
    on_days = and_(of_pair, _LR.c.completion_date.in_(bindparam("days", expanding=True)))
    return select(_LR).select_from(asked.outerjoin(_LR, on_days))


_HELD = {dialect: _points_held(dialect) for dialect in _PAIRS}
_HELD_ON_DAYS = {dialect: _on_days(dialect) for dialect in _PAIRS}


# Records a request adds, with no conflict target: a live CreditID taken by a concurrent request, or
# a batch row already stored, are both skipped (the caller reports the first as 603).
_ADD_RECORDS = {
    name: dialect.insert(_LR).on_conflict_do_nothing()
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_ADD_RECORD = {name: statement.returning(_LR.c.id, _LR.c.credit_id) for name, statement in _ADD_RECORDS.items()}
# The records just added among the live ones with these CreditIDs (a concurrent request's are not).
_ADDED = select(_LR.c.id, _LR.c.credit_id, _LR.c.request_pk, _LR.c.batch_pk, _LR.c.batch_row).where(
    _MINE, _LR.c.credit_id.in_(bindparam("credit_ids", expanding=True))
)
_ADD_REQUEST = insert(t.raw_requests).returning(t.raw_requests.c.id)
_DELETE_RECORD = (
    update(_LR)
    .where(_LR.c.id == bindparam("pk"))
    .values(status=Status.DELETED.value, deleted_at=bindparam("now"), updated_at=bindparam("now"))
)


@dataclass(frozen=True)
class Reference:
    """What the rules read that saves do not change: the records' activities and the registry
    learners they may name (read before a save starts writing: Store.reads_then_writes)."""

    activities: list[Activity]
    learners: list[RegisteredLearner]


class StoredLookups(MemoryLookups):
    """What storage answered for one request: activities, registry learners and live records by
    CreditID as MemoryLookups holds them, and what learners hold as aggregates."""

    def __init__(self, activities, learners, records, points: dict, days: dict):
        super().__init__(activities, learners, records)
        self._points = points  # (board, activity ID, key) -> points
        self._days = days  # (board, activity ID, key, day) -> [StoredRecord]

    def points_held(self, board: str, activity_id: str, key: str) -> Decimal:
        return self._points.get((board, activity_id, key), Decimal(0))

    def records_on(self, board: str, activity_id: str, key: str, day: dt.date) -> list[StoredRecord]:
        return self._days.get((board, activity_id, key, day), [])


class LearnerRepository:
    def __init__(self, conn: Connection):
        self.conn = conn
        self.dialect = conn.dialect.name

    # -- activities ---------------------------------------------------------------------------
    def activities(self, environment: str, provider_pk: int | None, activity_ids: Iterable[str]) -> list[Activity]:
        """The activities of these IDs (of this provider unless provider_pk is None)."""
        ids = sorted(set(activity_ids))
        if not ids:
            return []
        found: dict[str, tuple] = {}
        for row in self.conn.execute(_ACTIVITIES, {"environment": environment, "ids": ids}):
            _, regs = found.setdefault(row.activity_id, (row, []))
            if row.board is not None:
                regs.append(Registration(row.board, Decimal(row.max_points), _split(row.registered_types)))
        return [
            Activity(
                activity_id=r.activity_id,
                title=r.title,
                activity_type=r.activity_type,
                start_date=r.start_date,
                end_date=r.end_date,
                reporting_year=r.reporting_year,
                credits=Decimal(r.credits),
                registrations=tuple(regs),
                provider_activity_id=r.provider_activity_id,
                rems=bool(r.rems),
            )
            for r, regs in found.values()
            if provider_pk is None or r.provider_pk == provider_pk
        ]

    def save_activity(self, environment: str, provider_pk: int, activity: Activity, now: dt.datetime) -> None:
        """Insert or replace an activity and its registrations."""
        values = dict(
            provider_activity_id=activity.provider_activity_id,
            title=activity.title,
            activity_type=activity.activity_type,
            start_date=activity.start_date,
            end_date=activity.end_date,
            reporting_year=activity.reporting_year,
            credits=activity.credits,
            rems=activity.rems,
            updated_at=now,
        )
        pk = self.conn.execute(
            select(_A.c.id).where(_A.c.environment == environment, _A.c.activity_id == activity.activity_id)
        ).scalar()
        if pk is None:
            pk = self.conn.execute(
                insert(_A)
                .values(environment=environment, provider_pk=provider_pk, activity_id=activity.activity_id, **values)
                .returning(_A.c.id)
            ).scalar_one()
        else:
            self.conn.execute(update(_A).where(_A.c.id == pk).values(**values))
            self.conn.execute(_REG.delete().where(_REG.c.activity_pk == pk))
        if activity.registrations:
            self.conn.execute(
                insert(_REG),
                [
                    dict(
                        activity_pk=pk,
                        board=reg.board,
                        max_points=reg.max_points,
                        credit_types=_lines(reg.credit_types),
                    )
                    for reg in activity.registrations
                ],
            )

    def activity_owner(self, environment: str, activity_id: str) -> int | None:
        return self.conn.execute(
            select(_A.c.provider_pk).where(_A.c.environment == environment, _A.c.activity_id == activity_id)
        ).scalar()

    def next_activity_id(self, environment: str) -> str:
        top = self.conn.execute(select(func.max(_A.c.activity_id)).where(_A.c.environment == environment)).scalar()
        return f"{max(int(top or 0) + 1, 201000000):09d}"

    # -- board registry -----------------------------------------------------------------------
    def import_learners(self, environment: str, learners: Iterable[RegisteredLearner]) -> int:
        """Add or replace registry learners (keyed by board + learner ID)."""
        count = 0
        for learner in learners:
            key = fold(learner.learner_id)
            self.conn.execute(
                _RL.delete().where(
                    _RL.c.environment == environment, _RL.c.board == learner.board, _RL.c.learner_key == key
                )
            )
            pk = self.conn.execute(
                insert(_RL)
                .values(
                    environment=environment,
                    board=learner.board,
                    learner_id=learner.learner_id,
                    learner_key=key,
                    npi=fold(learner.npi) if learner.npi else None,  # compared with folded IDs
                    first_name=learner.first_name,
                    last_name=learner.last_name,
                    last_name_key=name_key(learner.last_name),
                    dob_month=learner.dob.month if learner.dob else None,
                    dob_day=learner.dob.day if learner.dob else None,
                    review_reject_code=learner.review_reject_code,
                )
                .returning(_RL.c.id)
            ).scalar_one()
            if learner.completions:
                self.conn.execute(
                    insert(_RC),
                    [dict(learner_pk=pk, activity_id=a, completion_date=d) for a, d in sorted(learner.completions)],
                )
            count += 1
        return count

    # -- what the rules ask of storage --------------------------------------------------------
    def reference_for(
        self, environment: str, provider_pk: int, records: Sequence[ReportedRecord], catalogue: Catalogue
    ) -> Reference:
        activity_ids = {r.activity_id.strip() for r in records if r.activity_id and r.activity_id.strip()}
        return Reference(
            self.activities(environment, provider_pk, activity_ids),
            self._registry(environment, records, catalogue, sorted(activity_ids)),
        )

    def lookups_for(
        self,
        environment: str,
        provider_pk: int,
        records: Sequence[ReportedRecord],
        catalogue: Catalogue,
        reference: Reference,
    ) -> StoredLookups:
        """Everything the rules may ask about these records, read with a few statements, given what
        reference_for read earlier in the unit of work."""
        asked = self._asked(records, catalogue, reference.learners)
        if self.dialect == "postgresql" and self.conn.get_execution_options().get("write"):
            locks = {
                _bucket_lock(environment, provider_pk, board, key)
                for board, (pairs, _) in asked.items()
                for _, key in pairs
            }
            if locks:
                self.conn.execute(_LOCK_BUCKETS, {"keys": sorted(locks)})
        credit_ids = sorted({cid for r in records if r.credit_id and (cid := r.credit_id.strip())})
        live = (
            [
                record_from_row(row)
                for row in self.conn.execute(
                    _LIVE_BY_CREDIT_ID,
                    {"environment": environment, "provider_pk": provider_pk, "credit_ids": credit_ids},
                )
            ]
            if credit_ids
            else []
        )
        points, days = self._held(environment, provider_pk, asked)
        return StoredLookups(reference.activities, reference.learners, live, points, days)

    def _registry(
        self, environment: str, records: Sequence[ReportedRecord], catalogue: Catalogue, activity_ids: list[str]
    ) -> list[RegisteredLearner]:
        """The registry learners a record may name: by learner ID, by NPI, or by last name."""
        wanted: dict[str, tuple[set, set, set]] = defaultdict(lambda: (set(), set(), set()))
        for r in records:
            board = board_of(catalogue, r)
            if board is None:
                continue
            keys, npis, names = wanted[board.code]
            if r.learner_id:
                id_type = board.id_type(r.learner_id_type) if r.learner_id_type else None
                (npis if id_type and fold(id_type) == NPI else keys).add(fold(r.learner_id))
            elif r.last_name:
                names.add(name_key(r.last_name))
        found: dict[int, tuple] = {}
        for board, asked in wanted.items():
            for kind, keys in zip(("keys", "npis", "names"), asked, strict=True):
                if not keys:
                    continue
                params = dict(environment=environment, board=board, keys=sorted(keys), activity_ids=activity_ids)
                for row in self.conn.execute(_REGISTRY[kind], params):
                    _, done = found.setdefault(row.id, (row, set()))
                    if row.done_activity is not None:
                        done.add((row.done_activity, row.done_date))
        return [
            RegisteredLearner(
                board=row.board,
                learner_id=row.learner_id,
                first_name=row.first_name,
                last_name=row.last_name,
                dob=_dob(row.dob_month, row.dob_day),
                npi=row.npi,
                review_reject_code=row.review_reject_code,
                completions=frozenset(done),
            )
            for row, done in found.values()
        ]

    @staticmethod
    def _asked(
        records: Sequence[ReportedRecord], catalogue: Catalogue, learners: list[RegisteredLearner]
    ) -> dict[str, tuple[set, set]]:
        """Per board: the (activity ID, learner key) pairs the rules may ask about (each record's
        activity with every registry learner the record may name) and the completion days."""
        by_id: dict[tuple[str, str], set[str]] = defaultdict(set)  # (board, folded ID or NPI) -> keys
        by_name: dict[tuple[str, str], set[str]] = defaultdict(set)  # (board, last name key) -> keys
        for learner in learners:
            key = learner_key(learner.learner_id)
            by_id[(learner.board, fold(learner.learner_id))].add(key)
            if learner.npi:
                by_id[(learner.board, fold(learner.npi))].add(key)
            by_name[(learner.board, name_key(learner.last_name))].add(key)
        asked: dict[str, tuple[set, set]] = defaultdict(lambda: (set(), set()))  # pairs, days
        for r in records:
            board = board_of(catalogue, r)
            activity_id = r.activity_id.strip() if r.activity_id else ""
            if board is None or not activity_id:
                continue
            if r.learner_id:
                keys = by_id.get((board.code, fold(r.learner_id)), ())
            else:
                keys = by_name.get((board.code, name_key(r.last_name or "")), ())
            pairs, days = asked[board.code]
            pairs.update((activity_id, key) for key in keys)
            day = parse_completion_date(r.completion_date)
            by_fields = (r.action or "").strip().lower() == "delete" and not r.credit_id
            if day is not None and (board.one_completion_per_day or by_fields):
                days.add(day)
        return asked

    def _held(self, environment: str, provider_pk: int, asked: dict[str, tuple[set, set]]) -> tuple[dict, dict]:
        """Points each learner holds per activity and, where a rule compares days (717, a delete named
        by its fields) and the learner holds records at all, its live records on the days asked about."""
        points, on_days = {}, defaultdict(list)
        base = {"environment": environment, "provider_pk": provider_pk}
        for board, (pairs, days) in asked.items():
            if not pairs:
                continue
            params = {**base, "board": board, "pairs": sorted(pairs)}
            for row in self.conn.execute(_HELD[self.dialect], params):
                if row.points is None:
                    continue
                points[(board, row.activity_id, row.learner_key)] = Decimal(row.points)
            with_records = sorted(pair for pair in pairs if (board, *pair) in points)
            if days and with_records:
                for row in self.conn.execute(
                    _HELD_ON_DAYS[self.dialect], {**params, "pairs": with_records, "days": sorted(days)}
                ):
                    if row.id is None:
                        continue
                    rec = record_from_row(row)
                    on_days[(board, row.activity_id, rec.learner_key, rec.completion_date)].append(rec)
        return points, on_days

    # -- storing judged records ---------------------------------------------------------------
    def store_raw_request(self, environment: str, provider_pk: int, copy: AuditCopy, now: dt.datetime) -> int:
        """Keep a request's audit copy (see AuditCopy)."""
        return self.conn.execute(
            _ADD_REQUEST,
            dict(
                environment=environment,
                provider_pk=provider_pk,
                source=copy.source.value,
                correlation_id=copy.correlation_id,
                received_at=now,
                body=copy.compressed,
            ),
        ).scalar_one()

    def apply(
        self,
        environment: str,
        provider_pk: int,
        judgements: list[Judgement],
        now: dt.datetime,
        copy: AuditCopy | None = None,
        batch_pk: int | None = None,
        review_after: dt.datetime | None = None,
    ) -> set[str]:
        """Keep the request's audit copy, if given, and store the adds and deletes that passed every
        rule, each with its first event; the adds are left to the board review from `review_after`
        on, if given.

        Returns the CreditIDs the database refused as already live (a concurrent request won).
        """
        added = [j for j in judgements if j.ok and j.status in (Status.SUBMITTED, Status.ACCEPTED)]
        if added and copy is None and batch_pk is None:
            raise ValueError("records are added with the request's audit copy or as rows of a batch")
        deletes = [j.stored for j in judgements if j.ok and j.status == Status.DELETED]
        request_pk = None if copy is None else self.store_raw_request(environment, provider_pk, copy, now)
        inserted: dict[str, int] = {}
        if added:
            rows = [
                self._row(
                    environment,
                    provider_pk,
                    j.stored,
                    request_pk,
                    batch_pk,
                    j.record.index if batch_pk is not None else None,
                    review_after,
                )
                for j in added
            ]
            inserted = self._insert_records(environment, provider_pk, rows)
            events = [
                dict(record_pk=inserted[j.stored.credit_id], status=j.stored.status.value, at=now)
                for j in added
                if j.stored.credit_id in inserted
            ]
            if events:  # an empty list would insert one row of defaults
                self.conn.execute(insert(t.record_events), events)
        deleted = [pk for rec in deletes if (pk := rec.id if rec.id is not None else inserted.get(rec.credit_id))]
        if deleted:
            self.conn.execute(_DELETE_RECORD, [{"pk": pk, "now": now} for pk in deleted])
            self.conn.execute(
                insert(t.record_events), [dict(record_pk=pk, status=Status.DELETED.value, at=now) for pk in deleted]
            )
        return {j.stored.credit_id for j in added} - set(inserted)

    def _insert_records(self, environment: str, provider_pk: int, rows: list[dict]) -> dict[str, int]:
        """Insert the rows; {CreditID: id} of those stored, not of those a concurrent request's records
        kept out. One row comes back from its INSERT ... RETURNING; many are inserted by executemany
        and read back: RETURNING them makes one long statement that psycopg parses anew on every
        chunk (bench/README.md: "records inserted")."""
        if len(rows) == 1:
            added = self.conn.execute(_ADD_RECORD[self.dialect], rows[0]).first()
            return {} if added is None else {added.credit_id: added.id}
        self.conn.execute(_ADD_RECORDS[self.dialect], rows)
        mine = {(row["credit_id"], row["request_pk"], row["batch_pk"], row["batch_row"]) for row in rows}
        found = self.conn.execute(
            _ADDED,
            {"environment": environment, "provider_pk": provider_pk, "credit_ids": [row["credit_id"] for row in rows]},
        )
        return {r.credit_id: r.id for r in found if (r.credit_id, r.request_pk, r.batch_pk, r.batch_row) in mine}

    @staticmethod
    def _row(environment, provider_pk, rec: StoredRecord, request_pk, batch_pk, batch_row, review_after) -> dict:
        return dict(
            environment=environment,
            provider_pk=provider_pk,
            credit_id=rec.credit_id,
            activity_id=rec.activity_id,
            board=rec.board,
            learner_id_type=rec.learner_id_type,
            learner_id=rec.learner_id,
            learner_key=rec.learner_key,
            matched_learner_id=rec.matched_learner_id,
            npi=rec.npi,
            first_name=rec.first_name,
            last_name=rec.last_name,
            dob_month=rec.dob.month if rec.dob else None,
            dob_day=rec.dob.day if rec.dob else None,
            completion_date=rec.completion_date,
            credits=rec.credits,
            credit_types=_lines(rec.credit_types),
            source=rec.source.value,
            status=rec.status.value,
            submitted_at=rec.submitted_at,
            updated_at=rec.updated_at,
            request_pk=request_pk,
            batch_pk=batch_pk,
            batch_row=batch_row,
            review_after=review_after,
        )

    # -- status -------------------------------------------------------------------------------
    def records_by_credit_id(self, environment: str, provider_pk: int, credit_id: str) -> list[StoredRecord]:
        rows = self.conn.execute(
            select(_LR)
            .where(
                _LR.c.environment == environment,
                _LR.c.provider_pk == provider_pk,
                _LR.c.credit_id == credit_id,
            )
            .order_by(_LR.c.deleted_at.is_not(None), _LR.c.id.desc())
        ).all()
        return [record_from_row(r) for r in rows]

    def records_by_learner(
        self, environment: str, provider_pk: int, activity_id: str, learner_id: str, completion_date: dt.date
    ) -> list[StoredRecord]:
        rows = self.conn.execute(
            select(_LR)
            .where(
                _LR.c.environment == environment,
                _LR.c.provider_pk == provider_pk,
                _LR.c.activity_id == activity_id,
                or_(_LR.c.learner_key == learner_key(learner_id), _LR.c.npi == learner_id.strip()),
                _LR.c.completion_date == completion_date,
            )
            .order_by(_LR.c.deleted_at.is_not(None), _LR.c.id)
        ).all()
        return [record_from_row(r) for r in rows]
