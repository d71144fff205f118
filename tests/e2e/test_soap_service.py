"""The SOAP service end to end: gunicorn on loopback, zeep with default (strict) settings."""

from __future__ import annotations

import datetime as dt
import re
import socket
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import zeep
from lxml import etree
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

from tests.conftest import PROVIDER_ID, SANDBOX_PASSWORD, SANDBOX_USER, run_cli
from tests.support import codes, record, soap11_save, zeep_reports

pytestmark = pytest.mark.e2e


def save(client, creds, records):
    return client.service.SaveLearnerActivity(**creds, ActivityReports=zeep_reports(records))


def test_add_read_delete_and_duplicate(client, credentials):
    cid = "ccid:testprovider.org:e2e-1"
    added = save(client, credentials, [record(cid)])
    assert added.ResultSummary == "Success"
    result = added.Results.RecordResult[0]
    assert (result.Index, result.CreditID, result.Action, result.Status) == (1, cid, "Add", "Submitted")
    assert codes(result) == []

    status = client.service.GetLearnerStatusByCreditId(**credentials, CreditID=cid)
    assert len(status) == 1
    st = status[0]
    assert (st.CreditID, st.ActivityID, st.Board, st.LearnerID) == (cid, "200930149", "ABIM", "1000106")
    assert (st.CompletionDate, st.Credits, st.Status) == (dt.date(2026, 1, 5), Decimal("3.5"), "Submitted")

    by_learner = client.service.GetLearnerStatusByLearner(
        **credentials, ActivityID="200930149", LearnerID="1000106", CompletionDate=dt.date(2026, 1, 5)
    )
    assert [s.CreditID for s in by_learner] == [cid]

    again = save(client, credentials, [record(cid, completed="2026-01-06T00:00:00")])
    assert again.ResultSummary == "Failure"
    assert codes(again.Results.RecordResult[0]) == [603]
    assert (
        again.Results.RecordResult[0].Errors.Error[0].Message
        == "Duplicate record (Credit ID was same as a previous record)."
    )

    # ABO records are Accepted at once, so they can be deleted straight away.
    abo = "ccid:testprovider.org:e2e-abo"
    abo_record = record(
        abo,
        board="ABO",
        id_type="ABO",
        activity_id="200931446",
        learner_id="98989",
        first="Vincent",
        last="Van Gogh",
        dob="1900-03-30",
        credit_types=("ABO MOC Part II",),
        points="0.25",
    )
    assert save(client, credentials, [abo_record]).Results.RecordResult[0].Status == "Accepted"
    assert codes(save(client, credentials, [abo_record]).Results.RecordResult[0]) == [603]
    deleted = save(client, credentials, [dict(abo_record, action="delete")])
    assert deleted.Results.RecordResult[0].Status == "Deleted"
    assert [s.Status for s in client.service.GetLearnerStatusByCreditId(**credentials, CreditID=abo)] == ["Deleted"]
    # A deleted record's CreditID may be added again.
    assert save(client, credentials, [abo_record]).Results.RecordResult[0].Status == "Accepted"


def test_one_record_failing_never_changes_another(client, credentials):
    records = [
        record("ccid:testprovider.org:mix-1", completed="2026-02-01T00:00:00"),
        record("ccid:testprovider.org:mix-2", learner_id="0000000"),  # 661
        record("ccid:testprovider.org:mix-3", action="update"),  # 602
        record(
            "ccid:testprovider.org:mix-4",
            completed="2026-02-02T00:00:00",
            learner_id="1000107",
            first="Test3",
            last="Account3",
            dob="1900-04-01",
        ),
    ]
    response = save(client, credentials, records)
    assert response.ResultSummary == "Partial success"
    got = [(r.Index, r.Status, codes(r)) for r in response.Results.RecordResult]
    assert got == [(1, "Submitted", []), (2, "Not processed", [661]), (3, "Not processed", [602]), (4, "Submitted", [])]


