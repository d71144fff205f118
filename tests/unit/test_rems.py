"""Opioid Analgesic REMS participants: the rules, the two readers (REMS participant template and
Activity Report v2), and REMS batches through the service layer on a real database."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io

import pytest

from pars_ws.adapters.activity_report import InvalidDocument
from pars_ws.adapters.data_files import load_rems_values
from pars_ws.adapters.rems_files import (
    ERROR_HEADER,
    HEADER,
    MSG_NOT_TEMPLATE,
    TEMPLATE_NAME,
    read_rems_document,
    read_rems_template,
    write_rems_template,
)
from pars_ws.adapters.template_b import FileRefused
from pars_ws.domain.activities import Activity
from pars_ws.domain.errors import MESSAGES
from pars_ws.domain.rems import FIELD_VALUE, ReportedParticipant, judge_participant
from pars_ws.service import batches, rems
from pars_ws.settings import Settings
from tests.conftest import ROOT

SAMPLES = ROOT / "sample_requests" / "rems"
VALUES = load_rems_values()
TODAY = dt.date(2026, 6, 15)
REMS_ACTIVITY = Activity(
    "200930135", "OA REMS Activity", "Course", dt.date(2025, 1, 1), dt.date(2026, 12, 31), 2026, 20, rems=True
)
GOOD = ReportedParticipant(
    index=1,
    activity_id="200930135",
    participant_id="H1",
    participant_id_domain=None,
    completion_date="03/02/2026",
    profession="Physician",
    state="MI",
    dea_registration="Individual",
    practice_area="Pain",
    surgical_procedures="No",
    time_in_practice="6-10 years",
)


def judged(activity=REMS_ACTIVITY, **changes):
    return judge_participant(dataclasses.replace(GOOD, **changes), activity, VALUES, TODAY)


# -- rules ------------------------------------------------------------------------------------------


def test_a_good_participant_is_accepted_in_the_standards_spelling():
    j = judged(profession="physician", state="michigan", dea_registration="INDIVIDUAL", surgical_procedures="yes")
    assert j.ok and j.status.value == "Accepted"
    assert (j.stored.profession, j.stored.state, j.stored.dea_registration) == ("Physician", "MI", "Individual")
    assert j.stored.completion_date == dt.date(2026, 3, 2) and j.stored.surgical_procedures is True


def test_optional_fields_may_be_left_out_but_profession_may_not():
    j = judged(state=None, dea_registration=None, practice_area=None, surgical_procedures=None, time_in_practice=None)
    assert j.ok and j.stored.state is None and j.stored.surgical_procedures is None
    missing = judged(profession=None)
    assert missing.codes == [FIELD_VALUE] and missing.codes[0].name == "Profession"


@pytest.mark.parametrize(
    "changes, code",
    [
        (dict(participant_id=None), 621),
        (dict(activity_id=None), 630),
        (dict(activity_id="200999999"), 690),
        (dict(completion_date=None), 631),
        (dict(completion_date="13/45/2026"), 671),
        (dict(completion_date="07/01/2026"), 671),  # after today
        (dict(completion_date="12/31/2024"), 672),  # before the activity's start
    ],
)
def test_identity_activity_and_date_rules(changes, code):
    activity = None if changes.get("activity_id") == "200999999" else REMS_ACTIVITY
    assert judged(activity, **changes).codes == [code]


def test_an_activity_that_is_not_a_rems_activity_is_670():
    boards_only = dataclasses.replace(REMS_ACTIVITY, rems=False)
    assert judged(boards_only).codes == [670]
    assert "registered" in MESSAGES[670]


def test_each_field_value_the_standard_does_not_list_is_one_998_naming_the_fields():
    j = judged(
        profession="Surgeon",
        state="Ontario",
        dea_registration="Yes",
        practice_area="Cardiology",
        surgical_procedures="sometimes",
        time_in_practice="forever",
    )
    assert j.codes == [FIELD_VALUE] and not j.stored
    assert j.codes[0].name == (
        "Profession, State of Primary Practice, DEA Registration, Practice Area, Surgical Procedures, Time in Practice"
    )


def test_codes_come_once_each_in_code_order():
    j = judged(activity=None, participant_id=None, activity_id=None, profession="x")
    assert j.codes == [621, 630, FIELD_VALUE]


# -- readers ------------------------------------------------------------------------------------------

LIMITS = Settings.from_env().limits


def tab(*rows, header=True) -> bytes:
    lines = (["\t".join(HEADER)] if header else []) + ["\t".join((TEMPLATE_NAME, *r)) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode()


def test_the_template_sample_reads_as_written():
    found = read_rems_template((SAMPLES / "rems-participants.txt").read_bytes())
    assert [p.participant_id for p in found] == ["H046432", "H046433", "H046434"]
    assert found[1].state == "North Carolina" and found[1].surgical_procedures is None
    assert found[0].original[0] == TEMPLATE_NAME


def test_the_template_reader_takes_a_file_without_header_and_its_own_error_report_back():
    assert len(read_rems_template(tab(("200930135", "H1", "03/02/2026", "Nurse"), header=False))) == 1
    report = (
        "\ufeff"
        + ",".join(ERROR_HEADER)
        + "\r\n"
        + TEMPLATE_NAME
        + ",200930135,H1,03/02/2026,Surgeon,MI,,,,,998,General learner record processing error.,Profession\r\n"
    )
    (p,) = read_rems_template(report.encode())
    assert (p.profession, p.state, p.completion_date) == ("Surgeon", "MI", "03/02/2026")


@pytest.mark.parametrize(
    "data",
    [
        b"First Name\tLast Name\nA\tB\n",
        (SAMPLES / "rems-participants.xml").read_bytes(),
        "\t".join(HEADER).encode(),
    ],
)
def test_a_file_that_is_not_the_template_is_refused_whole(data):
    with pytest.raises(FileRefused) as refused:
        read_rems_template(data)
    assert refused.value.message == MSG_NOT_TEMPLATE


def test_more_participants_than_the_limit_are_refused_whole():
    with pytest.raises(FileRefused, match="MORE THAN 2 RECORDS"):
        read_rems_template(tab(*[("200930135", f"H{i}", "03/02/2026", "Nurse") for i in range(3)]), max_records=2)


def test_the_v2_sample_reads_each_participant_with_its_reports_activity_and_date():
    found = read_rems_document((SAMPLES / "rems-participants.xml").read_bytes(), LIMITS)
    assert [(p.index, p.participant_id, p.activity_id) for p in found] == [
        (1, "H046431", "200930135"),
        (2, "H025461", "200930135"),
    ]
    assert found[0].completion_date == "2026-03-01T00:00:00"
    assert (found[1].profession, found[1].state, found[1].participant_id_domain) == (
        "Nurse",
        "Wisconsin",
        "idd:testprovider.org:ce",
    )


def test_a_learner_file_or_a_bad_date_in_v2():
    learners = (ROOT / "sample_requests" / "batch" / "activityreports-v2-sample.xml").read_bytes()
    with pytest.raises(InvalidDocument):
        read_rems_document(learners, LIMITS)
    bad_date = (SAMPLES / "rems-participants.xml").read_bytes().replace(b"2026-03-01T00:00:00", b"2026-02-30")
    assert read_rems_document(bad_date, LIMITS)[0].completion_date == "2026-02-30"  # 671, not a refused file


def test_the_downloadable_template_is_the_header_line():
    assert write_rems_template().decode().rstrip("\r\n").split("\t") == list(HEADER)


# -- REMS batches on a database ------------------------------------------------------------------------


def upload_and_process(services, account, data, name, file_type, **kwargs):
    queued = batches.upload(
        services, account, file_name=name, data=data, file_type=file_type, submission_type="rems", **kwargs
    )
    assert queued.submission_type == "rems" and queued.status == "queued"
    assert batches.process_next(services, "test-worker") == 1
    return batches.get(services, account, queued.id)


def test_a_rems_xml_batch_stores_its_participants(services, account):
    done = upload_and_process(services, account, (SAMPLES / "rems-participants.xml").read_bytes(), "rems.xml", "xml")
    assert (done.status, done.records, done.processed, done.not_processed) == ("done", 2, 2, 0)
    stored = rems.participants(services, account, done.id)
    assert [(p.batch_row, p.participant_id, p.state, p.surgical_procedures) for p in stored] == [
        (1, "H046431", "MI", True),
        (2, "H025461", "WI", False),
    ]
    assert stored[0].completion_date == dt.date(2026, 3, 1)


def test_a_rems_tab_batch_reports_what_it_did_not_process(services, account):
    data = tab(
        ("200930135", "T1", "03/02/2026", "Pharmacist", "NC"),
        ("200930149", "T2", "03/02/2026", "Pharmacist"),  # a boards activity: 670
        ("200930135", "T3", "03/02/2026", "Surgeon", "Ontario"),
    )
    done = upload_and_process(services, account, data, "rems.txt", "txt")
    assert (done.processed, done.not_processed) == (1, 2)
    assert [p.participant_id for p in rems.participants(services, account, done.id)] == ["T1"]
    name, report = batches.error_report(services, account, done.id)
    rows = list(csv.reader(io.StringIO(report.decode("utf-8-sig"))))
    assert rows[0] == list(ERROR_HEADER)
    assert [r[2] for r in rows[1:]] == ["T2", "T3"]
    assert [r[10:] for r in rows[1:]] == [
        ["670", MESSAGES[670], ""],
        ["998", MESSAGES[998], "Profession, State of Primary Practice"],
    ]
    # Corrected in the report and uploaded again, as it is.
    fixed = report.replace(b"Surgeon,Ontario", b"Physician,ME").replace(b"200930149", b"200930135")
    again = upload_and_process(services, account, fixed, "rems_errors.csv", "txt")
    assert (again.processed, again.not_processed) == (2, 0)


@pytest.mark.parametrize(
    "file_type, name, submission_type, message",
    [
        ("xlsx", "rems.xlsx", "rems", rems.MSG_FILE_TYPE),
        ("txt", "rems.txt", "cme", rems.MSG_SUBMISSION_TYPE),
        ("txt", "rems.txt", "rems", MSG_NOT_TEMPLATE),
    ],
)
def test_refused_rems_uploads(services, account, file_type, name, submission_type, message):
    data = (
        (ROOT / "sample_requests" / "excel" / "learners.xlsx").read_bytes()
        if file_type == "xlsx"
        else b"1. Template\tfoo\nLearner Template B\t1\n"
    )
    with pytest.raises(batches.UploadRefused) as refused:
        batches.upload(
            services, account, file_name=name, data=data, file_type=file_type, submission_type=submission_type
        )
    assert refused.value.message == message


def test_a_learner_file_uploaded_without_a_submission_type_is_a_boards_batch(services, account):
    info = batches.upload(
        services,
        account,
        file_name="learners.xml",
        file_type="xml",
        data=(ROOT / "sample_requests" / "batch" / "activityreports-sample.xml").read_bytes(),
    )
    assert info.submission_type == "boards"
    assert batches.process_next(services, "test-worker") == 1


def test_a_provider_without_a_rems_activity_cannot_submit_rems(services, account):
    production = dataclasses.replace(account, environment="production")  # no activities there
    assert not rems.participates(services, production) and rems.participates(services, account)
    with pytest.raises(batches.UploadRefused) as refused:
        batches.upload(
            services,
            production,
            file_name="rems.txt",
            data=tab(("200930135", "H9", "03/02/2026", "Nurse")),
            file_type="txt",
            submission_type="rems",
        )
    assert refused.value.message == rems.MSG_NOT_PARTICIPATING


def test_saving_a_rems_activity_again_through_save_activity_keeps_its_mark(services, account):
    activity = services.activities.get(account, "200930135")
    assert activity.rems
    saved = services.activities.save(
        account, dataclasses.replace(activity, title="OA REMS Activity, renamed", rems=False)
    )
    assert saved.rems and services.activities.get(account, "200930135").rems
