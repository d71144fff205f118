"""Prepared statements and driver transactions (the SaveLearnerActivity hot path) against SQLAlchemy
Core: the same values in and out, the same exceptions, the same transaction boundaries; and
sign-in inside the save's transaction only when the credential cache alone decides it."""
from __future__ import annotations

import datetime as dt
import tempfile
import zlib
from decimal import Decimal

import pytest
from sqlalchemy import column, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from pars_ws.adapters import tables as t
from pars_ws.adapters.activity_report import read_document
from pars_ws.adapters.prepared import Prepared
from pars_ws.adapters.store import _EVENTS, AccountRepository, AuditCopy, Repository
from pars_ws.domain.lookups import MemoryLookups
from pars_ws.domain.records import ReportedRecord, Source, Status
from pars_ws.service.auth import AuthenticationFailed
from pars_ws.service.sandbox import seed_sandbox
from tests.conftest import SANDBOX_PASSWORD, SANDBOX_USER, make_services
from tests.support import lock_is_free, record, xml_reports

NOW = dt.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def services(database_url):
    services = make_services(database_url, login_max_failures=3)
    seed_sandbox(services, username=SANDBOX_USER, password=SANDBOX_PASSWORD)
    yield services
    services.engine.dispose()


def _soap_save(services, *records_xml, correlation_id="traced", raw=b"<x/>"):
    """SaveLearnerActivity through the service layer, as the SOAP endpoint calls it."""
    records = read_document(xml_reports(list(records_xml)).encode(), services.settings.limits)
    return services.learners.save_signed_in(SANDBOX_USER, SANDBOX_PASSWORD, None, lambda _a: records,
                                            source=Source.SOAP, raw=raw, correlation_id=correlation_id)


def test_prepared_reads_give_what_core_gives(services):
    account = services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    with services.store.transaction(write=False) as repo:
        core = repo.conn.execute(select(t.activities).where(t.activities.c.provider_pk == account.provider_pk)).all()
        prepared = repo.activities(account.environment, account.provider_pk, [r.activity_id for r in core])
        credential = AccountRepository(repo.conn).credential(SANDBOX_USER)
    assert core and len(prepared) == len(core)
    by_id = {a.activity_id: a for a in prepared}
    for row in core:
        a = by_id[row.activity_id]
        assert (a.start_date, a.end_date, a.credits, a.title) == (row.start_date, row.end_date, row.credits, row.title)
        assert isinstance(a.start_date, dt.date) and isinstance(a.credits, Decimal)
    assert credential.username == SANDBOX_USER and credential.disabled is False
    assert credential.locked_until is None and credential.provider_pk == account.provider_pk


def test_prepared_writes_store_what_core_reads_back(services):
    account = services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    with services.store.driver_transaction() as repo:
        pk = repo.store_raw_request(account.environment, account.provider_pk,
                                    AuditCopy(b"<Password>secret</Password>", Source.SOAP, "cid-prepared"), NOW)
    with services.store.transaction(write=False) as repo:
        row = repo.conn.execute(select(t.raw_requests).where(t.raw_requests.c.id == pk)).one()
    assert row.correlation_id == "cid-prepared" and row.source == Source.SOAP.value
    assert zlib.decompress(row.body) == b"<Password>********</Password>"
    # Read back by Core as an aware or naive UTC time, to the microsecond.
    assert row.received_at.replace(tzinfo=dt.timezone.utc) == NOW


def test_a_saved_record_reads_back_the_same_by_prepared_and_core_statements(services):
    records = read_document(xml_reports([record("prep-1")]).encode(), services.settings.limits)
    signed_in = []
    judgements = services.learners.save_signed_in(
        SANDBOX_USER, SANDBOX_PASSWORD, None, lambda account: signed_in.append(account) or records,
        source=Source.SOAP, raw=b"<x/>", correlation_id="cid-1")
    account, = signed_in
    assert judgements[0].ok, judgements[0].codes
    with services.store.transaction(write=False) as repo:
        core = repo.records_by_credit_id(account.environment, account.provider_pk, "prep-1")
        lookups = repo.lookups_for(account.environment, account.provider_pk,
                                   [ReportedRecord(index=1, credit_id="prep-1")], services.catalogue)
        prepared = [lookups.live_record("prep-1")]
    assert core == prepared and len(core) == 1
    assert core[0].credits == Decimal("3.5") and core[0].completion_date == dt.date(2026, 1, 5)


