"""Search, summary, history, deletes and the board review against a real database (SQLite, and
PostgreSQL when PARS_TEST_DATABASE_URL is set), through the service layer."""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from pars_ws.adapters import tables as t
from pars_ws.adapters.data_files import activity_from_dict, learner_from_dict, sandbox_fixture
from pars_ws.adapters.migrate import upgrade
from pars_ws.domain.errors import message
from pars_ws.domain.records import ReportedRecord, Source, Status
from pars_ws.service import review
from pars_ws.service.auth import hash_secret
from pars_ws.service.container import Services
from pars_ws.service.search import (
    LEARNER_COLUMNS,
    SearchRefused,
    activity_summary,
    delete_records,
    export_csv,
    export_summary_csv,
    record_history,
    search,
    search_filter,
    summary_filter,
)
from pars_ws.settings import Settings
from tests.support import soap11_save

TODAY = dt.date(2026, 6, 15)
NEVER = 10**9  # a production schedule whose last tick (2001) precedes every test record


@pytest.fixture(scope="module")
def settings(database_url, tmp_path_factory):
    upgrade(database_url)
    return Settings(
        database_url=database_url,
        today=TODAY,
        review_delay_seconds=0,
        review_interval_seconds=NEVER,
        outbox_dir=tmp_path_factory.mktemp("outbox"),
    )


@pytest.fixture(scope="module")
def services(settings):
    from pars_ws.service.sandbox import seed_sandbox

    svc = Services(settings)
    seed_sandbox(svc, username="search-user", password="search-password")
    fixture = sandbox_fixture()
    with svc.store.transaction() as uow:
        accounts = uow.accounts
        pk = accounts.provider(fixture["provider"]["provider_id"]).id
        accounts.add_credential(pk, "production", "search-prod", hash_secret("prod-password"), svc.clock.now())
        uow.learners.import_learners(
            "production", (learner_from_dict(d, 2026) for d in fixture["registry"] if d["board"] == "ABIM")
        )
    production = svc.auth.authenticate("search-prod", "prod-password")
    other = next(a for a in fixture["activities"] if a["activity_id"] == "200930149")
    svc.activities.save(production, activity_from_dict(other, 2026))
    yield svc
    svc.engine.dispose()


@pytest.fixture(scope="module")
def sandbox(services):
    return services.auth.authenticate("search-user", "search-password")


@pytest.fixture(scope="module")
def production(services):
    return services.auth.authenticate("search-prod", "prod-password")


LEARNERS = {  # name: (learner ID, DOB) in every certifying board's sandbox registry
    "Test2 Account2": ("1000106", "03/01"),
    "Test3 Account3": ("1000107", "04/01"),
    "Test4 Account4": ("1000108", "05/01"),
    "Test9 Account9": ("1000113", "10/01"),
    "Test11 Account11": ("1000104", "01/01"),
}


def reported(
    credit_id: str,
    who: str = "Test2 Account2",
    *,
    board="ABIM",
    activity_id="200930149",
    completed="01/05/2026",
    points="0.25",
    credit_type=None,
    index=1,
) -> ReportedRecord:
    learner_id, dob = LEARNERS[who]
    first, last = who.split()
    return ReportedRecord(
        index=index,
        action="Add",
        credit_id=credit_id,
        board=board,
        activity_id=activity_id,
        learner_id_type=board,
        learner_id=learner_id,
        first_name=first,
        last_name=last,
        dob=dob,
        completion_date=completed,
        credits=points,
        credit_types=(credit_type or f"{board} MOC Part II",),
    )


def add(services, account, *records: ReportedRecord, raw: bytes = b"<test/>"):
    judgements = services.learners.save(account, list(records), source=Source.SOAP, raw=raw, correlation_id="test")
    assert [j.codes for j in judgements] == [[] for _ in records]
    return judgements


def status(services, account, credit_id: str) -> tuple[Status, int | None]:
    rec = services.learners.status_by_credit_id(account, credit_id)[0]
    return rec.status, rec.reject_code


def credit_ids(page) -> list[str]:
    return [r.record.credit_id for r in page.items]


