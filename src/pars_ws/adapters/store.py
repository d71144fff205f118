"""Storage of providers, credentials, activities, board registries and learner records (SQLAlchemy 2 Core).

`Store.transaction()` is the unit of work: one connection, one transaction, committed on success.
`Store.driver_transaction()` is the same for SaveLearnerActivity, whose statements are all
Prepared ones (see adapters/prepared.py).
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import zlib
from contextlib import contextmanager, nullcontext
from decimal import Decimal
from functools import lru_cache
from typing import Iterable, Iterator, Sequence

from sqlalchemy import (
    Connection, Engine, Integer, Numeric, String, bindparam, column, func, insert, select, text, update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ..domain.activities import Activity, RegisteredLearner, Registration
from ..domain.catalogue import Catalogue, fold
from ..domain.engine import Judgement, learner_key
from ..domain.lookups import NPI, MemoryLookups
from ..domain.names import name_key
from ..domain.records import DOB, ReportedRecord, Source, Status, StoredRecord
from . import tables as t
from .database import writer_lock
from .prepared import DriverConnection, DriverConnections, Prepared


def _lines(values: Iterable[str]) -> str:
    return "\n".join(values)


@lru_cache(maxsize=1024)  # the same few credit-type lists recur on every row
def _split(text: str) -> tuple[str, ...]:
    return tuple(v for v in text.split("\n") if v)


@lru_cache(maxsize=512)  # DOBs are immutable and few; building one per row was measurable
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


# -- statements, built once -------------------------------------------------------------------------
# The lookups ask for exact keys through a small table of them joined to the indexed columns: one
# index seek per key. A few keys come as a VALUES list: on SQLite every indexed column, the
# environment included, is bound from it, since a constant term would let SQLite (3.38+, once
# ANALYZE has run) build a Bloom filter by scanning every row that matches that term; the number
# of keys is rounded up to a power of two (padded with keys that match nothing) so that few
# statement texts are ever compiled. Many keys on PostgreSQL come as arrays to unnest instead: one
# statement text whatever their number (psycopg re-parses a statement of more than 50 parameters
# on every call, and the server plans it anew).

_PG = "postgresql"
_FEW = 8  # keys that still fit psycopg's cached statements as a VALUES list


def _bucket(n: int) -> int:
    return 1 << (n - 1).bit_length() if n else 0


def _shape(dialect: str, n: int) -> int:
    """What a keys table's statement text depends on: 0 (no keys), -1 (arrays) or the VALUES bucket."""
    return -1 if dialect == _PG and n > _FEW else _bucket(n)


def _keys_cte(name: str, columns: tuple[tuple[str, str], ...], shape: int) -> str:
    """`name (columns) AS (...)`: a table of keys, of a shape from _shape."""
    names = ", ".join(c for c, _ in columns)
    if shape < 0:
        arrays = ", ".join(f"CAST(:{name}_{c} AS {type_}[])" for c, type_ in columns)
        return f"{name} ({names}) AS (SELECT * FROM unnest({arrays}))"
    rows = ("(" + ", ".join(f":{name}{i}_{j}" for j in range(len(columns))) + ")" for i in range(shape))
    return f"{name} ({names}) AS (VALUES {', '.join(rows)})"


def _bind_keys(params: dict, name: str, columns: tuple, keys: Sequence[tuple], shape: int) -> None:
    """Bind (environment, ...) keys for _keys_cte; the VALUES padding has no environment."""
    if shape < 0:
        for j, (c, _) in enumerate(columns):
            params[f"{name}_{c}"] = [key[j] for key in keys]
        return
    padding = [("", *keys[0][1:])] * (shape - len(keys)) if keys else []
    for i, key in enumerate([*keys, *padding]):
        for j, value in enumerate(key):
            params[f"{name}{i}_{j}"] = value


def _in_list(prefix: str, n: int) -> list:
    """`IN (:p0, :p1, ...)` parameters for n values (bucketed): expanding parameters cost more to bind."""
    return [bindparam(f"{prefix}{i}") for i in range(_bucket(n))]


def _bind_list(params: dict, prefix: str, values: Sequence) -> None:
    padded = [*values, *values[:1] * (_bucket(len(values)) - len(values))]  # a repeated value changes nothing
    params.update({f"{prefix}{i}": value for i, value in enumerate(padded)})


