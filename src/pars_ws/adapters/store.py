"""Storage of providers, credentials, activities, board registries and learner records (SQLAlchemy 2 Core).

`Store.transaction()` is the unit of work: one connection, one transaction, committed on success.
"""
from __future__ import annotations

import datetime as dt
import zlib
from contextlib import contextmanager
from decimal import Decimal
from typing import Iterable, Iterator, Sequence

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..domain.activities import Activity, RegisteredLearner, Registration
from ..domain.catalogue import Catalogue, fold
from ..domain.engine import Judgement, learner_key
from ..domain.lookups import MemoryLookups
from ..domain.names import name_key
from ..domain.records import DOB, ReportedRecord, Source, Status, StoredRecord
from . import tables as t


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
    )


class Repository:
    """Queries and writes inside one transaction. Every query is scoped to one environment."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.dialect = conn.dialect.name

    # -- activities ---------------------------------------------------------------------------
    def activities(self, environment: str, provider_pk: int | None, activity_ids: Iterable[str]) -> list[Activity]:
        ids = sorted(set(activity_ids))
        if not ids:
            return []
        q = select(t.activities).where(t.activities.c.environment == environment, t.activities.c.activity_id.in_(ids))
        if provider_pk is not None:
            q = q.where(t.activities.c.provider_pk == provider_pk)
        rows = self.conn.execute(q).all()
        regs: dict[int, list[Registration]] = {}
        if rows:
            for reg in self.conn.execute(
                select(t.registrations).where(t.registrations.c.activity_pk.in_([r.id for r in rows]))
                .order_by(t.registrations.c.board)
            ):
                regs.setdefault(reg.activity_pk, []).append(
                    Registration(reg.board, Decimal(reg.max_points), _split(reg.credit_types)))
        return [
            Activity(
                activity_id=r.activity_id, title=r.title, activity_type=r.activity_type,
                start_date=r.start_date, end_date=r.end_date, reporting_year=r.reporting_year,
                credits=Decimal(r.credits), registrations=tuple(regs.get(r.id, ())),
                provider_activity_id=r.provider_activity_id,
            )
            for r in rows
        ]

    def save_activity(self, environment: str, provider_pk: int, activity: Activity, now: dt.datetime) -> None:
        """Insert or replace an activity and its registrations."""
        a = t.activities
        values = dict(
            provider_activity_id=activity.provider_activity_id, title=activity.title,
            activity_type=activity.activity_type, start_date=activity.start_date, end_date=activity.end_date,
            reporting_year=activity.reporting_year, credits=activity.credits, updated_at=now,
        )
        pk = self.conn.execute(
            select(a.c.id).where(a.c.environment == environment, a.c.activity_id == activity.activity_id)
        ).scalar()
        if pk is None:
            pk = self.conn.execute(insert(a).values(
                environment=environment, provider_pk=provider_pk, activity_id=activity.activity_id, **values
            ).returning(a.c.id)).scalar_one()
        else:
            self.conn.execute(update(a).where(a.c.id == pk).values(**values))
            self.conn.execute(t.registrations.delete().where(t.registrations.c.activity_pk == pk))
        if activity.registrations:
            self.conn.execute(insert(t.registrations), [
                dict(activity_pk=pk, board=reg.board, max_points=reg.max_points, credit_types=_lines(reg.credit_types))
                for reg in activity.registrations
            ])

    def activity_owner(self, environment: str, activity_id: str) -> int | None:
        return self.conn.execute(select(t.activities.c.provider_pk).where(
            t.activities.c.environment == environment, t.activities.c.activity_id == activity_id)).scalar()

    def next_activity_id(self, environment: str) -> str:
        top = self.conn.execute(select(func.max(t.activities.c.activity_id)).where(
            t.activities.c.environment == environment)).scalar()
        return f"{max(int(top or 0) + 1, 201000000):09d}"

    # -- board registry -----------------------------------------------------------------------
    def import_learners(self, environment: str, learners: Iterable[RegisteredLearner]) -> int:
        """Add or replace registry learners (keyed by board + learner ID)."""
        r = t.registry_learners
        count = 0
        for learner in learners:
            key = fold(learner.learner_id)
            self.conn.execute(r.delete().where(r.c.environment == environment, r.c.board == learner.board,
                                               r.c.learner_key == key))
            pk = self.conn.execute(insert(r).values(
                environment=environment, board=learner.board, learner_id=learner.learner_id, learner_key=key,
                npi=learner.npi, first_name=learner.first_name, last_name=learner.last_name,
                last_name_key=name_key(learner.last_name),
                dob_month=learner.dob.month if learner.dob else None,
                dob_day=learner.dob.day if learner.dob else None,
                review_reject_code=learner.review_reject_code,
            ).returning(r.c.id)).scalar_one()
            if learner.completions:
                self.conn.execute(insert(t.registry_completions), [
                    dict(learner_pk=pk, activity_id=a, completion_date=d) for a, d in sorted(learner.completions)
                ])
            count += 1
        return count

    def registry_learners(self, environment: str, boards: set[str], keys: set[str], npis: set[str],
                          last_names: set[str]) -> list[RegisteredLearner]:
        r = t.registry_learners
        conds = []
        if keys:
            conds.append(r.c.learner_key.in_(sorted(keys)))
        if npis:
            conds.append(r.c.npi.in_(sorted(npis)))
        if last_names:
            conds.append(r.c.last_name_key.in_(sorted(last_names)))
        if not boards or not conds:
            return []
        rows = self.conn.execute(select(r).where(
            r.c.environment == environment, r.c.board.in_(sorted(boards)), or_(*conds))).all()
        done: dict[int, set] = {}
        if rows:
            for c in self.conn.execute(select(t.registry_completions).where(
                    t.registry_completions.c.learner_pk.in_([row.id for row in rows]))):
                done.setdefault(c.learner_pk, set()).add((c.activity_id, c.completion_date))
        return [
            RegisteredLearner(
                board=row.board, learner_id=row.learner_id, first_name=row.first_name, last_name=row.last_name,
                dob=_dob(row.dob_month, row.dob_day), npi=row.npi, review_reject_code=row.review_reject_code,
                completions=frozenset(done.get(row.id, ())),
            )
            for row in rows
        ]

    # -- learner records ----------------------------------------------------------------------
    def live_records(self, environment: str, provider_pk: int, credit_ids: set[str],
                     activity_ids: set[str], learner_keys: set[str]) -> list[StoredRecord]:
        lr = t.learner_records
        conds = []
        if credit_ids:
            conds.append(lr.c.credit_id.in_(sorted(credit_ids)))
        if activity_ids and learner_keys:
            conds.append(and_(lr.c.activity_id.in_(sorted(activity_ids)), lr.c.learner_key.in_(sorted(learner_keys))))
        if not conds:
            return []
        rows = self.conn.execute(select(lr).where(
            lr.c.environment == environment, lr.c.provider_pk == provider_pk, lr.c.deleted_at.is_(None), or_(*conds)
        )).all()
        return [record_from_row(row) for row in rows]

    def lookups_for(self, environment: str, provider_pk: int, records: Sequence[ReportedRecord],
                    catalogue: Catalogue) -> MemoryLookups:
        """Everything the rules may ask about these records, in a handful of queries."""
        activity_ids = {r.activity_id.strip() for r in records if r.activity_id}
        boards = {b.code for code in {r.board for r in records} if (b := catalogue.by_registration(code))}
        keys = {fold(r.learner_id) for r in records if r.learner_id}
        last_names = {name_key(r.last_name) for r in records if r.last_name and not r.learner_id}
        learners = self.registry_learners(environment, boards, keys, keys, last_names)
        learner_keys = keys | {learner_key(x.learner_id) for x in learners}
        credit_ids = {r.credit_id for r in records if r.credit_id}
        return MemoryLookups(
            activities=self.activities(environment, provider_pk, activity_ids),
            learners=learners,
            records=self.live_records(environment, provider_pk, credit_ids, activity_ids, learner_keys),
        )

    def store_raw_request(self, environment: str, provider_pk: int, source: Source, correlation_id: str,
                          body: bytes, now: dt.datetime) -> int:
        return self.conn.execute(insert(t.raw_requests).values(
            environment=environment, provider_pk=provider_pk, source=source.value, correlation_id=correlation_id,
            received_at=now, body=zlib.compress(body, 6),
        ).returning(t.raw_requests.c.id)).scalar_one()

    def _insert_ignoring_live_duplicates(self):
        lr = t.learner_records
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        # No conflict target: a live CreditID taken by a concurrent request, or a batch row
        # already stored, are both skipped and reported by the caller.
        return dialect_insert(lr).on_conflict_do_nothing().returning(lr.c.id, lr.c.credit_id)

    def apply(self, environment: str, provider_pk: int, judgements: list[Judgement], now: dt.datetime,
              request_pk: int | None = None, batch_pk: int | None = None) -> set[str]:
        """Store the adds and deletes that passed every rule, in request order.

        Returns the CreditIDs the database refused as already live (a concurrent request won).
        """
        lr = t.learner_records
        added = [j for j in judgements if j.ok and j.status in (Status.SUBMITTED, Status.ACCEPTED)]
        adds = [j.stored for j in added]
        lost: set[str] = set()
        inserted: dict[str, int] = {}
        if adds:
            rows = [self._row(environment, provider_pk, j.stored, request_pk, batch_pk,
                              j.record.index if batch_pk is not None else None) for j in added]
            result = self.conn.execute(self._insert_ignoring_live_duplicates(), rows)
            inserted = {row.credit_id: row.id for row in result}
            lost = {rec.credit_id for rec in adds} - set(inserted)
            events = [dict(record_pk=pk, status=rec.status.value, at=now)
                      for rec in adds if (pk := inserted.get(rec.credit_id)) is not None]
            if events:
                self.conn.execute(insert(t.record_events), events)
        deletes = [j.stored for j in judgements if j.ok and j.status == Status.DELETED]
        for rec in deletes:
            pk = rec.id if rec.id is not None else inserted.get(rec.credit_id)
            if pk is None:
                continue
            self.conn.execute(update(lr).where(lr.c.id == pk).values(
                status=Status.DELETED.value, deleted_at=now, updated_at=now))
            self.conn.execute(insert(t.record_events).values(record_pk=pk, status=Status.DELETED.value, at=now))
        return lost

    @staticmethod
    def _row(environment, provider_pk, rec: StoredRecord, request_pk, batch_pk, batch_row) -> dict:
        return dict(
            environment=environment, provider_pk=provider_pk, credit_id=rec.credit_id,
            activity_id=rec.activity_id, board=rec.board, learner_id_type=rec.learner_id_type,
            learner_id=rec.learner_id, learner_key=learner_key(rec.learner_id or ""), npi=rec.npi,
            first_name=rec.first_name, last_name=rec.last_name,
            dob_month=rec.dob.month if rec.dob else None, dob_day=rec.dob.day if rec.dob else None,
            completion_date=rec.completion_date, credits=rec.credits, credit_types=_lines(rec.credit_types),
            source=rec.source.value, status=rec.status.value, submitted_at=rec.submitted_at,
            updated_at=rec.updated_at, request_pk=request_pk, batch_pk=batch_pk, batch_row=batch_row,
        )

    def records_by_credit_id(self, environment: str, provider_pk: int, credit_id: str) -> list[StoredRecord]:
        lr = t.learner_records
        rows = self.conn.execute(select(lr).where(
            lr.c.environment == environment, lr.c.provider_pk == provider_pk, lr.c.credit_id == credit_id,
        ).order_by(lr.c.deleted_at.is_not(None), lr.c.id.desc())).all()
        return [record_from_row(r) for r in rows]

    def records_by_learner(self, environment: str, provider_pk: int, activity_id: str, learner_id: str,
                           completion_date: dt.date) -> list[StoredRecord]:
        lr = t.learner_records
        rows = self.conn.execute(select(lr).where(
            lr.c.environment == environment, lr.c.provider_pk == provider_pk, lr.c.activity_id == activity_id,
            lr.c.learner_key == learner_key(learner_id), lr.c.completion_date == completion_date,
        ).order_by(lr.c.deleted_at.is_not(None), lr.c.id)).all()
        return [record_from_row(r) for r in rows]


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Repository]:
        with self.engine.connect().execution_options(write=write) as conn:
            with conn.begin():
                yield Repository(conn)


class AccountRepository:
    """Providers and credentials (not environment-scoped: the credential decides the environment)."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def provider(self, provider_id: str):
        return self.conn.execute(select(t.providers).where(t.providers.c.provider_id == provider_id)).first()

    def provider_by_pk(self, pk: int):
        return self.conn.execute(select(t.providers).where(t.providers.c.id == pk)).first()

    def ensure_provider(self, provider_id: str, name: str, domain: str, email: str, contact: str | None = None) -> int:
        row = self.provider(provider_id)
        if row is not None:
            return row.id
        return self.conn.execute(insert(t.providers).values(
            provider_id=provider_id, name=name, domain=domain, email=email, contact=contact,
        ).returning(t.providers.c.id)).scalar_one()

    def credential(self, username: str):
        """The credential row joined with its provider, or None."""
        c, p = t.credentials, t.providers
        return self.conn.execute(
            select(c.c.id, c.c.environment, c.c.username, c.c.secret_hash, c.c.disabled,
                   p.c.id.label("provider_pk"), p.c.provider_id, p.c.name.label("provider_name"),
                   p.c.domain, p.c.email)
            .join(p, p.c.id == c.c.provider_pk).where(c.c.username == username)
        ).first()

    def add_credential(self, provider_pk: int, environment: str, username: str, secret_hash: str,
                       now: dt.datetime) -> None:
        self.conn.execute(insert(t.credentials).values(
            provider_pk=provider_pk, environment=environment, username=username, secret_hash=secret_hash,
            disabled=False, created_at=now))

    def set_credential(self, username: str, now: dt.datetime, *, secret_hash: str | None = None,
                       disabled: bool | None = None) -> bool:
        values: dict = {}
        if secret_hash is not None:
            values.update(secret_hash=secret_hash, rotated_at=now)
        if disabled is not None:
            values["disabled"] = disabled
        result = self.conn.execute(update(t.credentials).where(t.credentials.c.username == username).values(**values))
        return result.rowcount == 1

    def credentials(self):
        c, p = t.credentials, t.providers
        return self.conn.execute(
            select(c.c.username, c.c.environment, c.c.disabled, c.c.created_at, c.c.rotated_at, p.c.provider_id)
            .join(p, p.c.id == c.c.provider_pk).order_by(p.c.provider_id, c.c.username)).all()
