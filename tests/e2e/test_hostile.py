"""Hostile input against the running service (SPEC 5), over HTTP.

Every file of the attack corpus (tests/attacks/) and every attack generated here is refused with a
SOAP Client fault naming the limit on the HTTP status its SOAP version prescribes, never a Server
fault; nothing is read from disk (a secret file's
atime and content) or the network (a loopback HTTP server that must receive no request); and the
same gunicorn processes are still serving correctly afterwards. Then each limit of the settings
object, on a server started with small limits: just inside accepted, just past refused with a
fault naming that limit; the batch readers under the same limits.
"""

from __future__ import annotations

import os
import random
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests

from pars_ws.adapters.template_b import FileRefused
from pars_ws.adapters.xml_guard import XmlLimits, XmlRefused
from pars_ws.service.validate import read_records
from tests.conftest import run_cli, start_server, stop_server
from tests.fuzz.wire import (
    SAVE_ACTION,
    abo_record,
    fault_of,
    gunicorn_workers,
    post,
    results_of,
    save_body,
    to_soap12,
    unique_id,
    wait_for_workers,
    wsse_header,
)
from tests.support import template_file, xml_reports
from tests.unit.test_xml_guard import ATTACKS, ATTACKS_DIR, SECRET, http_server, load_attack  # noqa: F401

pytestmark = pytest.mark.e2e


# -- the attacks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    name: str
    body: Callable[[Target], bytes]
    code: str  # expected fault code (prefix), e.g. "Client.Limit"
    limit: str | None = None  # expected p:Limit in the fault detail
    soap12: bool = False  # posted to the SOAP 1.2 endpoint
    content_type: str | None = None
    answer_soap12: bool | None = None  # the SOAP version of the fault, when not the endpoint's


@dataclass
class Target:
    http_url: str
    secret_url: str


def _valid(t: Target) -> bytes:
    return save_body([abo_record(unique_id("hostile"))])


def _corpus(name: str) -> Attack:
    limit = ATTACKS[name]
    code = "Client.InvalidRequest" if limit in ("malformed", "encoding") else "Client.Limit"
    return Attack(f"corpus:{name}", lambda t: load_attack(name, t.http_url, t.secret_url), code, limit)


def _mtom(t: Target) -> bytes:
    return (ATTACKS_DIR / "mtom-multipart-related.http").read_bytes().partition(b"\r\n\r\n")[2]


MTOM_TYPE = (
    (ATTACKS_DIR / "mtom-multipart-related.http")
    .read_bytes()
    .partition(b"\r\n\r\n")[0]
    .decode()
    .split(":", 1)[1]
    .strip()
)


def _in_record(fragment: bytes) -> Callable[[Target], bytes]:
    return lambda t: _valid(t).replace(b"<ar:Status>", fragment + b"<ar:Status>", 1)


def _in_header(fragment: str) -> Callable[[Target], bytes]:
    return lambda t: save_body([abo_record(unique_id("hostile"))], header=fragment)


