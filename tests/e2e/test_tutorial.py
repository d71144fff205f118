"""The PARS tutorial's worked examples, replayed against the real service on the day its screenshots
were taken (PARS_TODAY=2020-01-16): one test per example, named after the tutorial's section, each
asserting the codes and statuses the tutorial prints (../shared/seed/pars-learner-reporting-tutorial.txt).
The Deleting Records examples are older (DATE SUBMITTED 07/18/2019): they also replay on that day.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
import time

import pytest
import requests
import zeep
from lxml import etree

from tests.conftest import (
    PG_URL,
    PROVIDER_ID,
    SANDBOX_PASSWORD,
    SANDBOX_USER,
    SANDBOX_WEB_EMAIL,
    SANDBOX_WEB_PASSWORD,
    _pg_database,
    start_server,
    stop_server,
)
from tests.e2e.test_batches import AUTH, api_get, post_file, report_lines, wait_finished

pytestmark = pytest.mark.e2e

TUTORIAL_TODAY = "2020-01-16"  # the upload history's newest line: 01/16/2020 2:31 pm
MSG_664 = "Diplomate date of birth does not match Board record for this diplomate ID."
MSG_690 = "ACCME activity ID does not exist"
MSG_605 = "Record not found. Delete action has unknown credit ID."
MSG_706 = (
    "Deadline for deleting participant data has passed. PARS will not accept deletions of participant records "
    "past the date set by the specialty board."
)
TAB = "\t"


def start_tutorial_server(database_url: str, data_dir, today: str = TUTORIAL_TODAY):
    # The board review runs on demand only, so a Submitted record stays Submitted until a test asks.
    return start_server(database_url, data_dir, PARS_TODAY=today, PARS_REVIEW_DELAY_SECONDS=86400)


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    srv = start_tutorial_server(database_url, tmp_path_factory.mktemp("data"))
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def client(server):
    return zeep.Client(server.wsdl_url)


# The Deleting Records screenshots are older than the rest: their records show DATE SUBMITTED
# 07/18/2019, and the tutorial's deadline for deletes is "12/31 of each year" (706), so a 2019 record
# can be deleted only in 2019. Those examples also replay on that day, on a database of their own.
DELETES_DAY = "2019-07-18"


@pytest.fixture(scope="module")
def deletes_day(database_url, tmp_path_factory):
    data = tmp_path_factory.mktemp("deletes-day")
    url, drop = (f"sqlite:///{data / 'pars.db'}", None) if database_url.startswith("sqlite") else _pg_database(PG_URL)
    srv = start_tutorial_server(url, data, today=DELETES_DAY)
    yield srv
    stop_server(srv)
    if drop is not None:
        drop()


def tab_file(lines: list[str]) -> bytes:
    """A file saved from Excel as tab-delimited text: the lines as the tutorial prints them."""
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def upload(server, name: str, data: bytes, file_type: str = "txt") -> dict:
    response = post_file(server, name, data, file_type)
    assert response.status_code == 202, response.text
    return wait_finished(server, response.json()["id"])


# -- the pages, as a provider's browser uses them ------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def logged_in(server) -> requests.Session:
    session = requests.Session()
    token = _CSRF.search(session.get(server.base_url + "/login", timeout=30).text).group(1)
    response = session.post(
        server.base_url + "/login",
        timeout=30,
        data={
            "csrf_token": token,
            "provider_id": PROVIDER_ID,
            "email": SANDBOX_WEB_EMAIL,
            "password": SANDBOX_WEB_PASSWORD,
        },
    )
    assert response.ok and "/home" in response.url
    return session


def page_text(response) -> str:
    """The page's text, tags removed and entities read, blanks folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def csrf_of(response) -> str:
    return _CSRF.search(response.text).group(1)


# -- Manual Entry Errors ---------------------------------------------------------------------------------