_A, _REG = t.activities, t.registrations


@lru_cache(maxsize=None)
def _activities_sql(n: int) -> Prepared:
    """Activities (with their owner) and their registrations (ordered by board), by activity ID."""
    return Prepared(
        select(_A.c.id, _A.c.provider_pk, _A.c.activity_id, _A.c.provider_activity_id, _A.c.title,
               _A.c.activity_type, _A.c.start_date, _A.c.end_date, _A.c.reporting_year, _A.c.credits,
               _REG.c.board, _REG.c.max_points, _REG.c.credit_types.label("reg_credit_types"))
        .select_from(_A.outerjoin(_REG, _REG.c.activity_pk == _A.c.id))
        .where(_A.c.environment == bindparam("environment"), _A.c.activity_id.in_(_in_list("a", n)))
        .order_by(_A.c.id, _REG.c.board)
    )


# Bumped by triggers (migration 0004) on every write to activities or registrations, by any writer.
_ACTIVITIES_VERSION = Prepared(select(t.change_counters.c.value).where(t.change_counters.c.name == "activities"))
_UNREAD = object()


class ActivityCache:
    """One process's activities, each valid while the database's activities change counter holds
    the value it was read under: every SOAP call and batch chunk looks its activities up, and
    reading them cost more than any other lookup. Absent activities are remembered too.

    Only committed counters are ever seen by other transactions, and a transaction that writes
    activities neither reads from nor fills the cache (its own counter may yet be rolled back and
    reused). Writes that bypass triggers (a restore with triggers disabled, replication role
    `replica`) are not seen: restart the processes after those, as after restoring a backup."""

    BOUND = 20_000

    def __init__(self):
        # (environment, activity ID) -> (counter, owner's provider pk, activity or None)
        self._entries: dict[tuple[str, str], tuple[int, int | None, Activity | None]] = {}

    def get(self, counter: int | None, environment: str, activity_id: str):
        entry = self._entries.get((environment, activity_id))
        return entry[1:] if entry is not None and counter is not None and entry[0] == counter else None

    def put(self, counter: int | None, environment: str, activity_id: str, owner: int | None,
            activity: Activity | None) -> None:
        if counter is None:
            return
        if len(self._entries) >= self.BOUND:
            self._entries = {}
        self._entries[(environment, activity_id)] = (counter, owner, activity)


_RL, _RC = t.registry_learners, t.registry_completions
_RL_COLUMNS = ("id", "board", "learner_id", "npi", "first_name", "last_name", "dob_month", "dob_day",
               "review_reject_code")
_PAIR = (("environment", "TEXT"), ("board", "TEXT"), ("k", "TEXT"))
_REGISTRY_KEYS = (("by_id", "learner_key"), ("by_npi", "npi"), ("by_name", "last_name_key"))


_LR = t.learner_records
_HELD = (("environment", "TEXT"), ("provider_pk", "INTEGER"), ("board", "TEXT"), ("activity_id", "TEXT"),
         ("k", "TEXT"))
# Records held are kept under the registry learner's key: a learner reported by NPI or matched on
# name is found through the registry learners of that NPI or last-name key (rl.npi and
# rl.last_name_key are stored as the rules compare them: see import_learners).
_HELD_KEYS = (("held_ids", None), ("held_npis", "npi"), ("held_names", "last_name_key"))
# A row of the lookups statement is a registry learner (kind 0: rl_* and done_* columns) or a
# learner record (kind 1: learner_records' columns); the other's columns are NULL.
_REGISTRY_COLUMNS = (*(column(f"rl_{c}", _RL.c[c].type) for c in _RL_COLUMNS),
                     column("done_activity_id", _RC.c.activity_id.type),
                     column("done_date", _RC.c.completion_date.type))


def _nulls(columns) -> str:
    # Typed: PostgreSQL types a UNION's columns pairwise, and two bare NULLs become text.
    return ", ".join(f"CAST(NULL AS {_unsized(c.type)})" for c in columns)


def _unsized(type_) -> str:
    return ("TEXT" if isinstance(type_, String) else "NUMERIC" if isinstance(type_, Numeric)
            else type_.compile(dialect=postgresql.dialect()))