def find(services, account, **params):
    return search(services, account, search_filter(params, services.catalogue), per_page=200)


# -- search ---------------------------------------------------------------------------------------


def test_search_filters(services, sandbox):
    add(
        services,
        sandbox,
        reported("ccid:t:f-1", "Test3 Account3", completed="02/01/2026"),
        reported(
            "ccid:t:f-2",
            "Test3 Account3",
            board="ABPATH",
            credit_type="ABPath MOC Part II",
            completed="03/01/2026",
            index=2,
        ),
        reported("ccid:t:f-3", "Test3 Account3", board="ABO", activity_id="200931446", completed="04/01/2026", index=3),
    )
    assert set(credit_ids(find(services, sandbox, last_name="account3"))) >= {"ccid:t:f-1", "ccid:t:f-2", "ccid:t:f-3"}
    assert credit_ids(find(services, sandbox, last_name="Account3", board="ABPATH")) == ["ccid:t:f-2"]
    assert credit_ids(find(services, sandbox, title="ophthalmology grand", last_name="Account3")) == ["ccid:t:f-3"]
    assert credit_ids(
        find(
            services,
            sandbox,
            last_name="Account3",
            provider_activity_id="to-20190405",
            completed_from="01/01/2026",
            completed_to="02/28/2026",
        )
    ) == ["ccid:t:f-1"]
    assert credit_ids(
        find(
            services,
            sandbox,
            last_name="Account3",
            activity_id="200931446",
            status="Accepted",
            learner_id="1000107",
            id_type="abo",
        )
    ) == ["ccid:t:f-3"]
    assert credit_ids(find(services, sandbox, last_name="Account3", status="Rejected")) == []
    # Title keywords are text, not patterns.
    assert find(services, sandbox, title="%").total == 0
    assert find(services, sandbox, title="_n Other").total == 0
    # Submission dates are whole days (UTC).
    today = services.clock.now().date()
    assert set(
        credit_ids(
            find(
                services,
                sandbox,
                last_name="Account3",
                submitted_from=today.isoformat(),
                submitted_to=today.isoformat(),
            )
        )
    ) >= {"ccid:t:f-1", "ccid:t:f-2"}
    assert find(services, sandbox, submitted_to=(today - dt.timedelta(days=1)).isoformat()).total == 0


def test_search_result_carries_the_activity_and_record(services, sandbox):
    found = find(services, sandbox, last_name="Account3", activity_id="200930149", board="ABIM").items[0]
    assert (found.activity_title, found.provider_activity_id) == ("An Other is an Other", "TO-20190405")
    rec = found.record
    assert (rec.learner_id, str(rec.dob), rec.completion_date, rec.source) == (
        "1000107",
        "04/01",
        dt.date(2026, 2, 1),
        Source.SOAP,
    )


def test_paging_newest_first_without_gaps_or_overlaps(services, sandbox):
    start = dt.date(2026, 1, 1)
    records = [
        reported(
            f"ccid:t:page-{i:02d}",
            "Test4 Account4",
            board="ABO",
            activity_id="200900001",
            completed=(start + dt.timedelta(days=i)).isoformat(),
            index=i + 1,
        )
        for i in range(45)
    ]
    add(services, sandbox, *records)
    f = search_filter({"last_name": "Account4", "board": "ABO"}, services.catalogue)
    pages = [search(services, sandbox, f, page, 20) for page in (1, 2, 3, 4)]
    assert [len(p.items) for p in pages] == [20, 20, 5, 0]
    assert {p.total for p in pages} == {45}
    assert [(p.first, p.last) for p in pages] == [(1, 20), (21, 40), (41, 45), (0, 0)]
    seen = [cid for p in pages for cid in credit_ids(p)]
    # One request: same submission time, so the later record of the request comes first.
    assert seen == [f"ccid:t:page-{i:02d}" for i in reversed(range(45))]