def test_manual_entry_errors(server):
    """Traci Test on the North Carolina course: learner ID 999998 gives 664 on the row; with 999993 the
    record is saved and shows ACCEPTED."""
    session = logged_in(server)
    url = f"{server.base_url}/activities/200930054"
    form = session.get(url, params={"board": "NC", "rows": "1"}, timeout=30)
    row = {
        "r1-first_name": "Traci",
        "r1-last_name": "Test",
        "r1-completion_date": "05/25/2019",
        "r1-dob": "07/01",
        "r1-learner_id": "999998",
        "r1-credits": "5",
        "r1-credit_type": "AMA PRA Category 1",
    }
    saved = session.post(
        url, timeout=30, data={"csrf_token": csrf_of(form), "board": "NC", "row": "1", "save": "1", **row}
    )
    assert saved.status_code == 200
    assert f"Errors: 999998 - 664: {MSG_664}" in page_text(saved)

    row["r1-learner_id"] = "999993"
    saved = session.post(
        url, timeout=30, data={"csrf_token": csrf_of(saved), "board": "NC", "row": "1", "save": "1", **row}
    )
    text = page_text(saved)
    assert "Traci Test (999993) saved: ACCEPTED" in text
    assert "Traci Test 05/25/2019 07/01 999993 N/A ACCEPTED 5" in text


# -- Tab Delimited and XML Batch Upload errors --------------------------------------------------------------

# The tutorial's error report, as printed (its header lists Learner ID before Learner ID Type; the
# values follow the template).
ERROR_REPORT_HEADER = TAB.join(
    [
        "1. Template (DO NOT ALTER OR)",
        "2. Activity Registration",
        "3. ACCME Activity ID",
        "4. Learner ID",
        "5. Learner ID Type",
        "6. First Name",
        "7. Last Name",
        "8. Date of Birth",
        "9. Date of Completion",
        "10. Action",
        "11. Number of Credits",
        "12. Activity Certification (1st)",
        "13. Activity Certification (2nd)",
        "14. Activity Certification (3rd)",
        "15. Activity Certification (4th)",
        "16. Activity Certification (5th)",
        "17. Activity Certification (6th)",
        "18. Error Code",
        "19. Error Message",
    ]
)
ERROR_REPORT_ROWS = [
    [
        "Learner Template B",
        "ABPATH",
        "200608132",
        "ABPATH",
        "1000109",
        "Test5",
        "Account5",
        "Jun-70",
        "10/6/2019",
        "Add",
        "12",
        "ABPath MOC Part II",
        "",
        "",
        "",
        "",
        "",
        "664",
        MSG_664,
    ],
    [
        "Learner Template B",
        "ABPATH",
        "200608132",
        "ABPATH",
        "1000112",
        "Test8",
        "Account8",
        "Sep-66",
        "10/6/2019",
        "Add",
        "8.5",
        "ABPath MOC Part II",
        "",
        "",
        "",
        "",
        "",
        "664",
        MSG_664,
    ],
    [
        "Learner Template B",
        "ABPATH",
        "200608133",
        "ABPATH",
        "1000113",
        "Test9",
        "Account9",
        "1-Oct",
        "10/6/2019",
        "Add",
        "12",
        "ABPath MOC Part II",
        "",
        "",
        "",
        "",
        "",
        "690",
        MSG_690,
    ],
]
# The other seven learners of 200930149_May_Learners.txt (10 records: 7 processed, 3 not processed).
PROCESSED = [
    ("1000106", "Test2", "Account2", "03/01"),
    ("1000107", "Test3", "Account3", "04/01"),
    ("1000108", "Test4", "Account4", "05/01"),
    ("1000110", "Test6", "Account6", "07/01"),
    ("1000111", "Test7", "Account7", "08/01"),
    ("1000105", "Test10", "Account10", "02/01"),
    ("1000104", "Test11", "Account11", "01/01"),
]
TEMPLATE_HEADER = TAB.join(
    [
        "1. Template (DO NOT ALTER OR DELETE THIS COLUMN)",
        "2. Activity Registration",
        "3. ACCME Activity ID",
        "4. Learner ID Type",
        "5. Learner ID",
        "6. First Name",
        "7. Last Name",
        "8. Date of Birth (MM/DD)",
        "9. Date of Completion",
        "10. Action",
        "11. Number of Credits",
        "12. Activity Certification (1st)",
        "13. Activity Certification (2nd)",
        "14. Activity Certification (3rd)",
        "15. Activity Certification (4th)",
        "16. Activity Certification (5th)",
        "17. Activity Certification (6th)",
    ]
)