@lru_cache(maxsize=256)
def _lookups_sql(ids: int, npis: int, names: int, credit_ids: int, held_ids: int, held_npis: int,
                 held_names: int) -> Prepared:
    """One statement for what the rules may ask of storage beyond activities: registry learners
    (with their completions) by (environment, board, key), the key being the folded learner ID, the
    NPI or the last-name key; and learner records by CreditID (live ones) and by (board, activity
    ID, learner key), the key being the reported one or that of the registry learners of a reported
    NPI or last name (deleted records too: a deleted_at term would be constant, see above; the
    caller drops them). Each argument is the shape of its keys table."""
    ctes, branches = [], []
    no_records = _nulls(_LR.c)
    registry = ", ".join(f"rl.{c}" for c in _RL_COLUMNS)
    for (name, column_), shape in zip(_REGISTRY_KEYS, (ids, npis, names)):
        if shape:
            ctes.append(_keys_cte(name, _PAIR, shape))
            branches.append(
                f"SELECT 0, {registry}, rc.activity_id, rc.completion_date, {no_records} "
                f"FROM {name} JOIN registry_learners AS rl ON rl.environment = {name}.environment "
                f"AND rl.board = {name}.board AND rl.{column_} = {name}.k "
                "LEFT OUTER JOIN registry_completions AS rc ON rc.learner_pk = rl.id")
    record = f"SELECT 1, {_nulls(_REGISTRY_COLUMNS)}, " + ", ".join(f"lr.{c.name}" for c in _LR.c)
    if credit_ids:
        wanted = ("= ANY(CAST(:credit_ids AS TEXT[]))" if credit_ids < 0
                  else "IN (" + ", ".join(f":c{i}" for i in range(credit_ids)) + ")")
        branches.append(f"{record} FROM learner_records AS lr WHERE lr.environment = :environment "
                        f"AND lr.provider_pk = :provider_pk AND lr.deleted_at IS NULL AND lr.credit_id {wanted}")
    for (name, column_), shape in zip(_HELD_KEYS, (held_ids, held_npis, held_names)):
        if not shape:
            continue
        ctes.append(_keys_cte(name, _HELD, shape))
        key = f"{name}.k"
        through = ""
        if column_ is not None:
            through = (f"JOIN registry_learners AS rl ON rl.environment = {name}.environment "
                       f"AND rl.board = {name}.board AND rl.{column_} = {name}.k ")
            key = "rl.learner_key"
        branches.append(
            f"{record} FROM {name} {through}JOIN learner_records AS lr ON lr.environment = {name}.environment "
            f"AND lr.provider_pk = {name}.provider_pk AND lr.board = {name}.board "
            f"AND lr.activity_id = {name}.activity_id AND lr.learner_key = {key}")
    with_ = f"WITH {', '.join(ctes)} " if ctes else ""
    return Prepared(text(with_ + " UNION ALL ".join(branches)).columns(
        column("kind", Integer()), *_REGISTRY_COLUMNS, *_LR.c))


# The columns Repository._row fills.
_ROW_COLUMNS = ("environment", "provider_pk", "credit_id", "activity_id", "board", "learner_id_type", "learner_id",
                "learner_key", "npi", "first_name", "last_name", "dob_month", "dob_day", "completion_date",
                "credits", "credit_types", "source", "status", "submitted_at", "updated_at", "request_pk",
                "batch_pk", "batch_row")
# No conflict target: a live CreditID taken by a concurrent request, or a batch row already stored,
# are both skipped and reported by the caller. SQLite takes one row per statement (microseconds
# each); PostgreSQL gets them as one array per column instead (see above).
_ADD_RECORD_SQLITE = Prepared(sqlite.insert(_LR).on_conflict_do_nothing(), _ROW_COLUMNS)
# Unsized types (of a row's values or their arrays), so that a value too long or too precise fails (or rounds)
# exactly as in a plain INSERT.
_PG_TYPE = {c: _unsized(_LR.c[c].type) for c in _ROW_COLUMNS}
_REQUEST_COLUMNS = ("environment", "provider_pk", "source", "correlation_id", "received_at", "body")