def test_csv_export_of_the_same_filter(services, sandbox):
    f = search_filter({"last_name": "Account4", "board": "ABO"}, services.catalogue)
    data = "".join(export_csv(services, sandbox, f)).encode("utf-8")
    assert data.startswith(b"\xef\xbb\xbf") and data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8").lstrip("\ufeff"), newline="")))
    assert len(rows) == search(services, sandbox, f).total == 45
    assert [c.header for c in LEARNER_COLUMNS] == list(rows[0])
    first = rows[-1]
    assert (first["CreditID"], first["Last Name"], first["Date Completed"], first["Status"], first["DOB (MM/DD)"]) == (
        "ccid:t:page-00",
        "Account4",
        "01/01/2026",
        "Accepted",
        "05/01",
    )
    assert first["Activity Title"] == "Sandbox All Boards Activity" and first["Submitted Via"] == "SOAP"


def test_sandbox_and_production_never_see_each_others_records(services, sandbox, production):
    shared = "ccid:t:same-credit-id"
    add(services, sandbox, reported(shared, completed="01/10/2026"))
    add(services, production, reported(shared, completed="01/11/2026"), raw=b"<production/>")
    in_sandbox = find(services, sandbox, last_name="Account2", title="Other")
    in_production = find(services, production, last_name="Account2", title="Other")
    assert shared in credit_ids(in_sandbox) and credit_ids(in_production) == [shared]
    assert [r.record.completion_date for r in in_production.items] == [dt.date(2026, 1, 11)]
    assert dt.date(2026, 1, 11) not in [r.record.completion_date for r in in_sandbox.items]
    f = search_filter({"submitted_from": "01/01/2000"}, services.catalogue)
    rows = csv.DictReader(io.StringIO("".join(export_csv(services, sandbox, f)).lstrip("\ufeff"), newline=""))
    assert [r["Date Completed"] for r in rows if r["CreditID"] == shared] == ["01/10/2026"]
    [history] = record_history(services, production, shared)
    assert history.request.body == "<production/>"
    assert [h.request.body for h in record_history(services, sandbox, shared)] == ["<test/>"]
    summary = activity_summary(services, production, summary_filter({}, services.catalogue, TODAY))
    assert [(s.activity_id, s.submitted) for s in summary.items] == [("200930149", 1)]


# -- board review ---------------------------------------------------------------------------------


def rejection_mails(services) -> list:
    with services.engine.begin() as conn:
        return conn.execute(
            select(t.mail_outbox).where(t.mail_outbox.c.kind == "rejections").order_by(t.mail_outbox.c.id)
        ).all()


def test_review_follows_the_registry_and_mails_each_provider_once(services, sandbox, production):
    add(
        services,
        sandbox,
        reported("ccid:t:rv-ok", completed="01/20/2026"),
        reported("ccid:t:rv-664", "Test11 Account11", completed="01/20/2026", index=2),
        reported("ccid:t:rv-665", "Test9 Account9", completed="01/20/2026", index=3),
        reported("ccid:t:rv-abo", board="ABO", activity_id="200931446", completed="01/20/2026", index=4),
    )
    add(services, production, reported("ccid:t:rv-prod", "Test11 Account11", completed="01/20/2026"))
    assert status(services, sandbox, "ccid:t:rv-ok") == (Status.SUBMITTED, None)
    assert status(services, sandbox, "ccid:t:rv-abo") == (Status.ACCEPTED, None)  # ABO does not review
    mails_before = len(rejection_mails(services))

    assert review.run_due(services) > 0
    assert status(services, sandbox, "ccid:t:rv-ok") == (Status.ACCEPTED, None)
    assert status(services, sandbox, "ccid:t:rv-664") == (Status.REJECTED, 664)
    assert status(services, sandbox, "ccid:t:rv-665") == (Status.REJECTED, 665)
    # Production follows its own schedule, whose next tick has not come.
    assert status(services, production, "ccid:t:rv-prod") == (Status.SUBMITTED, None)
    assert review.run_due(services) == 0

    [mail] = rejection_mails(services)[mails_before:]
    assert mail.recipient == "cme-office@testprovider.org" and mail.environment == "sandbox"
    assert "rejected" in mail.subject
    assert f"Error 664: {message(664)}" in mail.body and f"Error 665: {message(665)}" in mail.body
    assert "Test11 Account11" in mail.body and "ccid:t:rv-664" in mail.body and "ccid:t:rv-ok" not in mail.body

    [history] = record_history(services, sandbox, "ccid:t:rv-664")
    assert [(e.status, e.code) for e in history.events] == [("Submitted", None), ("Rejected", 664)]
    assert history.events[1].at >= history.events[0].at