def test_tab_delimited_and_xml_batch_upload_errors_error_report(server):
    """200930149_May_Learners.txt: 10 records, 7 processed, 3 not processed; its error report holds
    the tutorial's three rows with 664, 664 and 690, and goes back in as it is."""
    # A file of the wrong type or format is refused whole, with the tutorial's messages.
    refused = post_file(server, "20930149_May_Learners.txt", b"hello", "xml")
    assert refused.json()["error"] == "THE FILE SELECTED IS NOT A .XML FILE. PLEASE UPLOAD A .XML FILE."
    refused = post_file(server, "20930149_May_Learners.txt", b"First\tLast\nTraci\tTest\n", "txt")
    assert refused.json()["error"].startswith(
        "THE FILE IS NOT FORMATTED CORRECTLY. PLEASE USE THE FORMAT PROVIDED IN THIS TEMPLATE."
    )

    good = [
        TAB.join(
            [
                "Learner Template B",
                "ABPATH",
                "200608132",
                "ABPATH",
                learner_id,
                first,
                last,
                dob,
                "10/6/2019",
                "Add",
                "12",
                "ABPath MOC Part II",
            ]
        )
        for learner_id, first, last, dob in PROCESSED
    ]
    bad = [TAB.join(row[:17]) for row in ERROR_REPORT_ROWS]
    rows = good[:3] + bad[:1] + good[3:5] + bad[1:] + good[5:]
    batch = upload(server, "200930149_May_Learners.txt", tab_file([TEMPLATE_HEADER, *rows]))
    assert (batch["records"], batch["processed"], batch["not_processed"]) == (10, 7, 3)
    report = report_lines(api_get(server, batch["links"]["errors"]).content)
    assert report[1:] == ERROR_REPORT_ROWS

    # "You do not need to remove the columns with the Error Code and Error Message": the report as
    # the tutorial prints it is read by the template's positions and judged the same.
    again = upload(
        server,
        "200930149_May_Learners_errors.txt",
        tab_file([ERROR_REPORT_HEADER, *(TAB.join(row) for row in ERROR_REPORT_ROWS)]),
    )
    assert (again["records"], again["processed"], again["not_processed"]) == (3, 0, 3)
    assert report_lines(api_get(server, again["links"]["errors"]).content)[1:] == ERROR_REPORT_ROWS


# -- Errors from the Board -------------------------------------------------------------------------------


def test_errors_from_the_board(server, client):
    """Test9 and Test11 are Rejected by the board (Test11 with 664), Test10 Accepted; the provider is
    e-mailed the rejections."""
    learners = [
        ("1000113", "Test9", "Account9", "10/1"),
        ("1000104", "Test11", "Account11", "1/1"),
        ("1000105", "Test10", "Account10", "2/1"),
    ]
    rows = [
        TAB.join(
            [
                "Learner Template B",
                "ABPATH",
                "200608132",
                "ABPATH",
                learner_id,
                first,
                last,
                dob,
                "12/01/2019",
                "Add",
                "2",
                "ABPath MOC Part II",
            ]
        )
        for learner_id, first, last, dob in learners
    ]
    batch = upload(server, "board_errors.txt", tab_file([TEMPLATE_HEADER, *rows]))
    stored = api_get(server, batch["links"]["records"]).json()["records"]
    assert [r["result"] for r in stored] == ["Submitted"] * 3
    assert requests.post(f"{server.base_url}/api/review/run", auth=AUTH, timeout=30).ok
    creds = {"ProviderId": PROVIDER_ID, "User": SANDBOX_USER, "Password": SANDBOX_PASSWORD}
    statuses = []
    for r in stored:
        (status,) = client.service.GetLearnerStatusByCreditId(**creds, CreditID=r["credit_id"])
        errors = status.Errors.Error if status.Errors is not None else []
        statuses.append((status.LearnerID, status.Status, [int(e.Code) for e in errors or []]))
    assert statuses[1:] == [("1000104", "Rejected", [664]), ("1000105", "Accepted", [])]
    assert statuses[0][:2] == ("1000113", "Rejected")
    # The provider is e-mailed the rejections (no SMTP server here: an .eml file in the outbox).
    deadline = time.monotonic() + 30
    while not (
        mails := [
            m for m in map(_mail, (server.data_dir / "outbox").glob("*.eml")) if "rejected by the board" in m["Subject"]
        ]
    ):
        assert time.monotonic() < deadline, "no rejection mail"
        time.sleep(0.2)
    text = mails[0].get_content()
    assert "- Test11 Account11, learner ID 1000104, ABPATH, activity 200608132, completed 12/01/2019" in text
    assert f"  Error 664: {MSG_664}" in text and "Test9 Account9" in text and "Test10" not in text


