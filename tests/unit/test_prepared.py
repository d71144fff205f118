"""Prepared statements and driver transactions (the SaveLearnerActivity hot path) against SQLAlchemy
Core: the same values in and out, the same exceptions, the same transaction boundaries; and
sign-in inside the save's transaction only when the credential cache alone decides it."""
from __future__ import annotations

import datetime as dt
import fcntl
import os
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from pars_ws.adapters import tables as t
from pars_ws.adapters.activity_report import read_document
from pars_ws.adapters.migrate import upgrade
from pars_ws.adapters.store import _EVENTS, AccountRepository
from pars_ws.domain.records import ReportedRecord, Source, Status
from pars_ws.service.auth import AuthenticationFailed
from pars_ws.service.container import Services
from pars_ws.service.sandbox import seed_sandbox
from pars_ws.settings import Settings
from tests.conftest import SANDBOX_PASSWORD, SANDBOX_USER, TODAY
from tests.support import record, xml_reports

NOW = dt.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def services(database_url):
    upgrade(database_url)
    services = Services(Settings(database_url=database_url, today=dt.date.fromisoformat(TODAY), secret_key=b"k",
                                 login_max_failures=3))
    seed_sandbox(services, username=SANDBOX_USER, password=SANDBOX_PASSWORD)
    yield services
    services.engine.dispose()


def _sandbox_activity(services, account) -> tuple[str, str]:
    """An activity of the sandbox provider and a board it is registered with."""
    with services.store.transaction(write=False) as repo:
        row = repo.conn.execute(
            select(t.activities.c.activity_id, t.registrations.c.board)
            .join(t.registrations, t.registrations.c.activity_pk == t.activities.c.id)
            .where(t.activities.c.provider_pk == account.provider_pk,
                   t.activities.c.environment == account.environment)
            .order_by(t.activities.c.id)).first()
    return row.activity_id, row.board


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
        pk = repo.store_raw_request(account.environment, account.provider_pk, Source.SOAP, "cid-prepared",
                                    b"<Password>secret</Password>", NOW)
    with services.store.transaction(write=False) as repo:
        row = repo.conn.execute(select(t.raw_requests).where(t.raw_requests.c.id == pk)).one()
    assert row.correlation_id == "cid-prepared" and row.source == Source.SOAP.value
    # Read back by Core as an aware or naive UTC time, to the microsecond.
    assert row.received_at.replace(tzinfo=dt.timezone.utc) == NOW


def test_a_saved_record_reads_back_the_same_by_prepared_and_core_statements(services):
    records = read_document(xml_reports([record("prep-1")]).encode(), services.settings.limits)
    account, judgements = services.learners.save_signed_in(
        SANDBOX_USER, SANDBOX_PASSWORD, None, lambda account: records, source=Source.SOAP, raw=b"<x/>",
        correlation_id="cid-1")
    assert judgements[0].ok, judgements[0].codes
    with services.store.transaction(write=False) as repo:
        core = repo.records_by_credit_id(account.environment, account.provider_pk, "prep-1")
        prepared = repo.live_records(account.environment, account.provider_pk, {"prep-1"}, set())
    assert core == prepared and len(core) == 1
    assert core[0].credits == Decimal("3.5") and core[0].completion_date == dt.date(2026, 1, 5)


@pytest.mark.parametrize("transaction", ["core", "driver"])
def test_errors_are_sqlalchemys_and_roll_the_transaction_back(services, transaction):
    account = services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    begin = services.store.driver_transaction if transaction == "driver" else services.store.transaction
    with pytest.raises(IntegrityError):
        with begin() as repo:
            repo.store_raw_request(account.environment, account.provider_pk, Source.SOAP, "cid-rolled-back",
                                   b"<x/>", NOW)
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

    def free() -> bool:
        fd = os.open(lock_file, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    with services.store.driver_transaction():
        assert not free()
    assert free()


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
def test_save_signed_in_saves_with_or_without_a_cached_credential(services, cached):
    services.auth._verified.clear()
    if cached:
        services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    account, judgements = services.learners.save_signed_in(
        SANDBOX_USER, SANDBOX_PASSWORD, None, lambda account: [ReportedRecord(index=1, action="add")],
        source=Source.SOAP, raw=b"<x/>", correlation_id=f"cid-{cached}")
    assert account.username == SANDBOX_USER
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
