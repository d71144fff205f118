"""Interop, Python: zeep 4 (strict settings, as shipped) builds its client from the live WSDL without
naming a port, saves and reads back a record and meets a wrong password and a schema-invalid request
as zeep.exceptions.Fault (code, SOAP 1.2 subcodes, message), over SOAP 1.1 and 1.2."""

from __future__ import annotations

import datetime as dt

import pytest
import zeep
from lxml import etree
from zeep.exceptions import Fault

from tests.interop.stacks import CREDENTIALS, FAULT_TEXTS, record_for, wsdl_url
from tests.support import record, zeep_reports

pytestmark = pytest.mark.e2e

P = "urn:pars-ws:learner:v1"


@pytest.mark.parametrize("soap12", [False, True], ids=["soap11", "soap12"])
def test_zeep_client_from_the_wsdl(server, soap12):
    client = zeep.Client(wsdl_url(server, soap12))
    provider, user, password = CREDENTIALS
    creds = {"ProviderId": provider, "User": user, "Password": password}
    mine = record_for("zeep", soap12)
    sent = record(mine.credit_id, completed=mine.completed, points="1")
    saved = client.service.SaveLearnerActivity(**creds, ActivityReports=zeep_reports([sent]))
    result = saved.Results.RecordResult[0]
    assert (saved.ResultSummary, result.CreditID, result.Status) == ("Success", mine.credit_id, "Submitted")
    [status] = client.service.GetLearnerStatusByCreditId(**creds, CreditID=mine.credit_id)
    assert status.Status in ("Submitted", "Accepted")
    assert status.CompletionDate == dt.date.fromisoformat(mine.completed[:10])

    for step, changes, code in (
        ("wrong-password", {"Password": "not-" + password}, "Authentication"),
        ("schema-invalid", {"ProviderId": "9" * 51}, "InvalidRequest"),
    ):
        with pytest.raises(Fault) as raised:
            client.service.GetLearnerStatusByCreditId(**{**creds, **changes}, CreditID=mine.credit_id)
        fault = raised.value
        assert fault.message.startswith(FAULT_TEXTS[step])
        if soap12:
            assert fault.code.endswith(":Sender") and fault.subcodes == [etree.QName(P, code)]
        else:
            assert fault.code.endswith(":Client." + code)