def test_records_added_one_per_call_and_several_per_call_are_stored_alike(services):
    """On PostgreSQL one added record is written from a row of parameters, several from arrays: both
    store the same values (every column but the keys, the CreditID and the request)."""
    other = {"learner_id": "1000107", "first": "Test3", "last": "Account3", "dob": "1900-04-01", "points": "2.25"}

    def save(day: int, *credit_ids: str) -> None:  # the records named "-b" are the other learner's
        judgements = _soap_save(services, *(
            record(cid, completed=f"2026-03-{day:02d}T00:00:00", **(other if "-b" in cid else {"points": "1.25"}))
            for cid in credit_ids), correlation_id=credit_ids[0])
        assert all(j.ok for j in judgements), [j.codes for j in judgements]

    services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    save(6, "shape-a1")
    save(7, "shape-a2", "shape-b2")
    save(8, "shape-b3")
    lr = t.learner_records
    ignored = {"id", "credit_id", "request_pk", "completion_date", "submitted_at", "updated_at"}
    with services.store.transaction(write=False) as repo:
        rows = {r.credit_id: r for r in repo.conn.execute(select(lr).where(lr.c.credit_id.like("shape-%"))).all()}
    assert len(rows) == 4

    def values(credit_id):
        return {c: v for c, v in rows[credit_id]._mapping.items() if c not in ignored}

    assert values("shape-a1") == values("shape-a2") and values("shape-a1")["credits"] == Decimal("1.25")
    assert values("shape-b2") == values("shape-b3") and values("shape-b2")["credits"] == Decimal("2.25")
    assert values("shape-a1") != values("shape-b2")
    assert [rows[c].completion_date.day for c in ("shape-a1", "shape-a2", "shape-b3")] == [6, 7, 8]
    with services.store.transaction(write=False) as repo:  # and each added record has its first event
        events = repo.conn.execute(select(t.record_events.c.record_pk).where(
            t.record_events.c.record_pk.in_([r.id for r in rows.values()]))).all()
    assert len(events) == 4


def test_a_credit_id_stored_meanwhile_is_lost_and_the_rest_of_the_request_is_stored(services, monkeypatch):
    """Judged as if another request had not yet stored "race-1" (its lookups miss it), the unique
    index still refuses it: 603 for that record, the other stored and linked to its request."""
    def save(*credit_ids):
        return _soap_save(services, *(record(cid, completed=f"2026-04-0{n + 1}T00:00:00")
                                      for n, cid in enumerate(credit_ids)), correlation_id=credit_ids[-1])

    services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    assert [j.codes for j in save("race-1")] == [[]]
    lookups_for = Repository.lookups_for

    def blind(self, *args):  # what a request that read before "race-1" was committed saw
        seen = lookups_for(self, *args)
        return MemoryLookups(activities=seen.activities.values(), learners=seen._learners)

    monkeypatch.setattr(Repository, "lookups_for", blind)
    lost, kept = save("race-1", "race-2")
    assert (lost.codes, lost.status, lost.stored) == ([603], Status.NOT_PROCESSED, None)
    assert kept.ok and kept.stored.credit_id == "race-2"
    lr, raw_requests = t.learner_records, t.raw_requests
    with services.store.transaction(write=False) as repo:
        stored = repo.conn.execute(
            select(lr.c.credit_id, raw_requests.c.correlation_id, func.count(t.record_events.c.id))
            .join(raw_requests, raw_requests.c.id == lr.c.request_pk)
            .join(t.record_events, t.record_events.c.record_pk == lr.c.id)
            .where(lr.c.credit_id.in_(["race-1", "race-2"])).group_by(lr.c.id, raw_requests.c.correlation_id)
            .order_by(lr.c.credit_id)).all()
    assert [tuple(row) for row in stored] == [("race-1", "race-1", 1), ("race-2", "race-2", 1)]


