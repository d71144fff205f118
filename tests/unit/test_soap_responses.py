"""The SOAP endpoints in this process (no gunicorn): fault shapes and HTTP statuses for both SOAP
versions, a call run again after a transient database conflict, and the WSDL each endpoint serves
whatever the Host header says."""

from __future__ import annotations

import io
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from sqlalchemy.exc import OperationalError

from pars_ws.entrypoints.wsgi import SERVICE_PATH, SOAP12_PATH, create_app, valid_host
from tests.conftest import SANDBOX_PASSWORD, SANDBOX_USER, make_services
from tests.fuzz.wire import SOAP12, fault_of, to_soap12, wsse_header
from tests.support import P, record, soap11_save

WSDL = "http://schemas.xmlsoap.org/wsdl/"


@pytest.fixture(scope="module")
def app(services):
    return create_app(services)


class Answer:
    def __init__(self, status: str, headers: list, body: bytes):
        self.status_code, self.headers, self.content = int(status[:3]), dict(headers), body


def call(
    app,
    body: bytes = b"",
    path: str = SERVICE_PATH,
    method: str = "POST",
    query: str = "",
    host: str | None = "127.0.0.1",
    **extra,
) -> Answer:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "wsgi.url_scheme": "http",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/soap+xml" if path == SOAP12_PATH else "text/xml; charset=utf-8",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        **extra,
    }
    if host is not None:
        environ["HTTP_HOST"] = host
    seen = []
    out = app(environ, lambda status, headers, exc_info=None: seen.append((status, headers)))
    content = b"".join(out)
    if hasattr(out, "close"):
        out.close()
    return Answer(*seen[0], content)


# -- faults -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("soap12", [False, True])
@pytest.mark.parametrize(
    "case, code",
    [
        ("wrong password", "Client.Authentication"),
        ("not schema-valid", "Client.InvalidRequest"),
        ("a DOCTYPE", "Client.Limit"),
    ],
)
def test_client_faults_travel_on_the_status_each_soap_version_prescribes(app, soap12, case, code):
    body = soap11_save([record("ccid:t:fault")], password="wrong" if case == "wrong password" else SANDBOX_PASSWORD)
    if case == "not schema-valid":
        body = body.replace(b"<p:ProviderId>1234567", b"<p:ProviderId>" + b"9" * 51)
    if case == "a DOCTYPE":
        body = body.replace(b"?>", b"?><!DOCTYPE x>", 1)
    answer = call(app, to_soap12(body) if soap12 else body, SOAP12_PATH if soap12 else SERVICE_PATH)
    fault = fault_of(answer)
    # WS-I Basic Profile R1126 (SOAP 1.1: 500); SOAP 1.2's HTTP binding (Sender: 400).
    assert answer.status_code == (400 if soap12 else 500)
    assert fault.code == code and fault.soap12 == soap12
    assert fault.correlation_id and fault.text.endswith(f"(correlation ID {fault.correlation_id})")


def test_soap12_subcodes_are_qnames_in_the_service_namespace(app):
    answer = call(app, to_soap12(soap11_save([record("ccid:t:q")], password="wrong")), SOAP12_PATH)
    value = etree.fromstring(answer.content).find(f".//{{{SOAP12}}}Subcode/{{{SOAP12}}}Value")
    prefix, _, local = value.text.partition(":")
    assert (value.nsmap.get(prefix), local) == (P, "Authentication")


@pytest.mark.parametrize("soap12", [False, True])
def test_a_server_fault_hides_its_cause_and_is_a_receiver_fault(app, services, monkeypatch, soap12):
    monkeypatch.setattr(type(services.learners), "save_signed_in", lambda *a, **k: 1 / 0)
    body = soap11_save([record("ccid:t:server")])
    answer = call(app, to_soap12(body) if soap12 else body, SOAP12_PATH if soap12 else SERVICE_PATH)
    fault = fault_of(answer)
    assert answer.status_code == 500 and fault.code == "Server"
    assert fault.text.startswith("Internal error while processing the request.") and "ZeroDivision" not in fault.text
    assert fault.correlation_id in fault.text


@pytest.mark.parametrize("soap12", [False, True])
def test_an_error_that_escapes_spyne_is_still_a_server_fault(app, monkeypatch, soap12):
    def broken(environ, start_response):
        raise RuntimeError("a bug")

    monkeypatch.setattr(app, "soap12" if soap12 else "soap11", broken)
    body = soap11_save([record("ccid:t:escaped")])
    answer = call(app, to_soap12(body) if soap12 else body, SOAP12_PATH if soap12 else SERVICE_PATH)
    fault = fault_of(answer)
    assert answer.status_code == 500 and fault.code == "Server" and fault.soap12 == soap12
    assert "a bug" not in fault.text and fault.correlation_id in fault.text


@pytest.mark.parametrize("soap12", [False, True])
def test_a_request_in_the_other_soap_version_is_answered_in_its_own(app, soap12):
    body = soap11_save([record("ccid:t:version")])
    answer = call(app, body if soap12 else to_soap12(body), SOAP12_PATH if soap12 else SERVICE_PATH)
    fault = fault_of(answer)
    assert answer.status_code == 500 and fault.code == "VersionMismatch"
    assert fault.soap12 is not soap12
    assert answer.headers["Content-Type"].startswith("text/xml" if soap12 else "application/soap+xml")


