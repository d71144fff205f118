"""Sandbox fault injection (X-PARS-Sandbox-Fault) end to end against gunicorn, over SOAP (zeep and
raw requests) and /api/v1: a 998 fault, a late answer, a dropped connection with nothing stored,
records held Submitted past the board review's delay, and a production credential that gets normal
answers whatever it sends."""

from __future__ import annotations

import json
import time

import pytest
import requests
import zeep
from lxml import etree

from pars_ws.adapters.data_files import sandbox_fixture
from pars_ws.domain.errors import message
from pars_ws.service.faults import HEADER
from tests.conftest import PROVIDER_ID, SANDBOX_PASSWORD, SANDBOX_USER, run_cli, start_server, stop_server
from tests.support import json_reports, record, soap11_save, zeep_reports

pytestmark = pytest.mark.e2e

P = "urn:pars-ws:learner:v1"
AUTH = (SANDBOX_USER, SANDBOX_PASSWORD)
PRODUCTION = ("faults-production", "production-password")
MSG_998 = f"998 {message(998)}"
TRIGGERS = ("998", "drop", "delay=30", "hold=600", "nonsense")
REVIEW_DELAY = 1  # seconds: the sandbox's board review, short so that a hold is seen outlasting it
HOLD = 3  # seconds: past the review delay and the worker's poll, with room for a slow machine


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    srv = start_server(database_url, tmp_path_factory.mktemp("data"), PARS_REVIEW_DELAY_SECONDS=REVIEW_DELAY)
    yield srv
    stop_server(srv)


def soap(server, body: bytes, action: str, fault: str | None = None, timeout: float = 60) -> requests.Response:
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{P}/{action}"'}
    if fault is not None:
        headers[HEADER] = fault
    return requests.post(server.service_url, data=body, headers=headers, timeout=timeout)


def status_body(credit_id: str, user: str = SANDBOX_USER, password: str = SANDBOX_PASSWORD) -> bytes:
    return (
        f'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:p="{P}"><soap:Body>'
        f"<p:GetLearnerStatusByCreditId><p:ProviderId>{PROVIDER_ID}</p:ProviderId><p:User>{user}</p:User>"
        f"<p:Password>{password}</p:Password><p:CreditID>{credit_id}</p:CreditID>"
        "</p:GetLearnerStatusByCreditId></soap:Body></soap:Envelope>"
    ).encode()


def statuses(server, credit_id: str, account=AUTH) -> list[str]:
    doc = etree.fromstring(soap(server, status_body(credit_id, *account), "GetLearnerStatusByCreditId").content)
    return [s.text for s in doc.iterfind(f".//{{{P}}}LearnerStatus/{{{P}}}Status")]