@pytest.mark.parametrize("transaction", ["core", "driver"])
def test_errors_are_sqlalchemys_and_roll_the_transaction_back(services, transaction):
    account = services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    begin = services.store.driver_transaction if transaction == "driver" else services.store.transaction
    with pytest.raises(IntegrityError):
        with begin() as repo:
            repo.store_raw_request(account.environment, account.provider_pk,
                                   AuditCopy(b"<x/>", Source.SOAP, "cid-rolled-back"), NOW)
            # No such learner record: the foreign key refuses the event.
            _EVENTS.run(repo.conn, {"record_pk": 10 ** 9, "status": "Accepted", "at": NOW})
    with services.store.transaction(write=False) as repo:
        kept = repo.conn.execute(select(t.raw_requests.c.id).where(
            t.raw_requests.c.correlation_id == "cid-rolled-back")).all()
    assert kept == []


def test_a_driver_transaction_holds_sqlites_writer_lock(services, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the lock file is SQLite's")
    lock_file = database_url.split("///", 1)[1] + ".write-lock"
    with services.store.driver_transaction():
        assert not lock_is_free(lock_file)
    assert lock_is_free(lock_file)


def test_a_dead_connection_is_reported_invalidated_and_replaced(services, database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL connections can die under a call")
    with pytest.raises(DBAPIError) as info:
        with services.store.driver_transaction() as repo:
            pid = repo.conn.connection.driver_connection.info.backend_pid
            with services.engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            AccountRepository(repo.conn).credential(SANDBOX_USER)
    assert info.value.connection_invalidated
    with services.store.driver_transaction() as repo:  # the pool gives a live one
        assert AccountRepository(repo.conn).credential(SANDBOX_USER) is not None


def _failed_logins(services, username: str) -> int:
    with services.store.transaction(write=False) as repo:
        return AccountRepository(repo.conn).credential(username).failed_logins


def test_known_only_vouches_for_a_cached_clean_sign_in(services):
    auth = services.auth
    auth._verified.clear()
    with services.store.driver_transaction() as repo:
        assert auth.known(repo, SANDBOX_USER, SANDBOX_PASSWORD) is None  # not verified yet: argon2 first
    auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    with services.store.driver_transaction() as repo:
        account = auth.known(repo, SANDBOX_USER, SANDBOX_PASSWORD)
        assert account is not None and account.username == SANDBOX_USER
        assert auth.known(repo, SANDBOX_USER, SANDBOX_PASSWORD, account.provider_id) == account
        assert auth.known(repo, SANDBOX_USER, SANDBOX_PASSWORD + "x") is None
        assert auth.known(repo, SANDBOX_USER, SANDBOX_PASSWORD, "other-provider") is None
        assert auth.known(repo, "nobody", SANDBOX_PASSWORD) is None
        assert auth.known(repo, "", "") is None
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(SANDBOX_USER, "wrong")
    with services.store.driver_transaction() as repo:  # a failure to forget: authenticate() writes that
        assert auth.known(repo, SANDBOX_USER, SANDBOX_PASSWORD) is None
    auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    assert _failed_logins(services, SANDBOX_USER) == 0


def test_save_signed_in_refuses_a_wrong_secret_counts_it_and_never_reads_the_records(services):
    services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)  # cached: a wrong secret must still fail
    read = []
    before = _failed_logins(services, SANDBOX_USER)
    with pytest.raises(AuthenticationFailed):
        services.learners.save_signed_in(SANDBOX_USER, "wrong", None, lambda account: read.append(1) or [],
                                         source=Source.SOAP, raw=b"<x/>", correlation_id="cid-wrong")
    assert read == [] and _failed_logins(services, SANDBOX_USER) == before + 1
    services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)  # forget it again