def _mail(path):
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


# -- Deleting Records ------------------------------------------------------------------------------------


def _details(session, server, **params):
    return session.get(f"{server.base_url}/records", params=params, timeout=30)


def _add_traci_tester(session, server, times: int):
    """Traci Tester's records of the Maine pilot through the web form: 07/18/2019, 14 credits each."""
    url = f"{server.base_url}/activities/200930280"
    form = session.get(url, params={"board": "ME-MD", "rows": "1"}, timeout=30)
    for _ in range(times):
        row = {
            "r1-first_name": "Traci",
            "r1-last_name": "Tester",
            "r1-completion_date": "07/18/2019",
            "r1-dob": "11/10",
            "r1-learner_id": "MD9966",
            "r1-credits": "14",
            "r1-credit_type": "AMA PRA Category 1",
        }
        form = session.post(
            url, timeout=30, data={"csrf_token": csrf_of(form), "board": "ME-MD", "row": "1", "save": "1", **row}
        )
        assert "Traci Tester (MD9966) saved: ACCEPTED" in page_text(form), page_text(form)


def _delete_on_the_page(session, server, details, credit_id: str):
    return session.post(
        f"{server.base_url}/records/delete",
        timeout=30,
        data={
            "csrf_token": csrf_of(details),
            "activity_id": "200930280",
            "board": "ME-MD",
            "learner_id": "MD9966",
            "credit_id": credit_id,
        },
    )


def test_deleting_records_from_the_details_view(server, deletes_day):
    """Traci Tester's two records of the Maine pilot (14 credits each, 28 in all): on the day of the
    screenshots one is selected on the details page and deleted; on 2020-01-16 her 2019 record is past
    the deadline for deletes (706). A Submitted record cannot be deleted until it has been processed:
    the page offers no checkbox for it and says why, and a Delete in a file gets 605."""
    for srv in (deletes_day, server):
        session = logged_in(srv)
        _add_traci_tester(session, srv, 2)
        details = _details(session, srv, activity_id="200930280", board="ME-MD", learner_id="MD9966")
        text = page_text(details)
        assert "Learner ID: MD9966" in text and "Total Credits/Points Earned: 28" in text
        credit_ids = re.findall(r'name="credit_id" value="([^"]+)"', details.text)
        assert len(credit_ids) == 2
        deleted = page_text(_delete_on_the_page(session, srv, details, credit_ids[1]))
        if srv is deletes_day:
            assert "Deleted 1 record." in deleted and "Total Credits/Points Earned: 14" in deleted
        else:
            assert f"{credit_ids[1]} - 706: {MSG_706}" in deleted and "Total Credits/Points Earned: 28" in deleted

    # A Submitted record (ABPATH reviews): no checkbox on the page, 605 in a file.
    row = [
        "Learner Template B",
        "ABPATH",
        "200608132",
        "ABPATH",
        "999925",
        "Susan",
        "O'Laughlin",
        "01/01",
        "12/02/2019",
        "Add",
        "1",
        "ABPath MOC Part II",
    ]
    batch = upload(server, "submitted.txt", tab_file([TEMPLATE_HEADER, TAB.join(row)]))
    [stored] = api_get(server, batch["links"]["records"]).json()["records"]
    assert stored["status"] == "Submitted"
    details = _details(session, server, activity_id="200608132", board="ABPATH", learner_id="999925")
    assert stored["credit_id"] in details.text
    assert 'name="credit_id"' not in details.text and ">Delete</button>" not in details.text
    assert (
        "A record with a status of Submitted must finish processing by the board before it can be deleted."
        in page_text(details)
    )
    rows = row[:9] + ["Delete"] + row[10:]
    refused = upload(server, "submitted-delete.txt", tab_file([TEMPLATE_HEADER, TAB.join(rows)]))
    assert refused["not_processed"] == 1
    assert report_lines(api_get(server, refused["links"]["errors"]).content)[1][17:] == ["605", MSG_605]


