"""Opioid Analgesic REMS participant files end to end: the JSON API (submission_type=rems) and
`pars-ws upload --submission-type rems` against gunicorn and its batch worker, stored in the database."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import func, select

from pars_ws.adapters import tables as t
from pars_ws.adapters.database import make_engine
from pars_ws.adapters.rems_files import ERROR_HEADER, HEADER, TEMPLATE_NAME
from pars_ws.domain.errors import MESSAGES
from tests.conftest import ROOT
from tests.e2e.test_batches import AUTH, api_get, cli_env, pars_ws, report_lines, wait_finished

pytestmark = pytest.mark.e2e

SAMPLES = ROOT / "sample_requests" / "rems"


def post_rems(server, name: str, data: bytes, file_type: str, **fields):
    return requests.post(
        f"{server.base_url}/api/batches",
        auth=AUTH,
        timeout=60,
        files={"file": (name, data)},
        data={"file_type": file_type, **fields},
    )


def stored(database_url: str, batch_id: int) -> list:
    engine = make_engine(database_url)
    p = t.rems_participants
    try:
        with engine.connect() as conn:
            return conn.execute(
                select(p.c.batch_row, p.c.participant_id, p.c.profession, p.c.state)
                .where(p.c.batch_pk == batch_id)
                .order_by(p.c.batch_row)
            ).all()
    finally:
        engine.dispose()


def test_a_rems_xml_file_uploaded_through_the_api_is_stored_end_to_end(server, database_url):
    response = post_rems(
        server, "rems-participants.xml", (SAMPLES / "rems-participants.xml").read_bytes(), "xml", submission_type="rems"
    )
    assert response.status_code == 202, response.text
    assert response.json()["submission_type"] == "rems" and response.json()["records"] == 2
    batch = wait_finished(server, response.json()["id"])
    assert (batch["status"], batch["processed"], batch["not_processed"]) == ("done", 2, 0)
    assert [tuple(r) for r in stored(database_url, batch["id"])] == [
        (1, "H046431", "Physician", "MI"),
        (2, "H025461", "Nurse", "WI"),
    ]
    participants = api_get(server, batch["links"]["records"]).json()["participants"]
    assert [(p["participant_id"], p["completion_date"], p["dea_registration"]) for p in participants] == [
        ("H046431", "2026-03-01", "Individual"),
        ("H025461", "2026-03-01", "None"),
    ]


def test_a_bad_rems_file_gets_its_error_report(server, database_url):
    rows = [
        ("200930135", "E1", "04/01/2026", "Dentist", "ME", "None"),
        ("200930135", "", "04/01/2026", "Dentist"),  # 621
        ("200930054", "E3", "04/01/2026", "Dentist"),  # not a REMS activity: 670
        ("200930135", "E4", "04/01/2027", "Chiropractor", "XX", "Sometimes"),
    ]  # 671 and 998
    data = ("\t".join(HEADER) + "\r\n" + "".join("\t".join((TEMPLATE_NAME, *r)) + "\r\n" for r in rows)).encode()
    response = post_rems(server, "rems-april.txt", data, "txt", submission_type="rems")
    assert response.status_code == 202, response.text
    batch = wait_finished(server, response.json()["id"])
    assert (batch["processed"], batch["not_processed"]) == (1, 3)
    assert [r.participant_id for r in stored(database_url, batch["id"])] == ["E1"]
    report = requests.get(server.base_url + batch["links"]["errors"], auth=AUTH, timeout=30)
    assert report.status_code == 200 and report.headers["Content-Disposition"].endswith('rems-april_errors.csv"')
    lines = report_lines(report.content)
    assert lines[0] == list(ERROR_HEADER)
    assert [(line[2], line[10], line[12]) for line in lines[1:]] == [
        ("", "621", ""),
        ("E3", "670", ""),
        ("E4", "671", ""),
        ("E4", "998", "Profession, State of Primary Practice, DEA Registration"),
    ]
    assert lines[1][11] == MESSAGES[621]


def test_the_api_and_cli_default_to_licensing_or_specialty_boards(server):
    # A REMS file sent without a submission type is judged as a learner file: refused whole.
    response = post_rems(server, "rems.txt", (SAMPLES / "rems-participants.txt").read_bytes(), "txt")
    assert response.status_code == 400 and response.json()["reason"] == "invalid"
    bad = post_rems(server, "rems.txt", b"x", "txt", submission_type="cme")
    assert bad.status_code == 400 and "SUBMISSION TYPE" in bad.json()["error"]


def test_cli_uploads_a_rems_participant_file(server, database_url, tmp_path):
    done = pars_ws(cli_env(server), "upload", "--submission-type", "rems", str(SAMPLES / "rems-participants.txt"))
    assert "3 records: 3 processed, 0 not processed" in done.stdout, done.stderr
    batch_id = int(done.stdout.split("queued as batch ")[1].split()[0])
    assert len(stored(database_url, batch_id)) == 3
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            assert (
                conn.execute(select(t.batches.c.submission_type).where(t.batches.c.id == batch_id)).scalar_one()
                == "rems"
            )
            assert (
                conn.execute(
                    select(func.count()).select_from(t.learner_records).where(t.learner_records.c.batch_pk == batch_id)
                ).scalar_one()
                == 0
            )
    finally:
        engine.dispose()
