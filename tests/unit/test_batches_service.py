"""Batch uploads through the service layer, against a real database (SQLite, and PostgreSQL when
PARS_TEST_DATABASE_URL is set): whole-file refusals, one active file, duplicate monitoring, claims
and recovery, error reports. Also the Template B files the end-to-end tests upload."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import func, select, update

from pars_ws.adapters import tables as t
from pars_ws.adapters.batch_store import BatchStore
from pars_ws.adapters.template_b import (
    MSG_ENCODING,
    MSG_NOT_TEMPLATE,
    TEMPLATE_NAME,
    write_error_report,
    write_template_b,
)
from pars_ws.service import batches, review
from pars_ws.service.auth import Account
from pars_ws.settings import Settings
from tests.conftest import ROOT
from tests.support import good_row, record, template_file, xml_reports

# -- fixtures -------------------------------------------------------------------------------------


def production(account: Account) -> Account:
    return Account(**{**account.__dict__, "environment": "production"})


def count(services, table, *where) -> int:
    with services.engine.begin() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def set_batch(services, batch_id: int, **values) -> None:
    with services.engine.begin() as conn:
        conn.execute(update(t.batches).where(t.batches.c.id == batch_id).values(**values))


def upload_and_process(
    services, account, data: bytes, name: str = "learners.txt", file_type: str = "txt", force: bool = False
) -> batches.BatchInfo:
    queued = batches.upload(services, account, file_name=name, data=data, file_type=file_type, force=force)
    assert queued.status == "queued"
    assert batches.process_next(services, "test-worker") == 1
    return batches.get(services, account, queued.id)


# -- whole-file refusals ----------------------------------------------------------------------------

MIB = 1024 * 1024
NOT_TXT = "THE FILE SELECTED IS NOT A .TXT FILE. PLEASE UPLOAD A .TXT FILE."
NOT_XML = "THE FILE SELECTED IS NOT A .XML FILE. PLEASE UPLOAD A .XML FILE."
TOO_LARGE = "THE FILE IS LARGER THAN 16 MB. BATCH UPLOADS MAY NOT EXCEED 16 MB."
XML_OK = xml_reports([record("ccid:testprovider.org:refused-1")]).encode()


def _padded_xml(size: int) -> bytes:
    """XML_OK grown to exactly `size` bytes with comments (libxml2 caps a single comment at 10 MB)."""
    room = size - len(XML_OK)
    comment = b"<!--" + b" " * (65536 - 7) + b"-->"
    padding = comment * (room // len(comment))
    padding += b"<!--" + b" " * (room - len(padding) - 7) + b"-->"
    padded = XML_OK.replace(b"</ar:ActivityReports>", padding + b"</ar:ActivityReports>")
    assert len(padded) == size
    return padded


REFUSALS = [
    pytest.param("learners.xlsx", "txt", template_file(2), NOT_TXT, id="txt-extension"),
    pytest.param("learners.txt", "xml", XML_OK, NOT_XML, id="xml-extension"),
    pytest.param("learners.txt", "txt", b"First Name\tLast Name\nA\tB\n", MSG_NOT_TEMPLATE, id="not-template-b"),
    pytest.param("learners.txt", "txt", XML_OK, MSG_NOT_TEMPLATE, id="xml-in-a-txt"),
    pytest.param(
        "learners.txt",
        "txt",
        template_file(2501, {}),
        "THE FILE HAS MORE THAN 2,500 RECORDS. BATCH UPLOADS MAY NOT EXCEED 2,500 RECORDS.",
        id="txt-2501",
    ),
    pytest.param(
        "learners.xml",
        "xml",
        xml_reports([record(f"ccid:x:{i}") for i in range(2501)]).encode(),
        "ActivityReport records exceed the limit of 2500",
        id="xml-2501",
    ),
    pytest.param("learners.txt", "txt", template_file(1) + b" " * 16 * MIB, TOO_LARGE, id="txt-16MiB"),
    pytest.param("learners.xml", "xml", _padded_xml(16 * MIB + 1), TOO_LARGE, id="xml-16MiB"),
    pytest.param(
        "learners.txt", "txt", b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", MSG_ENCODING, id="txt-binary"
    ),
    pytest.param(
        "learners.xml",
        "xml",
        b'<?xml version="1.0" encoding="EBCDIC-US"?>' + XML_OK,
        "Encoding 'ebcdic-us' is not accepted",
        id="xml-encoding",
    ),
    pytest.param("learners.xml", "xml", XML_OK[:-30], "Malformed XML", id="xml-malformed"),
    pytest.param(
        "learners.xml",
        "xml",
        XML_OK.replace(b"<ar:ReportingOrganization>Test Provider</ar:ReportingOrganization>", b"<ar:Unexpected/>"),
        "line 1:",
        id="xml-not-conforming",
    ),
    pytest.param("learners.pdf", "pdf", b"%PDF", "CHOOSE THE FILE TYPE", id="file-type"),
]


@pytest.mark.parametrize("name, file_type, data, expected", REFUSALS)
def test_files_refused_whole_before_anything_is_stored(services, account, name, file_type, data, expected):
    stored = count(services, t.batches)
    with pytest.raises(batches.UploadRefused) as refused:
        batches.upload(services, account, file_name=name, data=data, file_type=file_type)
    assert refused.value.reason == "invalid"
    assert expected in refused.value.message
    assert count(services, t.batches) == stored


def test_files_at_the_limits_are_accepted(services, account):
    info = upload_and_process(services, account, _padded_xml(16 * MIB), name="at-limit.xml", file_type="xml")
    assert (info.status, info.records) == ("done", 1)
    # The downloaded error report (a .csv) is a tab batch as it is.
    report = write_error_report([(good_row(5000), [(664, "Diplomate date of birth does not match")])])
    info = upload_and_process(services, account, report, name="report.csv")
    assert (info.status, info.processed) == ("done", 1)


# -- one file at a time, duplicates ------------------------------------------------------------------


def test_one_active_file_per_provider_and_environment(services, account):
    first = batches.upload(services, account, file_name="a.txt", data=template_file(3, {}, start=100), file_type="txt")
    with pytest.raises(batches.UploadRefused) as refused:
        batches.upload(services, account, file_name="b.txt", data=template_file(3, {}, start=200), file_type="txt")
    assert (refused.value.reason, refused.value.message) == ("active", batches.MSG_ACTIVE)
    # The same provider's production environment is a separate queue.
    other = batches.upload(
        services, production(account), file_name="b.txt", data=template_file(3, {}, start=200), file_type="txt"
    )
    assert batches.process_next(services, "w") == 1
    assert batches.process_next(services, "w") == 1
    assert batches.process_next(services, "w") == 0
    assert batches.get(services, account, first.id).status == "done"
    assert batches.get(services, production(account), other.id).status == "done"
    # Finished: the next file is taken.
    upload_and_process(services, account, template_file(3, {}, start=200), name="b.txt")


def test_same_content_within_30_days_refused_unless_forced(services, account):
    data = template_file(2, {}, start=300)
    first = upload_and_process(services, account, data)
    with pytest.raises(batches.UploadRefused) as refused:
        batches.upload(services, account, file_name="renamed.txt", data=data, file_type="txt")
    assert refused.value.reason == "duplicate"
    assert f"AS learners.txt (BATCH {first.id})" in refused.value.message
    forced = upload_and_process(services, account, data, name="renamed.txt", force=True)
    assert (forced.forced, forced.status) == (True, "done")
    # Uploads older than 30 days no longer count.
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=31)
    set_batch(services, first.id, uploaded_at=long_ago)
    set_batch(services, forced.id, uploaded_at=long_ago)
    assert upload_and_process(services, account, data).status == "done"


# -- history and isolation ---------------------------------------------------------------------------


def test_history_is_the_providers_own_last_30_days(services, account):
    info = upload_and_process(services, account, template_file(2, {}, start=400), name="history.txt")
    assert info.id in [b.id for b in batches.history(services, account)]
    stranger = Account(0, "other", "sandbox", account.provider_pk + 1000, "7654321", "Other", "other.org", "o@x.org")
    assert batches.get(services, stranger, info.id) is None
    assert batches.error_report(services, stranger, info.id) is None
    assert batches.processed_records(services, stranger, info.id) is None
    assert batches.get(services, production(account), info.id) is None
    assert info.id not in [b.id for b in batches.history(services, production(account))]
    set_batch(services, info.id, uploaded_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=31))
    assert info.id not in [b.id for b in batches.history(services, account)]


# -- processing ----------------------------------------------------------------------------------------


def test_xml_batch_and_its_error_report(services, account):
    good = record("ccid:testprovider.org:xml-batch-1", completed="2026-02-02T00:00:00", points="2")
    bad = record("ccid:testprovider.org:xml-batch-2", completed="2026-02-03T00:00:00", points="1.1")
    info = upload_and_process(
        services, account, xml_reports([good, bad]).encode(), name="learners.xml", file_type="xml"
    )
    assert (info.status, info.records, info.processed, info.not_processed) == ("done", 2, 1, 1)
    [stored] = batches.processed_records(services, account, info.id)
    assert (stored.row, stored.credit_id, stored.result, stored.learner_id) == (
        1,
        "ccid:testprovider.org:xml-batch-1",
        "Submitted",
        "1000106",
    )
    name, report = batches.error_report(services, account, info.id)
    assert name == "learners.xml"
    lines = list(csv.reader(io.StringIO(report.decode("utf-8-sig"))))
    # Dates as a provider reads them in Template B, and the record's CreditID.
    assert lines[1] == [
        TEMPLATE_NAME,
        "ABIM",
        "200930149",
        "ABIM",
        "1000106",
        "Test2",
        "Account2",
        "03/01",
        "02/03/2026",
        "add",
        "1.1",
        "ABIM MOC Part II",
        "",
        "",
        "",
        "",
        "",
        "675",
        "MOC points not in increment of .25",
        "ccid:testprovider.org:xml-batch-2",
    ]
    assert len(lines) == 2


def test_an_xml_error_report_fixed_goes_back_in_as_template_b_with_its_credit_ids(services, account):
    """The XML batch's report is Template B with a CreditID column: fixed and uploaded as a tab file, its
    records keep the CreditIDs the LMS gave them (so it can delete them by CreditID later)."""
    add = record("ccid:testprovider.org:xml-fix-1", completed="2026-02-04T00:00:00", learner_id="0000000")
    delete = record("ccid:testprovider.org:xml-fix-2", completed="2026-02-05T00:00:00", action="delete")
    info = upload_and_process(services, account, xml_reports([add, delete]).encode(), name="fix.xml", file_type="xml")
    assert (info.processed, info.not_processed) == (0, 2)
    _, report = batches.error_report(services, account, info.id)
    lines = list(csv.reader(io.StringIO(report.decode("utf-8-sig"))))
    assert [line[17] for line in lines[1:]] == ["661", "605"]
    lines[1][4] = "1000106"  # the right learner ID
    del lines[2]  # the delete of a record never stored
    out = io.StringIO()
    csv.writer(out).writerows(lines)
    fixed = upload_and_process(services, account, out.getvalue().encode("utf-8-sig"), name="fix_errors.csv")
    assert (fixed.processed, fixed.not_processed) == (1, 0)
    [stored] = batches.processed_records(services, account, fixed.id)
    assert (stored.credit_id, stored.learner_id, stored.completion_date) == (
        "ccid:testprovider.org:xml-fix-1",
        "1000106",
        dt.date(2026, 2, 4),
    )
    # And the same CreditID deletes it (ABIM: once the board has processed it).
    delete_row = lines[1][:9] + ["Delete"] + lines[1][10:17] + ["", "", "ccid:testprovider.org:xml-fix-1"]
    out = io.StringIO()
    csv.writer(out).writerows([lines[0], delete_row])
    review.run_now(services, account)
    deleted = upload_and_process(services, account, out.getvalue().encode(), name="fix_delete.csv")
    assert [(r.credit_id, r.result) for r in batches.processed_records(services, account, deleted.id)] == [
        ("ccid:testprovider.org:xml-fix-1", "Deleted")
    ]


def test_a_v2_xml_batch(services, account):
    """MedBiquitous Activity Report v2 (member v2, idd: domains) is read like v1; its first record has no
    hx:accreditingBody and reports to the board its learner ID's domain names."""
    data = (ROOT / "sample_requests" / "batch" / "activityreports-v2-sample.xml").read_bytes()
    info = upload_and_process(services, account, data, name="v2.xml", file_type="xml")
    assert (info.status, info.records, info.processed, info.not_processed) == ("done", 2, 2, 0)
    stored = batches.processed_records(services, account, info.id)
    assert [(r.credit_id, r.board, r.learner_id_type, r.learner_id, r.result) for r in stored] == [
        ("ccid:testprovider.org:2001", "ABO", "ABO", "97979", "Accepted"),
        ("ccid:testprovider.org:2002", "ABIM", "ABIM", "1000107", "Submitted"),
    ]


