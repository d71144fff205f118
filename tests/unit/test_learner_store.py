"""Storing judged records (LearnerRepository.apply): what a concurrent request stored first is
refused by the database, not by a read-then-write check, and nothing else is written for it."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace

import pytest
from sqlalchemy import event, func, select

from pars_ws.adapters import tables as t
from pars_ws.adapters.audit import AuditCopy
from pars_ws.adapters.database import sqlite_file
from pars_ws.domain.engine import credit_ids_taken, judge
from pars_ws.domain.records import ReportedRecord, Source, Status
from pars_ws.service.auth import AuthenticationFailed
from tests.conftest import SANDBOX_PASSWORD, SANDBOX_USER, TODAY
from tests.support import lock_is_free

NOW = dt.datetime(2026, 6, 15, 9, tzinfo=dt.timezone.utc)


def abo(credit_id: str) -> ReportedRecord:
    return ReportedRecord(
        index=1,
        action="Add",
        credit_id=credit_id,
        board="ABO",
        activity_id="200931446",
        learner_id_type="ABO",
        learner_id="98989",
        first_name="Vincent",
        last_name="Van Gogh",
        dob="03/30",
        completion_date="02/10/2026",
        credits="0.25",
        credit_types=("ABO MOC Part II",),
    )


@pytest.fixture(scope="module")
def world(services, account):
    return services, account


def _save_signed_in(services, name: str, password: str = SANDBOX_PASSWORD):
    """SaveLearnerActivity's use case for one ABO record, CreditID ccid:store.test:<name>."""
    return services.learners.save_signed_in(
        SANDBOX_USER,
        password,
        None,
        lambda _account: [abo(f"ccid:store.test:{name}")],
        source=Source.SOAP,
        raw=b"<x/>",
        correlation_id=name,
    )


def _events(services, credit_id: str) -> int:
    lr, ev = t.learner_records, t.record_events
    with services.engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(ev.join(lr, lr.c.id == ev.c.record_pk)).where(lr.c.credit_id == credit_id)
        ).scalar()


@pytest.mark.parametrize("count", [1, 2])  # one record comes back from its INSERT; many are read back
def test_adds_a_concurrent_request_stored_first_are_answered_603_and_write_nothing(world, count):
    services, account = world
    records = [abo(f"ccid:store.test:race-{count}-{n}") for n in range(count)]
    # The second request was judged before the first committed: its lookups saw neither record.
    with services.store.transaction(write=False) as uow:
        blind = uow.learners.lookups_for(
            account.environment,
            account.provider_pk,
            records,
            services.catalogue,
            uow.learners.reference_for(account.environment, account.provider_pk, records, services.catalogue),
        )
    late = judge(
        records,
        today=dt.date.fromisoformat(TODAY),
        now=NOW,
        catalogue=services.catalogue,
        lookups=blind,
        source=Source.SOAP,
    )
    first = services.learners.save(account, records, source=Source.SOAP, raw=b"<test/>", correlation_id="first")
    assert [j.status for j in first] == [Status.ACCEPTED] * count
    with services.store.transaction() as uow:
        taken = uow.learners.apply(
            account.environment, account.provider_pk, late, NOW, AuditCopy(b"<late/>", Source.SOAP, "late")
        )
    credit_ids_taken(late, taken)
    assert taken == {r.credit_id for r in records}
    assert [(j.status, j.codes) for j in late] == [(Status.NOT_PROCESSED, [603])] * count
    assert [_events(services, r.credit_id) for r in records] == [1] * count