@pytest.mark.parametrize("cached", [True, False])
def test_save_signed_in_saves_with_or_without_a_cached_credential(services, cached, monkeypatch):
    services.auth._verified.clear()
    if cached:
        services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    signed_in, verified = [], []
    real_verify = type(services.auth)._verify
    monkeypatch.setattr(type(services.auth), "_verify",
                        staticmethod(lambda h, p: verified.append(1) or real_verify(h, p)))
    judgements = services.learners.save_signed_in(
        SANDBOX_USER, SANDBOX_PASSWORD, None,
        lambda account: signed_in.append(account) or [ReportedRecord(index=1, action="add")],
        source=Source.SOAP, raw=b"<x/>", correlation_id=f"cid-{cached}")
    account, = signed_in
    assert account.username == SANDBOX_USER
    assert len(verified) == (0 if cached else 1)  # argon2 only when the cache cannot vouch
    assert [j.status for j in judgements] == [Status.NOT_PROCESSED]  # judged (and refused: no fields)
    with services.store.transaction(write=False) as repo:
        assert repo.conn.execute(select(t.raw_requests.c.id).where(
            t.raw_requests.c.correlation_id == f"cid-{cached}")).all()


def test_statements_without_parameters_and_values_computed_per_execution():
    from sqlalchemy import Column, Integer, MetaData, Table, column, update
    from sqlalchemy.dialects import postgresql, sqlite

    from pars_ws.adapters.prepared import Prepared, _Compiled

    one = Prepared(text("SELECT 1 AS one").columns(column("one", Integer)))
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        assert _Compiled(one.stmt, dialect, None).parameters({}) in ((), {})
    table = Table("x", MetaData(), Column("id", Integer, primary_key=True), Column("v", Integer, onupdate=lambda: 5))
    with pytest.raises(ValueError):  # a Python-side onupdate would be written as NULL: refused
        _Compiled(update(table).where(table.c.id == 1).values(id=2), sqlite.dialect(), None)


def test_a_database_that_cannot_be_reached_raises_sqlalchemys_error():
    from sqlalchemy.exc import OperationalError

    from pars_ws.adapters.database import make_engine
    from pars_ws.adapters.prepared import DriverConnection

    engine = make_engine("postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2")
    try:
        with pytest.raises(OperationalError):
            DriverConnection(engine)
    finally:
        engine.dispose()


def test_a_failed_rollback_leaves_the_first_error_to_the_caller(services, monkeypatch):
    from pars_ws.adapters.prepared import DriverConnection

    def broken_rollback(self):
        raise RuntimeError("rollback failed too")

    monkeypatch.setattr(DriverConnection, "rollback", broken_rollback)
    with pytest.raises(ZeroDivisionError):
        with services.store.driver_transaction():
            1 / 0


@pytest.mark.parametrize("password, fails_after_sign_in, status, logged_provider", [
    (SANDBOX_PASSWORD, False, "200", True),
    (SANDBOX_PASSWORD, True, "500", True),  # signed in, then a server error: the log still names the provider
    ("wrong", False, "500", False),
])
def test_the_call_log_names_the_provider_once_signed_in(services, monkeypatch, caplog, password,
                                                        fails_after_sign_in, status, logged_provider):
    import json
    import logging

    from pars_ws.entrypoints.wsgi import create_app
    from tests.support import soap11_save, soap_call

    if fails_after_sign_in:
        monkeypatch.setattr(type(services.learners), "_save_in", lambda *a, **k: 1 / 0)
    app = create_app(services)
    with caplog.at_level(logging.INFO, logger="pars_ws.calls"):
        answered = soap_call(app, soap11_save([record("log-1")], password=password))
    entry = json.loads([r.getMessage() for r in caplog.records if r.name == "pars_ws.calls"][-1])
    assert answered.startswith(status)
    assert (entry.get("provider_id") == "1234567") is logged_provider