def test_rows_with_several_codes_get_one_report_line_each_and_finish_mail_is_queued(services, account):
    data = (
        template_file(2, {}, start=600)
        .replace(b"\tABPATH\t1000106\tTest2\t", b"\tABPATH\t1000106\tX\t")
        .replace(b"\t1\tABPath MOC Part II", b"\t1.1\tABPath MOC Part II")
    )
    info = upload_and_process(services, account, data, name="two-codes.txt")
    assert (info.processed, info.not_processed) == (0, 2)
    _, report = batches.error_report(services, account, info.id)
    codes = [line[17] for line in csv.reader(io.StringIO(report.decode("utf-8-sig")))][1:]
    assert codes == ["665", "675", "675"]
    with services.engine.begin() as conn:
        mail = conn.execute(
            select(t.mail_outbox).where(t.mail_outbox.c.kind == "batch-finished").order_by(t.mail_outbox.c.id.desc())
        ).first()
    assert mail.recipient == account.email
    assert mail.subject == "PARS batch upload two-codes.txt: 0 processed, 2 not processed"
    # The batch's page, where the provider logs in, at the address `pars-ws serve` binds by default.
    assert f"from the batch's page: http://127.0.0.1:8000/batches?batch={info.id}\n" in mail.body
    assert "/api/" not in mail.body


