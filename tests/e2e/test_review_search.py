"""Board review, rejection e-mail, search and export, deletes and history, end to end: gunicorn and
its worker on loopback, zeep over SOAP, the JSON/CSV API over HTTP, and a real SMTP server
(aiosmtpd) receiving the rejection e-mail."""

from __future__ import annotations

import csv
import datetime as dt
import email
import io
import json
import subprocess
import sys
import time
from email import policy
from pathlib import Path

import pytest
import requests
import zeep
from aiosmtpd.controller import Controller

from pars_ws.adapters.data_files import sandbox_fixture
from pars_ws.domain.errors import message
from tests.conftest import (
    PROVIDER_ID,
    ROOT,
    SANDBOX_PASSWORD,
    SANDBOX_USER,
    free_port,
    run_cli,
    start_server,
    stop_server,
)
from tests.support import codes, record, zeep_reports

pytestmark = pytest.mark.e2e

REVIEW_DELAY = 2  # seconds: short, yet long enough to delete a record before its review
SANDBOX_AUTH = (SANDBOX_USER, SANDBOX_PASSWORD)
PROD_USER, PROD_PASSWORD = "prod-user", "prod-password"
PROVIDER_EMAIL = sandbox_fixture()["provider"]["email"]

TEST11 = dict(learner_id="1000104", first="Test11", last="Account11", dob="1900-01-01")  # rejected with 664
TEST3 = dict(learner_id="1000107", first="Test3", last="Account3", dob="1900-04-01")
ABO = dict(board="ABO", id_type="ABO", credit_types=("ABO MOC Part II",))


class Inbox:
    """aiosmtpd handler keeping every message received."""

    def __init__(self, port: int):
        self.port = port
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture(scope="module")
def inbox():
    handler = Inbox(free_port())
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()


@pytest.fixture(scope="module")
def review_server(database_url, tmp_path_factory, inbox):
    data_dir = tmp_path_factory.mktemp("review")
    srv = start_server(
        database_url,
        data_dir,
        PARS_SMTP_HOST="127.0.0.1",
        PARS_SMTP_PORT=inbox.port,
        PARS_REVIEW_DELAY_SECONDS=REVIEW_DELAY,
    )
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def soap(review_server):
    return zeep.Client(review_server.wsdl_url)


def save(soap, credentials, *records):
    return soap.service.SaveLearnerActivity(
        **credentials, ActivityReports=zeep_reports(list(records))
    ).Results.RecordResult


def statuses(soap, credentials, credit_id):
    return soap.service.GetLearnerStatusByCreditId(**credentials, CreditID=credit_id)