@lru_cache(maxsize=None)
def _add_records_pg(with_request: bool, one: bool) -> Prepared:
    """On PostgreSQL each added record's first event is written by the same statement, and with_request
    the request's audit copy too (its id in every record's request_pk): one round trip for all.
    `one` record comes as a row of plain parameters: psycopg builds array parameters in Python, which
    for the two dozen columns cost more than the server's work for the statement."""
    columns = [c for c in _ROW_COLUMNS if not (with_request and c == "request_pk")]
    if one:
        rows = "VALUES (" + ", ".join(f"CAST(:{c} AS {_PG_TYPE[c]})" for c in columns) + ")"
    else:
        rows = "SELECT * FROM unnest(" + ", ".join(f"CAST(:{c} AS {_PG_TYPE[c]}[])" for c in columns) + ")"
    request = ""
    if with_request:
        request = (f"request AS (INSERT INTO raw_requests ({', '.join(_REQUEST_COLUMNS)}) VALUES ("
                   + ", ".join(f":request_{c}" for c in _REQUEST_COLUMNS) + ") RETURNING id), ")
        rows = f"SELECT reported.*, request.id FROM ({rows}) AS reported CROSS JOIN request"
        columns.append("request_pk")
    return Prepared(text(
        f"WITH {request}added AS (INSERT INTO learner_records ({', '.join(columns)}) {rows} "
        "ON CONFLICT DO NOTHING RETURNING id, credit_id, status), "
        "events AS (INSERT INTO record_events (record_pk, status, at) SELECT id, status, :event_at FROM added) "
        "SELECT id, credit_id FROM added"
    ).columns(_LR.c.id, _LR.c.credit_id), writes=True)


_RAW_REQUEST = Prepared(insert(t.raw_requests).returning(t.raw_requests.c.id), _REQUEST_COLUMNS)
_RAW_REQUEST_SQLITE = Prepared(insert(t.raw_requests), _REQUEST_COLUMNS)
_EVENTS = Prepared(insert(t.record_events), ("record_pk", "status", "at"))
_DELETE_RECORD = Prepared(update(_LR).where(_LR.c.id == bindparam("pk")).values(
    status=Status.DELETED.value, deleted_at=bindparam("now"), updated_at=bindparam("now")))


# A Password element's text (the body's or WS-Security's, plain or CDATA), in any ASCII-compatible encoding.
_PASSWORD = re.compile(rb"(<(?:[\w.-]+:)?Password\b[^>]*>)(?:<!\[CDATA\[.*?\]\]>|<!--.*?-->|[^<])*(</(?:[\w.-]+:)?Password\s*>)",
                       re.DOTALL)


def redact_passwords(body: bytes) -> bytes:
    """The request with every password replaced by ********: the audit copy never holds a secret."""
    # Only the stretch from the first Password element to the last is searched: the records that
    # follow the credentials are most of a request.
    first, last = body.find(b"Password"), body.rfind(b"Password")
    if first < 0:
        return body
    start, end = max(body.rfind(b"<", 0, first), 0), body.find(b">", last)
    end = len(body) if end < 0 else end + 1
    return body[:start] + _PASSWORD.sub(_blank, body[start:end]) + body[end:]


def _blank(match: re.Match) -> bytes:  # a function: a template (rb"\1...") is expanded in Python
    return match[1] + b"********" + match[2]


class AuditCopy:
    """A request as kept for audit: passwords blanked (see redact_passwords), compressed. Made
    before the write transaction begins, so the writer lock is not held for it."""

    __slots__ = ("source", "correlation_id", "compressed")

    def __init__(self, body: bytes, source: Source, correlation_id: str):
        self.source, self.correlation_id = source, correlation_id
        body = redact_passwords(body)
        # A window no larger than the body: zlib's default state (256 KB, a 64 KB table cleared on
        # every call) cost more than compressing a one-record request, and evicted the call's data
        # from the CPU caches. The stream is the same zlib format; decompress() reads any window.
        window = min(15, max(9, (len(body) - 1).bit_length()))
        deflate = zlib.compressobj(1, zlib.DEFLATED, window, min(8, max(4, window - 7)))
        self.compressed = deflate.compress(body) + deflate.flush()


