"""Each process caches activities and checks, in every transaction, the change counter that triggers
keep on activities and registrations: a change made by another process, the CLI or plain SQL is
seen by the next call, and an activity cached as absent appears as soon as it exists."""
from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import inspect, text

from pars_ws.adapters.migrate import alembic_config, upgrade
from pars_ws.domain.activities import Activity, Registration
from pars_ws.service.sandbox import seed_sandbox
from tests.conftest import SANDBOX_PASSWORD, SANDBOX_USER, make_services


@pytest.fixture(scope="module")
def two_processes(database_url):
    """Two containers on one database: what two gunicorn workers are to each other."""
    a, b = make_services(database_url), make_services(database_url)
    seed_sandbox(a, username=SANDBOX_USER, password=SANDBOX_PASSWORD)
    yield a, b
    a.engine.dispose()
    b.engine.dispose()


def _counter(services) -> int:
    with services.store.transaction(write=False) as repo:
        return repo.conn.execute(text("SELECT value FROM change_counters WHERE name = 'activities'")).scalar_one()


def _activity(activity_id: str, title: str, board: str) -> Activity:
    return Activity(activity_id=activity_id, title=title, activity_type="Course", start_date=dt.date(2026, 1, 1),
                    end_date=dt.date(2026, 12, 31), reporting_year=2026, credits=Decimal("10"),
                    registrations=(Registration(board, Decimal("10"), ()),))


def _board(services) -> str:
    return next(iter(services.catalogue.boards))


def test_a_change_by_another_process_is_seen_by_the_next_call(two_processes):
    a, b = two_processes
    account = a.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    board = _board(a)
    assert a.activities.get(account, "301000001") is None  # cached as absent in a
    b.activities.save(account, _activity("301000001", "First title", board))
    assert a.activities.get(account, "301000001").title == "First title"
    b.activities.save(account, _activity("301000001", "Second title", board))
    assert a.activities.get(account, "301000001").title == "Second title"
    # And a's own cache answers without reading the activity again while nothing changes.
    calls = []
    real = a.store.activity_cache.put
    a.store.activity_cache.put = lambda *args: calls.append(args) or real(*args)
    try:
        for _ in range(3):
            assert a.activities.get(account, "301000001").title == "Second title"
    finally:
        a.store.activity_cache.put = real
    assert calls == []


def test_plain_sql_on_activities_or_registrations_moves_the_counter(two_processes):
    a, _ = two_processes
    account = a.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    board = _board(a)
    a.activities.save(account, _activity("301000002", "Plain", board))
    cached = a.activities.get(account, "301000002")
    before = _counter(a)
    with a.store.transaction() as repo:
        repo.conn.execute(text("UPDATE activities SET title = 'Changed by hand' WHERE activity_id = '301000002'"))
    assert _counter(a) > before
    assert a.activities.get(account, "301000002") == replace(cached, title="Changed by hand")
    before = _counter(a)
    with a.store.transaction() as repo:
        repo.conn.execute(text(
            "DELETE FROM registrations WHERE activity_pk = "
            "(SELECT id FROM activities WHERE activity_id = '301000002')"))
    assert _counter(a) > before
    assert a.activities.get(account, "301000002").registrations == ()


def test_another_providers_cached_activity_stays_hidden(two_processes):
    a, _ = two_processes
    account = a.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    a.activities.save(account, _activity("301000003", "Mine", _board(a)))
    assert a.activities.get(account, "301000003") is not None
    stranger = replace(account, provider_pk=account.provider_pk + 1000)
    assert a.activities.get(stranger, "301000003") is None


def test_without_a_counter_row_activities_are_read_every_time(two_processes):
    a, _ = two_processes
    account = a.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    a.activities.save(account, _activity("301000004", "Uncounted", _board(a)))
    with a.store.transaction() as repo:
        repo.conn.execute(text("DELETE FROM change_counters WHERE name = 'activities'"))
    try:
        assert a.activities.get(account, "301000004").title == "Uncounted"
        with a.store.transaction() as repo:  # the triggers' UPDATE now matches no row
            repo.conn.execute(text("UPDATE activities SET title = 'Seen' WHERE activity_id = '301000004'"))
        assert a.activities.get(account, "301000004").title == "Seen"
    finally:
        with a.store.transaction() as repo:
            repo.conn.execute(text("INSERT INTO change_counters (name, value) VALUES ('activities', 1000)"))