def wait_for(fn, timeout=30.0, every=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def reviewed(soap, credentials, credit_id):
    """The record's status once the board has reviewed it."""

    def done():
        found = [s for s in statuses(soap, credentials, credit_id) if s.Status != "Deleted"]
        return found[0] if found and found[0].Status != "Submitted" else None

    result = wait_for(done)
    assert result is not None, f"{credit_id} was not reviewed"
    return result


def api(server, method, path, auth=SANDBOX_AUTH, **kwargs):
    return requests.request(method, server.base_url + path, auth=auth, timeout=30, **kwargs)


def cid(name: str) -> str:
    return f"ccid:testprovider.org:rs-{name}"


# -- the "not done until" -----------------------------------------------------------------


def test_abim_record_reviewed_mailed_and_found(review_server, soap, credentials, inbox):
    accepted, rejected = cid("accepted"), cid("rejected")
    results = save(
        soap,
        credentials,
        record(accepted, completed="2026-02-02T00:00:00"),
        record(rejected, completed="2026-02-02T00:00:00", **TEST11),
    )
    assert [(r.Status, codes(r)) for r in results] == [("Submitted", []), ("Submitted", [])]

    ok = reviewed(soap, credentials, accepted)
    assert (ok.Status, codes(ok)) == ("Accepted", [])
    bad = reviewed(soap, credentials, rejected)
    assert (bad.Status, codes(bad)) == ("Rejected", [664])
    assert bad.Errors.Error[0].Message == message(664)
    assert bad.Updated > bad.Submitted
    [by_learner] = soap.service.GetLearnerStatusByLearner(
        **credentials, ActivityID="200930149", LearnerID="1000104", CompletionDate=dt.date(2026, 2, 2)
    )
    assert (by_learner.Status, codes(by_learner)) == ("Rejected", [664])

    mail = wait_for(lambda: next((m for m in inbox.messages if rejected in m.get_content()), None))
    assert mail is not None, "no rejection e-mail arrived"
    assert mail["To"] == PROVIDER_EMAIL and "rejected" in mail["Subject"]
    body = mail.get_content()
    assert "Test11 Account11" in body and f"Error 664: {message(664)}" in body and accepted not in body

    found = api(review_server, "GET", "/api/search", params={"last_name": "account11", "activity_id": "200930149"})
    assert found.status_code == 200
    [row] = [r for r in found.json()["results"] if r["credit_id"] == rejected]
    assert (row["status"], row["error_code"], row["error_message"], row["board"]) == (
        "Rejected",
        664,
        message(664),
        "ABIM",
    )

    export = api(review_server, "GET", "/api/search.csv", params={"title": "other is an"})
    assert export.status_code == 200 and export.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in export.headers["Content-Disposition"]
    assert export.content.startswith(b"\xef\xbb\xbf")
    rows = {r["CreditID"]: r for r in csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"), newline=""))}
    assert (rows[accepted]["Status"], rows[rejected]["Status"], rows[rejected]["Error Code"]) == (
        "Accepted",
        "Rejected",
        "664",
    )


def run_pars_ws(server, *args) -> subprocess.CompletedProcess:
    """The installed `pars-ws` command, as users run it."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "pars-ws"), *args],
        env=server.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def cli(server, *args) -> str:
    done = run_pars_ws(server, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_cli_search_export_and_summary(review_server, soap, credentials, tmp_path):
    mine = cid("cli")
    save(soap, credentials, record(mine, completed="2026-02-06T00:00:00", **TEST11))
    ran = cli(review_server, "review", "run")
    assert ran.startswith("sandbox: ") and "rejected" in ran
    assert [s.Status for s in statuses(soap, credentials, mine)] == ["Rejected"]
    out = tmp_path / "found.csv"
    cli(review_server, "search", "--last-name", "Account11", "--board", "abim", "--csv", str(out))
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data and mine.encode() in data
    listing = cli(review_server, "search", "--last-name", "Account11", "--json")
    assert mine in [r["credit_id"] for r in json.loads(listing)["results"]]
    assert cli(review_server, "search", "--title", "Other", "--per-page", "1").startswith("Showing 1 - 1 of ")
    refused = run_pars_ws(review_server, "search", "--board", "ABIM")
    assert refused.returncode == 2 and "at least one of" in refused.stderr
    summary = cli(review_server, "summary", "--year", "2026", "--title", "An Other")
    assert "200930149\t" in summary and "An Other is an Other" in summary


# -- deletes --------------------------------------------------------------------------------------


def test_delete_rules_through_soap(review_server, soap, credentials):
    pending = cid("del-pending")
    add = record(pending, completed="2026-02-03T00:00:00", **TEST11)
    assert save(soap, credentials, add)[0].Status == "Submitted"
    # Not yet reviewed: a Submitted record cannot be deleted.
    [refused] = save(soap, credentials, dict(add, action="delete"))
    assert (refused.Status, codes(refused)) == ("Not processed", [605])
    assert reviewed(soap, credentials, pending).Status == "Rejected"
    # A Rejected record may be removed, and its CreditID used again.
    assert save(soap, credentials, dict(add, action="delete"))[0].Status == "Deleted"
    assert [s.Status for s in statuses(soap, credentials, pending)] == ["Deleted"]
    assert save(soap, credentials, dict(add, completed="2026-02-04T00:00:00"))[0].Status == "Submitted"


def test_rejected_and_deleted_records_do_not_count_toward_the_maximum(review_server, soap, credentials):
    small = dict(activity_id="200900002")  # 2 points for ABIM and for ABO
    # A Rejected record's points do not count: the learner may be reported for the full amount again.
    first = cid("max-rejected-1")
    save(soap, credentials, record(first, points="2", completed="2026-03-01T00:00:00", **small, **TEST11))
    assert reviewed(soap, credentials, first).Status == "Rejected"
    [again] = save(
        soap, credentials, record(cid("max-rejected-2"), points="2", completed="2026-03-02T00:00:00", **small, **TEST11)
    )
    assert (again.Status, codes(again)) == ("Submitted", [])

    # ABO records are Accepted at once. 710: the learner already holds the maximum.
    full = record(cid("max-1"), points="2", completed="2026-03-01T00:00:00", **small, **ABO, **TEST3)
    assert save(soap, credentials, full)[0].Status == "Accepted"
    assert codes(
        save(
            soap,
            credentials,
            record(cid("max-2"), points="0.25", completed="2026-03-02T00:00:00", **small, **ABO, **TEST3),
        )[0]
    ) == [710]
    assert save(soap, credentials, dict(full, action="delete"))[0].Status == "Deleted"
    # The deleted record no longer counts, and its CreditID may be added again.
    assert [(r.Status, codes(r)) for r in save(soap, credentials, full)] == [("Accepted", [])]
    assert save(soap, credentials, dict(full, action="delete"))[0].Status == "Deleted"

    # 711: this record would push the learner past the maximum, until the record it adds to is deleted.
    part = record(cid("max-3"), points="1.5", completed="2026-03-03T00:00:00", **small, **ABO, **TEST3)
    more = record(cid("max-4"), points="1", completed="2026-03-04T00:00:00", **small, **ABO, **TEST3)
    assert save(soap, credentials, part)[0].Status == "Accepted"
    assert codes(save(soap, credentials, more)[0]) == [711]
    assert save(soap, credentials, dict(part, action="delete"))[0].Status == "Deleted"
    assert [(r.Status, codes(r)) for r in save(soap, credentials, more)] == [("Accepted", [])]


def test_delete_from_the_details_view(review_server, soap, credentials):
    pending, done = cid("view-pending"), cid("view-done")
    save(
        soap,
        credentials,
        record(pending, completed="2026-02-05T00:00:00", **TEST3),
        record(done, completed="2026-02-05T00:00:00", **ABO, activity_id="200931446", **TEST3),
    )
    response = api(review_server, "POST", "/api/records/delete", json={"credit_ids": [pending, done, cid("nothing")]})
    assert response.status_code == 200
    assert [(r["credit_id"], r["status"], [e["code"] for e in r["errors"]]) for r in response.json()["results"]] == [
        (pending, "Not processed", [605]),
        (done, "Deleted", []),
        (cid("nothing"), "Not processed", [605]),
    ]
    assert response.json()["results"][0]["errors"][0]["message"] == message(605)
    assert [s.Status for s in statuses(soap, credentials, done)] == ["Deleted"]
    assert api(review_server, "POST", "/api/records/delete", json={"credit_ids": []}).status_code == 400
    assert api(review_server, "POST", "/api/records/delete", json={"ids": "x"}).status_code == 400


# -- summary and history --------------------------------------------------------------------------


def test_activity_summary(review_server, soap, credentials):
    path = "200608132"  # ABPATH only; no other test reports on it
    abpath = dict(board="ABPATH", id_type="ABPATH", activity_id=path, credit_types=("ABPath MOC Part II",))
    save(
        soap,
        credentials,
        record(cid("sum-ok"), completed="2026-04-01T00:00:00", **abpath),
        record(cid("sum-rej"), completed="2026-04-01T00:00:00", **abpath, **TEST11),
    )
    reviewed(soap, credentials, cid("sum-ok"))
    reviewed(soap, credentials, cid("sum-rej"))
    response = api(review_server, "GET", "/api/summary", params={"year": "2026", "board": "ABPATH", "per_page": "50"})
    assert response.status_code == 200
    body = response.json()
    [row] = [r for r in body["results"] if r["activity_id"] == path]
    assert (row["submitted"], row["accepted"], row["rejected"], row["boards"]) == (0, 1, 1, ["ABPATH"])
    assert row["title"] == "Pathology Review Course" and row["last_updated"] is not None
    assert {r["activity_id"] for r in body["results"]} == {"200930149", "200608132", "200900001"}
    assert api(review_server, "GET", "/api/summary", params={"year": "2025"}).json()["total"] == 0
    export = api(review_server, "GET", "/api/summary.csv", params={"board": "ABPATH"})
    assert export.content.startswith(b"\xef\xbb\xbf") and b"Pathology Review Course" in export.content


def test_record_history_with_raw_request(review_server, soap, credentials):
    rejected = cid("history")
    save(soap, credentials, record(rejected, completed="2026-04-02T00:00:00", **TEST11))
    reviewed(soap, credentials, rejected)
    response = api(review_server, "GET", f"/api/records/{rejected}/history")
    assert response.status_code == 200
    [h] = response.json()["records"]
    assert (h["source"], h["status"], h["deleted_at"]) == ("SOAP", "Rejected", None)
    assert [(e["status"], e["code"]) for e in h["events"]] == [("Submitted", None), ("Rejected", 664)]
    assert h["events"][1]["message"] == message(664)
    request = h["request"]
    assert request["source"] == "SOAP" and request["correlation_id"]
    assert rejected in request["body"] and "SaveLearnerActivity" in request["body"]
    assert SANDBOX_PASSWORD not in request["body"] and "********" in request["body"]
    assert api(review_server, "GET", "/api/records/ccid:testprovider.org:none/history").status_code == 404


# -- access and environments ----------------------------------------------------------------------


def test_api_needs_the_credential_and_sane_filters(review_server):
    assert api(review_server, "GET", "/api/search", auth=None, params={"title": "x"}).status_code == 401
    assert (
        api(review_server, "GET", "/api/search", auth=(SANDBOX_USER, "wrong"), params={"title": "x"}).status_code == 401
    )
    refused = api(review_server, "GET", "/api/search", params={"board": "ABIM"})
    assert refused.status_code == 400 and "at least one of" in refused.json()["error"]
    assert api(review_server, "GET", "/api/search", params={"title": "x", "per_page": "1000"}).status_code == 400
    assert (
        api(review_server, "GET", "/api/search.csv", params={"title": "x", "submitted_from": "31/31/2026"}).status_code
        == 400
    )


def test_paging_over_http(review_server, soap, credentials):
    save(
        soap,
        credentials,
        *[record(cid(f"page-{day}"), completed=f"2026-04-{day}T00:00:00", **TEST3) for day in (10, 11, 12, 13)],
    )
    page1 = api(review_server, "GET", "/api/search", params={"title": "Other", "per_page": "2"}).json()
    page2 = api(review_server, "GET", "/api/search", params={"title": "Other", "per_page": "2", "page": "2"}).json()
    assert page1["total"] == page2["total"] >= 4 and (page1["page"], page2["page"]) == (1, 2)
    ids1, ids2 = [r["credit_id"] for r in page1["results"]], [r["credit_id"] for r in page2["results"]]
    assert len(ids1) == len(ids2) == 2 and not set(ids1) & set(ids2)


def test_sandbox_credential_never_sees_production(review_server, soap, tmp_path):
    env = review_server.env
    run_cli(
        env,
        "credentials",
        "create",
        "--provider-id",
        PROVIDER_ID,
        "--environment",
        "production",
        "--username",
        PROD_USER,
        "--password",
        PROD_PASSWORD,
    )
    fixture = sandbox_fixture()
    activities = tmp_path / "activities.json"
    activities.write_text(json.dumps([a for a in fixture["activities"] if a["activity_id"] == "200930149"]))
    run_cli(env, "activities", "import", str(activities), "--provider-id", PROVIDER_ID, "--environment", "production")
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps([d for d in fixture["registry"] if d["board"] == "ABIM"]))
    run_cli(env, "registry", "import", str(registry), "--environment", "production")

    prod = {"ProviderId": PROVIDER_ID, "User": PROD_USER, "Password": PROD_PASSWORD}
    only_prod = cid("production-only")
    [r] = save(soap, prod, record(only_prod, completed="2026-05-01T00:00:00", last="Account2"))
    assert r.Status == "Submitted"

    sandbox_rows = api(review_server, "GET", "/api/search", params={"last_name": "Account2", "per_page": "200"}).json()
    assert only_prod not in [x["credit_id"] for x in sandbox_rows["results"]]
    assert (
        only_prod.encode()
        not in api(review_server, "GET", "/api/search.csv", params={"submitted_from": "01/01/2000"}).content
    )
    assert api(review_server, "GET", f"/api/records/{only_prod}/history").status_code == 404
    prod_auth = (PROD_USER, PROD_PASSWORD)
    prod_rows = api(review_server, "GET", "/api/search", auth=prod_auth, params={"last_name": "Account2"}).json()
    assert [x["credit_id"] for x in prod_rows["results"]] == [only_prod]

    # Production is reviewed on the boards' schedule, never on demand; the sandbox on demand.
    assert api(review_server, "POST", "/api/review/run", auth=prod_auth).status_code == 403
    ran = api(review_server, "POST", "/api/review/run")
    assert ran.status_code == 200 and ran.json()["environment"] == "sandbox"
    assert [s.Status for s in statuses(soap, prod, only_prod)] == ["Submitted"]
