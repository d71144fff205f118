"""The JSON/REST twin (/api/v1) and the Excel learner template upload, end to end against gunicorn
(SQLite, and PostgreSQL when PARS_TEST_DATABASE_URL is set): records stored, the same results as
SOAP for the same records, HTTP Basic, environments, problem documents, the OpenAPI document."""

from __future__ import annotations

import io
import json
import re
import subprocess
import zipfile

import openpyxl
import pytest
import requests
from lxml import etree

from pars_ws.domain.errors import message
from tests.conftest import (
    PROVIDER_ID,
    ROOT,
    SANDBOX_PASSWORD,
    SANDBOX_USER,
    SANDBOX_WEB_EMAIL,
    SANDBOX_WEB_PASSWORD,
    run_cli,
)
from tests.e2e.test_batches import PARS_WS, cli_env, post_file, wait_finished
from tests.support import EXCEL_BOTH, excel_workbook, json_reports, record, soap11_save

pytestmark = pytest.mark.e2e

AUTH = (SANDBOX_USER, SANDBOX_PASSWORD)
SAMPLES = ROOT / "sample_requests" / "json"
P = "urn:pars-ws:learner:v1"


def api(server, method: str, path: str, auth=AUTH, **kwargs) -> requests.Response:
    return requests.request(method, f"{server.base_url}/api/v1{path}", auth=auth, timeout=60, **kwargs)


def soap_results(server, records: list[dict]) -> list[tuple]:
    r = requests.post(
        server.service_url,
        data=soap11_save(records),
        timeout=60,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{P}/SaveLearnerActivity"'},
    )
    doc = etree.fromstring(r.content)
    ns = {"p": P}
    return [
        (
            int(x.findtext("p:Index", namespaces=ns)),
            x.findtext("p:Status", namespaces=ns),
            [
                (int(e.findtext("p:Code", namespaces=ns)), e.findtext("p:Message", namespaces=ns))
                for e in x.iterfind("p:Errors/p:Error", ns)
            ],
        )
        for x in doc.iterfind(".//p:RecordResult", ns)
    ]


def json_results(response) -> list[tuple]:
    return [
        (r["Index"], r["Status"], [(e["Code"], e["Message"]) for e in r["Errors"]]) for r in response.json()["Results"]
    ]


# -- the JSON twin ---------------------------------------------------------------------------------------


def test_the_sample_save_stores_the_record_and_reads_back(server):
    body = (SAMPLES / "SaveLearnerActivity-add.json").read_bytes()
    saved = api(server, "POST", "/learner-activities", data=body, headers={"Content-Type": "application/json"})
    assert saved.status_code == 201, saved.text
    assert saved.json() == {
        "ResultSummary": "Success",
        "Results": [
            {"Index": 1, "CreditID": "ccid:testprovider.org:3001", "Action": "Add", "Status": "Submitted", "Errors": []}
        ],
    }
    by_credit_id = api(server, "GET", "/learner-activities/status", params={"CreditId": "ccid:testprovider.org:3001"})
    assert by_credit_id.status_code == 200
    (status,) = by_credit_id.json()["LearnerStatus"]
    assert (
        status["ActivityID"],
        status["Board"],
        status["LearnerID"],
        status["CompletionDate"],
        status["Credits"],
        status["Status"],
    ) == ("200930149", "ABIM", "1000106", "2026-01-07", "3.50", "Submitted")
    for dob in ("03-01", "1900-03-01", None):
        by_learner = api(
            server,
            "GET",
            "/learner-activities/status",
            params={"moduleID": "200930149", "UniqueID": "1000106", "CompletionDate": "2026-01-07", "BirthDate": dob},
        )
        assert [s["CreditID"] for s in by_learner.json()["LearnerStatus"]] == ["ccid:testprovider.org:3001"]
    other_dob = api(
        server,
        "GET",
        "/learner-activities/status",
        params={"moduleID": "200930149", "UniqueID": "1000106", "CompletionDate": "2026-01-07", "BirthDate": "12-31"},
    )
    assert other_dob.status_code == 404 and other_dob.headers["Content-Type"] == "application/problem+json"
    # Sent again: the same codes and verbatim messages as SOAP, with 400 since nothing was stored.
    again = api(server, "POST", "/learner-activities", data=body)
    assert again.status_code == 400 and again.json()["ResultSummary"] == "Failure"
    assert json_results(again) == [(1, "Not processed", [(603, message(603)), (717, message(717))])]
    # Once the board has reviewed it, the delete sample removes it.
    assert requests.post(f"{server.base_url}/api/review/run", auth=AUTH, timeout=60).status_code == 200
    deleted = api(
        server, "POST", "/learner-activities", data=(SAMPLES / "SaveLearnerActivity-delete.json").read_bytes()
    )
    assert deleted.status_code == 201 and json_results(deleted) == [(1, "Deleted", [])]
    gone = api(server, "GET", "/learner-activities/status", params={"CreditId": "ccid:testprovider.org:3001"})
    assert [s["Status"] for s in gone.json()["LearnerStatus"]] == ["Deleted"]