def test_both_sign_in_paths_keep_one_blanked_audit_copy_per_call(services, database_url):
    """The first call signs in in full (argon2, then its own transaction), the next from the credential
    cache inside the save's transaction: each keeps the request once, its password blanked."""
    fresh = make_services(database_url)  # another process: its credential cache is empty
    try:
        raw = f"<p:Password>{SANDBOX_PASSWORD}</p:Password>".encode()
        for n, credit_id in enumerate(("audit-full", "audit-known")):
            [judgement] = _soap_save(fresh, record(credit_id, completed=f"2026-02-0{n + 1}T00:00:00"),
                                     correlation_id=credit_id, raw=raw)
            assert judgement.ok, judgement.codes
        with fresh.store.transaction(write=False) as repo:
            kept = repo.conn.execute(select(t.raw_requests.c.correlation_id, t.raw_requests.c.body).where(
                t.raw_requests.c.correlation_id.in_(["audit-full", "audit-known"]))
                .order_by(t.raw_requests.c.id)).all()
            # Each record names the request it came in (on PostgreSQL both are written by one statement).
            lr, raw_requests = t.learner_records, t.raw_requests
            linked = repo.conn.execute(select(lr.c.credit_id, raw_requests.c.correlation_id)
                                       .join(raw_requests, raw_requests.c.id == lr.c.request_pk)
                                       .where(lr.c.credit_id.in_(["audit-full", "audit-known"]))).all()
    finally:
        fresh.engine.dispose()
    assert [(cid, zlib.decompress(body)) for cid, body in kept] == [
        ("audit-full", b"<p:Password>********</p:Password>"), ("audit-known", b"<p:Password>********</p:Password>")]
    assert sorted(linked) == [("audit-full", "audit-full"), ("audit-known", "audit-known")]


def test_a_committed_connection_is_kept_for_the_next_driver_transaction(database_url):
    services = make_services(database_url)
    try:
        store = services.store
        with store.driver_transaction() as repo:
            first = repo.conn.connection.driver_connection
            AccountRepository(repo.conn).credential(SANDBOX_USER)
        with store.driver_transaction() as repo:
            assert repo.conn.connection.driver_connection is first  # no pool checkout
        with pytest.raises(RuntimeError):
            with store.driver_transaction() as repo:
                assert repo.conn.connection.driver_connection is first
                raise RuntimeError("a failed call")
        with store.driver_transaction() as repo:  # what failed went back to the pool, rolled back
            second = repo.conn.connection.driver_connection
            assert AccountRepository(repo.conn).credential(SANDBOX_USER) is not None
        with store.driver_transaction() as repo:
            assert repo.conn.connection.driver_connection is second
            repo.conn.pid = -1  # as if opened by the process this one was forked from
        with store.driver_transaction() as repo:  # never used, never closed: the parent's
            assert repo.conn.connection.driver_connection is not second
            kept = repo.conn.connection
        assert not _closed(second)
        services.engine.dispose()  # closes the kept connection (a PostgreSQL database can be dropped)
        assert _closed(kept.driver_connection)
    finally:
        services.engine.dispose()


def _closed(driver_connection) -> bool:
    closed = getattr(driver_connection, "closed", None)
    if closed is not None:  # psycopg
        return bool(closed)
    try:
        driver_connection.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - sqlite3.ProgrammingError: closed
        return True
    return False