def test_sandbox_review_waits_for_the_delay_unless_asked(services, settings, sandbox, production):
    patient = Services(replace(settings, review_delay_seconds=3600))
    try:
        add(patient, sandbox, reported("ccid:t:wait", completed="01/21/2026"))
        review.run_due(patient)
        assert status(patient, sandbox, "ccid:t:wait") == (Status.SUBMITTED, None)
        done = review.run_now(patient, sandbox)
        assert done.reviewed >= 1 and status(patient, sandbox, "ccid:t:wait") == (Status.ACCEPTED, None)
        with pytest.raises(review.ReviewRefused):
            review.run_now(patient, production)
    finally:
        patient.engine.dispose()


def test_production_is_reviewed_at_the_next_tick(services, settings, production):
    hourly = Services(replace(settings, review_interval_seconds=1))
    try:
        add(hourly, production, reported("ccid:t:tick", "Test11 Account11", completed="01/22/2026"))
        time.sleep(1.05)
        review.run_due(hourly)
        assert status(hourly, production, "ccid:t:tick") == (Status.REJECTED, 664)
        [mail] = [m for m in rejection_mails(hourly) if "ccid:t:tick" in m.body]
        assert mail.environment == "production" and "production" in mail.subject
    finally:
        hourly.engine.dispose()


def test_concurrent_workers_review_each_record_once(services, sandbox, monkeypatch):
    monkeypatch.setattr(review, "CHUNK", 20)  # several chunks, so the workers compete for rows
    start = dt.date(2025, 3, 1)
    records = [
        reported(
            f"ccid:t:race-{i:03d}", "Test4 Account4", completed=(start + dt.timedelta(days=i)).isoformat(), index=i + 1
        )
        for i in range(150)
    ]
    add(services, sandbox, *records)
    counts: list[int] = []

    def worker():
        while (n := review.run_due(services)) > 0:
            counts.append(n)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(counts) >= 150 and max(counts) <= 20
    with services.engine.begin() as conn:
        lr, ev = t.learner_records, t.record_events
        per_record = (
            conn.execute(
                select(func.count())
                .select_from(ev.join(lr, lr.c.id == ev.c.record_pk))
                .where(lr.c.credit_id.like("ccid:t:race-%"), ev.c.note == "board review")
                .group_by(ev.c.record_pk)
            )
            .scalars()
            .all()
        )
    assert len(per_record) == 150 and set(per_record) == {1}


# -- summary, history, deletes --------------------------------------------------------------------


def summary_of(services, account, activity_id: str, **params):
    f = summary_filter(params, services.catalogue, TODAY)
    return next(s for s in activity_summary(services, account, f, per_page=200).items if s.activity_id == activity_id)


def test_activity_summary_counts(services, sandbox):
    path = "200608132"  # Pathology Review Course: ABPATH only, used by no other test
    assert (summary_of(services, sandbox, path).submitted, summary_of(services, sandbox, path).last_updated) == (
        0,
        None,
    )
    add(
        services,
        sandbox,
        reported("ccid:t:sum-1", board="ABPATH", activity_id=path, credit_type="ABPath MOC Part II"),
        reported(
            "ccid:t:sum-2",
            "Test11 Account11",
            board="ABPATH",
            activity_id=path,
            credit_type="ABPath MOC Part II",
            index=2,
        ),
    )
    review.run_now(services, sandbox)
    add(
        services,
        sandbox,
        reported("ccid:t:sum-3", "Test3 Account3", board="ABPATH", activity_id=path, credit_type="ABPath MOC Part II"),
    )
    s = summary_of(services, sandbox, path)
    assert (s.submitted, s.accepted, s.rejected, s.boards, s.title) == (1, 1, 1, ("ABPATH",), "Pathology Review Course")
    before = s.last_updated

    [deleted] = delete_records(services, sandbox, ["ccid:t:sum-2"], correlation_id="test")
    assert deleted.status == Status.DELETED
    s = summary_of(services, sandbox, path)
    assert (s.submitted, s.accepted, s.rejected) == (1, 1, 0) and s.last_updated >= before

    assert summary_of(services, sandbox, path, board="ABPATH", title="pathology")
    f = summary_filter({"board": "ABO"}, services.catalogue, TODAY)
    assert path not in [a.activity_id for a in activity_summary(services, sandbox, f, per_page=200).items]
    assert activity_summary(services, sandbox, summary_filter({"year": "2025"}, services.catalogue, TODAY)).total == 0
    rows = list(csv.DictReader(io.StringIO("".join(export_summary_csv(services, sandbox, f)).lstrip("\ufeff"))))
    assert rows and all("ABO" in r["Boards or Programs"] for r in rows)


