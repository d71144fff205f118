"""Interop, Python: suds (suds-community 1.2) builds its client from the live WSDL without naming a
port, saves and reads back a record and meets a wrong password and a schema-invalid request as
suds.WebFault (faultcode, faultstring). suds speaks SOAP 1.1 only: given the SOAP 1.2 endpoint's
WSDL it still sends SOAP 1.1, and the fault it reads says where to post instead."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.interop.stacks import CREDENTIALS, FAULT_TEXTS, record_for, wsdl_url

pytestmark = pytest.mark.e2e

AR = "http://ns.medbiq.org/activityreport/v1/"
M = "http://ns.medbiq.org/member/v1/"
EX = "urn:pars-ws:activityreport-extension:v1"


def suds_client(url: str):
    try:
        from suds.client import Client
    except ImportError:
        pytest.fail("suds not found: pip install suds-community (in the test extra)", pytrace=False)
    return Client(url, cache=None)


def activity_reports(client, credit_id: str, completed: str):
    from suds.sax.text import Raw

    new = client.factory.create
    report = new(f"{{{AR}}}ParsActivityReport")
    report.ReportingOrganization = "Test Provider"
    learner = new(f"{{{M}}}ParsUniqueID")
    learner.value, learner._domain = "1000106", "ABIM"
    report.Member.UniqueID = [learner]
    report.Member.Name = new("{http://ns.medbiq.org/name/v1/}ParsName")
    report.Member.Name.GivenName, report.Member.Name.FamilyName = "Test2", "Account2"
    report.Member.PersonalInfo = new(f"{{{M}}}ParsPersonalInfo")
    report.Member.PersonalInfo.BirthDate = dt.date(1900, 3, 1)
    activity = report.Activity
    activity.ProviderOrganization = activity.ActivityName = "An Other is an Other"
    activity.Module.ModuleName.value, activity.Module.ModuleName._moduleID = "An Other is an Other", "200930149"
    activity.Module.Status = "Completed"
    activity.Module.CompletedDateTime = dt.datetime.fromisoformat(completed)
    certificate = new(f"{{{AR}}}ParsCreditCertificate")
    received = certificate.CreditReceived
    received.accreditingBody, received.activityCertification = "ABIM", "ABIM MOC Part II"
    received.creditUnit, received.numberOfCredits = "Point", "1"
    certificate.CreditID = credit_id
    activity.Module.CreditCertificate = [certificate]
    # ar:XtensibleInfo is xs:any: suds writes a Raw value as it stands.
    report.XtensibleInfo = Raw(f'<ex:learnerRecordAction xmlns:ex="{EX}">add</ex:learnerRecordAction>')
    reports = new(f"{{{AR}}}ActivityReports")
    reports.DateTimeCreated = dt.datetime(2026, 6, 1, 12)
    reports.ActivityReport = [report]
    return reports


def test_suds_client_from_the_wsdl(server):
    client = suds_client(wsdl_url(server, soap12=False))
    from suds import WebFault

    provider, user, password = CREDENTIALS
    creds = {"ProviderId": provider, "User": user, "Password": password}
    mine = record_for("suds", soap12=False)
    saved = client.service.SaveLearnerActivity(
        ActivityReports=activity_reports(client, mine.credit_id, mine.completed), **creds
    )
    result = saved.Results.RecordResult[0]
    assert (saved.ResultSummary, result.CreditID, result.Status) == ("Success", mine.credit_id, "Submitted")
    [status] = client.service.GetLearnerStatusByCreditId(CreditID=mine.credit_id, **creds)
    assert status.CreditID == mine.credit_id and status.Status in ("Submitted", "Accepted")

    for step, changes, code in (
        ("wrong-password", {"Password": "not-" + password}, "Authentication"),
        ("schema-invalid", {"ProviderId": "9" * 51}, "InvalidRequest"),
    ):
        with pytest.raises(WebFault) as raised:
            client.service.GetLearnerStatusByCreditId(CreditID=mine.credit_id, **{**creds, **changes})
        fault = raised.value.fault
        assert fault.faultcode == "soap11env:Client." + code
        assert fault.faultstring.startswith(FAULT_TEXTS[step])


def test_suds_given_the_soap12_wsdl_is_told_to_use_the_soap11_endpoint(server):
    client = suds_client(wsdl_url(server, soap12=True))
    from suds import WebFault

    provider, user, password = CREDENTIALS
    with pytest.raises(WebFault) as raised:
        client.service.GetLearnerStatusByCreditId(ProviderId=provider, User=user, Password=password, CreditID="x")
    assert raised.value.fault.faultcode == "soap11env:VersionMismatch"
    assert "post it to the SOAP 1.1 endpoint" in raised.value.fault.faultstring