# The tutorial's delete file: columns A to L, through "12. Activity Certification (1st)".
TWELVE_COLUMNS = TAB.join(
    [
        "1. Template (DO NOT ALTER OR DELETE THIS COLUMN)",
        "2. Activity Registration",
        "3. ACCME Activity ID",
        "4. Learner ID Type",
        "5. Learner ID",
        "6. First Name",
        "7. Last Name",
        "8. Date of Birth (MM/DD) -",
        "9. Date of Completion",
        "10. Action",
        "11. Number of Credits",
        "12. Activity Certification (1st)",
    ]
)


def twelve_column_file(action: str) -> bytes:
    return tab_file(
        [
            TWELVE_COLUMNS,
            TAB.join(
                [
                    "Learner Template B",
                    "ABO",
                    "200931446",
                    "ABO",
                    "98989",
                    "Vincent",
                    "Van Gogh",
                    "03/30",
                    "2/10/2019",
                    action,
                    "0.25",
                    "ABO MOC Part II",
                ]
            ),
            TAB.join(
                [
                    "Learner Template B",
                    "ABO",
                    "200931446",
                    "ABO",
                    "97979",
                    "Georgia",
                    "O'Keeffe",
                    "11/15",
                    "5/5/2019",
                    action,
                    "0.25",
                    "ABO MOC Part II",
                ]
            ),
        ]
    )


def test_deleting_records_template_b_delete_file(server, deletes_day):
    """The Van Gogh / O'Keeffe file of 12 columns is read. Uploaded with Add, both are Accepted (ABO
    accepts at once); the same file with Delete deletes them while their year is open (the day of the
    screenshots). On 2020-01-16 their 2019 completions are past the deadline for deletes: 706."""
    for srv in (deletes_day, server):
        added = upload(srv, "delete-file-add.txt", twelve_column_file("Add"))
        assert (added["records"], added["processed"], added["not_processed"]) == (2, 2, 0)
        stored = api_get(srv, added["links"]["records"]).json()["records"]
        assert [(r["first_name"], r["result"]) for r in stored] == [("Vincent", "Accepted"), ("Georgia", "Accepted")]
        deleted = upload(srv, "delete-file.txt", twelve_column_file("Delete"))
        assert deleted["records"] == 2
        if srv is deletes_day:
            assert (deleted["processed"], deleted["not_processed"]) == (2, 0)
            gone = api_get(srv, deleted["links"]["records"]).json()["records"]
            assert [(r["credit_id"], r["result"]) for r in gone] == [(r["credit_id"], "Deleted") for r in stored]
        else:
            assert (deleted["processed"], deleted["not_processed"]) == (0, 2)
            report = report_lines(api_get(srv, deleted["links"]["errors"]).content)
            assert [line[-2:] for line in report[1:]] == [["706", MSG_706], ["706", MSG_706]]