def test_sqlite_dates_are_bound_as_sqlalchemy_writes_them():
    """prepared.bind_processor writes SQLite's DATETIME and DATE by isoformat(): the same text as
    SQLAlchemy's own processors, for every kind of value they take."""
    from sqlalchemy import Date, DateTime
    from sqlalchemy.dialects import sqlite

    from pars_ws.adapters.prepared import bind_processor

    dialect = sqlite.dialect()
    utc, east = dt.timezone.utc, dt.timezone(dt.timedelta(hours=5, minutes=30))
    datetimes = [dt.datetime(2026, 11, 26, 13, 35, 12, 345678), dt.datetime(2026, 1, 2, 3, 4, 5),
                 dt.datetime(1, 1, 1), dt.datetime(999, 12, 31, 23, 59, 59, 999999),
                 dt.datetime(9999, 12, 31, 23, 59, 59, 1), dt.datetime(2026, 11, 26, 0, 0, tzinfo=utc),
                 dt.datetime(2026, 11, 26, 7, 8, 9, 10, tzinfo=east)]
    dates = [dt.date(2026, 11, 26), dt.date(1, 1, 1), dt.date(999, 2, 3), dt.date(9999, 12, 31)]
    for type_, values in ((DateTime(), datetimes + dates + [None]), (DateTime(timezone=True), datetimes + [None]),
                          (Date(), dates + datetimes + [None])):
        impl = type_.dialect_impl(dialect)
        fast, slow = bind_processor(impl, dialect), impl.bind_processor(dialect)
        assert fast is not slow  # the fast path is the one tested
        for value in values:
            assert fast(value) == slow(value), value
    # Another dialect, or a format of one's own, keeps SQLAlchemy's processor.
    custom = sqlite.DATE(storage_format="%(day)02d/%(month)02d/%(year)04d")
    assert bind_processor(custom, dialect)(dt.date(2026, 11, 26)) == "26/11/2026"


def _traced(services, save) -> bytes:
    """What the kept driver connection sent and received (libpq's trace) while `save` ran."""
    with services.store.driver_transaction() as repo:  # keeps a connection for the traced call
        AccountRepository(repo.conn).credential(SANDBOX_USER)
    pgconn = services.store.driver_connections._kept[0].connection.driver_connection.pgconn
    with tempfile.TemporaryFile() as trace:
        pgconn.trace(trace.fileno())
        try:
            save()
        finally:
            pgconn.untrace()
        trace.seek(0)
        return trace.read()


def _reviewed(services, credit_id: str) -> None:
    """As if the board had accepted it: a Submitted record cannot be deleted yet."""
    with services.store.transaction() as repo:
        repo.conn.execute(t.learner_records.update().where(t.learner_records.c.credit_id == credit_id)
                          .values(status=Status.ACCEPTED.value))


def test_a_one_record_save_on_postgresql_sends_no_begin_and_no_commit(services, database_url):
    """Reads at READ COMMITTED need no transaction and the request's copy and its adds are one
    statement: three round trips (credential, lookups, insert), not five."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's round trips")
    services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    sent = _traced(services, lambda: _soap_save(services, record("rt-1", completed="2026-05-01T00:00:00")))
    assert b"BEGIN" not in sent and b"COMMIT" not in sent
    assert sent.count(b"\tExecute\t") == 3, sent.decode(errors="replace")[:2000]
    with services.store.transaction(write=False) as repo:  # stored, with its copy and first event
        row = repo.conn.execute(select(t.learner_records.c.id, t.learner_records.c.request_pk)
                                .where(t.learner_records.c.credit_id == "rt-1")).one()
        events = repo.conn.execute(select(func.count()).select_from(t.record_events)
                                   .where(t.record_events.c.record_pk == row.id)).scalar()
    assert row.request_pk is not None and events == 1


def test_a_save_with_deletes_on_postgresql_commits_its_writes_together(services, database_url, monkeypatch):
    """A delete is two statements after the request's: they run in one transaction, so a failure in
    the last leaves nothing of the call (the add before it, the copy, the delete itself)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's autocommit reads")
    services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    assert _soap_save(services, record("del-1", completed="2026-05-02T00:00:00"))[0].ok
    _reviewed(services, "del-1")
    saved = []
    sent = _traced(services, lambda: saved.extend(_soap_save(
        services, record("del-2", completed="2026-05-03T00:00:00"), record("del-1", action="Delete"))))
    assert [(j.ok, j.status) for j in saved] == [(True, Status.SUBMITTED), (True, Status.DELETED)]
    sent_by_us = [line for line in sent.splitlines() if b"\tF\t" in line]
    assert [line.split(b"\t")[3:] for line in sent_by_us if b"BEGIN" in line or b"COMMIT" in line] == [
        [b"Query", b' "BEGIN"'], [b"Query", b' "COMMIT"']]
    _reviewed(services, "del-2")
    run = Prepared.run

    def failing_event(self, conn, params):
        if self is _EVENTS and params.get("status") == Status.DELETED.value:
            raise RuntimeError("the delete's event fails")
        return run(self, conn, params)

    monkeypatch.setattr(Prepared, "run", failing_event)
    with pytest.raises(RuntimeError):
        _soap_save(services, record("del-3", completed="2026-05-04T00:00:00"), record("del-2", action="Delete"),
                   correlation_id="failed-delete")
    lr = t.learner_records
    with services.store.transaction(write=False) as repo:
        left = dict(repo.conn.execute(select(lr.c.credit_id, lr.c.status)
                                      .where(lr.c.credit_id.in_(["del-2", "del-3"]))).all())
        copies = repo.conn.execute(select(func.count()).select_from(t.raw_requests)
                                   .where(t.raw_requests.c.correlation_id == "failed-delete")).scalar()
    assert left == {"del-2": Status.ACCEPTED.value} and copies == 0


