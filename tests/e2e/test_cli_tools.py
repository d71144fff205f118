"""The `pars-ws` tools around the service, against the seeded sandbox database of a running server:
`validate` (offline, no writes), `registry import`, `activities import`, `credentials create/rotate/disable`."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from zeep.exceptions import Fault

from pars_ws.adapters import tables
from pars_ws.adapters.database import make_engine
from pars_ws.adapters.template_b import write_template_b
from pars_ws.domain.records import ReportedRecord
from tests.conftest import PROVIDER_ID, gunicorn_workers, run_cli, start_server, stop_server
from tests.support import codes, record, soap11_save, xml_reports, zeep_reports

pytestmark = pytest.mark.e2e

MSG_661 = "Diplomate ID not found in Board records."
MSG_622 = "Missing diplomate first name."
MSG_603 = "Duplicate record (Credit ID was same as a previous record)."
MSG_690 = "ACCME activity ID does not exist"


def cid(name: str) -> str:
    return f"ccid:testprovider.org:cli-{name}"


def save(client, creds, records):
    return client.service.SaveLearnerActivity(**creds, ActivityReports=zeep_reports(records))


# Written by the server's own board-review worker while the tests run (Submitted -> Accepted).
WORKER_TABLES = {"record_events", "mail_outbox"}


def row_counts(database_url: str) -> dict[str, int]:
    """Rows in every table of the schema but those the background worker writes to."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in tables.metadata.sorted_tables
                if t.name not in WORKER_TABLES
            }
    finally:
        engine.dispose()


def validate(server, path, *args):
    return run_cli(server.env, "validate", str(path), *args, check=False)


# Records for the files: one passes, two fail (661; 622).
GOOD = record(cid("good"), activity_id="200900001", completed="2026-05-04T00:00:00", points="1")
UNKNOWN_ID = record(cid("unknown-id"), learner_id="0000000")
NO_FIRST_NAME = record(cid("no-first"), first=None)


OFFLINE = (
    "Judged offline against the board catalogue and the sandbox fixture (its activities and test learners; "
    "today 2026-06-15). Records already stored are not known here: 603, 605, 706, 710, 711, 717 count this "
    "file's own records only, and a Delete of a record not in the file is not judged."
)


def _expect_text(out: str) -> None:
    lines = out.strip().splitlines()
    assert f"record 1 ({GOOD['credit_id']}): Submitted" in lines
    assert f"record 2 ({UNKNOWN_ID['credit_id']}): 661 {MSG_661}" in lines
    assert f"record 3 ({NO_FIRST_NAME['credit_id']}): 622 {MSG_622}" in lines
    assert lines[-2:] == ["3 records, 1 pass, 2 with errors", OFFLINE]


@pytest.mark.parametrize("form", ["activity-reports", "soap-envelope"])
def test_validate_xml_prints_codes_and_fails_without_writing(server, database_url, tmp_path, form):
    records = [GOOD, UNKNOWN_ID, NO_FIRST_NAME]
    path = tmp_path / f"{form}.xml"
    path.write_bytes(xml_reports(records).encode() if form == "activity-reports" else soap11_save(records))
    before = row_counts(database_url)
    run = validate(server, path)
    assert run.returncode != 0, run.stdout + run.stderr
    _expect_text(run.stdout)
    assert row_counts(database_url) == before