def test_the_same_records_get_the_same_results_as_over_soap(server):
    records = [
        record("ccid:testprovider.org:twin-1", completed="2026-02-01T00:00:00"),
        record("ccid:testprovider.org:twin-2", dob="1900-12-31", completed="2026-02-02T00:00:00"),  # 664
        record("ccid:testprovider.org:twin-3", points="1.1", completed="2026-02-03T00:00:00"),  # 675
        record("ccid:testprovider.org:twin-4", action="update", completed="2026-02-04T00:00:00"),  # 602
        record("ccid:testprovider.org:twin-5", completed="13/45/2026", points="abc"),  # 671, 673 from the text
        record("", completed="2026-02-06T00:00:00", credit_types=("ABIM MOC Part II", "ABIM MOC Part II")),  # 650 678
    ]
    over_json = api(server, "POST", "/learner-activities", json=json_reports(records))
    assert over_json.status_code == 201 and over_json.json()["ResultSummary"] == "Partial success"
    twins = [
        dict(
            r,
            credit_id=r["credit_id"].replace("twin", "soap") if r["credit_id"] else "",
            completed=r["completed"].replace("2026-02", "2026-03"),
        )
        for r in records
    ]
    by_json, by_soap = json_results(over_json), soap_results(server, twins)
    assert by_json == by_soap
    assert [codes for _, _, codes in by_json][1:] == [
        [(664, message(664))],
        [(675, message(675))],
        [(602, message(602))],
        [(671, message(671)), (673, message(673))],
        [(650, message(650)), (678, message(678).replace("[Activity Certificate Name]", "ABIM MOC Part II"))],
    ]


@pytest.mark.parametrize(
    "body, pointer",
    [
        (b"{not json", ""),
        (b'{"ActivityReport": []}', ""),
        (
            json.dumps(
                {"ActivityReports": {"DateTimeCreated": "2026-06-01T12:00:00", "ActivityReport": [{"Bogus": 1}]}}
            ),
            "/ActivityReports/ActivityReport/0/Bogus",
        ),
        (
            json.dumps({"ActivityReports": {"DateTimeCreated": "yesterday", "ActivityReport": []}}),
            "/ActivityReports/DateTimeCreated",
        ),
        (
            json.dumps({"ActivityReports": {"DateTimeCreated": "2026-06-01T12:00:00", "ActivityReport": {}}}),
            "/ActivityReports/ActivityReport",
        ),
    ],
)
def test_a_body_that_is_not_the_document_is_a_problem_naming_where(server, body, pointer):
    r = api(server, "POST", "/learner-activities", data=body)
    assert r.status_code == 400 and r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["pointer"] == pointer and r.json()["status"] == 400 and r.json()["detail"]


def test_more_records_than_the_limit_or_a_body_too_large(server):
    report = json_reports([record("ccid:testprovider.org:many")])["ActivityReports"]
    report["ActivityReport"] = report["ActivityReport"] * 2501
    r = api(server, "POST", "/learner-activities", json={"ActivityReports": report})
    assert r.status_code == 400 and r.json()["detail"] == "At most 2,500 ActivityReport records may be sent at once."
    big = api(server, "POST", "/learner-activities", data=b" " * (8 * 1024 * 1024 + 1))
    assert big.status_code == 413 and big.headers["Content-Type"] == "application/problem+json"