def wait_for(check, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def summary(answer: requests.Response) -> str | None:
    return etree.fromstring(answer.content).findtext(f".//{{{P}}}ResultSummary")


def api(server, method: str, path: str, auth=AUTH, fault: str | None = None, **kwargs) -> requests.Response:
    headers = {HEADER: fault} if fault is not None else {}
    return requests.request(method, f"{server.base_url}/api/v1{path}", auth=auth, headers=headers, timeout=60, **kwargs)


def test_998_arrives_as_a_soap_fault_and_nothing_is_stored(server, credentials):
    client = zeep.Client(server.wsdl_url)
    rec = record("ccid:testprovider.org:fault-998", completed="2026-02-10T00:00:00")
    with client.settings(extra_http_headers={HEADER: "998"}), pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.SaveLearnerActivity(**credentials, ActivityReports=zeep_reports([rec]))
    assert caught.value.message.startswith(MSG_998), caught.value.message
    assert statuses(server, rec["credit_id"]) == []
    with client.settings(extra_http_headers={HEADER: "998"}), pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.GetLearnerStatusByCreditId(**credentials, CreditID=rec["credit_id"])
    assert caught.value.message.startswith(MSG_998)
    # The same request without the header is saved.
    result = client.service.SaveLearnerActivity(**credentials, ActivityReports=zeep_reports([rec]))
    assert result.ResultSummary == "Success"


def test_998_over_json(server):
    rec = record("ccid:testprovider.org:fault-998-json", completed="2026-02-11T00:00:00")
    answer = api(server, "POST", "/learner-activities", fault="998", json=json_reports([rec]))
    assert answer.status_code == 500 and answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["errors"] == [{"Code": 998, "Message": message(998)}]
    assert api(server, "GET", "/learner-activities/status", params={"CreditId": rec["credit_id"]}).status_code == 404
    document = requests.get(f"{server.base_url}/api/v1/openapi.json", timeout=30).json()  # every operation says so
    assert {
        op["operationId"]: op["responses"]["500"]["$ref"] for path in document["paths"].values() for op in path.values()
    } == dict.fromkeys(
        ("SaveLearnerActivity", "GetLearnerStatus", "GetLearnerMatch", "SaveActivity", "GetActivity"),
        "#/components/responses/SandboxFault",
    )


def test_delay_is_honoured(server):
    rec = record("ccid:testprovider.org:fault-delay", completed="2026-02-12T00:00:00")
    started = time.monotonic()
    answer = soap(server, soap11_save([rec]), "SaveLearnerActivity", fault="delay=1")
    assert time.monotonic() - started >= 1
    assert answer.status_code == 200 and summary(answer) == "Success"
    started = time.monotonic()
    answer = api(server, "GET", "/learner-activities/status", fault="delay=1", params={"CreditId": rec["credit_id"]})
    assert time.monotonic() - started >= 1
    assert answer.status_code == 200 and answer.json()["LearnerStatus"][0]["CreditID"] == rec["credit_id"]


def test_drop_gives_a_connection_error_and_stores_nothing(server):
    """Drop happens before anything is stored: a retry of the same request is safe."""
    rec = record("ccid:testprovider.org:fault-drop", completed="2026-02-13T00:00:00")
    with pytest.raises(requests.ConnectionError):
        soap(server, soap11_save([rec]), "SaveLearnerActivity", fault="drop")
    assert statuses(server, rec["credit_id"]) == []
    retried = soap(server, soap11_save([rec]), "SaveLearnerActivity")
    assert summary(retried) == "Success"
    assert len(statuses(server, rec["credit_id"])) == 1  # stored once (Submitted, or reviewed already)
    json_rec = record("ccid:testprovider.org:fault-drop-json", completed="2026-02-14T00:00:00")
    with pytest.raises(requests.ConnectionError):
        api(server, "POST", "/learner-activities", fault="drop", json=json_reports([json_rec]))
    assert statuses(server, json_rec["credit_id"]) == []
    assert api(server, "POST", "/learner-activities", json=json_reports([json_rec])).status_code == 201


def test_hold_keeps_saved_records_submitted_until_it_ends(server):
    """hold=N outlasts the review delay (a record saved without it is reviewed meanwhile), an
    on-demand review too; once it ends the board review takes the held records as usual."""
    held, held_json, plain = (
        record(f"ccid:testprovider.org:fault-hold-{name}", completed=f"2026-02-{day}T00:00:00")
        for name, day in (("soap", 16), ("json", 17), ("plain", 18))
    )

    def json_status(rec) -> list[str]:
        answer = api(server, "GET", "/learner-activities/status", params={"CreditId": rec["credit_id"]})
        return [s["Status"] for s in answer.json()["LearnerStatus"]]

    saved_at = time.monotonic()
    assert summary(soap(server, soap11_save([held]), "SaveLearnerActivity", fault=f"hold={HOLD}")) == "Success"
    assert (
        api(server, "POST", "/learner-activities", fault=f"hold={HOLD}", json=json_reports([held_json])).status_code
        == 201
    )
    assert summary(soap(server, soap11_save([plain]), "SaveLearnerActivity")) == "Success"
    assert wait_for(lambda: statuses(server, plain["credit_id"]) == ["Accepted"])
    run = requests.post(f"{server.base_url}/api/review/run", auth=AUTH, timeout=60)
    assert run.status_code == 200
    assert statuses(server, held["credit_id"]) == ["Submitted"] and json_status(held_json) == ["Submitted"]
    assert time.monotonic() - saved_at < HOLD, "too slow to tell a hold from a late review"
    assert wait_for(
        lambda: statuses(server, held["credit_id"]) == ["Accepted"] and json_status(held_json) == ["Accepted"]
    )
    assert time.monotonic() - saved_at >= HOLD


def test_an_unreadable_fault_is_told_in_the_sandbox(server):
    answer = soap(server, status_body("ccid:testprovider.org:x"), "GetLearnerStatusByCreditId", fault="sometimes")
    assert answer.status_code == 500 and b"Client.InvalidRequest" in answer.content
    assert f"{HEADER} takes one of".encode() in answer.content
    assert api(server, "GET", "/activities/200930149", fault="delay=31").status_code == 400
    assert api(server, "GET", "/activities/200930149", fault="hold=86401").status_code == 400
    assert api(server, "GET", "/activities/200930149", fault="hold=86400").status_code == 200


def test_a_production_credential_gets_normal_answers_whatever_it_sends(server, tmp_path):
    run_cli(
        server.env,
        "credentials",
        "create",
        "--provider-id",
        PROVIDER_ID,
        "--environment",
        "production",
        "--username",
        PRODUCTION[0],
        "--password",
        PRODUCTION[1],
    )
    rec = record("ccid:testprovider.org:fault-production", completed="2026-02-15T00:00:00")
    for trigger in TRIGGERS:
        started = time.monotonic()
        saved = soap(
            server, soap11_save([rec], user=PRODUCTION[0], password=PRODUCTION[1]), "SaveLearnerActivity", fault=trigger
        )
        assert saved.status_code == 200 and b"SaveLearnerActivityResponse" in saved.content, trigger
        status = soap(server, status_body(rec["credit_id"], *PRODUCTION), "GetLearnerStatusByCreditId", fault=trigger)
        assert status.status_code == 200 and b"GetLearnerStatusByCreditIdResponse" in status.content, trigger
        answers = [
            api(server, "POST", "/learner-activities", auth=PRODUCTION, fault=trigger, json=json_reports([rec])),
            api(
                server,
                "GET",
                "/learner-activities/status",
                auth=PRODUCTION,
                fault=trigger,
                params={"CreditId": rec["credit_id"]},
            ),
            api(
                server,
                "POST",
                "/learner-match",
                auth=PRODUCTION,
                fault=trigger,
                json={
                    "Board": "ABIM",
                    "LearnerID": "1000106",
                    "FirstName": "Test2",
                    "LastName": "Account2",
                    "DOB": "03/01",
                },
            ),
            api(server, "GET", "/activities/200930149", auth=PRODUCTION, fault=trigger),
        ]
        assert [a.status_code for a in answers] == [400, 404, 200, 404], trigger
        assert all(a.json().get("errors") != [{"Code": 998, "Message": message(998)}] for a in answers)
        assert time.monotonic() - started < 10, trigger  # no delay honoured
    # Nor a hold: the operator's review of production takes the record at once (its activity and
    # learner registered there first: production has none).
    fixture = sandbox_fixture()
    for kind, rows in (
        ("activities", [a for a in fixture["activities"] if a["activity_id"] == "200930149"]),
        ("registry", [d for d in fixture["registry"] if d["board"] == "ABIM"]),
    ):
        (tmp_path / f"{kind}.json").write_text(json.dumps(rows))
        run_cli(
            server.env,
            kind,
            "import",
            str(tmp_path / f"{kind}.json"),
            "--environment",
            "production",
            *(["--provider-id", PROVIDER_ID] if kind == "activities" else []),
        )
    held = record("ccid:testprovider.org:fault-production-hold", completed="2026-02-19T00:00:00")
    saved = soap(
        server, soap11_save([held], user=PRODUCTION[0], password=PRODUCTION[1]), "SaveLearnerActivity", fault="hold=600"
    )
    assert summary(saved) == "Success"
    run_cli(server.env, "review", "run", "--environment", "production")
    assert statuses(server, held["credit_id"], PRODUCTION) == ["Accepted"]