@pytest.mark.parametrize(
    "public_url, bind, expected",
    [
        ("https://pars.example.org", "0.0.0.0:9000", "https://pars.example.org/batches?batch=7"),
        ("https://example.org/pars/", None, "https://example.org/pars/batches?batch=7"),
        (None, "10.0.0.5:9000", "http://10.0.0.5:9000/batches?batch=7"),
        (None, None, "http://127.0.0.1:8000/batches?batch=7"),
    ],
)
def test_mail_links_to_the_batch_page_at_the_public_url(public_url, bind, expected, monkeypatch):
    for name, value in (("PARS_PUBLIC_URL", public_url), ("PARS_BIND", bind)):
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    assert batches.batch_page_url(Settings.from_env(), 7) == expected


def test_the_error_report_names_the_certification_of_678(services, account):
    row = good_row(700) + ["abpath moc part II"]
    info = upload_and_process(services, account, write_template_b([row]), name="twice.txt")
    _, report = batches.error_report(services, account, info.id)
    [line] = list(csv.reader(io.StringIO(report.decode("utf-8-sig"))))[1:]
    assert line[17:] == [
        "678",
        "Invalid activity credit certificate. Activity certificate ABPath MOC Part II "
        "allowed once per learner submission record.",
    ]


def test_a_dead_workers_batch_is_reclaimed_after_its_heartbeat_goes_stale(services, account):
    queued = batches.upload(
        services, account, file_name="dead.txt", data=template_file(600, {}, start=700), file_type="txt"
    )
    now = dt.datetime.now(dt.timezone.utc)
    with services.engine.begin() as conn:  # a worker claims it, then dies
        assert BatchStore(conn).claim("dead-worker#1", now, now - dt.timedelta(seconds=60)).id == queued.id
    assert batches.process_next(services, "live-worker") == 0  # heartbeat still fresh
    set_batch(services, queued.id, heartbeat_at=now - dt.timedelta(seconds=Settings.batch_stale_seconds + 1))
    assert batches.process_next(services, "live-worker") == 1
    info = batches.get(services, account, queued.id)
    assert (info.status, info.rows_done, info.processed) == ("done", 600, 600)
    assert count(services, t.learner_records, t.learner_records.c.batch_pk == queued.id) == 600
    assert count(services, t.batch_results, t.batch_results.c.batch_pk == queued.id) == 600
    with services.engine.begin() as conn:
        assert BatchStore(conn).batch(account.environment, account.provider_pk, queued.id).attempts == 2