def test_bad_field_types_are_per_record_errors(server, credentials):
    """A bad date or non-numeric points is that record's error (671, 673), not a fault for the request."""
    body = soap11_save(
        [
            record("ccid:testprovider.org:type-1", completed="2026-13-45T00:00:00"),
            record("ccid:testprovider.org:type-2", points="lots", completed="2026-02-03T00:00:00"),
            record("ccid:testprovider.org:type-3", completed="2026-02-04T00:00:00"),
        ]
    )
    r = requests.post(
        server.service_url,
        data=body,
        headers={
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": '"urn:pars-ws:learner:v1/SaveLearnerActivity"',
        },
    )
    assert r.status_code == 200, r.text
    doc = etree.fromstring(r.content)
    ns = {"p": "urn:pars-ws:learner:v1"}
    results = [
        (
            int(x.findtext("p:Index", namespaces=ns)),
            x.findtext("p:Status", namespaces=ns),
            [int(c) for c in x.xpath("p:Errors/p:Error/p:Code/text()", namespaces=ns)],
        )
        for x in doc.iterfind(".//p:RecordResult", ns)
    ]
    assert results == [(1, "Not processed", [671]), (2, "Not processed", [673]), (3, "Submitted", [])]


def test_non_conforming_document_is_a_client_fault_naming_line_and_path(server):
    body = soap11_save([record("ccid:testprovider.org:bad")]).replace(b"<ar:Status>", b"<ar:Bogus/><ar:Status>")
    r = requests.post(server.service_url, data=body, headers={"Content-Type": "text/xml; charset=utf-8"})
    assert r.status_code == 500  # WS-I Basic Profile R1126: a SOAP 1.1 fault travels on HTTP 500
    fault = etree.fromstring(r.content).find(".//{http://schemas.xmlsoap.org/soap/envelope/}Fault")
    assert fault.findtext("faultcode").endswith("Client.InvalidRequest")
    text = fault.findtext("faultstring")
    assert re.search(r"line \d+", text) and "ActivityReport" in text and "Bogus" in text
    correlation_id = fault.findtext("detail/{urn:pars-ws:learner:v1}CorrelationID")
    assert correlation_id and text.endswith(f"(correlation ID {correlation_id})")


def test_bad_credentials_fault_says_nothing_specific(client, credentials):
    for creds in (
        {**credentials, "Password": "wrong"},
        {**credentials, "User": "nobody"},
        {**credentials, "ProviderId": "7654321"},
    ):
        with pytest.raises(Fault) as exc:
            client.service.GetLearnerStatusByCreditId(**creds, CreditID="x")
        assert exc.value.code.endswith("Client.Authentication")
        assert exc.value.message.startswith("Authentication failed.")
        assert exc.value.detail.findtext("{urn:pars-ws:learner:v1}CorrelationID") in exc.value.message


def test_ws_security_username_token(server, credentials):
    secured = zeep.Client(server.wsdl_url, wsse=UsernameToken(SANDBOX_USER, SANDBOX_PASSWORD))
    found = secured.service.GetActivity(ProviderId=PROVIDER_ID, ActivityID="200930149")
    assert found.Title == "An Other is an Other"
    # Nonce + Created (zeep's use_digest sends them) is PasswordDigest: refused with a clear fault.
    digest = zeep.Client(server.wsdl_url, wsse=UsernameToken(SANDBOX_USER, SANDBOX_PASSWORD, use_digest=True))
    with pytest.raises(Fault) as exc:
        digest.service.GetActivity(ActivityID="200930149")
    assert "PasswordDigest" in exc.value.message


def test_learner_match(client, credentials):
    ok = client.service.GetLearnerMatch(
        **credentials,
        Board="ABIM",
        LearnerIDType="ABIM",
        LearnerID="1000106",
        FirstName="test2",
        LastName=" ACCOUNT2 ",
        DOB="03/01",
    )
    assert ok.Matched is True and codes(ok) == []
    bad = client.service.GetLearnerMatch(
        **credentials,
        Board="ABIM",
        LearnerIDType="ABIM",
        LearnerID="1000106",
        FirstName="Test2",
        LastName="Account2",
        DOB="04/01",
    )
    assert bad.Matched is False and codes(bad) == [664]
    ambiguous = client.service.GetLearnerMatch(
        **credentials, Board="ABS", FirstName="John", LastName="Smith", DOB="01/15"
    )
    assert codes(ambiguous) == [718]