class Repository:
    """Queries and writes inside one transaction. Every query is scoped to one environment."""

    def __init__(self, conn: Connection, activity_cache: ActivityCache):
        self.conn = conn
        self.dialect = conn.dialect.name
        self.activity_cache = activity_cache
        self.wrote_activities = False  # see ActivityCache
        self._activities_version: object = _UNREAD  # read with the credential (signed_in_credential)

    def signed_in_credential(self, username: str):
        """AccountRepository.credential, with the activities change counter read in the same
        statement for this transaction's activities(): a SOAP save's sign-in and its activity
        lookup cost one statement instead of two."""
        row = _CREDENTIAL_AND_ACTIVITIES_VERSION.first(self.conn, {"username": username})
        if row is not None:
            self._activities_version = row.activities_version
        return row

    # -- activities ---------------------------------------------------------------------------
    def activities(self, environment: str, provider_pk: int | None, activity_ids: Iterable[str]) -> list[Activity]:
        """The activities of these IDs (of this provider unless provider_pk is None)."""
        ids = sorted(set(activity_ids))
        if not ids:
            return []
        cache = self.activity_cache
        # None: nothing read from or put in the cache.
        if self.wrote_activities:
            counter = None
        elif self._activities_version is not _UNREAD:
            counter = self._activities_version
        else:
            row = _ACTIVITIES_VERSION.first(self.conn, {})
            counter = row.value if row is not None else None
        found: list[tuple[int | None, Activity | None]] = []
        missing = []
        for activity_id in ids:
            entry = cache.get(counter, environment, activity_id)
            if entry is None:
                missing.append(activity_id)
            else:
                found.append(entry)
        if missing:
            loaded = {a.activity_id: (owner, a) for owner, a in self._load_activities(environment, missing)}
            for activity_id in missing:
                entry = loaded.get(activity_id, (None, None))
                cache.put(counter, environment, activity_id, *entry)
                found.append(entry)
        return [a for owner, a in found if a is not None and (provider_pk is None or owner == provider_pk)]

    def _load_activities(self, environment: str, ids: list[str]) -> list[tuple[int, Activity]]:
        params = {"environment": environment}
        _bind_list(params, "a", ids)
        found: dict[int, tuple] = {}
        for row in _activities_sql(len(ids)).rows(self.conn, params):
            _, regs = found.setdefault(row.id, (row, []))
            if row.board is not None:
                regs.append(Registration(row.board, Decimal(row.max_points), _split(row.reg_credit_types)))
        return [
            (r.provider_pk, Activity(
                activity_id=r.activity_id, title=r.title, activity_type=r.activity_type,
                start_date=r.start_date, end_date=r.end_date, reporting_year=r.reporting_year,
                credits=Decimal(r.credits), registrations=tuple(regs),
                provider_activity_id=r.provider_activity_id,
            ))
            for r, regs in found.values()
        ]

    def save_activity(self, environment: str, provider_pk: int, activity: Activity, now: dt.datetime) -> None:
        """Insert or replace an activity and its registrations."""
        self.wrote_activities = True
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
                npi=fold(learner.npi) if learner.npi else None,  # compared with folded IDs
                first_name=learner.first_name, last_name=learner.last_name,
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

    def lookups_for(self, environment: str, provider_pk: int, records: Sequence[ReportedRecord],
                    catalogue: Catalogue) -> MemoryLookups:
        """Everything the rules may ask about these records: their activities (see activities()), then
        registry learners and learner records in one statement (see _lookups_sql).

        Only the exact keys the rules look up are asked for, so each is one index seek (IN lists on
        several columns would seek their cartesian product).
        """
        by_id, by_npi, by_name = set(), set(), set()  # (environment, board, key)
        held_ids, held_npis, held_names = set(), set(), set()  # (environment, provider, board, activity, key)
        for r in records:
            board = catalogue.by_registration(r.board)
            if board is None:
                continue
            activity_id = r.activity_id.strip() if r.activity_id else None
            if r.learner_id:
                key = fold(r.learner_id)
                id_type = board.id_type(r.learner_id_type) if r.learner_id_type else None
                # Learner IDs of the NPI type are looked up among NPIs only; the records held are
                # under the ID as written, or under the ID of the registry learner of that NPI.
                npi = bool(id_type) and fold(id_type) == NPI
                (by_npi if npi else by_id).add((environment, board.code, key))
                if activity_id:
                    held_ids.add((environment, provider_pk, board.code, activity_id, key))
                    if npi:
                        held_npis.add((environment, provider_pk, board.code, activity_id, key))
            elif r.last_name:
                key = name_key(r.last_name)
                by_name.add((environment, board.code, key))
                if activity_id:
                    held_names.add((environment, provider_pk, board.code, activity_id, key))
        credit_ids = {cid for r in records if r.credit_id and (cid := r.credit_id.strip())}
        activities = self.activities(environment, provider_pk, {r.activity_id.strip() for r in records if r.activity_id})
        learners, held = self._learners_and_records(environment, provider_pk, (by_id, by_npi, by_name), credit_ids,
                                                    (held_ids, held_npis, held_names))
        return MemoryLookups(activities=activities, learners=learners, records=held)

    def _learners_and_records(self, environment: str, provider_pk: int, registry_keys: tuple[set, set, set],
                              credit_ids: set[str], held_keys: tuple[set, set, set]):
        if not (any(registry_keys) or credit_ids or any(held_keys)):
            return [], []
        params: dict = {"environment": environment, "provider_pk": provider_pk}
        registry_shapes = [_shape(self.dialect, len(keys)) for keys in registry_keys]
        credit_id_shape = _shape(self.dialect, len(credit_ids))
        held_shapes = [_shape(self.dialect, len(keys)) for keys in held_keys]
        for (name, _), keys, shape in zip(_REGISTRY_KEYS, registry_keys, registry_shapes):
            _bind_keys(params, name, _PAIR, list(keys), shape)
        if credit_id_shape < 0:
            params["credit_ids"] = sorted(credit_ids)
        else:
            _bind_list(params, "c", sorted(credit_ids))
        for (name, _), keys, shape in zip(_HELD_KEYS, held_keys, held_shapes):
            _bind_keys(params, name, _HELD, list(keys), shape)
        learners: dict[int, tuple] = {}
        held: dict[int, tuple] = {}  # a record can match by CreditID and by learner: kept once
        for row in _lookups_sql(*registry_shapes, credit_id_shape, *held_shapes).rows(self.conn, params):
            if row.kind == 0:
                _, done = learners.setdefault(row.rl_id, (row, set()))
                if row.done_activity_id is not None:
                    done.add((row.done_activity_id, row.done_date))
            elif row.deleted_at is None:
                held[row.id] = row
        return [
            RegisteredLearner(
                board=row.rl_board, learner_id=row.rl_learner_id, first_name=row.rl_first_name,
                last_name=row.rl_last_name, dob=_dob(row.rl_dob_month, row.rl_dob_day), npi=row.rl_npi,
                review_reject_code=row.rl_review_reject_code, completions=frozenset(done),
            )
            for row, done in learners.values()
        ], [record_from_row(row) for row in held.values()]

    def store_raw_request(self, environment: str, provider_pk: int, copy: AuditCopy, now: dt.datetime) -> int:
        """Keep a request's audit copy (see AuditCopy)."""
        values = _request_values(environment, provider_pk, copy, now)
        if self.dialect == _PG:
            return _RAW_REQUEST.first(self.conn, values).id
        return _RAW_REQUEST_SQLITE.insert(self.conn, values)

    def apply(self, environment: str, provider_pk: int, judgements: list[Judgement], now: dt.datetime,
              copy: AuditCopy | None = None, batch_pk: int | None = None) -> set[str]:
        """Keep the request's audit copy, if given, and store the adds and deletes that passed every
        rule, in request order, each linked to the copy.

        Returns the CreditIDs the database refused as already live (a concurrent request won).
        """
        added = [j for j in judgements if j.ok and j.status in (Status.SUBMITTED, Status.ACCEPTED)]
        adds = [j.stored for j in added]
        deletes = [j.stored for j in judgements if j.ok and j.status == Status.DELETED]
        if self.dialect == _PG and not deletes and isinstance(self.conn, DriverConnection):
            self.conn.lone_write()  # the request's copy and the adds are one statement (a delete is two)
        # On PostgreSQL the copy goes in with the adds, in their statement.
        copy_with_adds = copy is not None and self.dialect == _PG and bool(adds)
        request_pk = (None if copy is None or copy_with_adds
                      else self.store_raw_request(environment, provider_pk, copy, now))
        lost: set[str] = set()
        inserted: dict[str, int] = {}
        if adds:
            rows = [self._row(environment, provider_pk, j.stored, request_pk, batch_pk,
                              j.record.index if batch_pk is not None else None) for j in added]
            if self.dialect == _PG:
                one = len(rows) == 1
                params = {"event_at": now, **(rows[0] if one else {c: [row[c] for row in rows] for c in _ROW_COLUMNS})}
                if copy_with_adds:
                    del params["request_pk"]
                    params.update((f"request_{c}", v) for c, v in _request_values(
                        environment, provider_pk, copy, now).items())
                inserted = {row.credit_id: row.id for row in _add_records_pg(copy_with_adds, one).rows(self.conn, params)}
            else:  # SQLite runs a statement in microseconds: one per row
                inserted = {row["credit_id"]: pk for row in rows
                            if (pk := _ADD_RECORD_SQLITE.insert(self.conn, row)) is not None}
            lost = {rec.credit_id for rec in adds} - set(inserted)
            if self.dialect != _PG:
                events = [dict(record_pk=pk, status=rec.status.value, at=now)
                          for rec in adds if (pk := inserted.get(rec.credit_id)) is not None]
                if events:
                    _EVENTS.run_many(self.conn, events)
        for rec in deletes:
            pk = rec.id if rec.id is not None else inserted.get(rec.credit_id)
            if pk is None:
                continue
            _DELETE_RECORD.run(self.conn, {"pk": pk, "now": now})
            _EVENTS.run(self.conn, {"record_pk": pk, "status": Status.DELETED.value, "at": now})
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


