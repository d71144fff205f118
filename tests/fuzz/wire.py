"""Raw SOAP over HTTP for the hostile-input, authentication, concurrency and fuzz tests: posting
bodies, reading faults and record results (with a parser that itself reads nothing external),
records that pass every rule, WS-Security headers, and the gunicorn processes behind a server."""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import requests
from lxml import etree

from tests.conftest import gunicorn_workers
from tests.support import P, record, soap11_save

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TOKEN_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
SAVE_ACTION = '"urn:pars-ws:learner:v1/SaveLearnerActivity"'

_SAFE = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)

# Test learners of ABO (Accepted at once, no one-completion-a-day rule) without completions
# reported outside PARS, and an activity offering ABO 100 points: records built from them pass
# every rule, so a CreditID stored once is refused only as a duplicate (603).
ABO_LEARNERS = [
    ("1000106", "Test2", "Account2", "1900-03-01"),
    ("1000107", "Test3", "Account3", "1900-04-01"),
    ("1000108", "Test4", "Account4", "1900-05-01"),
    ("1000109", "Test5", "Account5", "1900-06-01"),
    ("1000110", "Test6", "Account6", "1900-07-01"),
    ("1000112", "Test8", "Account8", "1900-09-01"),
    ("1000113", "Test9", "Account9", "1900-10-01"),
    ("1000105", "Test10", "Account10", "1900-02-01"),
    ("1000104", "Test11", "Account11", "1900-01-01"),
    ("98989", "Vincent", "Van Gogh", "1900-03-30"),
]


def abo_record(credit_id: str, n: int = 0, **changes) -> dict:
    """A record that passes every rule (0.25 points: 400 of them fit one learner's maximum)."""
    learner_id, first, last, dob = ABO_LEARNERS[n % len(ABO_LEARNERS)]
    fields = dict(
        board="ABO",
        id_type="ABO",
        activity_id="200900001",
        learner_id=learner_id,
        first=first,
        last=last,
        dob=dob,
        credit_types=("ABO MOC Part II",),
        points="0.25",
        completed="2026-03-02T00:00:00",
    )
    return record(credit_id, **{**fields, **changes})


def to_soap12(body: bytes) -> bytes:
    return body.replace(SOAP11.encode(), SOAP12.encode())


def post(
    url: str, body: bytes, soap12: bool = False, content_type: str | None = None, timeout: float = 60, **headers
) -> requests.Response:
    ctype = content_type or ("application/soap+xml; charset=utf-8" if soap12 else "text/xml; charset=utf-8")
    head = {"Content-Type": ctype, **headers}
    if not soap12 and "SOAPAction" not in head:
        head["SOAPAction"] = SAVE_ACTION
    return requests.post(url + ("/soap12" if soap12 else ""), data=body, headers=head, timeout=timeout)


@dataclass
class FaultInfo:
    code: str  # "Client.Limit", "Client.Authentication", ... (SOAP 1.2: Sender/Receiver + subcode)
    text: str
    limit: str | None
    soap12: bool
    correlation_id: str | None = None

    @property
    def client(self) -> bool:
        return self.code.startswith("Client")


def _local(qname: str) -> str:
    return qname.split(":", 1)[-1]


def parse_response(content: bytes) -> etree._Element:
    """Parse with a parser that loads no DTD, entity or URL."""
    return etree.fromstring(content, _SAFE)