# The tutorial's XML delete example, completed into a whole document: no hx:accreditingBody, the board
# is known from the learner ID's domain ("ABO") and the credit type ("ABO MOC Part II").
XML_EXAMPLE = """<?xml version="1.0" encoding="UTF-8"?>
<ar:ActivityReports xmlns:ar="http://ns.medbiq.org/activityreport/v1/" xmlns:m="http://ns.medbiq.org/member/v1/"
    xmlns:n="http://ns.medbiq.org/name/v1/" xmlns:hx="http://ns.medbiq.org/lom/extend/v1/"
    xmlns:ex="urn:pars-ws:activityreport-extension:v1">
  <ar:DateTimeCreated>2020-01-16T14:31:00</ar:DateTimeCreated>
  <ar:ActivityReport>
    <ar:ReportingOrganization>Western Regional Medical Center</ar:ReportingOrganization>
    <ar:Member>
      <m:UniqueID domain="ABO">98989</m:UniqueID>
      <m:Name><n:GivenName>Vincent</n:GivenName><n:FamilyName>Van Gogh</n:FamilyName></m:Name>
      <m:PersonalInfo><m:BirthDate>1900-03-30</m:BirthDate></m:PersonalInfo>
    </ar:Member>
    <ar:Activity>
      <ar:ProviderOrganization>Western Regional Medical Center</ar:ProviderOrganization>
      <ar:ActivityName>Annual Meeting for Ophthalmology</ar:ActivityName>
      <ar:Module>
        <ar:ModuleName moduleID="200608492">Annual Meeting for Ophthalmology</ar:ModuleName>
        <ar:Status>Completed</ar:Status>
        <ar:CompletedDateTime>2020-01-02T16:15:00</ar:CompletedDateTime>
        <ar:CreditCertificate>
          <ar:CreditReceived>
            <hx:activityCertification>ABO MOC Part II</hx:activityCertification>
            <hx:creditUnit>Point</hx:creditUnit>
            <hx:numberOfCredits>4</hx:numberOfCredits>
          </ar:CreditReceived>
          <ar:CreditID>ccid:testProvider.org:123488</ar:CreditID>
        </ar:CreditCertificate>
      </ar:Module>
    </ar:Activity>
    <ar:XtensibleInfo>
      <ex:learnerRecordAction>ACTION</ex:learnerRecordAction>
    </ar:XtensibleInfo>
  </ar:ActivityReport>
</ar:ActivityReports>
"""


def _soap(server, body: str):
    envelope = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:p="urn:pars-ws:learner:v1">'
        f"<soap:Body><p:SaveLearnerActivity><p:ProviderId>{PROVIDER_ID}</p:ProviderId><p:User>{SANDBOX_USER}</p:User>"
        f"<p:Password>{SANDBOX_PASSWORD}</p:Password>{body}</p:SaveLearnerActivity></soap:Body></soap:Envelope>"
    )
    response = requests.post(
        server.service_url,
        data=envelope.encode(),
        timeout=60,
        headers={
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": '"urn:pars-ws:learner:v1/SaveLearnerActivity"',
        },
    )
    assert response.status_code == 200, response.text
    ns = {"p": "urn:pars-ws:learner:v1"}
    return [
        (
            r.findtext("p:Status", namespaces=ns),
            [int(c) for c in r.xpath("p:Errors/p:Error/p:Code/text()", namespaces=ns)],
        )
        for r in etree.fromstring(response.content).iterfind(".//p:RecordResult", ns)
    ]


def test_deleting_records_xml_delete_example(server, client):
    """The record is added through the web service and deleted by the tutorial's XML, uploaded as a
    batch file: the same CreditID and fields, learnerRecordAction delete."""
    document = XML_EXAMPLE.split("\n", 1)[1]  # inside a SOAP body: no XML declaration
    assert _soap(server, document.replace("ACTION", "add")) == [("Accepted", [])]
    creds = {"ProviderId": PROVIDER_ID, "User": SANDBOX_USER, "Password": SANDBOX_PASSWORD}
    (status,) = client.service.GetLearnerStatusByCreditId(**creds, CreditID="ccid:testProvider.org:123488")
    assert (status.Board, status.LearnerID, status.Status, str(status.Credits)) == ("ABO", "98989", "Accepted", "4")

    batch = upload(server, "delete-example.xml", XML_EXAMPLE.replace("ACTION", "delete").encode(), "xml")
    assert (batch["records"], batch["processed"], batch["not_processed"]) == (1, 1, 0)
    [deleted] = api_get(server, batch["links"]["records"]).json()["records"]
    assert (deleted["credit_id"], deleted["result"]) == ("ccid:testProvider.org:123488", "Deleted")
    (status,) = client.service.GetLearnerStatusByCreditId(**creds, CreditID="ccid:testProvider.org:123488")
    assert status.Status == "Deleted"