def test_learner_match_and_activities(server):
    match = api(server, "POST", "/learner-match", data=(SAMPLES / "GetLearnerMatch.json").read_bytes())
    assert match.json() == {"Matched": True, "Errors": []}
    wrong = api(
        server,
        "POST",
        "/learner-match",
        json={**json.loads((SAMPLES / "GetLearnerMatch.json").read_text()), "LearnerID": "9999999"},
    )
    assert wrong.json() == {"Matched": False, "Errors": [{"Code": 661, "Message": message(661)}]}
    bad_dob = api(
        server, "POST", "/learner-match", json={"Board": "ABIM", "FirstName": "A", "LastName": "B", "DOB": "1900-03-01"}
    )
    assert bad_dob.status_code == 400 and bad_dob.json()["pointer"] == "/DOB"
    creds = api(server, "POST", "/learner-match", json={"User": "x", "Board": "ABIM"})
    assert creds.status_code == 400 and creds.json()["pointer"] == "/User"

    saved = api(server, "POST", "/activities", data=(SAMPLES / "SaveActivity.json").read_bytes())
    assert saved.status_code == 201, saved.text
    activity = saved.json()
    assert saved.headers["Location"] == f"/api/v1/activities/{activity['ActivityID']}"
    assert api(server, "GET", f"/activities/{activity['ActivityID']}").json() == activity
    assert activity["Registrations"]["Registration"][0] == {
        "Board": "ABIM",
        "MaxPoints": "12",
        "CreditTypes": {"CreditType": ["ABIM MOC Part II"]},
    }
    refused = api(
        server,
        "POST",
        "/activities",
        json={
            **activity,
            "Registrations": {
                "Registration": [{"Board": "ABIM", "MaxPoints": 1, "CreditTypes": {"CreditType": ["Bogus"]}}]
            },
        },
    )
    assert refused.status_code == 400 and refused.json()["errors"] == [{"Code": 676, "Message": message(676)}]
    missing = api(server, "GET", "/activities/200608133")
    assert missing.status_code == 404 and missing.json()["errors"] == [{"Code": 690, "Message": message(690)}]


def test_authentication_and_environments(server):
    for auth in (None, (SANDBOX_USER, "wrong"), ("nobody", SANDBOX_PASSWORD)):
        r = api(server, "GET", "/activities/200930149", auth=auth)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
        assert r.json() == {"error": "Authentication failed."}  # never which part
    run_cli(
        server.env,
        "credentials",
        "create",
        "--provider-id",
        PROVIDER_ID,
        "--environment",
        "production",
        "--username",
        "json-prod",
        "--password",
        "json-prod-password",
    )
    prod = ("json-prod", "json-prod-password")
    assert api(server, "GET", "/activities/200930149", auth=prod).status_code == 404  # a sandbox activity
    sandbox_record = {"CreditId": "ccid:testprovider.org:3001"}
    assert api(server, "GET", "/learner-activities/status", auth=prod, params=sandbox_record).status_code == 404


def test_the_openapi_document_and_its_page(server):
    document = requests.get(f"{server.base_url}/api/v1/openapi.json", timeout=30).json()
    assert document["openapi"].startswith("3.1")
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert operations == {"SaveLearnerActivity", "GetLearnerStatus", "GetLearnerMatch", "SaveActivity", "GetActivity"}
    page = requests.get(f"{server.base_url}/api/v1/docs", timeout=30)
    assert page.status_code == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.text and " style=" not in page.text
    for operation in operations:
        assert f'id="op-{operation}"' in page.text
    assert "ccid:testprovider.org:3001" in page.text  # the examples are shown


# -- the Excel learner template upload -------------------------------------------------------------------