def test_history_keeps_the_route_the_changes_and_the_request(services, sandbox):
    cid = "ccid:t:hist"
    raw = soap11_save([], password="not-to-be-shown")
    add(services, sandbox, reported(cid, completed="01/25/2026"), raw=raw)
    review.run_now(services, sandbox)
    delete_records(services, sandbox, [cid], correlation_id="test-delete")
    add(services, sandbox, reported(cid, completed="01/26/2026"))  # the CreditID again, now a new record
    old, new = record_history(services, sandbox, cid)
    assert (old.record.status, new.record.status) == (Status.DELETED, Status.SUBMITTED)
    assert old.deleted_at is not None and new.deleted_at is None
    assert [e.status for e in old.events] == ["Submitted", "Accepted", "Deleted"]
    assert old.record.source == Source.SOAP and old.request.source == "SOAP"
    assert old.request.correlation_id == "test" and old.request.received_at is not None
    assert "not-to-be-shown" not in old.request.body and "<p:Password>********</p:Password>" in old.request.body
    assert record_history(services, sandbox, "ccid:t:no-such-record") == []


def test_deletes_from_the_details_view_follow_the_delete_rules(services, sandbox):
    add(
        services,
        sandbox,
        reported("ccid:t:del-sub", completed="01/27/2026"),
        reported("ccid:t:del-rej", "Test11 Account11", completed="01/27/2026", index=2),
    )
    submitted = delete_records(services, sandbox, ["ccid:t:del-sub", "ccid:t:unknown"], correlation_id="test")
    assert [(j.status, j.codes) for j in submitted] == [(Status.NOT_PROCESSED, [605]), (Status.NOT_PROCESSED, [605])]
    review.run_now(services, sandbox)
    done = delete_records(services, sandbox, [" ccid:t:del-sub ", "ccid:t:del-rej"], correlation_id="test")
    assert [(j.record.credit_id, j.status) for j in done] == [
        ("ccid:t:del-sub", Status.DELETED),
        ("ccid:t:del-rej", Status.DELETED),
    ]
    assert status(services, sandbox, "ccid:t:del-rej") == (Status.DELETED, 664)
    assert "ccid:t:del-rej" not in credit_ids(find(services, sandbox, last_name="Account11"))
    assert "ccid:t:del-rej" in credit_ids(find(services, sandbox, last_name="Account11", status="Deleted"))
    [history] = record_history(services, sandbox, "ccid:t:del-rej")
    assert [e.status for e in history.events] == ["Submitted", "Rejected", "Deleted"]
    with pytest.raises(SearchRefused):
        delete_records(services, sandbox, ["", "  "], correlation_id="test")


def test_the_stored_audit_copy_holds_no_password(services, sandbox):
    """Blanked before it is written, not only when shown: the raw_requests row itself."""
    import zlib

    raw = soap11_save([], password="stored-secret")
    [judgement] = add(services, sandbox, reported("ccid:t:audit-secret"), raw=raw)
    with services.engine.begin() as conn:
        body = zlib.decompress(
            conn.execute(select(t.raw_requests.c.body).order_by(t.raw_requests.c.id.desc()).limit(1)).scalar_one()
        )
    assert b"stored-secret" not in body and b"<p:Password>********</p:Password>" in body