def test_save_and_get_activity(client, credentials):
    activity = {
        "ProviderActivityID": "NEW-1",
        "Title": "Grand Rounds",
        "ActivityType": "Course",
        "StartDate": dt.date(2026, 1, 1),
        "EndDate": dt.date(2026, 12, 31),
        "Credits": Decimal("10"),
        "Registrations": {
            "Registration": [
                {"Board": "ABIM", "MaxPoints": Decimal("10"), "CreditTypes": {"CreditType": ["ABIM MOC Part II"]}}
            ]
        },
    }
    saved = client.service.SaveActivity(**credentials, Activity=activity)
    assert re.fullmatch(r"\d{9}", saved.ActivityID)
    got = client.service.GetActivity(**credentials, ActivityID=saved.ActivityID)
    assert got.Title == "Grand Rounds" and got.Registrations.Registration[0].Board == "ABIM"
    assert got.Registrations.Registration[0].CreditTypes.CreditType == ["ABIM MOC Part II"]
    # and records can be reported for it at once
    result = save(
        client, credentials, [record("ccid:testprovider.org:new-act", activity_id=saved.ActivityID, points="2")]
    ).Results.RecordResult[0]
    assert result.Status == "Submitted", codes(result)


def test_soap12_endpoint_with_its_own_wsdl(server, credentials):
    """The 1.2 endpoint's WSDL names its port alone: a client that does not name a port speaks 1.2.
    Faults per the SOAP 1.2 HTTP binding, the subcode a QName in the service namespace."""
    client12 = zeep.Client(server.service_url + "/soap12?wsdl")
    got = client12.service.GetActivity(**credentials, ActivityID="200930149")
    assert got.ActivityID == "200930149"
    with pytest.raises(Fault) as exc:
        client12.service.GetActivity(**{**credentials, "Password": "nope"}, ActivityID="200930149")
    assert exc.value.code.endswith(":Sender")
    assert exc.value.subcodes == [etree.QName("urn:pars-ws:learner:v1", "Authentication")]
    assert exc.value.message.startswith("Authentication failed.")
    response = requests.post(
        server.service_url + "/soap12",
        data=b"<not-xml",
        timeout=30,
        headers={"Content-Type": "application/soap+xml; charset=utf-8"},
    )
    assert response.status_code == 400 and b"Sender" in response.content


@pytest.mark.parametrize("path, binding", [("", "soap"), ("/soap12", "soap12")])
def test_each_endpoint_serves_a_wsdl_with_its_port_alone_that_zeep_loads_strictly(server, path, binding):
    url = server.service_url + path
    client = zeep.Client(url + "?wsdl", settings=zeep.Settings(strict=True))
    (service,) = client.wsdl.services.values()
    (port,) = service.ports.values()
    assert port.binding_options["address"] == url
    assert type(port.binding).__name__ == ("Soap11Binding" if binding == "soap" else "Soap12Binding")
    assert "ActivityReports: " in port.binding._operations["SaveLearnerActivity"].input.signature()
    served = etree.fromstring(requests.get(url + "?wsdl", timeout=30).content)
    imports = served.xpath("//xs:import/@schemaLocation", namespaces={"xs": "http://www.w3.org/2001/XMLSchema"})
    assert imports and all(location.startswith(server.base_url + "/schemas/") for location in imports)
    for location in imports:
        assert requests.get(location, timeout=30).status_code == 200
    assert requests.get(server.base_url + "/schemas/../pyproject.toml").status_code == 404