def test_a_write_after_the_declared_lone_one_is_refused(services, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's autocommit writes")
    account = services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    copy = AuditCopy(b"<x/>", Source.SOAP, "lone")
    with pytest.raises(RuntimeError, match="only one"):
        with services.store.driver_transaction() as repo:
            repo.conn.lone_write()
            repo.store_raw_request(account.environment, account.provider_pk, copy, NOW)
            repo.store_raw_request(account.environment, account.provider_pk, copy, NOW)


def test_a_driver_connection_goes_back_to_the_pool_out_of_autocommit(database_url):
    """The pool's other users (Core transactions) get a connection whose writes wait for COMMIT."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's autocommit")
    services = make_services(database_url)
    try:
        with pytest.raises(RuntimeError):
            with services.store.driver_transaction() as repo:
                used = repo.conn.connection.driver_connection
                assert used.autocommit
                raise RuntimeError("a failed call: the connection goes back to the pool")
        assert not used.autocommit
        with services.store.transaction() as repo:
            assert repo.conn.connection.driver_connection is used  # the pool's only idle connection
            repo.conn.execute(t.change_counters.insert().values(name="pool-check", value=1))
            repo.conn.rollback()
        with services.store.transaction(write=False) as repo:
            assert repo.conn.execute(select(t.change_counters).where(t.change_counters.c.name == "pool-check")).all() == []
    finally:
        services.engine.dispose()


def test_array_parameters_go_to_postgresql_in_binary_and_carry_any_value(services):
    """Rows sent as arrays (the chunk and many-record inserts, the many-key lookups) reach PostgreSQL in
    binary, and come back exactly as sent: text psycopg would have had to quote, NULLs, numbers,
    dates and times."""
    if services.engine.dialect.name != "postgresql":
        pytest.skip("array parameters are PostgreSQL's")
    texts = ['a "quoted", {braced} value', "back\\slash", "new\nline", "", None, "NULL", "é ü 中", " spaced "]
    columns = {
        "t": ("TEXT", texts),
        "i": ("INTEGER", [1, None, -7, 2 ** 31 - 1]),
        "b": ("BIGINT", [None, None]),  # only NULLs: no element to take the type from
        "n": ("NUMERIC", [Decimal("0.25"), Decimal("1000"), None, Decimal("12.3456789")]),
        "d": ("DATE", [dt.date(2026, 1, 31), None]),
        "ts": ("TIMESTAMP WITH TIME ZONE", [NOW, None, NOW.astimezone(dt.timezone(dt.timedelta(hours=-5)))]),
        "e": ("TEXT", []),
    }
    statement = Prepared(text("SELECT " + ", ".join(f"CAST(:{name} AS {type_}[]) AS {name}"
                                                     for name, (type_, _) in columns.items())).columns(
        *(column(name) for name in columns)))
    params = {name: values for name, (_, values) in columns.items()}
    with services.store.transaction(write=False) as repo:
        compiled = statement._for(repo.conn)
        assert all(f"%({name})b" in compiled.sql for name in columns), compiled.sql
        [row] = statement.rows(repo.conn, params)
    assert row._asdict() == params