def test_an_excel_upload_stores_each_board_and_its_error_report_downloads(server, tmp_path):
    bad = list(EXCEL_BOTH)
    bad[2], bad[10] = "01/09/2026", "9999999"  # MOC: 661; CME passes
    good = list(EXCEL_BOTH)
    good[2] = "01/08/2026"
    queued = post_file(server, "learners.xlsx", excel_workbook([good, bad]), "xlsx")
    assert queued.status_code == 202, queued.text
    batch = wait_finished(server, queued.json()["id"])
    assert (batch["status"], batch["records"], batch["processed"], batch["not_processed"]) == ("done", 4, 3, 1)
    stored = requests.get(server.base_url + batch["links"]["records"], auth=AUTH, timeout=30).json()["records"]
    assert [(r["board"], r["learner_id"], r["result"]) for r in stored] == [
        ("NC", "1679576722", "Accepted"),
        ("ABIM", "1000106", "Submitted"),
        ("NC", "1679576722", "Accepted"),
    ]
    workbook = requests.get(server.base_url + batch["links"]["errors_xlsx"], auth=AUTH, timeout=30)
    assert workbook.headers["Content-Disposition"] == 'attachment; filename="learners_errors.xlsx"'
    rows = list(openpyxl.load_workbook(io.BytesIO(workbook.content)).active.iter_rows(min_row=3, values_only=True))
    assert len(rows) == 1 and rows[0][6] is None and rows[0][9] == "ABIM" and rows[0][-2:] == ("661", message(661))
    as_csv = requests.get(server.base_url + batch["links"]["errors"], auth=AUTH, timeout=30)
    assert as_csv.headers["Content-Type"].startswith("text/csv") and message(661) in as_csv.content.decode("utf-8-sig")

    # Fixed and uploaded again with `pars-ws upload` (the type from the extension).
    fixed = openpyxl.load_workbook(io.BytesIO(workbook.content))
    fixed.active.cell(row=3, column=11, value="1000106")
    path = tmp_path / "learners_errors.xlsx"
    fixed.save(path)
    cli = subprocess.run(
        [PARS_WS, "upload", str(path)], env=cli_env(server), cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert cli.returncode == 0, cli.stderr
    assert re.search(r"batch \d+: done\. 1 records: 1 processed, 0 not processed\.", cli.stdout)


def test_a_hostile_workbook_is_refused_whole(server):
    data = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(excel_workbook([EXCEL_BOTH]))) as source, zipfile.ZipFile(data, "w") as target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        target.writestr("xl/externalLinks/externalLink1.xml", b"<externalLink/>")
    r = post_file(server, "linked.xlsx", data.getvalue(), "xlsx")
    assert r.status_code == 400 and r.json()["error"].startswith("THE WORKBOOK LINKS TO OTHER WORKBOOKS.")


def test_the_pages_offer_excel(server):
    session = requests.Session()
    login = session.get(f"{server.base_url}/login", timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    session.post(
        f"{server.base_url}/login",
        timeout=30,
        data={
            "csrf_token": token,
            "provider_id": PROVIDER_ID,
            "email": SANDBOX_WEB_EMAIL,
            "password": SANDBOX_WEB_PASSWORD,
        },
    )
    page = session.get(f"{server.base_url}/batches", timeout=30).text
    assert 'value="xlsx"' in page and ".xlsx" in page and "/batches/template.xlsx" in page
    template = session.get(f"{server.base_url}/batches/template.xlsx", timeout=30)
    sheet = openpyxl.load_workbook(io.BytesIO(template.content))["Sheet1"]
    assert sheet.cell(row=2, column=1).value == "Record Action" and sheet.data_validations.dataValidation

    # Uploaded through the page, a workbook with a row not processed offers its report as .xlsx and .csv.
    bad = list(EXCEL_BOTH)
    bad[2], bad[5] = "01/10/2026", "12/31"
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    sent = session.post(
        f"{server.base_url}/batches",
        timeout=60,
        allow_redirects=False,
        data={"csrf_token": token, "file_type": "xlsx"},
        files={"file": ("page.xlsx", excel_workbook([bad]))},
    )
    assert sent.status_code == 303, sent.text
    batch_id = int(re.search(r"batch=(\d+)", sent.headers["Location"]).group(1))
    wait_finished(server, batch_id)
    shown = session.get(f"{server.base_url}/batches?batch={batch_id}", timeout=30).text
    assert f"/batches/{batch_id}/errors.xlsx" in shown and f"/batches/{batch_id}/errors.csv" in shown
    report = session.get(f"{server.base_url}/batches/{batch_id}/errors.xlsx", timeout=30)
    rows = list(openpyxl.load_workbook(io.BytesIO(report.content)).active.iter_rows(min_row=3, values_only=True))
    assert rows[0][-2] == "664\n664"