def test_validate_exit_zero_when_every_record_passes(server, database_url, client, credentials, tmp_path):
    ok = [
        record(cid("ok-1"), activity_id="200900001", completed="2026-05-05T00:00:00", points="1"),
        record(
            cid("ok-2"),
            activity_id="200900001",
            completed="2026-05-06T00:00:00",
            points="1",
            learner_id="1000107",
            first="Test3",
            last="Account3",
            dob="1900-04-01",
        ),
    ]
    path = tmp_path / "ok.xml"
    path.write_text(xml_reports(ok), encoding="utf-8")
    before = row_counts(database_url)
    run = validate(server, path)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines == [
        f"record 1 ({cid('ok-1')}): Submitted",
        f"record 2 ({cid('ok-2')}): Submitted",
        "2 records, 2 pass, 0 with errors",
        OFFLINE,
    ]
    assert row_counts(database_url) == before
    # Nothing was stored: the same CreditIDs are still free for the service.
    response = save(client, credentials, ok)
    assert [(r.Status, codes(r)) for r in response.Results.RecordResult] == [("Submitted", []), ("Submitted", [])]


def test_validate_counts_the_files_own_records_not_the_stored_ones(server, client, credentials, tmp_path):
    """Offline, records already stored are unknown: a CreditID taken in the database passes, one used
    twice in the file is 603, and a Delete of a record not in the file is not judged (and says so)."""
    stored = record(
        cid("stored"),
        activity_id="200900001",
        completed="2026-05-07T00:00:00",
        points="1",
        learner_id="1000108",
        first="Test4",
        last="Account4",
        dob="1900-05-01",
    )
    assert save(client, credentials, [stored]).Results.RecordResult[0].Status == "Submitted"
    twice = record(
        cid("twice"),
        board="ABO",
        id_type="ABO",
        activity_id="200931446",
        learner_id="97979",
        first="Georgia",
        last="O'Keeffe",
        dob="1900-11-15",
        credit_types=("ABO MOC Part II",),
        points="1",
    )
    path = tmp_path / "dups.xml"
    path.write_text(
        xml_reports(
            [
                dict(stored, completed="2026-05-08T00:00:00"),
                twice,
                dict(twice, completed="2026-03-01T00:00:00"),
                dict(stored, action="delete"),
                dict(twice, action="delete"),
            ]
        ),
        encoding="utf-8",
    )
    run = validate(server, path, "--json")
    assert run.returncode != 0
    report = json.loads(run.stdout)
    assert [(r["index"], r["status"], [e["code"] for e in r["errors"]]) for r in report["records"]] == [
        (1, "Submitted", []),
        (2, "Accepted", []),
        (3, "Not processed", [603]),
        (4, "Not judged offline", []),
        (5, "Deleted", []),
    ]
    assert report["records"][3]["needs_stored_data"] == [605, 706] and report["offline"] == OFFLINE
    lines = validate(server, path).stdout.strip().splitlines()
    assert f"record 4 ({cid('stored')}): Not judged offline: the record it deletes is stored data" in lines
    assert lines[-2] == "5 records, 3 pass, 1 with errors, 1 not judged offline"