def _request_values(environment: str, provider_pk: int, copy: AuditCopy, now: dt.datetime) -> dict:
    return dict(environment=environment, provider_pk=provider_pk, source=copy.source.value,
                correlation_id=copy.correlation_id, received_at=now, body=copy.compressed)


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.activity_cache = ActivityCache()
        self.driver_connections = DriverConnections(engine)

    @contextmanager
    def transaction(self, write: bool = True, *, one_statement: bool = False) -> Iterator[Repository]:
        """`one_statement`: a read of a single statement, which needs no transaction of its own
        (PostgreSQL: no BEGIN and COMMIT round trips)."""
        with writer_lock(self.engine) if write else nullcontext():
            conn = self.engine.connect()
            if one_statement and not write and self.engine.dialect.name == _PG:
                conn = conn.execution_options(write=False, isolation_level="AUTOCOMMIT")
            else:
                conn = conn.execution_options(write=write)
            with conn, conn.begin():
                yield Repository(conn, self.activity_cache)

    @contextmanager
    def driver_transaction(self) -> Iterator[Repository]:
        """A write transaction whose statements are all Prepared ones (see DriverConnection): calling
        any other Repository method in it fails."""
        conn = self.driver_connections.take()  # taken and given back outside the writer lock
        committed = False
        try:
            with writer_lock(self.engine):
                try:
                    conn.begin()
                    yield Repository(conn, self.activity_cache)
                    conn.commit()
                    committed = True
                except BaseException:
                    try:
                        conn.rollback()
                    except Exception:  # noqa: BLE001 - the first error is the one to report
                        logging.getLogger("pars_ws.errors").exception("rollback failed")
                    raise
        finally:
            self.driver_connections.give_back(conn, committed)


_C, _P = t.credentials, t.providers
_CREDENTIAL = Prepared(
    select(_C.c.id, _C.c.environment, _C.c.username, _C.c.secret_hash, _C.c.disabled, _C.c.failed_logins,
           _C.c.locked_until, _P.c.id.label("provider_pk"), _P.c.provider_id, _P.c.name.label("provider_name"),
           _P.c.domain, _P.c.email)
    .join(_P, _P.c.id == _C.c.provider_pk).where(_C.c.username == bindparam("username")))
_CREDENTIAL_AND_ACTIVITIES_VERSION = Prepared(
    _CREDENTIAL.stmt.add_columns(_ACTIVITIES_VERSION.stmt.scalar_subquery().label("activities_version")))


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
        """The credential row (with its throttling state) joined with its provider, or None."""
        return _CREDENTIAL.first(self.conn, {"username": username})

    def reset_failures(self, username: str) -> bool:
        """Forget a credential's failed logins and lift its lock; False for an unknown user."""
        c = t.credentials
        return self.conn.execute(update(c).where(c.c.username == username)
                                 .values(failed_logins=0, locked_until=None)).rowcount == 1

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