def fault_of(response: requests.Response) -> FaultInfo | None:
    """The SOAP fault of a response (SOAP 1.1 or 1.2), None when it is not one."""
    try:
        doc = parse_response(response.content)
    except etree.XMLSyntaxError:
        return None
    limit = doc.findtext(f".//{{{P}}}Limit")
    cid = doc.findtext(f".//{{{P}}}CorrelationID")
    fault = doc.find(f".//{{{SOAP11}}}Fault")
    if fault is not None:
        return FaultInfo(
            _local(fault.findtext("faultcode") or ""), fault.findtext("faultstring") or "", limit, False, cid
        )
    fault = doc.find(f".//{{{SOAP12}}}Fault")
    if fault is None:
        return None
    value = _local(fault.findtext(f"{{{SOAP12}}}Code/{{{SOAP12}}}Value") or "")
    sub = fault.find(f"{{{SOAP12}}}Code/{{{SOAP12}}}Subcode/{{{SOAP12}}}Value")
    if sub is not None:  # a QName in the service namespace (SAAJ refuses an unqualified one)
        assert sub.nsmap.get(sub.text.partition(":")[0]) == P, sub.text
    code = ("Client" if value == "Sender" else "Server" if value == "Receiver" else value) + (
        f".{_local(sub.text)}" if sub is not None else ""
    )
    return FaultInfo(code, fault.findtext(f".//{{{SOAP12}}}Text") or "", limit, True, cid)


@dataclass
class RecordResult:
    index: int
    credit_id: str | None
    status: str
    codes: list[int]


def results_of(response: requests.Response) -> list[RecordResult]:
    doc = parse_response(response.content)
    ns = {"p": P}
    return [
        RecordResult(
            int(r.findtext("p:Index", namespaces=ns)),
            r.findtext("p:CreditID", namespaces=ns),
            r.findtext("p:Status", namespaces=ns),
            [int(c) for c in r.xpath("p:Errors/p:Error/p:Code/text()", namespaces=ns)],
        )
        for r in doc.iterfind(".//p:RecordResult", ns)
    ]


def save_body(records: list[dict], **kw) -> bytes:
    return soap11_save(records, **kw)


def wsse_header(
    username: str,
    password: str,
    *,
    nonce: bytes | None = b"",
    created: dt.datetime | str | None = None,
    digest: bool = False,
) -> str:
    """A wsse:Security header with a UsernameToken (PasswordText unless digest), as WCF/CXF send it.

    nonce b"" (the default) means a fresh random one; None leaves it out. created None leaves it out.
    """
    if nonce == b"":
        nonce = os.urandom(16)
    if isinstance(created, dt.datetime):
        created = created.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    kind = "PasswordDigest" if digest else "PasswordText"
    parts = [
        f"<wsse:Username>{escape(username)}</wsse:Username>",
        f'<wsse:Password Type="{TOKEN_PROFILE}#{kind}">{escape(password)}</wsse:Password>',
    ]
    if nonce is not None:
        parts.append(
            f'<wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/'
            f'oasis-200401-wss-soap-message-security-1.0#Base64Binary">{base64.b64encode(nonce).decode()}'
            "</wsse:Nonce>"
        )
    if created is not None:
        parts.append(f"<wsu:Created>{escape(created)}</wsu:Created>")
    return (
        f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
        + "".join(parts)
        + "</wsse:UsernameToken></wsse:Security>"
    )


def get_activity_body(
    provider: str = "1234567", user: str = "", password: str = "", header: str = "", activity_id: str = "200930149"
) -> bytes:
    """GetActivity (the cheapest authenticated call), credentials in the body unless user is empty."""
    creds = f"<p:User>{escape(user)}</p:User><p:Password>{escape(password)}</p:Password>" if user else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP11}" xmlns:p="{P}">'
        f"<soap:Header>{header}</soap:Header><soap:Body><p:GetActivity><p:ProviderId>{provider}</p:ProviderId>"
        f"{creds}<p:ActivityID>{activity_id}</p:ActivityID></p:GetActivity></soap:Body></soap:Envelope>"
    ).encode()


def unique_id(prefix: str) -> str:
    return f"ccid:testprovider.org:{prefix}-{secrets.token_hex(6)}"


# -- the processes behind a server --------------------------------------------------------------


def wait_for_workers(serve_pid: int, count: int, timeout: float = 30) -> list[int]:
    """The worker pids once `count` of them run (gunicorn forks them after answering starts)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = gunicorn_workers(serve_pid)
        if len(pids) == count or time.monotonic() > deadline:
            return pids
        time.sleep(0.05)


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])