def _rng_bytes(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


DOCTYPE_XXE = '<!DOCTYPE e [<!ENTITY x SYSTEM "{url}">]>'


def _without_declaration(body: bytes) -> bytes:
    return body.split(b"?>", 1)[1]


GENERATED = [
    Attack("soap11-envelope-to-soap12-endpoint", _valid, "VersionMismatch", soap12=True, answer_soap12=False),
    Attack("soap12-envelope-to-soap11-endpoint", lambda t: to_soap12(_valid(t)), "VersionMismatch", answer_soap12=True),
    Attack(
        "activity-reports-in-wrong-namespace",
        lambda t: _valid(t).replace(b"http://ns.medbiq.org/activityreport/v1/", b"urn:evil:activityreport"),
        "Client.InvalidRequest",
    ),
    Attack(
        "activity-reports-in-wrong-namespace-soap12",
        lambda t: to_soap12(_valid(t)).replace(b"http://ns.medbiq.org/activityreport/v1/", b"urn:evil:v1"),
        "Client.InvalidRequest",
        soap12=True,
    ),
    Attack("multipart-related-soap12", _mtom, "Client.Limit", "multipart", soap12=True, content_type=MTOM_TYPE),
    Attack(
        "xop-root-content-type",
        _valid,
        "Client.Limit",
        "multipart",
        content_type='application/xop+xml; type="text/xml"',
    ),
    Attack("multipart-form-data", _valid, "Client.Limit", "multipart", content_type="multipart/form-data; boundary=x"),
    Attack("content-type-charset-utf7", _valid, "Client.Limit", "encoding", content_type="text/xml; charset=utf-7"),
    Attack(
        "billion-laughs-soap12",
        lambda t: load_attack("billion-laughs.xml", t.http_url),
        "Client.Limit",
        "doctype",
        soap12=True,
    ),
    Attack("xxe-url-soap12", lambda t: load_attack("xxe-url.xml", t.http_url), "Client.Limit", "doctype", soap12=True),
    Attack(
        "xxe-local-file-utf16",
        lambda t: (
            load_attack("xxe-local-file.xml", t.http_url, t.secret_url)
            .replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>', 1)
            .replace(b'encoding="UTF-8"', b"")
            .decode()
            .encode("utf-16")
        ),
        "Client.Limit",
        "doctype",
    ),
    Attack(
        "doctype-behind-2000-comments",
        lambda t: (
            b"<!-- c -->" * 2000 + DOCTYPE_XXE.format(url=t.secret_url).encode() + _without_declaration(_valid(t))
        ),
        "Client.Limit",
        "doctype",
    ),
    Attack(
        "entity-reference-in-wsse-password",
        _in_header(wsse_header("sandbox-user", "x").replace(">x<", ">&xxe;<")),
        "Client.Limit",
        "entity",
    ),
    Attack(
        "xinclude-in-header",
        lambda t: _in_header(
            f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{t.secret_url}" parse="text"/>'
        )(t),
        "Client.Limit",
        "xinclude",
    ),
    Attack(
        "xinclude-url-in-record",
        lambda t: _in_record(
            f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{t.http_url}/xi"/>'.encode()
        )(t),
        "Client.Limit",
        "xinclude",
    ),
    Attack("processing-instruction-in-header", _in_header("<?evil data?>"), "Client.Limit", "processing-instruction"),
    Attack(
        "deep-nesting-in-header",
        _in_header("<x:d xmlns:x='urn:x'>" + "<x:d>" * 200 + "</x:d>" * 201),
        "Client.Limit",
        "depth",
    ),
    Attack("deep-nesting-past-libxml2", _in_record(b"<x>" * 100_000 + b"</x>" * 100_000), "Client.Limit", "depth"),
    Attack(
        "many-attributes-on-envelope",
        lambda t: _valid(t).replace(
            b"<soap:Envelope ", b"<soap:Envelope " + b" ".join(b'a%d="v"' % i for i in range(60)) + b" ", 1
        ),
        "Client.Limit",
        "attributes",
    ),
    Attack("wide-element-1000000-children", _in_record(b"<ar:X/>" * 1_000_000), "Client.InvalidRequest"),
    Attack(
        "huge-text-field-5MB",
        lambda t: save_body([abo_record(unique_id("hostile"), first="A" * 5_000_000)]),
        "Client.InvalidRequest",
    ),
    Attack(
        "400000-empty-records",
        lambda t: _valid(t).replace(
            b"<ar:ActivityReport>", b"<ar:ActivityReport/>" * 400_000 + b"<ar:ActivityReport>", 1
        ),
        "Client.Limit",
        "records",
    ),
    Attack(
        "nul-byte-in-attribute",
        lambda t: _valid(t).replace(b'domain="ABO"', b'domain="A\x00BO"', 1),
        "Client.InvalidRequest",
        "malformed",
    ),
    Attack(
        "declared-ebcdic",
        lambda t: _valid(t).replace(b'encoding="UTF-8"', b'encoding="IBM037"', 1),
        "Client.InvalidRequest",
        "encoding",
    ),
    Attack(
        "declared-shift-jis",
        lambda t: _valid(t).replace(b'encoding="UTF-8"', b'encoding="Shift_JIS"', 1),
        "Client.InvalidRequest",
        "encoding",
    ),
    Attack(
        "latin1-declared-utf8",
        lambda t: _valid(t).replace(b"Test2", "Tést2".encode("latin-1"), 1),
        "Client.InvalidRequest",
        "encoding",
    ),
    Attack("empty-body", lambda t: b"", "Client.InvalidRequest", "malformed"),
    Attack("random-bytes", lambda t: _rng_bytes(6, 4096), "Client.InvalidRequest"),
    Attack("truncated-envelope", lambda t: _valid(t)[:-40], "Client.InvalidRequest", "malformed"),
    Attack("not-an-envelope", lambda t: xml_reports([abo_record(unique_id("hostile"))]).encode(), "Client"),
    Attack("unknown-operation", lambda t: _valid(t).replace(b"SaveLearnerActivity>", b"DropAllTables>"), "Client"),
    # Found by the fuzz test: shapes spyne itself crashed on (HTTP 500) before the guard checked them.
    Attack(
        "body-inside-header",
        lambda t: _valid(t).replace(b"</soap:Header>", b"").replace(b"</soap:Body>", b"</soap:Body></soap:Header>"),
        "Client.InvalidRequest",
    ),
    Attack(
        "xsi-nil-on-the-operation",
        lambda t: _valid(t).replace(
            b"<p:SaveLearnerActivity>",
            (b'<p:SaveLearnerActivity xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil=" ">'),
        ),
        "Client.InvalidRequest",
    ),
    Attack(
        "xsi-type-on-the-operation-soap12",
        lambda t: to_soap12(_valid(t)).replace(
            b"<p:SaveLearnerActivity>",
            b'<p:SaveLearnerActivity xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="p:GetActivity">',
        ),
        "Client.InvalidRequest",
        soap12=True,
    ),
    Attack(
        "two-bodies",
        lambda t: _valid(t).replace(b"</soap:Envelope>", b"<soap:Body/></soap:Envelope>"),
        "Client.InvalidRequest",
    ),
    Attack(
        "two-operations-in-the-body",
        lambda t: _valid(t).replace(
            b"</soap:Body>", b"<p:GetActivity><p:ActivityID>1</p:ActivityID></p:GetActivity></soap:Body>"
        ),
        "Client.InvalidRequest",
    ),
    Attack(
        "empty-body-element",
        lambda t: _valid(t).split(b"<soap:Body>")[0] + b"<soap:Body/></soap:Envelope>",
        "Client.InvalidRequest",
    ),
    Attack(
        "envelope-inside-a-record", _in_record(_without_declaration(_valid(Target("", "")))), "Client.InvalidRequest"
    ),
]

CORPUS = [_corpus(name) for name in sorted(ATTACKS)] + [
    Attack("corpus:mtom-multipart-related.http", _mtom, "Client.Limit", "multipart", content_type=MTOM_TYPE)
]
ALL_ATTACKS = CORPUS + GENERATED
# Sent by hand over a socket below: oversize bodies (with a length, and chunked).
RAW_ATTACKS = ("oversize-content-length-no-body", "oversize-content-length-soap12", "oversize-chunked-body")


# -- fixtures --------------------------------------------------------------------------------------


class Hostile:
    def __init__(self, server, http_url: str, requests_seen: list, secret_path, atime_ns: int):
        self.server = server
        self.http_url = http_url
        self.requests_seen = requests_seen
        self.secret_path = secret_path
        self.atime_ns = atime_ns
        self.workers = wait_for_workers(server.proc.pid, 2)
        self.tried: list[str] = []

    def target(self) -> Target:
        return Target(self.http_url, self.secret_path.as_uri())

    def check_nothing_leaked(self, response_text: str) -> None:
        assert SECRET not in response_text
        assert self.requests_seen == [], f"the service fetched {self.requests_seen}"
        assert self.secret_path.stat().st_atime_ns == self.atime_ns, "the secret file was read"


@pytest.fixture(scope="module")
def hostile(server, http_server, tmp_path_factory):  # noqa: F811 - http_server is the corpus's recorder
    url, seen = http_server
    path = tmp_path_factory.mktemp("secret") / "secret.txt"
    path.write_text(SECRET + "\n")
    mtime = path.stat().st_mtime_ns
    old = mtime - 3 * 86400 * 10**9  # atime older than mtime: under relatime any read bumps it
    os.utime(path, ns=(old, mtime))
    return Hostile(server, url, seen, path, old)


def fault_status(soap12: bool, code: str) -> int:
    """WS-I Basic Profile R1126: a SOAP 1.1 fault on 500; the SOAP 1.2 HTTP binding: Sender 400, else 500."""
    return 400 if soap12 and code.startswith("Client") else 500


def assert_refused(response: requests.Response, attack: Attack) -> None:
    answer12 = attack.soap12 if attack.answer_soap12 is None else attack.answer_soap12
    assert response.status_code == fault_status(answer12, attack.code), (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("application/soap+xml" if answer12 else "text/xml")
    fault = fault_of(response)
    assert fault is not None, response.text[:500]
    assert fault.client or fault.code == "VersionMismatch", fault
    assert fault.code.startswith(attack.code), fault
    assert fault.soap12 == answer12
    if attack.limit is not None:
        assert fault.limit == attack.limit, fault
    assert fault.correlation_id and fault.text.endswith(f"(correlation ID {fault.correlation_id})"), fault
    assert "Traceback" not in response.text and "Internal error" not in response.text


# -- the corpus and the generated attacks -----------------------------------------------------------


def test_the_corpus_is_all_there():
    on_disk = {p.name for p in ATTACKS_DIR.iterdir() if p.name != "README.md"}
    assert {a.name.split(":", 1)[1] for a in CORPUS} == on_disk


@pytest.mark.parametrize("attack", ALL_ATTACKS, ids=lambda a: a.name)
def test_attack_is_refused_with_a_client_fault(hostile, attack):
    body = attack.body(hostile.target())
    kwargs = {"content_type": attack.content_type or ("application/soap+xml" if attack.soap12 else "text/xml")}
    response = post(hostile.server.service_url, body, soap12=attack.soap12, timeout=120, **kwargs)
    hostile.tried.append(attack.name)
    assert_refused(response, attack)
    hostile.check_nothing_leaked(response.text)


def _raw_post(server, path: str, head: bytes, chunks=(), timeout: float = 10) -> tuple[bytes, float]:
    """Send request headers (and optionally some body chunks), return (response, seconds to answer)."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        started = time.monotonic()
        sock.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: test\r\n" + head + b"\r\n")
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed before the rest was sent: what we want
        data = b""
        while b"</" not in data or not data.rstrip().endswith(b"Envelope>"):
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            data += part
        return data, time.monotonic() - started


@pytest.mark.parametrize("name", RAW_ATTACKS)
def test_oversize_body_is_refused_with_a_fault_the_client_reads(hostile, name):
    server = hostile.server
    soap12 = "soap12" in name
    path = "/services/ACCMELearnerService.svc" + ("/soap12" if soap12 else "")
    ctype = b"application/soap+xml" if soap12 else b"text/xml"
    if name == "oversize-chunked-body":
        # 10 MiB, within what is read and dropped: the answer comes after the whole body.
        chunk = b"<a>" + b" " * (1024 * 1024)
        framed = [b"%x\r\n" % len(chunk) + chunk + b"\r\n"] * 10
        data, _ = _raw_post(
            server,
            path,
            b"Content-Type: " + ctype + b"\r\nTransfer-Encoding: chunked\r\n",
            framed + [b"0\r\n\r\n"],
            timeout=60,
        )
    else:
        # 100 MiB announced, past what is read and dropped, not one byte sent: answered at once.
        data, _ = _raw_post(server, path, b"Content-Type: " + ctype + b"\r\nContent-Length: 104857600\r\n")
    hostile.tried.append(name)
    head, _, body = data.partition(b"\r\n\r\n")
    status = fault_status(soap12, "Client")
    assert head.startswith(b"HTTP/1.1 %d" % status), head
    assert b"\r\nConnection: close" in head, head
    response = requests.Response()
    response._content, response.status_code = body, status
    response.headers["Content-Type"] = "application/soap+xml" if soap12 else "text/xml"
    assert_refused(response, Attack(name, _valid, "Client.Limit", "body-size", soap12=soap12))


@pytest.mark.parametrize("client", ["requests", "urllib"])
def test_a_client_that_sends_20_mib_before_reading_gets_the_fault(hostile, client):
    """Python's HTTP clients (and zeep, suds on top of them) send the whole body before reading: the
    service reads and drops the excess, then answers, instead of closing on an unread body (a reset,
    "Broken pipe" on the client's side)."""
    body = _valid(hostile.target()).replace(b"</soap:Envelope>", b" " * (20 * 1024 * 1024) + b"</soap:Envelope>")
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": SAVE_ACTION}
    if client == "requests":
        response = requests.post(hostile.server.service_url, data=body, headers=headers, timeout=60)
        status, content, connection = response.status_code, response.content, response.headers.get("Connection")
    else:
        request = urllib.request.Request(hostile.server.service_url, data=body, headers=headers, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        status, content, connection = refused.value.code, refused.value.read(), refused.value.headers["Connection"]
    assert status == 500 and connection == "close"
    response = requests.Response()
    response._content, response.status_code = content, status
    response.headers["Content-Type"] = "text/xml"
    assert_refused(response, Attack("20-mib-" + client, _valid, "Client.Limit", "body-size"))


def test_service_is_healthy_after_every_attack(hostile, credentials):
    """Runs last: after the attacks above, nothing was read, the same gunicorn processes serve
    (no worker crashed or was recycled on the way) and answer correctly."""
    hostile.check_nothing_leaked("")
    hostile.secret_path.read_text()  # the atime check is live: a read does move it
    assert hostile.secret_path.stat().st_atime_ns != hostile.atime_ns
    assert gunicorn_workers(hostile.server.proc.pid) == hostile.workers
    assert requests.get(hostile.server.base_url + "/healthz", timeout=10).status_code == 200
    for soap12 in (False, True):
        cid = unique_id("after")
        body = save_body([abo_record(cid)])
        response = post(hostile.server.service_url, to_soap12(body) if soap12 else body, soap12=soap12)
        assert response.status_code == 200, response.text[:500]
        assert [(r.credit_id, r.status, r.codes) for r in results_of(response)] == [(cid, "Accepted", [])]
    expected = len(ALL_ATTACKS) + len(RAW_ATTACKS)
    if len(hostile.tried) < expected:
        pytest.skip(f"only {len(hostile.tried)} of the {expected} attacks ran (a -k selection)")
    print(f"\n{expected} attacks tried ({len(CORPUS)} corpus files, {len(GENERATED) + len(RAW_ATTACKS)} generated)")


# -- each limit just inside and just past, on a server with small limits -----------------------------

SMALL = dict(
    PARS_MAX_BODY_BYTES=16384, PARS_MAX_DEPTH=12, PARS_MAX_ATTRIBUTES=8, PARS_MAX_RECORDS=3, PARS_MAX_FILE_BYTES=8192
)


@pytest.fixture(scope="module")
def small_server(database_url, tmp_path_factory):
    srv = start_server(database_url, tmp_path_factory.mktemp("small"), workers=1, **SMALL)
    yield srv
    stop_server(srv)


def _request(n_records: int = 1, header: str = "", size: int | None = None) -> tuple[bytes, list[str]]:
    ids = [unique_id("limit") for _ in range(n_records)]
    body = save_body([abo_record(cid, i) for i, cid in enumerate(ids)], header=header)
    if size is not None:
        assert len(body) <= size
        body = body.replace(b"</soap:Envelope>", b" " * (size - len(body)) + b"</soap:Envelope>")
        assert len(body) == size
    return body, ids


def _accepted(server, body: bytes, ids: list[str]) -> None:
    response = post(server.service_url, body)
    assert response.status_code == 200, response.text[:600]
    assert [(r.credit_id, r.status, r.codes) for r in results_of(response)] == [(c, "Accepted", []) for c in ids]


def _past(server, body: bytes, limit: str, value: int, status: int = 500) -> None:
    response = post(server.service_url, body)
    fault = fault_of(response)
    assert response.status_code == status, response.text[:600]
    assert fault is not None and fault.client and fault.limit == limit, fault
    assert f"limit of {value}" in fault.text, fault.text


def _chain(depth: int) -> str:
    """A header extension whose deepest element sits at `depth` (Envelope 1, Header 2)."""
    k = depth - 3
    return "<x:h xmlns:x='urn:x'>" + "<x:d>" * k + "</x:d>" * k + "</x:h>"


def _attributes(n: int) -> str:
    """A header element with n attributes, its namespace declaration counted."""
    return "<x:h xmlns:x='urn:x' " + " ".join(f"a{i}='v'" for i in range(n - 1)) + "/>"


def test_body_size_limit(small_server):
    limit = SMALL["PARS_MAX_BODY_BYTES"]
    _accepted(small_server, *_request(3, size=limit))
    body, _ = _request(3, size=limit + 1)
    _past(small_server, body, "body-size", limit)


def test_depth_limit(small_server):
    limit = SMALL["PARS_MAX_DEPTH"]
    _accepted(small_server, *_request(1, header=_chain(limit)))
    _past(small_server, _request(1, header=_chain(limit + 1))[0], "depth", limit)


def test_attribute_limit(small_server):
    limit = SMALL["PARS_MAX_ATTRIBUTES"]
    _accepted(small_server, *_request(1, header=_attributes(limit)))
    _past(small_server, _request(1, header=_attributes(limit + 1))[0], "attributes", limit)


def test_record_limit(small_server):
    limit = SMALL["PARS_MAX_RECORDS"]
    _accepted(small_server, *_request(limit))
    _past(small_server, _request(limit + 1)[0], "records", limit)


# -- the batch readers under the same limits ------------------------------------------------------------

FILE_LIMITS = XmlLimits(
    max_body_bytes=SMALL["PARS_MAX_BODY_BYTES"],
    max_depth=SMALL["PARS_MAX_DEPTH"],
    max_attributes=SMALL["PARS_MAX_ATTRIBUTES"],
    max_records=SMALL["PARS_MAX_RECORDS"],
    max_file_bytes=SMALL["PARS_MAX_FILE_BYTES"],
)


def _xml_file(n: int, size: int | None = None) -> bytes:
    data = xml_reports([abo_record(unique_id("file"), i) for i in range(n)]).encode()
    return (
        data
        if size is None
        else data.replace(b"</ar:ActivityReports>", b" " * (size - len(data)) + b"</ar:ActivityReports>")
    )


def _txt_file(n: int, size: int | None = None) -> bytes:
    data = template_file(n, bad={})
    return data if size is None else data + b"\n" * (size - len(data))


@pytest.mark.parametrize("kind", ["xml", "txt"])
def test_batch_file_limits(kind):
    make = _xml_file if kind == "xml" else _txt_file
    cap, most = FILE_LIMITS.max_file_bytes, FILE_LIMITS.max_records
    at_cap = make(most, size=cap)
    assert len(at_cap) == cap
    _, records = read_records(at_cap, f"f.{kind}", FILE_LIMITS, kind=kind)
    assert len(records) == most
    for data in (make(most, size=cap + 1), make(most + 1)):
        with pytest.raises((XmlRefused, FileRefused)) as refused:
            read_records(data, f"f.{kind}", FILE_LIMITS, kind=kind)
        expected = "body-size" if len(data) > cap else "records"
        if isinstance(refused.value, XmlRefused):
            assert refused.value.limit == expected
        else:
            assert (
                f"LARGER THAN {cap:,} BYTES" if expected == "body-size" else f"MORE THAN {most} RECORDS"
            ) in refused.value.message
    # A batch XML file is guarded like a request: the same corpus is refused the same way.
    for name, limit in ATTACKS.items():
        if kind == "xml" and limit not in ("records", "body-size"):
            with pytest.raises(XmlRefused) as refused:
                read_records(load_attack(name), name, XmlLimits(), kind="xml")
            assert refused.value.limit == limit, name


def test_validate_command_applies_the_file_limit(small_server, tmp_path):
    path = tmp_path / "big.xml"
    path.write_bytes(_xml_file(1, size=SMALL["PARS_MAX_FILE_BYTES"] + 1))
    out = run_cli(small_server.env, "validate", str(path), check=False)
    assert out.returncode == 1
    assert "refused" in out.stdout and str(SMALL["PARS_MAX_FILE_BYTES"]) in out.stdout, out.stdout + out.stderr