def test_0004_adds_the_counter_and_its_triggers_and_takes_them_away(database_url):
    services = make_services(database_url)  # at head
    command.downgrade(alembic_config(database_url), "0003")
    try:
        with services.engine.connect() as conn:
            assert "change_counters" not in inspect(conn).get_table_names()
        upgrade(database_url)
        with services.engine.connect() as conn:
            assert "change_counters" in inspect(conn).get_table_names()
        before = _counter(services)
        with services.store.transaction() as repo:
            repo.conn.execute(text("UPDATE activities SET title = title"))
        assert _counter(services) > before
    finally:
        services.engine.dispose()


def test_a_transaction_that_writes_activities_never_fills_the_cache(two_processes):
    a, _ = two_processes
    account = a.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    a.activities.save(account, _activity("301000005", "Committed", _board(a)))

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        with a.store.transaction() as repo:
            repo.save_activity(account.environment, account.provider_pk,
                               _activity("301000005", "Rolled back", _board(a)), dt.datetime.now(dt.timezone.utc))
            assert repo.activities(account.environment, account.provider_pk, ["301000005"])[0].title == "Rolled back"
            raise Abandon()
    assert a.activities.get(account, "301000005").title == "Committed"


def test_concurrent_activity_writers_queue_instead_of_deadlocking(two_processes, database_url):
    """Each writer takes the counter's lock before any activity row's (PostgreSQL: a BEFORE trigger)."""
    import threading

    if database_url.startswith("sqlite"):
        pytest.skip("SQLite writers take one database-wide lock")
    a, b = two_processes
    account = a.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    for n in (6, 7):
        a.activities.save(account, _activity(f"30100000{n}", "Start", _board(a)))
    outcome = []
    with a.engine.connect() as first:
        with first.begin():
            first.execute(text("UPDATE activities SET title = 'first' WHERE activity_id = '301000006'"))

            def second():
                try:
                    with b.engine.begin() as conn:
                        conn.execute(text("UPDATE activities SET title = 'second' WHERE activity_id = '301000007'"))
                    outcome.append("committed")
                except Exception as exc:  # noqa: BLE001 - the test reports it
                    outcome.append(repr(exc))

            thread = threading.Thread(target=second)
            thread.start()
            thread.join(1.0)  # it waits for the counter, holding no activity row
            first.execute(text("UPDATE activities SET title = 'first' WHERE activity_id = '301000007'"))
        thread.join(30)
    assert outcome == ["committed"]
    assert a.activities.get(account, "301000007").title == "second"


@pytest.mark.parametrize("url, trigger", [
    ("postgresql://nobody@127.0.0.1:1/offline", "BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON activities"),
    ("sqlite:///offline.db", "AFTER INSERT ON activities"),
])
def test_0004_writes_its_triggers_as_offline_sql(url, trigger):
    import io

    config = alembic_config(url)
    config.output_buffer = io.StringIO()
    command.upgrade(config, "0003:0004", sql=True)  # no database: the SQL an administrator would run
    assert trigger in config.output_buffer.getvalue()


def test_a_soap_save_reads_the_counter_with_its_credential_and_sees_another_process_change(two_processes):
    """SaveLearnerActivity signs in from the credential cache and reads the counter in the same
    statement (Repository.signed_in_credential): a change by another process is still seen."""
    from pars_ws.adapters.activity_report import read_document
    from pars_ws.domain.records import Source
    from tests.support import record, xml_reports

    a, b = two_processes
    account = a.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)  # a's credential cache knows the secret

    def save(credit_id: str) -> list[int]:
        records = read_document(xml_reports([record(credit_id, activity_id="301000009")]).encode(),
                                a.settings.limits)
        judgements = a.learners.save_signed_in(SANDBOX_USER, SANDBOX_PASSWORD, None, lambda _account: records,
                                               source=Source.SOAP, raw=b"<x/>", correlation_id=credit_id)
        return judgements[0].codes

    full_sign_ins = []
    real = a.auth.authenticate
    a.auth.authenticate = lambda *args: full_sign_ins.append(args) or real(*args)
    try:
        assert 690 in save("cache-soap-1")  # no such activity: cached as absent in a
        b.activities.save(account, _activity("301000009", "Made by b", "ABIM"))
        assert 690 not in save("cache-soap-2")
    finally:
        a.auth.authenticate = real
    assert full_sign_ins == []  # both calls took the signed-in path