def test_a_worker_presumed_dead_cannot_move_its_batch_on(services, account):
    queued = batches.upload(
        services, account, file_name="slow.txt", data=template_file(2, {}, start=1300), file_type="txt"
    )
    now = dt.datetime.now(dt.timezone.utc)
    stale = now + dt.timedelta(seconds=1)  # as seen after the slow worker's heartbeat went stale
    progress = dict(rows_from=0, rows_to=2, processed=2, failed=0, finished=True, now=now)
    with services.engine.begin() as conn:
        store = BatchStore(conn)
        assert store.claim("slow-worker#1", now, now).id == queued.id
        assert store.claim("live-worker#1", now, stale).id == queued.id
        assert not store.advance(queued.id, "slow-worker#1", **progress)
        assert store.advance(queued.id, "live-worker#1", **progress)
    assert batches.get(services, account, queued.id).status == "done"


def test_concurrent_claims_take_different_batches(services, account, database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: a second claim waits for the first to commit")
    ids = {
        batches.upload(
            services, a, file_name="concurrent.txt", data=template_file(2, {}, start=1350), file_type="txt"
        ).id
        for a in (account, production(account))
    }
    now = dt.datetime.now(dt.timezone.utc)
    with services.engine.connect() as first, services.engine.connect() as second:
        with first.begin(), second.begin():
            second.exec_driver_sql("SET LOCAL lock_timeout = '5s'")  # fail rather than hang if it waits
            claimed = {BatchStore(conn).claim(f"w{i}#1", now, now).id for i, conn in enumerate((first, second))}
    assert claimed == ids
    for batch_id in ids:  # let the next test's worker have them
        set_batch(services, batch_id, heartbeat_at=now - dt.timedelta(hours=1))
        assert batches.process_next(services, "w") == 1


def test_a_batch_that_keeps_failing_is_given_up(services, account):
    queued = batches.upload(
        services, account, file_name="poison.txt", data=template_file(2, {}, start=1400), file_type="txt"
    )
    now = dt.datetime.now(dt.timezone.utc)
    long_ago = now - dt.timedelta(hours=1)
    for attempt in range(batches.MAX_ATTEMPTS):  # every claim's worker died at once
        with services.engine.begin() as conn:
            assert BatchStore(conn).claim(f"crashing#{attempt}", long_ago, now).id == queued.id
    assert batches.process_next(services, "w") == 1
    info = batches.get(services, account, queued.id)
    assert info.status == "failed"
    assert "FAILED REPEATEDLY" in info.message
    assert count(services, t.learner_records, t.learner_records.c.batch_pk == queued.id) == 0
    assert count(services, t.mail_outbox, t.mail_outbox.c.subject == "PARS batch upload poison.txt: not processed") == 1
    # A failed batch frees the slot and does not count as a duplicate.
    upload_and_process(services, account, template_file(2, {}, start=1400), name="poison.txt")


def test_an_idle_worker_takes_no_write_lock(services, database_url):
    """With nothing to claim, process_next only reads: it answers while another connection holds
    the write lock (SQLite) or a lock on batches that a claim's UPDATE would wait for (PostgreSQL)."""
    import threading

    while batches.process_next(services, "w"):  # nothing queued from earlier tests
        pass
    answered = []
    with services.engine.connect() as holder:
        if database_url.startswith("sqlite"):
            holder.connection.driver_connection.execute("BEGIN IMMEDIATE")
        else:
            holder.begin()
            holder.exec_driver_sql("LOCK TABLE batches IN EXCLUSIVE MODE")
        worker = threading.Thread(target=lambda: answered.append(batches.process_next(services, "idle")), daemon=True)
        worker.start()
        worker.join(30)  # a worker that waits for the lock would still be waiting
        still_waiting = worker.is_alive()
        holder.connection.driver_connection.rollback()
    worker.join(120)
    assert not still_waiting and answered == [0]
