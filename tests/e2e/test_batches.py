"""Batch uploads end to end: gunicorn and worker processes on loopback, `pars-ws upload`, the JSON
API, e-mail through a real SMTP receiver, and workers killed with SIGKILL."""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import io
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from aiosmtpd.controller import Controller
from sqlalchemy import distinct, func, select, update

from pars_ws.adapters import tables as t
from pars_ws.adapters.database import make_engine
from pars_ws.domain.activities import Activity, Registration
from pars_ws.service import batches
from pars_ws.service.auth import Account
from pars_ws.service.container import Services
from pars_ws.settings import Settings
from tests.conftest import (
    PG_URL,
    ROOT,
    SANDBOX_PASSWORD,
    SANDBOX_USER,
    SANDBOX_WEB_EMAIL,
    SANDBOX_WEB_PASSWORD,
    TODAY,
    _pg_database,
    free_port,
    run_cli,
    service_env,
    start_server,
    stop_server,
)
from tests.support import BAD_ROWS, fixed_error_report, record, template_file, xml_reports

pytestmark = pytest.mark.e2e

AUTH = (SANDBOX_USER, SANDBOX_PASSWORD)


# -- helpers ----------------------------------------------------------------------------------------


def post_file(server, name: str, data: bytes, file_type: str, force: bool = False, auth=AUTH):
    return requests.post(
        f"{server.base_url}/api/batches",
        auth=auth,
        timeout=60,
        files={"file": (name, data)},
        data={"file_type": file_type, "force": str(force).lower()},
    )


def api_get(server, path: str, auth=AUTH):
    return requests.get(server.base_url + path, auth=auth, timeout=30)


def wait_finished(server, batch_id: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = api_get(server, f"/api/batches/{batch_id}").json()
        if batch["status"] in ("done", "failed"):
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} not finished after {timeout} s")


def batch_counts(database_url: str, batch_id: int) -> tuple[int, int, int]:
    """(records stored, distinct batch rows stored, result rows) of one batch."""
    engine = make_engine(database_url)
    lr, br = t.learner_records, t.batch_results
    try:
        with engine.connect() as conn:
            return (
                conn.execute(select(func.count()).where(lr.c.batch_pk == batch_id)).scalar_one(),
                conn.execute(
                    select(func.count(distinct(lr.c.batch_row))).where(lr.c.batch_pk == batch_id)
                ).scalar_one(),
                conn.execute(
                    select(func.count(distinct(br.c.row_index))).where(br.c.batch_pk == batch_id)
                ).scalar_one(),
            )
    finally:
        engine.dispose()


# The installed console script: `python -m pars_ws.entrypoints.cli` (run_cli) does not see commands
# registered from feature modules, which attach to the imported module rather than to __main__.
PARS_WS = str(Path(sys.executable).with_name("pars-ws"))


def pars_ws(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([PARS_WS, *args], env=env, cwd=ROOT, capture_output=True, text=True, check=check, timeout=120)


def cli_env(server) -> dict:
    return dict(server.env, PARS_URL=server.base_url, PARS_USER=SANDBOX_USER, PARS_PASSWORD=SANDBOX_PASSWORD)


def report_lines(report: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(report.decode("utf-8-sig"))))


# -- the acceptance case: 2,500 rows through the CLI ---------------------------------------------------


