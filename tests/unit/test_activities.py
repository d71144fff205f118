"""Activity registrations against the board catalogue (SaveActivity, `pars-ws activities import`), and
adds that lost their CreditID to a concurrent request: domain functions, no database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from pars_ws.adapters.data_files import load_catalogue
from pars_ws.domain.activities import Activity, ActivityRefused, Registration
from pars_ws.domain.engine import Judgement, credit_ids_taken
from pars_ws.domain.records import ReportedRecord, Source, Status, StoredRecord

CATALOGUE = load_catalogue()


def activity(*registrations: Registration, credits: str = "10") -> Activity:
    return Activity(
        activity_id="",
        title="Course",
        activity_type="Course",
        start_date=dt.date(2026, 1, 1),
        end_date=dt.date(2026, 12, 31),
        reporting_year=2026,
        credits=Decimal(credits),
        registrations=registrations,
    )


def test_registrations_take_the_catalogue_board_code_and_credit_type_names():
    saved = activity(Registration("abim", Decimal(10), ("abim moc part ii",))).registered_with(CATALOGUE)
    assert saved.registrations == (Registration("ABIM", Decimal(10), ("ABIM MOC Part II",)),)


@pytest.mark.parametrize(
    "registration, code",
    [
        (Registration("XYZ", Decimal(10), ()), 713),
        (Registration("ABIM", Decimal(10), ("ABIM MOC Part IX",)), 676),
    ],
)
def test_unknown_board_or_credit_type_is_refused_with_its_code(registration, code):
    with pytest.raises(ActivityRefused) as refused:
        activity(registration).registered_with(CATALOGUE)
    assert refused.value.code == code


def test_data_problems_are_refused_without_a_code():
    with pytest.raises(ActivityRefused) as refused:
        activity(credits="-1").registered_with(CATALOGUE)
    assert refused.value.code is None and "non-negative" in str(refused.value)


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"title": None}, "The activity's title is required."),
        ({"activity_type": "  "}, "The activity's type is required."),
        (
            {"credits": Decimal("100000000")},
            "Credits must be a non-negative number up to 99,999,999.99, not 100000000.",
        ),
    ],
)
def test_what_storage_cannot_keep_is_refused_not_failed(changes, problem):
    # Found by the property-based test of /api/v1: an empty Title, or points past what a points
    # column holds, failed in the database (HTTP 500) over JSON and SOAP alike.
    from dataclasses import replace

    with pytest.raises(ActivityRefused) as refused:
        replace(activity(), **changes).registered_with(CATALOGUE)
    assert refused.value.code is None and str(refused.value) == problem


def _add(credit_id: str) -> Judgement:
    now = dt.datetime(2026, 6, 15, tzinfo=dt.timezone.utc)
    stored = StoredRecord(
        credit_id=credit_id,
        activity_id="200900001",
        board="ABIM",
        learner_id_type="ABIM",
        learner_id="123456",
        first_name="A",
        last_name="B",
        dob=None,
        completion_date=dt.date(2026, 6, 1),
        credits=Decimal(1),
        credit_types=("ABIM MOC Part II",),
        status=Status.ACCEPTED,
        source=Source.SOAP,
        submitted_at=now,
        updated_at=now,
    )
    return Judgement(ReportedRecord(index=1, credit_id=credit_id), "add", [], Status.ACCEPTED, stored)


def test_an_add_whose_credit_id_another_request_stored_first_gets_603():
    lost, kept = _add("ccid:t:lost"), _add("ccid:t:kept")
    credit_ids_taken([lost, kept], {"ccid:t:lost"})
    assert (lost.codes, lost.status, lost.stored) == ([603], Status.NOT_PROCESSED, None)
    assert (kept.codes, kept.status) == ([], Status.ACCEPTED)