def test_validate_without_a_data_folder_creates_nothing(tmp_path):
    """No PARS_DATA_DIR or database: judged against the catalogue and the sandbox fixture in memory; the
    user's data folder is left as it was (it used to crash on "no such table" and leave a database)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARS_")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local" / "share"), PARS_TODAY="2026-06-15")
    path = tmp_path / "report.xml"
    path.write_text(xml_reports([GOOD, UNKNOWN_ID, NO_FIRST_NAME]), encoding="utf-8")
    run = run_cli(env, "validate", str(path), check=False)
    assert run.returncode == 1, run.stderr
    _expect_text(run.stdout)
    assert list(home.rglob("*")) == []


def test_validate_json(server, database_url, tmp_path):
    path = tmp_path / "report.xml"
    path.write_text(xml_reports([GOOD, UNKNOWN_ID, NO_FIRST_NAME]), encoding="utf-8")
    before = row_counts(database_url)
    run = validate(server, path, "--json")
    assert run.returncode != 0
    report = json.loads(run.stdout)
    assert report["ok"] is False and report["refused"] is None and report["file"] == str(path)
    assert report["records"] == [
        {"index": 1, "credit_id": GOOD["credit_id"], "status": "Submitted", "errors": []},
        {
            "index": 2,
            "credit_id": UNKNOWN_ID["credit_id"],
            "status": "Not processed",
            "errors": [{"code": 661, "message": MSG_661}],
        },
        {
            "index": 3,
            "credit_id": NO_FIRST_NAME["credit_id"],
            "status": "Not processed",
            "errors": [{"code": 622, "message": MSG_622}],
        },
    ]
    assert row_counts(database_url) == before


def _template_row(**changes) -> ReportedRecord:
    fields = dict(
        action="Add",
        board="ABIM",
        activity_id="200900001",
        learner_id_type="ABIM",
        learner_id="1000109",
        first_name="Test5",
        last_name="Account5",
        dob="06/01",
        completion_date="05/09/2026",
        credits="1",
        credit_types=("ABIM MOC Part II",),
    )
    fields.update(changes)
    return ReportedRecord(index=1, **fields)


def test_validate_template_b(server, database_url, tmp_path):
    path = tmp_path / "learners.txt"
    path.write_bytes(
        write_template_b(
            [
                _template_row(),
                _template_row(
                    board="NC",
                    learner_id_type="License",
                    learner_id="MD9966",
                    first_name="Traci",
                    last_name="Tester",
                    dob="11/10",
                    completion_date="6/1/2026",
                    credit_types=("AMA PRA Category 1",),
                ),
                _template_row(learner_id="0000000", completion_date="05/10/2026"),
                _template_row(activity_id="999999999", completion_date="05-11-2026"),
            ]
        )
    )
    before = row_counts(database_url)
    run = validate(server, path)
    assert run.returncode != 0, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines == [
        "record 1 (Test5 Account5): Submitted",
        "record 2 (Traci Tester): Accepted",
        f"record 3 (Test5 Account5): 661 {MSG_661}",
        f"record 4 (Test5 Account5): 690 {MSG_690}",
        "4 records, 2 pass, 2 with errors",
        OFFLINE,
    ]
    as_json = json.loads(validate(server, path, "--json").stdout)
    assert [(r["index"], r["credit_id"], [e["code"] for e in r["errors"]]) for r in as_json["records"]] == [
        (1, None, []),
        (2, None, []),
        (3, None, [661]),
        (4, None, [690]),
    ]
    assert row_counts(database_url) == before


def test_validate_template_b_all_pass(server, tmp_path):
    path = tmp_path / "fine.txt"
    path.write_bytes(write_template_b([_template_row(completion_date="05/12/2026")]))
    run = validate(server, path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().splitlines() == [
        "record 1 (Test5 Account5): Submitted",
        "1 records, 1 pass, 0 with errors",
        OFFLINE,
    ]


def test_validate_refuses_a_file_that_is_not_a_batch(server, database_url, tmp_path):
    not_xml = tmp_path / "broken.xml"
    not_xml.write_text("<ar:ActivityReports xmlns:ar='http://ns.medbiq.org/activityreport/v1/'>", encoding="utf-8")
    not_template = tmp_path / "notes.txt"
    not_template.write_text("hello\tworld\n", encoding="utf-8")
    before = row_counts(database_url)
    for path in (not_xml, not_template):
        run = validate(server, path)
        assert run.returncode != 0
        assert "refused" in run.stdout
        report = json.loads(validate(server, path, "--json").stdout)
        assert report["ok"] is False and report["refused"] and report["records"] == []
    assert row_counts(database_url) == before


# -- registry import ----------------------------------------------------------------------------


def _match(client, credentials, **fields):
    return client.service.GetLearnerMatch(**credentials, **fields)


def test_registry_import_adds_learners_that_match(server, client, credentials, tmp_path):
    ada = dict(
        Board="ABIM", LearnerIDType="ABIM", LearnerID="7770001", FirstName="Ada", LastName="Lovelace", DOB="12/10"
    )
    grace = dict(Board="ABS", FirstName="Grace", LastName="Hopper", DOB="12/09")
    before_ada, before_grace = _match(client, credentials, **ada), _match(client, credentials, **grace)
    assert (before_ada.Matched, codes(before_ada)) == (False, [661])
    assert (before_grace.Matched, codes(before_grace)) == (False, [718])

    path = tmp_path / "registry.json"
    path.write_text(
        json.dumps(
            [
                {
                    "board": "ABIM",
                    "learner_id": "7770001",
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "dob": "12/10",
                    "completions": [{"activity_id": "200900001", "completion_date": "{year}-02-03"}],
                },
                {"board": "ABS", "learner_id": "7770002", "first_name": "Grace", "last_name": "Hopper", "dob": "12/09"},
            ]
        ),
        encoding="utf-8",
    )
    run = run_cli(server.env, "registry", "import", str(path))
    assert "imported 2 registry learners into sandbox" in run.stdout

    after_ada = _match(client, credentials, **{**ada, "FirstName": " ADA ", "LastName": "lovelace"})
    assert (after_ada.Matched, codes(after_ada)) == (True, [])
    after_grace = _match(client, credentials, **grace)
    assert (after_grace.Matched, codes(after_grace)) == (True, [])
    wrong_dob = _match(client, credentials, **{**ada, "DOB": "12/11"})
    assert (wrong_dob.Matched, codes(wrong_dob)) == (False, [664])

    # The imported learner can be reported, and the imported completion is known to the board (709).
    ada_record = dict(
        board="ABIM",
        id_type="ABIM",
        learner_id="7770001",
        first="Ada",
        last="Lovelace",
        dob="1900-12-10",
        activity_id="200900001",
        points="1",
    )
    r1, r2 = save(
        client,
        credentials,
        [
            record(cid("ada-1"), **ada_record, completed="2026-02-04T00:00:00"),
            record(cid("ada-2"), **ada_record, completed="2026-02-03T00:00:00"),
        ],
    ).Results.RecordResult
    assert (r1.Status, codes(r1)) == ("Submitted", [])
    assert (r2.Status, codes(r2)) == ("Not processed", [709])


def test_registry_import_replaces_a_learner_and_takes_the_fixture_shape(server, client, credentials, tmp_path):
    path = tmp_path / "registry.json"
    path.write_text(
        json.dumps(
            {
                "registry": [
                    {
                        "board": "ABO",
                        "learner_id": "7770003",
                        "first_name": "Mary",
                        "last_name": "Shelley",
                        "dob": "08/30",
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    run_cli(server.env, "registry", "import", str(path))
    mary = dict(
        Board="ABO", LearnerIDType="ABO", LearnerID="7770003", FirstName="Mary", LastName="Shelley", DOB="08/30"
    )
    assert codes(_match(client, credentials, **mary)) == []
    path.write_text(
        json.dumps(
            {
                "registry": [
                    {
                        "board": "ABO",
                        "learner_id": "7770003",
                        "first_name": "Mary",
                        "last_name": "Wollstonecraft",
                        "dob": "08/30",
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    run_cli(server.env, "registry", "import", str(path))
    assert codes(_match(client, credentials, **mary)) == [665]
    assert codes(_match(client, credentials, **{**mary, "LastName": "Wollstonecraft"})) == []


def test_registry_import_refuses_unknown_boards(server, client, credentials, tmp_path):
    path = tmp_path / "registry.json"
    path.write_text(
        json.dumps(
            [
                {"board": "ABIM", "learner_id": "7770009", "first_name": "Nope", "last_name": "Never", "dob": "01/02"},
                {"board": "XYZ", "learner_id": "1", "first_name": "A", "last_name": "B", "dob": "01/01"},
            ]
        ),
        encoding="utf-8",
    )
    run = run_cli(server.env, "registry", "import", str(path), check=False)
    assert run.returncode != 0 and "unknown boards: XYZ" in run.stderr
    # Nothing of the file was imported.
    assert codes(
        _match(
            client,
            credentials,
            Board="ABIM",
            LearnerIDType="ABIM",
            LearnerID="7770009",
            FirstName="Nope",
            LastName="Never",
            DOB="01/02",
        )
    ) == [661]


# -- activities import --------------------------------------------------------------------------


def test_activities_import(server, client, credentials, tmp_path):
    path = tmp_path / "activities.json"
    path.write_text(
        json.dumps(
            [
                {
                    "activity_id": "201500001",
                    "provider_activity_id": "CLI-1",
                    "title": "Imported Grand Rounds",
                    "type": "Regularly Scheduled Series",
                    "start_date": "{year}-01-01",
                    "end_date": "{year}-12-31",
                    "reporting_year": "{year}",
                    "credits": "12",
                    "registrations": [
                        {"board": "ABO", "max_points": "12", "credit_types": ["ABO MOC Part II", "abo patient safety"]},
                        {"board": "nc", "max_points": "12", "credit_types": ["AMA PRA Category 1"]},
                    ],
                }
            ]
        ),
        encoding="utf-8",
    )
    with pytest.raises(Fault):
        client.service.GetActivity(**credentials, ActivityID="201500001")
    run = run_cli(
        server.env, "activities", "import", str(path), "--provider-id", PROVIDER_ID, "--environment", "sandbox"
    )
    assert run.stdout.strip() == "201500001\tImported Grand Rounds\tABO, NC"

    got = client.service.GetActivity(**credentials, ActivityID="201500001")
    assert (got.Title, got.ActivityType, got.StartDate, got.EndDate, got.Credits) == (
        "Imported Grand Rounds",
        "Regularly Scheduled Series",
        dt.date(2026, 1, 1),
        dt.date(2026, 12, 31),
        Decimal("12"),
    )
    regs = {r.Board: (r.MaxPoints, r.CreditTypes.CreditType) for r in got.Registrations.Registration}
    # Board codes and credit-type names in the catalogue's spelling.
    assert regs == {
        "ABO": (Decimal("12"), ["ABO MOC Part II", "ABO Patient Safety"]),
        "NC": (Decimal("12"), ["AMA PRA Category 1"]),
    }
    rec = record(
        cid("imported"),
        board="ABO",
        id_type="ABO",
        activity_id="201500001",
        learner_id="98989",
        first="Vincent",
        last="Van Gogh",
        dob="1900-03-30",
        credit_types=("ABO Patient Safety",),
        points="12",
        completed="2026-05-01T00:00:00",
    )
    result = save(client, credentials, [rec]).Results.RecordResult[0]
    assert (result.Status, codes(result)) == ("Accepted", [])
    over = save(
        client, credentials, [dict(rec, credit_id=cid("imported-over"), completed="2026-05-02T00:00:00", points="0.25")]
    ).Results.RecordResult[0]
    assert codes(over) == [710]


def test_activities_import_refuses_unknown_provider_and_board(server, client, credentials, tmp_path):
    path = tmp_path / "activities.json"
    path.write_text(
        json.dumps(
            {
                "activities": [
                    {
                        "activity_id": "201500002",
                        "title": "Bad board",
                        "start_date": "2026-01-01",
                        "end_date": "2026-12-31",
                        "registrations": [{"board": "XYZ", "max_points": "1", "credit_types": ["X"]}],
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    run = run_cli(
        server.env,
        "activities",
        "import",
        str(path),
        "--provider-id",
        "7654321",
        "--environment",
        "sandbox",
        check=False,
    )
    assert run.returncode != 0 and "no provider 7654321" in run.stderr
    run = run_cli(
        server.env,
        "activities",
        "import",
        str(path),
        "--provider-id",
        PROVIDER_ID,
        "--environment",
        "sandbox",
        check=False,
    )
    assert run.returncode != 0
    assert "Activity registration type is not valid." in run.stdout + run.stderr
    with pytest.raises(Fault):
        client.service.GetActivity(**credentials, ActivityID="201500002")


def test_activities_import_refusal_is_a_message_not_a_traceback(server, tmp_path):
    """Like `registry import` ("unknown boards: ..."), a refused activity is reported as a usage error."""
    path = tmp_path / "activities.json"
    path.write_text(
        json.dumps(
            [
                {
                    "activity_id": "201500004",
                    "title": "Bad board",
                    "start_date": "2026-01-01",
                    "end_date": "2026-12-31",
                    "registrations": [{"board": "XYZ", "max_points": "1", "credit_types": ["X"]}],
                }
            ]
        ),
        encoding="utf-8",
    )
    run = run_cli(
        server.env,
        "activities",
        "import",
        str(path),
        "--provider-id",
        PROVIDER_ID,
        "--environment",
        "sandbox",
        check=False,
    )
    assert run.returncode != 0
    assert "Activity registration type is not valid. (XYZ)" in run.stderr
    assert "Traceback" not in run.stderr, run.stderr


def test_activities_import_refuses_points_that_are_not_a_number(server, client, credentials, tmp_path):
    """max_points "NaN" must be refused with a message and nothing imported. (It is not: SQLite fails with a
    traceback; PostgreSQL stores NaN and every record reported for the activity then gets 998.)"""
    path = tmp_path / "activities.json"
    path.write_text(
        json.dumps(
            [
                {
                    "activity_id": "201500005",
                    "title": "Not a number",
                    "start_date": "2026-01-01",
                    "end_date": "2026-12-31",
                    "registrations": [{"board": "ABO", "max_points": "NaN", "credit_types": ["ABO MOC Part II"]}],
                }
            ]
        ),
        encoding="utf-8",
    )
    run = run_cli(
        server.env,
        "activities",
        "import",
        str(path),
        "--provider-id",
        PROVIDER_ID,
        "--environment",
        "sandbox",
        check=False,
    )
    assert run.returncode != 0, run.stdout
    assert "Traceback" not in run.stderr, run.stderr
    with pytest.raises(Fault):
        client.service.GetActivity(**credentials, ActivityID="201500005")


# -- credentials --------------------------------------------------------------------------------


def _works(client, creds) -> bool:
    """The credential is accepted (asked several times: each gunicorn process must agree)."""
    answers = set()
    for _ in range(4):
        try:
            client.service.GetActivity(**creds, ActivityID="200930149")
            answers.add(True)
        except Fault as exc:
            assert exc.code.endswith("Client.Authentication"), exc
            answers.add(False)
    assert len(answers) == 1, "the service processes disagree about this credential"
    return answers.pop()


def _creds(user, password, provider=PROVIDER_ID):
    return {"ProviderId": provider, "User": user, "Password": password}


def test_credentials_create_rotate_disable(server, database_url, client):
    run = run_cli(
        server.env,
        "credentials",
        "create",
        "--provider-id",
        PROVIDER_ID,
        "--environment",
        "sandbox",
        "--username",
        "cli-user",
        "--password",
        "first-secret",
    )
    assert "cli-user" in run.stdout and "first-secret" not in run.stdout
    assert _works(client, _creds("cli-user", "first-secret"))
    assert not _works(client, _creds("cli-user", "other-secret"))

    again = run_cli(
        server.env,
        "credentials",
        "create",
        "--provider-id",
        PROVIDER_ID,
        "--environment",
        "sandbox",
        "--username",
        "cli-user",
        "--password",
        "x",
        check=False,
    )
    assert again.returncode != 0 and "exists" in again.stderr

    # Rotation: only the new secret works, at once (the verified-credential cache must not keep the old one).
    run_cli(server.env, "credentials", "rotate", "cli-user", "--password", "second-secret")
    assert not _works(client, _creds("cli-user", "first-secret"))
    assert _works(client, _creds("cli-user", "second-secret"))
    # Rotation without --password prints a generated secret once.
    out = run_cli(server.env, "credentials", "rotate", "cli-user").stdout
    generated = re.search(r"new password: (\S+)", out).group(1)
    assert not _works(client, _creds("cli-user", "second-secret"))
    assert _works(client, _creds("cli-user", generated))

    # Disabled: refused with the same fault as a wrong password, even with the right secret.
    assert "disabled cli-user" in run_cli(server.env, "credentials", "disable", "cli-user").stdout
    assert not _works(client, _creds("cli-user", generated))
    listing = run_cli(server.env, "credentials", "list").stdout
    assert f"{PROVIDER_ID}\tsandbox\tcli-user\tdisabled" in listing.splitlines()
    run_cli(server.env, "credentials", "disable", "cli-user", "--enable")
    assert _works(client, _creds("cli-user", generated))

    for args in (("rotate", "nobody"), ("disable", "nobody")):
        assert run_cli(server.env, "credentials", *args, check=False).returncode != 0

    # Only a slow salted hash is stored.
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                select(tables.credentials.c.secret_hash).where(tables.credentials.c.username == "cli-user")
            ).scalar_one()
    finally:
        engine.dispose()
    assert stored.startswith("$argon2") and generated not in stored


def test_credentials_create_generates_a_secret_and_a_new_provider(server, client):
    out = run_cli(
        server.env,
        "credentials",
        "create",
        "--provider-id",
        PROVIDER_ID,
        "--environment",
        "sandbox",
        "--username",
        "cli-generated",
    ).stdout
    secret = re.search(r"Password: (\S+)", out).group(1)
    assert _works(client, _creds("cli-generated", secret))

    missing = run_cli(
        server.env,
        "credentials",
        "create",
        "--provider-id",
        "0000042",
        "--environment",
        "sandbox",
        "--username",
        "cli-new-provider",
        "--password",
        "p",
        check=False,
    )
    assert missing.returncode != 0 and "--provider-name" in missing.stderr
    bad_id = run_cli(
        server.env,
        "credentials",
        "create",
        "--provider-id",
        "42",
        "--environment",
        "sandbox",
        "--username",
        "cli-bad-id",
        "--password",
        "p",
        check=False,
    )
    assert bad_id.returncode != 0 and "7 digits" in bad_id.stderr

    run_cli(
        server.env,
        "credentials",
        "create",
        "--provider-id",
        "0000042",
        "--environment",
        "sandbox",
        "--username",
        "cli-new-provider",
        "--password",
        "p42",
        "--provider-name",
        "Other Provider",
        "--provider-email",
        "cme@other.example",
        "--provider-domain",
        "other.example",
    )
    other = _creds("cli-new-provider", "p42", provider="0000042")
    # Another provider: the sandbox provider's activity is not its own...
    with pytest.raises(Fault):
        client.service.GetActivity(**other, ActivityID="200930149")
    # ...and its credential does not pass as the sandbox provider's.
    with pytest.raises(Fault) as exc:
        client.service.GetActivity(**_creds("cli-new-provider", "p42"), ActivityID="200930149")
    assert exc.value.code.endswith("Client.Authentication")


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, None),  # serve's default for the database
        ({"PARS_WORKERS": "3"}, 3),
    ],
    ids=["default", "PARS_WORKERS"],
)
def test_serve_runs_as_many_gunicorn_workers_as_the_database_wants(database_url, tmp_path, env, expected):
    if expected is None:
        expected = 2 if database_url.startswith("sqlite") else max(2, 2 * (os.cpu_count() or 1))
    srv = start_server(database_url, tmp_path, workers=None, **env)
    try:
        deadline = time.monotonic() + 30
        while len(gunicorn_workers(srv.proc.pid)) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # none beyond the expected number either
        assert len(gunicorn_workers(srv.proc.pid)) == expected
    finally:
        stop_server(srv)
