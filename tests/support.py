"""Builders for test requests: ActivityReport records as zeep dicts and as raw XML."""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import io
import os
import sys
from xml.sax.saxutils import escape

from lxml import etree

from pars_ws.adapters.template_b import TEMPLATE_NAME, write_template_b

AR = "http://ns.medbiq.org/activityreport/v1/"
EX = "urn:pars-ws:activityreport-extension:v1"
P = "urn:pars-ws:learner:v1"

LEARNER = dict(
    board="ABIM",
    activity_id="200930149",
    id_type="ABIM",
    learner_id="1000106",
    first="Test2",
    last="Account2",
    dob="1900-03-01",
    completed="2026-01-05T00:00:00",
    points="3.5",
    credit_types=("ABIM MOC Part II",),
    action="add",
)


def lock_is_free(lock_file) -> bool:
    """Whether another process could take SQLite's writer lock file now."""
    fd = os.open(lock_file, os.O_RDWR)  # a description of its own: flock excludes it like another process
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def soap_call(app, body: bytes, action: str = "SaveLearnerActivity") -> str:
    """POST a SOAP 1.1 body to the WSGI application in this process; the response's status line."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/services/ACCMELearnerService.svc",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "text/xml; charset=utf-8",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_SOAPACTION": f'"{P}/{action}"',
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "REMOTE_ADDR": "127.0.0.1",
    }
    status = []
    out = app(environ, lambda s, h, e=None: status.append(s))
    b"".join(out)
    if hasattr(out, "close"):
        out.close()
    return status[0]


def record(credit_id: str, **changes) -> dict:
    r = dict(LEARNER, credit_id=credit_id)
    r.update(changes)
    return r


def _action_element(action: str):
    el = etree.Element(f"{{{EX}}}learnerRecordAction", nsmap={"ex": EX})
    el.text = action
    return el


def zeep_reports(records: list[dict]) -> dict:
    """ActivityReports as zeep takes it (the signature zeep builds from the WSDL)."""
    reports = []
    for r in records:
        member = {}
        if r.get("learner_id") is not None:
            member["UniqueID"] = [{"_value_1": r["learner_id"], "domain": r.get("id_type") or r["board"]}]
        member["Name"] = {"GivenName": r.get("first"), "FamilyName": r.get("last")}
        if r.get("dob"):
            member["PersonalInfo"] = {"BirthDate": dt.date.fromisoformat(r["dob"])}
        certificates = [
            {
                "CreditReceived": {
                    "accreditingBody": r["board"],
                    "activityCertification": ct,
                    "creditUnit": "Point",
                    "numberOfCredits": r["points"],
                },
                "CreditID": r["credit_id"],
            }
            for ct in r["credit_types"]
        ]
        module = {
            "ModuleName": {"_value_1": "An activity", "moduleID": r["activity_id"]},
            "Status": "Completed",
            "CompletedDateTime": dt.datetime.fromisoformat(r["completed"]) if r.get("completed") else None,
            "CreditCertificate": certificates,
        }
        reports.append(
            {
                "ReportingOrganization": "Test Provider",
                "Member": member,
                "Activity": {"ProviderOrganization": "Test Provider", "ActivityName": "An activity", "Module": module},
                "XtensibleInfo": {"_value_1": [_action_element(r["action"])]} if r.get("action") else None,
            }
        )
    return {"DateTimeCreated": dt.datetime(2026, 6, 1, 12, 0, 0), "ActivityReport": reports}


def xml_report(r: dict) -> str:
    """One ar:ActivityReport as text (raw requests, batch files, fuzzing)."""
    uid = (
        f'<m:UniqueID domain="{escape(r.get("id_type") or r["board"])}">{escape(r["learner_id"])}</m:UniqueID>'
        if r.get("learner_id") is not None
        else ""
    )
    name = "".join(
        f"<n:{tag}>{escape(r[key])}</n:{tag}>"
        for tag, key in (("GivenName", "first"), ("FamilyName", "last"))
        if r.get(key) is not None
    )
    dob = f"<m:PersonalInfo><m:BirthDate>{escape(r['dob'])}</m:BirthDate></m:PersonalInfo>" if r.get("dob") else ""
    completed = f"<ar:CompletedDateTime>{escape(r['completed'])}</ar:CompletedDateTime>" if r.get("completed") else ""
    certs = "".join(
        "<ar:CreditCertificate><ar:CreditReceived>"
        f"<hx:accreditingBody>{escape(r['board'])}</hx:accreditingBody>"
        f"<hx:activityCertification>{escape(ct)}</hx:activityCertification>"
        "<hx:creditUnit>Point</hx:creditUnit>"
        + (f"<hx:numberOfCredits>{escape(r['points'])}</hx:numberOfCredits>" if r.get("points") is not None else "")
        + f"</ar:CreditReceived><ar:CreditID>{escape(r.get('credit_id') or '')}</ar:CreditID></ar:CreditCertificate>"
        for ct in r["credit_types"]
    )
    action = (
        f"<ar:XtensibleInfo><ex:learnerRecordAction>{escape(r['action'])}</ex:learnerRecordAction></ar:XtensibleInfo>"
        if r.get("action") is not None
        else ""
    )
    return (
        "<ar:ActivityReport><ar:ReportingOrganization>Test Provider</ar:ReportingOrganization>"
        f"<ar:Member>{uid}<m:Name>{name}</m:Name>{dob}</ar:Member>"
        "<ar:Activity><ar:ProviderOrganization>Test Provider</ar:ProviderOrganization>"
        "<ar:ActivityName>An activity</ar:ActivityName><ar:Module>"
        f'<ar:ModuleName moduleID="{escape(r["activity_id"])}">An activity</ar:ModuleName>'
        f"<ar:Status>Completed</ar:Status>{completed}{certs}</ar:Module></ar:Activity>{action}</ar:ActivityReport>"
    )


NS_DECL = (
    'xmlns:ar="http://ns.medbiq.org/activityreport/v1/" xmlns:m="http://ns.medbiq.org/member/v1/" '
    'xmlns:n="http://ns.medbiq.org/name/v1/" xmlns:hx="http://ns.medbiq.org/lom/extend/v1/" '
    f'xmlns:ex="{EX}"'
)


def xml_reports(records: list[dict]) -> str:
    return (
        f"<ar:ActivityReports {NS_DECL}><ar:DateTimeCreated>2026-06-01T12:00:00</ar:DateTimeCreated>"
        + "".join(xml_report(r) for r in records)
        + "</ar:ActivityReports>"
    )


def soap11_save(
    records: list[dict], provider="1234567", user="sandbox-user", password="sandbox-password", header: str = ""
) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:p="{P}">'
        f"<soap:Header>{header}</soap:Header><soap:Body><p:SaveLearnerActivity>"
        f"<p:ProviderId>{provider}</p:ProviderId><p:User>{escape(user)}</p:User><p:Password>{escape(password)}</p:Password>"
        f"{xml_reports(records)}</p:SaveLearnerActivity></soap:Body></soap:Envelope>"
    ).encode()


def codes(result) -> list[int]:
    """Error codes of one zeep RecordResult or LearnerStatus."""
    errors = result.Errors.Error if result.Errors is not None else []
    return [int(e.Code) for e in errors or []]


# -- Template B batch files ---------------------------------------------------------------------

# The sandbox's ABPATH test learners: (learner ID, first name, last name, DOB as registered).
LEARNERS = [
    ("1000106", "Test2", "Account2", "03/01"),
    ("1000107", "Test3", "Account3", "04/01"),
    ("1000108", "Test4", "Account4", "05/01"),
    ("1000109", "Test5", "Account5", "06/01"),
    ("1000110", "Test6", "Account6", "07/01"),
    ("1000111", "Test7", "Account7", "08/01"),
    ("1000112", "Test8", "Account8", "09/01"),
    ("1000113", "Test9", "Account9", "10/01"),
    ("1000105", "Test10", "Account10", "02/01"),
    ("1000104", "Test11", "Account11", "01/01"),
]
# 0-based row -> (column, wrong value, the one code it gets). Columns are Template B positions.
BAD_ROWS = {
    7: (7, "12/31", 664),
    100: (5, "Wrong", 665),
    300: (10, "1.1", 675),
    500: (11, "ABPath Bogus", 676),
    700: (8, "12/01/2026", 671),
    900: (4, "9999999", 661),
    1100: (3, "ABIM", 712),
    1300: (9, "Update", 602),
    1500: (10, "abc", 673),
    1700: (2, "200900002", 670),
}


def good_row(i: int, activity_id: str = "200930149") -> list[str]:
    """A Template B row that passes every rule: ABPATH, 1 point, completed early 2026."""
    learner_id, first, last, dob = LEARNERS[i % len(LEARNERS)]
    return [
        TEMPLATE_NAME,
        "ABPATH",
        activity_id,
        "ABPATH",
        learner_id,
        first,
        last,
        dob,
        f"{1 + i % 5}/{1 + i % 28}/2026",
        "Add",
        "1",
        "ABPath MOC Part II",
    ]


def template_file(count: int, bad: dict = BAD_ROWS, start: int = 0, activity_id: str = "200930149") -> bytes:
    rows = []
    for i in range(start, start + count):
        row = good_row(i, activity_id)
        if i in bad:
            column, value, _ = bad[i]
            row[column] = value
        rows.append(row)
    return write_template_b(rows)


def fixed_error_report(report: bytes) -> bytes:
    """The downloaded error report with each bad cell corrected; Error Code/Message columns left in."""
    lines = list(csv.reader(io.StringIO(report.decode("utf-8-sig"))))
    header, rows = lines[0], lines[1:]
    assert len(rows) == len(BAD_ROWS)
    for row, i in zip(rows, sorted(BAD_ROWS), strict=True):
        column, _, code = BAD_ROWS[i]
        assert row[17] == str(code)
        row[column] = good_row(i)[column]
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return out.getvalue().encode("utf-8-sig")


# -- Excel learner template workbooks ---------------------------------------------------------------


def excel_workbook(rows: list[list], *, guidance: bool = True, header: list | None = None) -> bytes:
    """A workbook in ACCME's learner template layout: a guidance row (unless left out), the header
    row, then `rows`. Cells keep their Python types: datetimes are date cells, numbers numbers."""
    from openpyxl import Workbook

    from pars_ws.adapters.excel import GUIDANCE, HEADER

    book = Workbook()
    sheet = book.active
    sheet.title = "Sheet1"
    if guidance:
        sheet.append([GUIDANCE.format(records=2500)])
    sheet.append(list(header or HEADER))
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# A row reporting CME to NC (by NPI) and MOC to ABIM, for the sandbox learner Test2 Account2.
EXCEL_BOTH = [
    "Add",
    200900001,
    dt.datetime(2026, 1, 5),
    "Test2",
    "Account2",
    "03/01",
    "NC",
    1679576722,
    2,
    "ABIM",
    1000106,
    3.5,
    "ABIM MOC Part II",
    3.5,
    "Controlled Substance",
    1,
]


def json_report(r: dict) -> dict:
    """One ActivityReport as the JSON twin takes it (the same fields as xml_report)."""
    member = {}
    if r.get("learner_id") is not None:
        member["UniqueID"] = [{"value": r["learner_id"], "domain": r.get("id_type") or r["board"]}]
    member["Name"] = {k: r[f] for k, f in (("GivenName", "first"), ("FamilyName", "last")) if r.get(f) is not None}
    if r.get("dob"):
        member["PersonalInfo"] = {"BirthDate": r["dob"]}
    received = {"accreditingBody": r["board"], "creditUnit": "Point"}
    if r.get("points") is not None:
        received["numberOfCredits"] = r["points"]
    module = {
        "ModuleName": {"value": "An activity", "moduleID": r["activity_id"]},
        "Status": "Completed",
        "CompletedDateTime": r.get("completed"),
        "CreditCertificate": [
            {"CreditReceived": {**received, "activityCertification": ct}, "CreditID": r.get("credit_id") or ""}
            for ct in r["credit_types"]
        ],
    }
    return {
        "ReportingOrganization": "Test Provider",
        "Member": member,
        "Activity": {"ProviderOrganization": "Test Provider", "ActivityName": "An activity", "Module": module},
        "XtensibleInfo": {"LearnerRecordAction": r["action"]} if r.get("action") is not None else None,
    }


def json_reports(records: list[dict]) -> dict:
    return {
        "ActivityReports": {
            "DateTimeCreated": "2026-06-01T12:00:00",
            "ActivityReport": [json_report(r) for r in records],
        }
    }