def test_a_call_run_again_after_a_transient_conflict_keeps_its_nonce(app, services, monkeypatch):
    """A lost deadlock is run again inside the same call (Application.call_wrapper): its one
    transaction was rolled back, and the WS-Security nonce it used is not taken for a replay."""
    real, runs = type(services.learners).save_signed_in, []

    def conflict_once(self, *args, **kwargs):
        runs.append(1)
        if len(runs) == 1:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(services.learners), "save_signed_in", conflict_once)
    body = soap11_save(
        [record("ccid:t:retry", completed="2026-02-11T00:00:00")],
        user="",
        password="",
        header=wsse_header(SANDBOX_USER, SANDBOX_PASSWORD),
    )
    answer = call(app, body)
    assert answer.status_code == 200, answer.content[:600]
    assert len(runs) == 2 and b"<tns:Status>Submitted</tns:Status>" in answer.content


# -- the WSDL ---------------------------------------------------------------------------------------


def wsdl_of(app, soap12: bool = False, **kw) -> etree._Element:
    answer = call(app, path=SOAP12_PATH if soap12 else SERVICE_PATH, method="GET", query="wsdl", **kw)
    assert answer.status_code == 200
    return etree.fromstring(answer.content)  # raises on anything but a well-formed document


def addresses(doc) -> list[str]:
    return doc.xpath("//w:port/*/@location", namespaces={"w": WSDL})


@pytest.mark.parametrize("soap12", [False, True])
def test_each_endpoint_s_wsdl_has_its_own_binding_and_port_alone(app, soap12):
    doc = wsdl_of(app, soap12, host="pars.example.org:8443")
    bindings = doc.xpath("/w:definitions/w:binding/@name", namespaces={"w": WSDL})
    assert bindings == ["ACCMELearnerServiceSoap12" if soap12 else "ACCMELearnerServiceSoap"]
    # wsdl2h took a declaration of the SOAP 1.2 binding namespace alone for SOAP 1.2 throughout.
    other = "http://schemas.xmlsoap.org/wsdl/soap/" if soap12 else "http://schemas.xmlsoap.org/wsdl/soap12/"
    assert not any(other in el.nsmap.values() for el in doc.iter())
    path = SOAP12_PATH if soap12 else SERVICE_PATH
    assert addresses(doc) == [f"http://pars.example.org:8443{path}"]
    imports = doc.xpath("//xs:import/@schemaLocation", namespaces={"xs": "http://www.w3.org/2001/XMLSchema"})
    assert imports == [
        "http://pars.example.org:8443/schemas/pars-learner-service.xsd",
        "http://pars.example.org:8443/schemas/pars-activityreport.xsd",
    ]


HOSTILE_HOSTS = [
    'evil"/><x:y a="',
    "a<b",
    "a&b",
    "a'b",
    "host:80/path",
    "a b",
    "[::1",
    "[::1]:x",
    "a:99999",
    "\u00e9.example",
    "x" * 400,
    "",
]


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_a_host_header_that_is_not_a_host_is_not_used(app, host):
    assert addresses(wsdl_of(app, host=host)) == [f"http://127.0.0.1:8000{SERVICE_PATH}"]


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("<>&\"'é\u2028"), max_size=60))
def test_the_wsdl_stays_well_formed_whatever_the_host_header(app, host):
    for soap12 in (False, True):
        (address,) = addresses(wsdl_of(app, soap12, host=host))
        assert address.endswith(SOAP12_PATH if soap12 else SERVICE_PATH)
        assert address.startswith(f"http://{host}/" if valid_host(host) else "http://127.0.0.1:8000/")


def test_pars_public_url_names_the_service_whatever_the_host(database_url):
    services = make_services(database_url, public_url="https://pars.example.org/lms")
    try:
        doc = wsdl_of(create_app(services), soap12=True, host="internal:8000")
    finally:
        services.engine.dispose()
    assert addresses(doc) == [f"https://pars.example.org/lms{SOAP12_PATH}"]
    assert (
        doc.xpath("//xs:import/@schemaLocation", namespaces={"xs": "http://www.w3.org/2001/XMLSchema"})[0]
        == "https://pars.example.org/lms/schemas/pars-learner-service.xsd"
    )


@pytest.mark.parametrize(
    "host, valid",
    [
        ("localhost", True),
        ("127.0.0.1:8000", True),
        ("[::1]:8000", True),
        ("[2001:db8::1]", True),
        ("pars-ws.example.org.", True),
        ("pars_ws:80", True),
        ("a:0", False),
        ("a:65536", False),
        ("[::1", False),
        ("[::1]8000", False),
        ("[zz]", False),
        ("-a", False),
        ("a..b", False),
        ("a:", False),
        ("a:b", False),
        ("h:\uff18\uff10", False),
        (None, False),
    ],
)
def test_valid_host(host, valid):
    assert valid_host(host) is valid