def test_a_credential_verified_lately_signs_in_and_saves_in_one_unit_of_work(world):
    services, _ = world  # the fixture signed in: the credential is verified
    opened = []  # a unit of work is one connection (on SQLite, a read transaction and then the write)

    def connected(conn):
        opened.append(conn)

    event.listen(services.store.engine, "engine_connect", connected)
    [j] = _save_signed_in(services, "one-unit")
    assert j.status == Status.ACCEPTED and len(opened) == 1
    opened.clear()
    with pytest.raises(AuthenticationFailed):  # not verified: the full sign-in, then nothing saved
        _save_signed_in(services, "no", "wrong")
    event.remove(services.store.engine, "engine_connect", connected)
    assert len(opened) > 1 and _events(services, "ccid:store.test:no") == 0


@pytest.mark.parametrize("caller", ["verified lately", "after a failed sign-in", "signed in already"])
def test_a_save_reads_what_saves_do_not_change_before_it_takes_the_sqlite_write_lock(world, caller):
    """Sign-in, activities and registry learners are read with the lock free (other writers go on);
    the points held, the live records by CreditID and every write happen with it held. The same
    after the full sign-in (argon2) and for an account already signed in (the JSON API, a batch chunk)."""
    services, account = world
    database = sqlite_file(services.engine.url.render_as_string(hide_password=False))
    if database is None:
        pytest.skip("PostgreSQL keeps one transaction (test_database)")
    lock_file = f"{database}.write-lock"
    services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)  # verified lately, no failures to forget
    if caller == "after a failed sign-in":
        with pytest.raises(AuthenticationFailed):  # a failure to forget: the save runs the full sign-in
            services.auth.authenticate(SANDBOX_USER, "wrong")
    seen = []  # (statement's first words, lock free when it ran)

    def before(_conn, _cursor, statement, _parameters, _context, _many):
        seen.append((" ".join(statement.split()[:4]), lock_is_free(lock_file)))

    event.listen(services.engine, "before_cursor_execute", before)
    try:
        if caller != "signed in already":
            [j] = _save_signed_in(services, f"outside-the-turn-{caller}")
        else:
            [j] = services.learners.save(
                account, [abo("ccid:store.test:outside")], source=Source.JSON, raw=b"{}", correlation_id="api"
            )
    finally:
        event.remove(services.engine, "before_cursor_execute", before)
    assert j.status == Status.ACCEPTED
    free = {words for words, lock_free in seen if lock_free}
    held = {words for words, lock_free in seen if not lock_free}
    assert any("activities" in w for w in free), seen
    assert any("credentials" in w for w in free) == (caller != "signed in already"), seen
    assert any("registry_learners" in w for w in free), seen
    assert not any("learner_records" in w or w.startswith("INSERT") for w in free), seen
    assert any(w.startswith("SELECT learner_records") for w in held), seen
    assert any(w.startswith("INSERT INTO learner_records") for w in held), seen


def test_a_learner_points_are_counted_after_a_concurrent_save_commits(world):
    """Two saves for one learner and activity at once: the second reads the points held only after
    the first has committed, so together they never pass the activity's maximum (710/711)."""
    import threading

    services, account = world
    full = replace(
        abo("ccid:store.test:max-first"),
        activity_id="200931446",
        credits="25",
        learner_id="1000112",
        first_name="Test8",
        last_name="Account8",
        dob="09/01",
    )
    second = replace(full, credit_id="ccid:store.test:max-second")
    first_open, second_started = threading.Event(), threading.Event()
    answers = {}

    def hold_open(_uow, _judgements):
        first_open.set()
        second_started.wait(10)
        time.sleep(0.3)  # the second save reaches its reads while this transaction is still open

    def save(name, record, **options):
        answers[name] = services.learners.save(
            account, [record], source=Source.SOAP, raw=b"<test/>", correlation_id=name, **options
        )[0]

    first = threading.Thread(target=save, args=("first", full), kwargs={"in_same_transaction": hold_open})
    first.start()
    assert first_open.wait(10)
    second_started.set()
    save("second", second)
    first.join()
    assert answers["first"].status == Status.ACCEPTED, answers["first"].codes
    assert (answers["second"].status, answers["second"].codes) == (Status.NOT_PROCESSED, [710])