def test_a_hostile_host_header_never_breaks_the_wsdl_gunicorn_serves(server):
    """gunicorn hands the Host header over as sent: the WSDL must stay well-formed and not use it."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b'GET /services/ACCMELearnerService.svc/soap12?wsdl HTTP/1.1\r\nHost: evil"/><x:y a="\r\n'
            b"Connection: close\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    doc = etree.fromstring(body)
    [address] = doc.xpath("//*[local-name()='address']/@location")
    assert address == server.service_url + "/soap12"  # gunicorn names the address it listens on


def test_sandbox_credentials_never_see_production(server, client, credentials):
    run_cli(
        server.env,
        "credentials",
        "create",
        "--provider-id",
        PROVIDER_ID,
        "--environment",
        "production",
        "--username",
        "prod-user",
        "--password",
        "prod-password",
    )
    prod = {"ProviderId": PROVIDER_ID, "User": "prod-user", "Password": "prod-password"}
    # Production has no activities yet: the sandbox's 200930149 does not exist there.
    with pytest.raises(Fault):
        client.service.GetActivity(**prod, ActivityID="200930149")
    activity = {
        "ActivityID": "300000001",
        "Title": "Production only",
        "ActivityType": "Course",
        "StartDate": dt.date(2026, 1, 1),
        "EndDate": dt.date(2026, 12, 31),
        "Credits": Decimal("5"),
        "Registrations": {
            "Registration": [
                {"Board": "ABO", "MaxPoints": Decimal("5"), "CreditTypes": {"CreditType": ["ABO MOC Part II"]}}
            ]
        },
    }
    client.service.SaveActivity(**prod, Activity=activity)
    run_cli(server.env, "registry", "import", "--environment", "production", str(_prod_registry(server)))
    cid = "ccid:testprovider.org:prod-1"
    prod_record = record(
        cid,
        board="ABO",
        id_type="ABO",
        activity_id="300000001",
        learner_id="P1",
        first="Prod",
        last="Learner",
        dob="1900-02-02",
        credit_types=("ABO MOC Part II",),
        points="1",
    )
    result = save(client, prod, [prod_record]).Results.RecordResult[0]
    assert result.Status == "Accepted", codes(result)
    # The sandbox credential sees neither the production activity nor its record...
    with pytest.raises(Fault):
        client.service.GetActivity(**credentials, ActivityID="300000001")
    assert client.service.GetLearnerStatusByCreditId(**credentials, CreditID=cid) == []
    assert codes(save(client, credentials, [prod_record]).Results.RecordResult[0]) == [661, 690]
    # ...and the same CreditID is free in the sandbox: environments never share rows.
    assert len(client.service.GetLearnerStatusByCreditId(**prod, CreditID=cid)) == 1


def _prod_registry(server) -> Path:
    path = server.data_dir / "prod-registry.json"
    path.write_text(
        '[{"board": "ABO", "learner_id": "P1", "first_name": "Prod", "last_name": "Learner", "dob": "02/02"}]'
    )
    return path


def test_comments_around_the_operation_element_are_ignored(server):
    body = (
        soap11_save([record("ccid:testprovider.org:commented", completed="2026-03-17T00:00:00")])
        .replace(b"<soap:Body>", b"<soap:Body><!-- sent by an LMS --> ")
        .replace(b"</soap:Body>", b"<!-- end --></soap:Body>")
    )
    r = requests.post(server.service_url, data=body, headers={"Content-Type": "text/xml; charset=utf-8"})
    assert r.status_code == 200, r.text
    assert b"<tns:ResultSummary>Success</tns:ResultSummary>" in r.content


def test_a_fault_sent_as_a_request_is_a_client_fault(server):
    body = (
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>'
        b"<faultcode>soap:Server</faultcode><faultstring>x</faultstring></soap:Fault></soap:Body></soap:Envelope>"
    )
    r = requests.post(server.service_url, data=body, headers={"Content-Type": "text/xml; charset=utf-8"})
    assert r.status_code == 500
    fault = etree.fromstring(r.content).find(".//{http://schemas.xmlsoap.org/soap/envelope/}Fault")
    assert fault.findtext("faultcode").endswith("Client.InvalidRequest")
    assert fault.findtext("faultstring").startswith("A SOAP Fault is not a request.")