def test_cli_upload_2500_rows_10_bad_then_the_fixed_error_report(server, database_url, tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(template_file(2500))
    errors_csv = tmp_path / "errors.csv"
    started = time.monotonic()
    cli = subprocess.Popen(
        [PARS_WS, "upload", str(big), "--errors-out", str(errors_csv)],
        env=cli_env(server),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # While it is queued or processing, no second file is taken.
        deadline = time.monotonic() + 30
        while not any(b["file_name"] == "big.txt" for b in api_get(server, "/api/batches").json()["batches"]):
            assert time.monotonic() < deadline, "the upload never arrived"
            time.sleep(0.05)
        second = post_file(server, "second.txt", template_file(2, {}, start=9000), "txt")
        assert second.status_code == 409, (second.json(), api_get(server, "/api/batches").json())
        assert second.json() == {"error": batches.MSG_ACTIVE, "reason": "active"}
        out, err = cli.communicate(timeout=120)
    finally:
        cli.kill()
    elapsed = time.monotonic() - started
    assert cli.returncode == 1, err  # rows not processed
    batch_id = int(re.search(r"queued as batch (\d+) \(2500 records\)", out).group(1))
    assert f"batch {batch_id}: done. 2500 records: 2490 processed, 10 not processed." in out
    assert f"error report: {server.base_url}/api/batches/{batch_id}/errors.csv" in out
    print(f"2,500-row batch through the CLI: {elapsed:.1f} s")

    assert batch_counts(database_url, batch_id) == (2490, 2490, 2500)
    lines = report_lines(errors_csv.read_bytes())
    assert len(lines) == 1 + 10
    assert [int(line[17]) for line in lines[1:]] == [BAD_ROWS[i][2] for i in sorted(BAD_ROWS)]
    stored = api_get(server, f"/api/batches/{batch_id}/records").json()["records"]
    assert len(stored) == 2490
    assert len({r["credit_id"] for r in stored}) == 2490
    assert all(r["credit_id"].startswith("ccid:testprovider.org:") for r in stored)
    assert {r["row"] for r in stored} == set(range(1, 2501)) - {i + 1 for i in BAD_ROWS}

    fixed = tmp_path / "big_errors_fixed.csv"
    fixed.write_bytes(fixed_error_report(errors_csv.read_bytes()))
    again = pars_ws(cli_env(server), "upload", str(fixed))
    fixed_id = int(re.search(r"queued as batch (\d+) \(10 records\)", again.stdout).group(1))
    assert f"batch {fixed_id}: done. 10 records: 10 processed, 0 not processed." in again.stdout
    assert batch_counts(database_url, fixed_id) == (10, 10, 10)

    listed = pars_ws(cli_env(server), "uploads").stdout.splitlines()
    assert listed[0] == "batch\tuploaded\tstatus\trecords\tprocessed\tnot processed\tfile"
    assert listed[1].split("\t")[2:] == ["done", "10", "10", "0", "big_errors_fixed.csv"]
    assert listed[2].split("\t")[2:] == ["done", "2500", "2490", "10", "big.txt"]

    # No SMTP server configured: the completion mail is an .eml file in the outbox folder.
    subject = "Subject: PARS batch upload big.txt: 2490 processed, 10 not processed"
    deadline = time.monotonic() + 20
    while not any(subject in p.read_text() for p in (server.data_dir / "outbox").glob("*.eml")):
        assert time.monotonic() < deadline, "no .eml for the finished batch"
        time.sleep(0.2)


# -- the HTTP API -------------------------------------------------------------------------------------

MIB = 1024 * 1024


@pytest.mark.parametrize(
    "name, data, file_type, status, message",
    [
        (
            "learners.xml",
            template_file(1, {}),
            "txt",
            400,
            "THE FILE SELECTED IS NOT A .TXT FILE. PLEASE UPLOAD A .TXT FILE.",
        ),
        (
            "learners.txt",
            template_file(1, {}),
            "xml",
            400,
            "THE FILE SELECTED IS NOT A .XML FILE. PLEASE UPLOAD A .XML FILE.",
        ),
        (
            "learners.txt",
            b"Name\tDate\nA\t1/1/2026\n",
            "txt",
            400,
            "THE FILE IS NOT FORMATTED CORRECTLY. PLEASE USE THE FORMAT PROVIDED IN THIS TEMPLATE.",
        ),
        (
            "learners.txt",
            template_file(2501, {}),
            "txt",
            400,
            "THE FILE HAS MORE THAN 2,500 RECORDS. BATCH UPLOADS MAY NOT EXCEED 2,500 RECORDS.",
        ),
        (
            "learners.txt",
            template_file(1, {}) + b" " * 16 * MIB,
            "txt",
            400,
            "THE FILE IS LARGER THAN 16 MB. BATCH UPLOADS MAY NOT EXCEED 16 MB.",
        ),
        # Far past the limit: refused while the body is read.
        (
            "learners.txt",
            b" " * 17 * MIB,
            "txt",
            413,
            "THE FILE IS LARGER THAN 16 MB. BATCH UPLOADS MAY NOT EXCEED 16 MB.",
        ),
        (
            "learners.txt",
            "Learner Template B\tABPATH\t200930149".encode("utf-32"),
            "txt",
            400,
            "THE FILE COULD NOT BE READ AS TEXT.",
        ),
        (
            "learners.xml",
            b"<ar:ActivityReports xmlns:ar='http://ns.medbiq.org/activityreport/v1/'>",
            "xml",
            400,
            "Malformed XML",
        ),
    ],
    ids=["txt-extension", "xml-extension", "not-template", "2501-records", "16MiB", "17MiB", "encoding", "malformed"],
)
def test_files_refused_whole(server, name, data, file_type, status, message):
    before = api_get(server, "/api/batches").json()["batches"]
    response = post_file(server, name, data, file_type)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert api_get(server, "/api/batches").json()["batches"] == before


def test_authentication_and_missing_file(server):
    assert requests.get(f"{server.base_url}/api/batches", timeout=10).status_code == 401
    assert api_get(server, "/api/batches", auth=(SANDBOX_USER, "wrong")).status_code == 401
    response = requests.post(f"{server.base_url}/api/batches", auth=AUTH, data={"file_type": "txt"}, timeout=10)
    assert (response.status_code, response.json()["error"]) == (400, "CHOOSE A FILE TO UPLOAD.")


def test_xml_batch(server):
    good = record(
        "ccid:testprovider.org:e2e-xml-batch-1",
        board="ABO",
        id_type="ABO",
        activity_id="200900001",
        credit_types=("ABO MOC Part II",),
        points="2",
        completed="2026-03-01T00:00:00",
    )
    bad = dict(good, credit_id="ccid:testprovider.org:e2e-xml-batch-2", learner_id="0000000")
    response = post_file(server, "activity-reports.xml", xml_reports([good, bad]).encode(), "xml")
    assert response.status_code == 202
    batch = response.json()
    assert response.headers["Location"].endswith(f"/api/batches/{batch['id']}")
    assert (batch["status"], batch["records"]) == ("queued", 2)
    batch = wait_finished(server, batch["id"])
    assert (batch["status"], batch["processed"], batch["not_processed"]) == ("done", 1, 1)
    [stored] = api_get(server, batch["links"]["records"]).json()["records"]
    assert (stored["credit_id"], stored["result"], stored["board"], stored["credits"]) == (
        "ccid:testprovider.org:e2e-xml-batch-1",
        "Accepted",
        "ABO",
        "2.00",
    )
    errors = api_get(server, batch["links"]["errors"])
    assert errors.headers["Content-Disposition"] == 'attachment; filename="activity-reports_errors.csv"'
    [header, line] = report_lines(errors.content)
    assert line[1:5] == ["ABO", "200900001", "ABO", "0000000"]
    assert line[7:9] == ["03/01", "03/01/2026"]  # as Template B rows show them, not 1900-03-01 and 2026-03-01T00:00:00
    assert (header[19], line[17:]) == (
        "20. CreditID",
        ["661", "Diplomate ID not found in Board records.", "ccid:testprovider.org:e2e-xml-batch-2"],
    )


def test_duplicate_file_refused_unless_forced(server):
    data = template_file(2, {}, start=9100, activity_id="200608132")
    first = post_file(server, "dup.txt", data, "txt").json()
    wait_finished(server, first["id"])
    again = post_file(server, "dup-copy.txt", data, "txt")
    assert again.status_code == 409
    assert again.json()["reason"] == "duplicate"
    assert f"AS dup.txt (BATCH {first['id']})" in again.json()["error"]
    forced = post_file(server, "dup-copy.txt", data, "txt", force=True)
    assert forced.status_code == 202
    batch = wait_finished(server, forced.json()["id"])
    assert (batch["forced"], batch["processed"]) == (True, 2)
    history = [b["id"] for b in api_get(server, "/api/batches").json()["batches"]]
    assert history.index(batch["id"]) < history.index(first["id"])  # newest first


def test_another_provider_never_sees_a_batch(server):
    run_cli(
        server.env,
        "credentials",
        "create",
        "--provider-id",
        "7654321",
        "--environment",
        "sandbox",
        "--username",
        "other-provider",
        "--password",
        "other-password",
        "--provider-name",
        "Other Provider",
        "--provider-email",
        "cme@other.example",
    )
    other = ("other-provider", "other-password")
    batch = post_file(server, "mine.txt", template_file(1, {}, start=9200, activity_id="200608132"), "txt").json()
    wait_finished(server, batch["id"])
    for path in ("", "/errors.csv", "/records"):
        response = api_get(server, f"/api/batches/{batch['id']}{path}", auth=other)
        assert (response.status_code, response.json()) == (404, {"error": "No such batch."})
    assert api_get(server, "/api/batches", auth=other).json() == {"batches": []}


# -- mail through a real SMTP server --------------------------------------------------------------------


@pytest.fixture
def fresh_database_url(database_url, tmp_path):
    """An empty database of the same kind as this run's, for a service or workers of its own."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    url, drop = _pg_database(PG_URL)
    yield url
    drop()


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


def test_finished_batch_mailed_over_smtp(fresh_database_url, tmp_path):
    """The mail links to the batch's page at PARS_PUBLIC_URL; the page asks the provider to log in and
    then shows the batch, with its error download."""
    inbox = _Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    server = start_server(
        fresh_database_url,
        tmp_path,
        PARS_SMTP_HOST="127.0.0.1",
        PARS_SMTP_PORT=smtp.port,
        PARS_PUBLIC_URL="https://pars.example.org/",
    )
    try:
        batch = post_file(server, "mailed.txt", template_file(3, {1: BAD_ROWS[7]}), "txt").json()
        wait_finished(server, batch["id"])
        deadline = time.monotonic() + 20
        while not inbox.messages:
            assert time.monotonic() < deadline, "no mail arrived"
            time.sleep(0.1)
        [envelope] = inbox.messages
        mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
        link = f"https://pars.example.org/batches?batch={batch['id']}"
        assert f"from the batch's page: {link}\n" in mail.get_content().replace("\r\n", "\n")
        page = requests.Session()
        login = page.get(server.base_url + link.removeprefix("https://pars.example.org"), timeout=30)
        assert "/login?next=" in login.url
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
        shown = page.post(
            login.url,
            timeout=30,
            data={"csrf_token": token, "email": SANDBOX_WEB_EMAIL, "password": SANDBOX_WEB_PASSWORD},
        )
        assert shown.url == f"{server.base_url}/batches?batch={batch['id']}"
        assert "YOUR FILE (MAILED.TXT) HAS FINISHED PROCESSING" in shown.text
        assert f"/batches/{batch['id']}/errors.csv" in shown.text
    finally:
        stop_server(server)
        smtp.stop()
    assert envelope.rcpt_tos == ["cme-office@testprovider.org"]
    assert mail["Subject"] == "PARS batch upload mailed.txt: 2 processed, 1 not processed"
    assert not list((tmp_path / "outbox").glob("*.eml"))


# -- workers ---------------------------------------------------------------------------------------------


def _start_workers(env: dict, *log_paths) -> list[subprocess.Popen]:
    """`pars-ws worker` processes, started together; returns once each has started its loop."""
    procs = [
        subprocess.Popen(
            [PARS_WS, "worker", "--poll", "0.2"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(path, "wb")
        )
        for path in log_paths
    ]
    deadline = time.monotonic() + 30
    for proc, path in zip(procs, log_paths, strict=True):
        while '"worker_started"' not in path.read_text():
            assert proc.poll() is None, path.read_text()
            assert time.monotonic() < deadline, "worker did not start"
            time.sleep(0.05)
    return procs


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def worker_env(fresh_database_url, tmp_path):
    """A seeded database with no service and no worker running yet; INFO logs so claims can be read."""
    env = service_env(fresh_database_url, tmp_path, PARS_LOG_LEVEL="INFO")
    run_cli(env, "sandbox", "seed", "--username", SANDBOX_USER, "--password", SANDBOX_PASSWORD)
    services = Services(Settings(database_url=fresh_database_url, today=dt.date.fromisoformat(TODAY), secret_key=b"k"))
    yield env, services
    services.engine.dispose()


def _wait_all_done(services, ids: list[int], timeout: float = 90) -> list:
    deadline = time.monotonic() + timeout
    while True:
        with services.engine.begin() as conn:
            rows = conn.execute(
                select(
                    t.batches.c.id,
                    t.batches.c.status,
                    t.batches.c.attempts,
                    t.batches.c.claimed_by,
                    t.batches.c.records_processed,
                )
                .where(t.batches.c.id.in_(ids))
                .order_by(t.batches.c.id)
            ).all()
        if all(r.status == "done" for r in rows):
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)


def _provider_with_activity(services, n: int) -> tuple[Account, str]:
    """Another provider, with its own ABPATH activity."""
    with services.store.transaction() as uow:
        pk = uow.accounts.ensure_provider(f"76000{n:02d}", f"Provider {n}", f"p{n}.example", f"cme@p{n}.example")
    account = Account(0, f"p{n}", "sandbox", pk, f"76000{n:02d}", f"Provider {n}", f"p{n}.example", f"cme@p{n}.example")
    activity = services.activities.save(
        account,
        Activity(
            activity_id=None,
            title=f"Activity {n}",
            activity_type="Course",
            start_date=dt.date(2026, 1, 1),
            end_date=dt.date(2026, 12, 31),
            reporting_year=2026,
            credits=Decimal("500"),
            registrations=(Registration("ABPATH", Decimal("500"), ("ABPath MOC Part II",)),),
        ),
    )
    return account, activity.activity_id


def test_two_workers_never_process_the_same_batch(worker_env, tmp_path):
    """Each batch is claimed once (attempts == 1) and each of its rows stored once."""
    env, services = worker_env
    ids = []
    for n in range(4):  # one file at a time per provider: four providers
        account, activity_id = _provider_with_activity(services, n)
        ids.append(
            batches.upload(
                services,
                account,
                file_name=f"p{n}.txt",
                file_type="txt",
                data=template_file(1000, {}, activity_id=activity_id),
            ).id
        )
    workers = _start_workers(env, tmp_path / "worker0.log", tmp_path / "worker1.log")
    try:
        rows = _wait_all_done(services, ids)
    finally:
        for w in workers:
            _stop(w)
    assert [(r.attempts, r.records_processed) for r in rows] == [(1, 1000)] * 4
    for batch_id in ids:
        assert batch_counts(env["PARS_DATABASE_URL"], batch_id) == (1000, 1000, 1000)
    if env["PARS_DATABASE_URL"].startswith("postgresql"):
        # Both took part. (SQLite writers take turns on one lock, and the worker holding it may
        # legitimately do all the work.)
        assert len({r.claimed_by.rsplit("#", 1)[0] for r in rows}) == 2


def test_a_batch_whose_worker_was_killed_is_finished_by_another(worker_env, tmp_path):
    env, services = worker_env
    account = services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    batch_id = batches.upload(
        services, account, file_name="killed.txt", file_type="txt", data=template_file(2500, {})
    ).id

    def batch():
        with services.engine.begin() as conn:
            return conn.execute(select(t.batches).where(t.batches.c.id == batch_id)).one()

    [first] = _start_workers(env, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 60
        while batch().rows_done < batches.CHUNK_ROWS:
            assert time.monotonic() < deadline, "the first worker never got going"
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        _stop(first)
    stopped = batch()
    assert stopped.status == "processing" and 0 < stopped.rows_done < 2500, stopped
    assert batch_counts(env["PARS_DATABASE_URL"], batch_id) == (stopped.rows_done,) * 3
    # The heartbeat goes stale after Settings.batch_stale_seconds: move it back rather than wait.
    with services.engine.begin() as conn:
        conn.execute(
            update(t.batches)
            .where(t.batches.c.id == batch_id)
            .values(heartbeat_at=stopped.heartbeat_at - dt.timedelta(seconds=Settings.batch_stale_seconds + 1))
        )

    [second] = _start_workers(env, tmp_path / "second.log")
    try:
        [done] = _wait_all_done(services, [batch_id])
    finally:
        _stop(second)
    assert (done.attempts, done.records_processed) == (2, 2500)
    assert batch_counts(env["PARS_DATABASE_URL"], batch_id) == (2500, 2500, 2500)
    assert f'"resume_at": {stopped.rows_done}, "attempt": 2' in (tmp_path / "second.log").read_text()
