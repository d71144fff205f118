"""The PARS rules and the engine, without a database: hand-made activities, learners and stored records
in a `MemoryLookups`, an injected "today", and `judge()` / `match()` answering codes."""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pars_ws.adapters.data_files import activity_from_dict, learner_from_dict, load_catalogue, sandbox_fixture
from pars_ws.domain.activities import Activity, RegisteredLearner, Registration
from pars_ws.domain.catalogue import PATIENT_SAFETY, PRACTICE_ASSESSMENT
from pars_ws.domain.engine import judge, match
from pars_ws.domain.errors import message
from pars_ws.domain.lookups import MemoryLookups
from pars_ws.domain.records import DOB, ReportedRecord, Source, Status, StoredRecord
from pars_ws.domain.rules import board_of

D = dt.date
TODAY = D(2026, 6, 15)
CATALOGUE = load_catalogue()
SPEC_CODES = Path(__file__).resolve().parents[2] / "src" / "pars_ws" / "data" / "error-codes.tsv"

# Every code the domain produces (all of error-codes.tsv).
DOMAIN_CODES = (
    601,
    602,
    603,
    605,
    621,
    622,
    623,
    624,
    630,
    631,
    632,
    650,
    661,
    664,
    665,
    670,
    671,
    672,
    673,
    674,
    675,
    676,
    677,
    678,
    680,
    681,
    690,
    705,
    706,
    709,
    710,
    711,
    712,
    713,
    717,
    718,
    998,
)

# -- the hand-made world ------------------------------------------------------------------------

MAIN = "300000001"  # every board, every credit type, 10 points; 2024-01-01 .. 2026-05-31
PLAIN = "300000002"  # every board, only the first standard credit type, 10 points
ONLY_ABO = "300000003"  # registered for ABO alone
LATE = "300000004"  # starts 2026-03-01
UNKNOWN = "399999999"  # no such activity
BOOM = "300000666"  # the lookups raise for it (998)
MAX = Decimal(10)
MAIN_END = D(2026, 5, 31)
LATE_START = D(2026, 3, 1)


def _kinds(board: str, kind: str) -> list[str]:
    return [t.name for t in CATALOGUE[board].credit_types if t.kind == kind]


def standard(board: str) -> str:
    return _kinds(board, "standard")[0]


def patient_safety(board: str) -> str:
    return _kinds(board, PATIENT_SAFETY)[0]


def practice_assessment(board: str) -> str:
    return _kinds(board, PRACTICE_ASSESSMENT)[0]


def _registrations(only_first_standard: bool = False, boards=None) -> tuple[Registration, ...]:
    regs = []
    for board in CATALOGUE:
        if boards is not None and board.code not in boards:
            continue
        types = (standard(board.code),) if only_first_standard else tuple(t.name for t in board.credit_types)
        regs.append(Registration(board.code, MAX, types))
    return tuple(regs)


ACTIVITIES = (
    Activity(MAIN, "Main", "Course", D(2024, 1, 1), MAIN_END, 2026, Decimal(10), _registrations()),
    Activity(PLAIN, "Plain", "Course", D(2024, 1, 1), D(2026, 12, 31), 2026, Decimal(10), _registrations(True)),
    Activity(
        ONLY_ABO,
        "ABO only",
        "Course",
        D(2024, 1, 1),
        D(2026, 12, 31),
        2026,
        Decimal(10),
        _registrations(boards={"ABO"}),
    ),
    Activity(LATE, "Late", "Course", LATE_START, D(2026, 12, 31), 2026, Decimal(10), _registrations()),
    Activity(BOOM, "Boom", "Course", D(2024, 1, 1), D(2026, 12, 31), 2026, Decimal(10), _registrations()),
)

NPI_1001 = "1111111111"


def _learners() -> list[RegisteredLearner]:
    learners = []
    for board in CATALOGUE:
        learners.append(RegisteredLearner(board.code, "1001", "Ann", "Lee", DOB(3, 1), npi=NPI_1001))
        learners.append(
            RegisteredLearner(
                board.code,
                "1002",
                "Ben",
                "Ray",
                DOB(4, 2),
                npi="2222222222",
                completions=frozenset({(MAIN, D(2026, 2, 1))}),
            )
        )
    learners += [
        RegisteredLearner("ABS", "5001", "John", "Smith", DOB(1, 15)),
        RegisteredLearner("ABS", "5002", "John", "Smith", DOB(1, 15)),
        RegisteredLearner("ABS", "5003", "José", "Núñez", DOB(12, 24)),
    ]
    return learners


LEARNERS = _learners()


class RaisingLookups(MemoryLookups):
    """Storage that fails for one activity ID (998)."""

    def activity(self, activity_id: str) -> Activity | None:
        if activity_id == BOOM:
            raise RuntimeError("storage exploded")
        return super().activity(activity_id)


def world(stored=(), raising: bool = False) -> MemoryLookups:
    return (RaisingLookups if raising else MemoryLookups)(ACTIVITIES, LEARNERS, stored)


# -- records ------------------------------------------------------------------------------------


def rec(index: int = 1, **changes: Any) -> ReportedRecord:
    """A record that passes every rule for its board (ABIM unless `board=` says otherwise)."""
    board = changes.get("board", "ABIM")
    code = CATALOGUE.by_registration(board).code if CATALOGUE.by_registration(board) else None
    fields = dict(
        action="Add",
        credit_id=f"ccid:test.org:{index}",
        board=board,
        activity_id=MAIN,
        learner_id_type=CATALOGUE[code].learner_id_types[0] if code else "ABIM",
        learner_id="1001",
        first_name="Ann",
        last_name="Lee",
        dob="03/01",
        completion_date="05/01/2026",
        credits="1",
        credit_types=(standard(code) if code else "ABIM MOC Part II",),
    )
    fields.update(changes)
    return ReportedRecord(index=index, **fields)


MAY_1 = D(2026, 5, 1)


def held(
    credit_id: str,
    *,
    board: str = "ABO",
    learner: str = "1001",
    completion: dt.date = MAY_1,
    credits: str = "1",
    status: Status = Status.ACCEPTED,
    activity: str = MAIN,
) -> StoredRecord:
    """A record already stored."""
    at = dt.datetime(2026, 5, 2, 12, 0)
    return StoredRecord(
        credit_id=credit_id,
        activity_id=activity,
        board=board,
        learner_id_type=CATALOGUE[board].learner_id_types[0],
        learner_id=learner,
        first_name="Ann",
        last_name="Lee",
        dob=DOB(3, 1),
        completion_date=completion,
        credits=Decimal(credits),
        credit_types=(standard(board),),
        status=status,
        source=Source.SOAP,
        submitted_at=at,
        updated_at=at,
    )


def run(records, *, lookups=None, today: dt.date = TODAY, source: Source = Source.SOAP):
    return judge(
        records,
        today=today,
        now=dt.datetime.combine(today, dt.time(9, 30)),
        catalogue=CATALOGUE,
        lookups=lookups if lookups is not None else world(),
        source=source,
    )


def codes_of(*records, **kw) -> list[list[int]]:
    return [j.codes for j in run(list(records), **kw)]


# -- the table ----------------------------------------------------------------------------------


@dataclass
class Row:
    code: int  # the code the row is about
    desc: str
    changes: dict  # changes to the passing record `rec()`
    expected: list[int]  # every code the record gets
    before: tuple[dict, ...] = ()  # earlier records of the same request (changes to `rec()`)
    stored: tuple[StoredRecord, ...] = ()  # records already stored
    today: dt.date = TODAY
    source: Source = Source.SOAP
    raising: bool = False
    before_ok: bool = True  # the earlier records pass (the row's setup is what it says)

    @property
    def fires(self) -> bool:
        return self.code in self.expected


ABO = dict(board="ABO")
ABS_NO_ID = dict(board="ABS", learner_id=None, learner_id_type=None)
DELETE = dict(action="Delete")
TOMORROW = (TODAY + dt.timedelta(days=1)).strftime("%m/%d/%Y")
TODAY_US = TODAY.strftime("%m/%d/%Y")
FULL = dict(credits="10")

ROWS = [
    # 601/602 action
    Row(601, "action missing", dict(action=None), [601]),
    Row(601, "action blank", dict(action="   "), [601]),
    Row(601, "action present", dict(action="Add"), []),
    Row(602, "action Update", dict(action="Update"), [602]),
    Row(602, "action 'Added'", dict(action="Added"), [602]),
    Row(602, "action ADD, any case, blanks", dict(action=" ADD "), []),
    Row(
        602,
        "action delete, lower case",
        dict(DELETE, action="delete", credit_id="ccid:s:1"),
        [],
        stored=(held("ccid:s:1"),),
    ),
    # 603 duplicate CreditID
    Row(
        603,
        "second Add of a CreditID in one request",
        dict(ABO, credit_id="ccid:x:1"),
        [603],
        before=(dict(ABO, credit_id="ccid:x:1"),),
    ),
    Row(603, "CreditID of a live stored record", dict(ABO, credit_id="ccid:s:1"), [603], stored=(held("ccid:s:1"),)),
    Row(603, "CreditID with surrounding blanks", dict(ABO, credit_id=" ccid:s:1 "), [603], stored=(held("ccid:s:1"),)),
    Row(603, "another CreditID", dict(ABO, credit_id="ccid:s:2"), [], stored=(held("ccid:s:1"),)),
    Row(
        603,
        "CreditID deleted earlier in the request",
        dict(ABO, credit_id="ccid:s:1"),
        [],
        stored=(held("ccid:s:1"),),
        before=(dict(ABO, action="Delete", credit_id="ccid:s:1"),),
    ),
    Row(
        603,
        "CreditID of a stored deleted record",
        dict(ABO, credit_id="ccid:s:1"),
        [],
        stored=(held("ccid:s:1", status=Status.DELETED),),
    ),
    Row(
        603,
        "earlier Add of the CreditID was refused",
        dict(ABO, credit_id="ccid:x:1"),
        [],
        before=(dict(ABO, credit_id="ccid:x:1", credits="x"),),
        before_ok=False,
    ),
    # 605 delete target
    Row(605, "delete of an unknown CreditID", dict(DELETE, credit_id="ccid:none"), [605]),
    Row(
        605,
        "delete of a Submitted record",
        dict(DELETE, credit_id="ccid:s:1"),
        [605],
        stored=(held("ccid:s:1", board="ABIM", status=Status.SUBMITTED),),
    ),
    Row(
        605,
        "delete of a record already deleted in the request",
        dict(DELETE, credit_id="ccid:s:1"),
        [605],
        stored=(held("ccid:s:1"),),
        before=(dict(DELETE, credit_id="ccid:s:1"),),
    ),
    Row(605, "delete of an Accepted record", dict(DELETE, credit_id="ccid:s:1"), [], stored=(held("ccid:s:1"),)),
    Row(
        605,
        "delete of a Rejected record",
        dict(DELETE, credit_id="ccid:s:1"),
        [],
        stored=(held("ccid:s:1", board="ABIM", status=Status.REJECTED),),
    ),
    Row(
        605,
        "delete of an Accepted record added earlier in the request",
        dict(DELETE, board="ABO", credit_id="ccid:x:1"),
        [],
        before=(dict(ABO, credit_id="ccid:x:1"),),
    ),
    Row(
        605,
        "tab delete by fields, points differ",
        dict(ABO, action="Delete", credit_id=None, credits="2"),
        [605],
        stored=(held("ccid:s:1"),),
        source=Source.TAB_BATCH,
    ),
    Row(
        605,
        "tab delete by fields",
        dict(ABO, action="Delete", credit_id=None),
        [],
        stored=(held("ccid:s:1"),),
        source=Source.TAB_BATCH,
    ),
    Row(
        605,
        "tab delete by fields, learner named by NPI",
        dict(board="NC", action="Delete", credit_id=None, learner_id_type="NPI", learner_id=NPI_1001),
        [],
        stored=(held("ccid:s:1", board="NC"),),
        source=Source.TAB_BATCH,
    ),
    Row(
        605,
        "tab delete by fields, a Submitted and an Accepted twin",
        dict(action="Delete", credit_id=None),
        [],
        stored=(held("ccid:s:1", board="ABIM", status=Status.SUBMITTED), held("ccid:s:2", board="ABIM")),
        source=Source.TAB_BATCH,
    ),
    Row(
        605,
        "tab delete by fields, only a Submitted record",
        dict(action="Delete", credit_id=None),
        [605],
        stored=(held("ccid:s:1", board="ABIM", status=Status.SUBMITTED),),
        source=Source.TAB_BATCH,
    ),
    Row(
        605,
        "tab delete by fields, ABS learner by name + DOB",
        dict(ABS_NO_ID, action="Delete", credit_id=None, first_name="José", last_name="Núñez", dob="12/24"),
        [],
        stored=(held("ccid:s:1", board="ABS", learner="5003", status=Status.ACCEPTED),),
        source=Source.TAB_BATCH,
    ),
    # 621-632, 650, 677 missing fields
    Row(621, "learner ID missing", dict(learner_id=None), [621]),
    Row(621, "state board, learner ID missing", dict(board="TN", learner_id=None), [621]),
    Row(621, "ABS without ID, matched on name + DOB", dict(ABS_NO_ID), []),
    Row(622, "first name missing", dict(first_name=None), [622]),
    Row(622, "first name present", dict(first_name="Ann"), []),
    Row(623, "last name missing", dict(last_name=None), [623]),
    Row(623, "last name present", dict(last_name="Lee"), []),
    Row(624, "DOB missing, ABIM requires it", dict(dob=None), [624]),
    Row(624, "DOB missing, ABA does not require it", dict(board="ABA", dob=None), []),
    Row(624, "DOB missing, ABP does not require it", dict(board="ABP", dob=None), []),
    Row(630, "activity ID missing", dict(activity_id=None), [630]),
    Row(630, "activity ID present", dict(activity_id=MAIN), []),
    Row(631, "completion date missing", dict(completion_date=None), [631]),
    Row(631, "completion date present", dict(completion_date="05/01/2026"), []),
    Row(632, "points missing", dict(credits=None), [632]),
    Row(
        632,
        "no CreditCertificate at all: 677 says it",
        dict(credits=None, credit_types=(), has_credit_certificate=False),
        [677],
    ),
    Row(632, "points present", dict(credits="0"), []),
    Row(650, "SOAP record without CreditID", dict(credit_id=None), [650]),
    Row(650, "XML batch record without CreditID", dict(credit_id=None), [650], source=Source.XML_BATCH),
    Row(650, "SOAP delete without CreditID", dict(DELETE, credit_id=None), [650]),
    Row(650, "tab record without CreditID", dict(credit_id=None), [], source=Source.TAB_BATCH),
    Row(650, "web-form record without CreditID", dict(credit_id=None), [], source=Source.WEB_FORM),
    Row(677, "no credit type", dict(credit_types=()), [677]),
    Row(677, "no CreditCertificate element", dict(credit_types=(), has_credit_certificate=False), [677]),
    Row(677, "one credit type", dict(credit_types=("ABIM MOC Part II",)), []),
    # 661/664/665/718 registry match
    Row(661, "learner ID unknown", dict(learner_id="9999"), [661]),
    Row(
        661,
        "learner ID of another board's learner",
        dict(board="ABS", learner_id_type="ABS", learner_id="5001", first_name="John", last_name="Smith", dob="01/15"),
        [],
    ),
    Row(661, "learner ID with blanks", dict(learner_id=" 1001 "), []),
    Row(661, "state learner by NPI", dict(board="NC", learner_id_type="NPI", learner_id=NPI_1001), []),
    Row(661, "state learner, unknown NPI", dict(board="NC", learner_id_type="NPI", learner_id="1234"), [661]),
    Row(664, "DOB differs by a day", dict(dob="03/02"), [664]),
    Row(664, "DOB without day (Excel Jun-70)", dict(dob="Mar-70"), [664]),
    Row(664, "DOB unreadable", dict(dob="banana"), [664]),
    Row(664, "DOB given as M/D", dict(dob="3/1"), []),
    Row(664, "DOB given as Excel 1-Mar", dict(dob="1-Mar"), []),
    Row(664, "optional DOB given and wrong (ABA)", dict(board="ABA", dob="12/12"), [664]),
    Row(665, "first name differs", dict(first_name="Anna"), [665]),
    Row(665, "last name differs", dict(last_name="Leigh"), [665]),
    Row(665, "case, accents and blanks ignored", dict(first_name="  ÁNN ", last_name="lée\t"), []),
    Row(718, "ABS, two John Smith 01/15", dict(ABS_NO_ID, first_name="John", last_name="Smith", dob="01/15"), [718]),
    Row(718, "ABS, nobody with that name and DOB", dict(ABS_NO_ID, dob="03/02"), [718]),
    Row(718, "ABS, DOB empty", dict(ABS_NO_ID, dob=None), [624, 718]),
    Row(718, "ABS, first name empty", dict(ABS_NO_ID, first_name=None), [622, 718]),
    Row(718, "ABS, DOB without day", dict(ABS_NO_ID, dob="Mar-70"), [718]),
    Row(
        718,
        "ABS, one match, accents and case ignored",
        dict(ABS_NO_ID, first_name=" jose ", last_name="NUNEZ", dob="12/24"),
        [],
    ),
    Row(
        718,
        "ABS, the ambiguous learner with board ID",
        dict(board="ABS", learner_id="5002", first_name="John", last_name="Smith", dob="01/15"),
        [],
    ),
    # 670/690/712/713 activity, registration, ID type
    Row(670, "activity not registered for ABIM", dict(activity_id=ONLY_ABO), [670]),
    Row(670, "activity registered for ABO", dict(ABO, activity_id=ONLY_ABO), []),
    Row(690, "no such activity", dict(activity_id=UNKNOWN), [690]),
    Row(690, "activity ID with blanks", dict(activity_id=f" {MAIN} "), []),
    Row(712, "ID type of another kind", dict(learner_id_type="NPI"), [712]),
    Row(712, "ID type missing", dict(learner_id_type=None), [712]),
    Row(712, "ID type, other case", dict(learner_id_type="abim"), []),
    Row(712, "state board, NPI", dict(board="ME-DO", learner_id_type="npi", learner_id=NPI_1001), []),
    Row(712, "state board, board ID type", dict(board="ME-DO", learner_id_type="ABIM"), [712]),
    Row(
        712, "state board, the domain names its state: a licence number", dict(board="ME-DO", learner_id_type="ME"), []
    ),
    Row(712, "state board, the domain names the board: a licence number", dict(board="NC", learner_id_type="nc"), []),
    Row(712, "state board, another state", dict(board="NC", learner_id_type="TN"), [712]),
    Row(713, "unknown registration", dict(board="XYZ"), [713]),
    Row(713, "registration, other case and blanks", dict(board=" abim "), []),
    # Without a registration (the tutorial's XML has no hx:accreditingBody): the domain, else the credit type.
    Row(713, "no registration, the domain names the board", dict(board=None, learner_id_type="ABIM"), []),
    Row(
        713,
        "no registration, the domain names no board, the credit type one",
        dict(board=None, learner_id_type="NPI", learner_id=NPI_1001, credit_types=("Controlled Substance",)),
        [],
    ),
    Row(
        713,
        "no registration, the credit type of every state board",
        dict(board=None, learner_id_type="NPI", learner_id=NPI_1001, credit_types=("AMA PRA Category 1",)),
        [713],
    ),
    Row(
        713,
        "no registration, domain and credit type name two boards",
        dict(board=None, learner_id_type="ABO", credit_types=("ABIM MOC Part II",)),
        [713],
    ),
    Row(
        713,
        "no registration, unknown domain and credit type",
        dict(board=None, learner_id_type="XYZ", credit_types=("XYZ Part II",)),
        [713],
    ),
    Row(713, "the registration decides: another board's domain is 712", dict(learner_id_type="ABO"), [712]),
    # 671/672 completion date
    Row(671, "unreadable date", dict(completion_date="13/45/2026"), [671]),
    Row(671, "two-digit year", dict(completion_date="05/01/26"), [671]),
    Row(671, "tomorrow", dict(activity_id=PLAIN, completion_date=TOMORROW), [671]),
    Row(671, "today", dict(activity_id=PLAIN, completion_date=TODAY_US), []),
    Row(671, "certifying, day after the end", dict(completion_date="06/01/2026"), [671]),
    Row(671, "certifying, the end date", dict(completion_date="05/31/2026"), []),
    Row(671, "ABO certifying, day after the end", dict(ABO, completion_date="2026-06-01"), [671]),
    Row(671, "state accepts the day after the end", dict(board="NC", completion_date="06/01/2026"), []),
    Row(671, "state accepts after the end up to today", dict(board="ME-MD", completion_date=TODAY_US), []),
    Row(671, "state, tomorrow", dict(board="TN", completion_date=TOMORROW), [671]),
    Row(672, "day before the start", dict(activity_id=LATE, completion_date="02/28/2026"), [672]),
    Row(672, "the start date", dict(activity_id=LATE, completion_date="03/01/2026"), []),
    Row(672, "state, day before the start", dict(board="NC", activity_id=LATE, completion_date="2/28/2026"), [672]),
    Row(672, "state, the start date", dict(board="NC", activity_id=LATE, completion_date="3/1/2026"), []),
    # 705/706 deadlines
    Row(705, "31 December before the previous year", dict(completion_date="12/31/2024"), [705]),
    Row(705, "1 January of the previous year", dict(completion_date="01/01/2025"), []),
    Row(705, "today 1 Jan 2027: 31 Dec 2025 too old", dict(completion_date="12/31/2025"), [705], today=D(2027, 1, 1)),
    Row(705, "today 1 Jan 2027: 1 Jan 2026 in time", dict(completion_date="01/01/2026"), [], today=D(2027, 1, 1)),
    Row(705, "state board, too old", dict(board="NC", completion_date="12/31/2024"), [705]),
    Row(
        706,
        "delete on 1 January after the completion year",
        dict(DELETE, credit_id="ccid:s:1"),
        [706],
        stored=(held("ccid:s:1", completion=D(2025, 5, 1)),),
        today=D(2026, 1, 1),
    ),
    Row(
        706,
        "delete on 31 December of the completion year",
        dict(DELETE, credit_id="ccid:s:1"),
        [],
        stored=(held("ccid:s:1", completion=D(2025, 5, 1)),),
        today=D(2025, 12, 31),
    ),
    Row(
        706,
        "tab delete by fields, year closed",
        dict(ABO, action="Delete", credit_id=None, completion_date="05/01/2025"),
        [706],
        stored=(held("ccid:s:1", completion=D(2025, 5, 1)),),
        source=Source.TAB_BATCH,
    ),
    # 709/717 completions already known
    Row(
        709,
        "board has this completion from outside PARS",
        dict(learner_id="1002", first_name="Ben", last_name="Ray", dob="04/02", completion_date="02/01/2026"),
        [709],
    ),
    Row(
        709,
        "activity ID with blanks",
        dict(
            learner_id="1002",
            first_name="Ben",
            last_name="Ray",
            dob="04/02",
            activity_id=f" {MAIN} ",
            completion_date="02/01/2026",
        ),
        [709],
    ),
    Row(
        709,
        "next day is a new completion",
        dict(learner_id="1002", first_name="Ben", last_name="Ray", dob="04/02", completion_date="02/02/2026"),
        [],
    ),
    Row(
        709,
        "another activity the same day",
        dict(
            learner_id="1002",
            first_name="Ben",
            last_name="Ray",
            dob="04/02",
            activity_id=PLAIN,
            completion_date="02/01/2026",
        ),
        [],
    ),
    Row(
        717,
        "ABIM, second completion the same day in the request",
        dict(credit_id="ccid:test.org:2"),
        [717],
        before=(dict(credit_id="ccid:test.org:1"),),
    ),
    Row(
        717,
        "ABIM, stored completion the same day",
        dict(),
        [717],
        stored=(held("ccid:s:1", board="ABIM", status=Status.SUBMITTED),),
    ),
    Row(
        717,
        "ABIM, stored completion the day before",
        dict(),
        [],
        stored=(held("ccid:s:1", board="ABIM", completion=D(2026, 4, 30)),),
    ),
    Row(
        717,
        "ABIM, stored same-day completion was rejected",
        dict(),
        [],
        stored=(held("ccid:s:1", board="ABIM", status=Status.REJECTED),),
    ),
    Row(
        717,
        "ABIM, same-day completion deleted earlier in the request",
        dict(),
        [],
        stored=(held("ccid:s:1", board="ABIM"),),
        before=(dict(DELETE, credit_id="ccid:s:1"),),
    ),
    Row(
        717,
        "ABIM, another learner the same day",
        dict(learner_id="1002", first_name="Ben", last_name="Ray", dob="04/02"),
        [],
        stored=(held("ccid:s:1", board="ABIM"),),
    ),
    Row(717, "ABO has no one-per-day rule", dict(ABO), [], stored=(held("ccid:s:1"),)),
    # 673-675 points
    Row(673, "points not a number", dict(credits="one"), [673]),
    Row(673, "negative points", dict(credits="-1"), [673]),
    Row(673, "exponent", dict(credits="1e1"), [673]),
    Row(673, "other script's digits", dict(credits="\u0663"), [673]),
    Row(673, "decimal point, no leading digit", dict(credits=".5"), []),
    Row(673, "zero", dict(credits="0"), []),
    Row(674, "above the activity's maximum", dict(credits="10.25"), [674]),
    Row(674, "huge number", dict(credits="1" + "0" * 40), [674]),
    Row(674, "the activity's maximum", dict(credits="10.00"), []),
    Row(675, "not a quarter", dict(credits="1.3"), [675]),
    Row(675, "a quarter and a hair", dict(credits="0.25" + "0" * 30 + "1"), [675]),
    Row(675, "three quarters", dict(credits="1.75"), []),
    Row(675, "trailing zeros", dict(credits="2.5000"), []),
    # 710/711 cumulative points (ABO: no one-per-day rule to get in the way)
    Row(
        710,
        "stored records hold the maximum",
        dict(ABO, completion_date="05/02/2026"),
        [710],
        stored=(held("ccid:s:1", credits="6"), held("ccid:s:2", credits="4")),
    ),
    Row(
        710,
        "earlier records of the request hold the maximum",
        dict(ABO, credit_id="ccid:test.org:3"),
        [710],
        before=(
            dict(ABO, credit_id="ccid:test.org:1", credits="6"),
            dict(ABO, credit_id="ccid:test.org:2", credits="4"),
        ),
    ),
    Row(
        710,
        "stored + earlier reach the maximum",
        dict(ABO, credit_id="ccid:test.org:2"),
        [710],
        stored=(held("ccid:s:1", credits="6"),),
        before=(dict(ABO, credits="4"),),
    ),
    Row(
        710,
        "one stored record rejected",
        dict(ABO),
        [],
        stored=(held("ccid:s:1", credits="6"), held("ccid:s:2", credits="4", status=Status.REJECTED)),
    ),
    Row(
        710,
        "one stored record deleted",
        dict(ABO),
        [],
        stored=(held("ccid:s:1", credits="6"), held("ccid:s:2", credits="4", status=Status.DELETED)),
    ),
    Row(
        710,
        "one deleted earlier in the request",
        dict(ABO, credit_id="ccid:test.org:2"),
        [],
        stored=(held("ccid:s:1", credits="6"), held("ccid:s:2", credits="4")),
        before=(dict(ABO, action="Delete", credit_id="ccid:s:2"),),
    ),
    Row(
        710, "a quarter short of the maximum", dict(ABO, credits="0.25"), [], stored=(held("ccid:s:1", credits="9.75"),)
    ),
    Row(710, "another learner's records", dict(ABO), [], stored=(held("ccid:s:1", learner="1002", credits="10"),)),
    Row(710, "another board's records", dict(ABO), [], stored=(held("ccid:s:1", board="ABOHNS", credits="10"),)),
    Row(
        710,
        "ABS learner matched by name, stored under the ID",
        dict(ABS_NO_ID, first_name="José", last_name="Núñez", dob="12/24"),
        [710],
        stored=(held("ccid:s:1", board="ABS", learner="5003", credits="10", completion=D(2026, 4, 1)),),
    ),
    Row(711, "stored 8 + 2.25", dict(ABO, credits="2.25"), [711], stored=(held("ccid:s:1", credits="8"),)),
    Row(711, "stored 8 + 2", dict(ABO, credits="2"), [], stored=(held("ccid:s:1", credits="8"),)),
    Row(
        711,
        "earlier in the request 8 + 2.25",
        dict(ABO, credit_id="ccid:test.org:2", credits="2.25"),
        [711],
        before=(dict(ABO, credits="8"),),
    ),
    Row(
        711,
        "earlier in the request 8 + 2",
        dict(ABO, credit_id="ccid:test.org:2", credits="2"),
        [],
        before=(dict(ABO, credits="8"),),
    ),
    Row(
        711,
        "earlier Add refused: does not count",
        dict(ABO, credit_id="ccid:test.org:2", credits="3"),
        [],
        before=(dict(ABO, credits="8", first_name=None),),
        before_ok=False,
    ),
    Row(
        711,
        "stored 8 rejected + 3",
        dict(ABO, credits="3"),
        [],
        stored=(held("ccid:s:1", credits="8", status=Status.REJECTED),),
    ),
    Row(
        711,
        "stored 8 Submitted counts + 3",
        dict(credits="3", completion_date="05/02/2026"),
        [711],
        stored=(held("ccid:s:1", board="ABIM", credits="8", status=Status.SUBMITTED),),
    ),
    Row(
        711,
        "stored 8, deleted in the request, + 3",
        dict(ABO, credit_id="ccid:test.org:2", credits="3"),
        [],
        stored=(held("ccid:s:1", credits="8"),),
        before=(dict(ABO, action="Delete", credit_id="ccid:s:1"),),
    ),
    # 676/678/680/681 credit types
    Row(676, "credit type unknown to the board", dict(credit_types=("ABIM MOC Part IX",)), [676]),
    Row(676, "another board's credit type", dict(credit_types=("ABO MOC Part II",)), [676]),
    Row(
        676,
        "state content type the activity does not offer",
        dict(board="NC", activity_id=PLAIN, credit_types=("AMA PRA Category 1", "Controlled Substance")),
        [676],
    ),
    Row(
        676,
        "state content type offered",
        dict(board="NC", credit_types=("AMA PRA Category 1", "Controlled Substance")),
        [],
    ),
    Row(676, "credit type in other case and spacing", dict(credit_types=("abim  moc part ii",)), []),
    Row(678, "same credit type twice", dict(credit_types=("ABIM MOC Part II", "abim moc part II")), [678]),
    Row(678, "two different credit types", dict(credit_types=("ABIM MOC Part II", "ABIM MOC Part IV")), []),
    Row(
        680,
        "patient safety, activity not registered for it",
        dict(activity_id=PLAIN, credit_types=("ABIM Patient Safety",)),
        [680],
    ),
    Row(680, "patient safety, registered", dict(credit_types=("ABIM Patient Safety",)), []),
    Row(
        681,
        "practice assessment, activity not registered for it",
        dict(board="ABS", learner_id_type="ABS", activity_id=PLAIN, credit_types=("ABS Practice Assessment",)),
        [681],
    ),
    Row(
        681,
        "practice assessment, registered",
        dict(board="ABS", learner_id_type="ABS", credit_types=("ABS Practice Assessment",)),
        [],
    ),
    # 998 unexpected failure
    Row(998, "storage fails for this record's activity", dict(activity_id=BOOM), [998], raising=True),
    Row(998, "storage fails for another activity only", dict(activity_id=MAIN), [], raising=True),
]


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.code}-{'fires' if r.fires else 'passes'}-{r.desc}" for r in ROWS])
def test_rule_table(row: Row):
    before = [rec(i + 1, **changes) for i, changes in enumerate(row.before)]
    this = rec(len(before) + 1, **row.changes)
    results = run(before + [this], lookups=world(row.stored, row.raising), today=row.today, source=row.source)
    if row.before_ok:
        assert [j.codes for j in results[:-1]] == [[] for _ in before], "the row's setup must pass"
    assert results[-1].codes == row.expected


def test_table_covers_every_code_both_ways():
    with SPEC_CODES.open(encoding="utf-8") as f:
        listed = {int(r["code"]) for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)}
    assert listed == set(DOMAIN_CODES)
    fires = {r.code for r in ROWS if r.fires}
    passes = {r.code for r in ROWS if not r.fires}
    assert not set(DOMAIN_CODES) - fires, "codes without a row where they fire"
    assert not set(DOMAIN_CODES) - passes, "codes without a row where they just pass"


def test_every_expected_list_is_ascending():
    for row in ROWS:
        assert row.expected == sorted(set(row.expected)), row.desc


# -- engine behaviour ---------------------------------------------------------------------------


def test_all_codes_found_are_returned_in_ascending_order():
    bad = rec(
        first_name=None,
        last_name=None,
        dob="12/12",
        completion_date="06/01/2026",
        credits="10.3",
        credit_types=("ABIM MOC Part II", "ABIM MOC Part II", "ABIM Patient Safety"),
        activity_id=MAIN,
    )
    (j,) = run([bad])
    assert j.codes == [622, 623, 664, 671, 674, 675, 678]
    assert j.status == Status.NOT_PROCESSED and j.stored is None


def test_678_names_the_certification_the_record_repeats():
    (j,) = run([rec(credit_types=("ABIM MOC Part II", "ABIM Patient Safety", " abim  moc part II"))])
    assert j.codes == [678]
    assert [message(code) for code in j.codes] == [
        "Invalid activity credit certificate. Activity certificate ABIM MOC Part II allowed once per learner "
        "submission record."
    ]
    assert json.loads(json.dumps(j.as_dict()))["errors"][0]["code"] == 678  # the code stays a number
    assert ",".join(map(str, j.codes)) == "678"


def test_every_other_message_is_the_lists_verbatim():
    with SPEC_CODES.open(encoding="utf-8") as f:
        listed = {int(r["code"]): r["message"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)}
    assert {code: message(code) for code in listed} == listed
    (j,) = run([rec(first_name=None, credits="x", credit_types=("ABIM MOC Part IX",))])
    assert [message(code) for code in j.codes] == [listed[622], listed[673], listed[676]]


@pytest.mark.parametrize(
    "changes, board",
    [
        (dict(board=None, learner_id_type="ABO", credit_types=("ABO MOC Part II",)), "ABO"),
        (dict(board=None, learner_id_type="NPI", credit_types=("Controlled Substance",)), "NC"),
        (dict(board=None, learner_id_type="ABO", credit_types=("ABIM MOC Part II",)), None),
        (dict(board="abim", learner_id_type="ABO"), "ABIM"),  # the registration decides
    ],
)
def test_the_board_a_record_reports_to(changes, board):
    found = board_of(CATALOGUE, rec(**changes))
    assert (found.code if found else None) == board


def test_reader_codes_are_merged_in_order():
    """Codes a reader found (e.g. a field too long) join the rules' codes, once each, in order."""
    (j,) = run([rec(credits="x", first_name=None, reader_codes=(673, 621))])
    assert j.codes == [621, 622, 673]


def test_records_are_judged_independently():
    records = [
        rec(1, first_name=None),
        rec(2, board="ABO"),
        rec(3, activity_id=UNKNOWN),
        rec(4, board="NC", learner_id_type="NPI", learner_id=NPI_1001),
    ]
    assert [j.codes for j in run(records)] == [[622], [], [690], []]


def test_duplicate_credit_id_only_for_the_second_add_of_a_request():
    records = [
        rec(1, board="ABO", credit_id="ccid:x:1"),
        rec(2, board="ABO", credit_id="ccid:x:2"),
        rec(3, board="ABO", credit_id="ccid:x:1"),
    ]
    assert codes_of(*records) == [[], [], [603]]


def test_a_record_that_raises_gets_998_alone(caplog):
    records = [
        rec(1, board="ABO"),
        rec(2, board="ABO", activity_id=BOOM, first_name=None),
        rec(3, board="ABO", credits="2"),
    ]
    with caplog.at_level(logging.ERROR):
        results = run(records, lookups=world(raising=True))
    assert [j.codes for j in results] == [[], [998], []]
    assert results[1].status == Status.NOT_PROCESSED and results[1].stored is None
    # The records around it were judged normally: the third still sees the first's points.
    assert results[2].status == Status.ACCEPTED and results[2].stored.credits == Decimal(2)
    assert any("unexpected failure" in r.getMessage() for r in caplog.records)


def test_cumulative_points_across_stored_and_request():
    stored = (
        held("ccid:s:1", credits="4"),
        held("ccid:s:2", credits="5", status=Status.REJECTED),
        held("ccid:s:3", credits="3", status=Status.DELETED),
    )
    records = [
        rec(1, board="ABO", credits="3"),
        rec(2, board="ABO", credits="3.25"),
        rec(3, board="ABO", credits="3"),
        rec(4, board="ABO", credits="0"),
    ]
    # held 4 -> +3 = 7 -> 7 + 3.25 > 10 (711) -> 7 + 3 = 10 -> maximum held (710)
    assert codes_of(*records, lookups=world(stored)) == [[], [711], [], [710]]


@pytest.mark.parametrize("source", [Source.TAB_BATCH, Source.WEB_FORM])
def test_tab_add_without_credit_id_is_judged(source):
    """The service assigns CreditIDs before judging; an offline check judges records without one."""
    results = run([rec(1, board="ABO", credit_id=None), rec(2, board="ABO", credit_id=None)], source=source)
    assert [j.codes for j in results] == [[], []]
    assert all(j.status == Status.ACCEPTED for j in results)


def test_delete_then_add_same_credit_id_in_one_request():
    stored = (held("ccid:s:1", credits="10"),)
    records = [rec(1, board="ABO", action="Delete", credit_id="ccid:s:1"), rec(2, board="ABO", credit_id="ccid:s:1")]
    results = run(records, lookups=world(stored))
    assert [j.codes for j in results] == [[], []]
    assert [j.status for j in results] == [Status.DELETED, Status.ACCEPTED]
    assert results[0].stored.credit_id == "ccid:s:1"


def test_stored_record_of_an_add():
    (j,) = run(
        [
            rec(
                board="NC",
                learner_id_type="npi",
                learner_id=NPI_1001,
                first_name=" Ann ",
                credits="2.50",
                credit_types=("ama pra category 1",),
            )
        ]
    )
    s = j.stored
    assert j.codes == [] and s is not None
    # The NPI as reported, held under the registry learner it matched; the catalogue's spellings.
    assert (s.board, s.learner_id, s.learner_id_type, s.first_name) == ("NC", NPI_1001, "NPI", "Ann")
    assert (s.npi, s.matched_learner_id, s.learner_key) == (NPI_1001, "1001", "1001")
    assert (s.completion_date, s.credits, s.credit_types) == (D(2026, 5, 1), Decimal("2.50"), ("AMA PRA Category 1",))


# -- status after submission --------------------------------------------------------------------


@pytest.mark.parametrize(
    "board, status",
    [
        ("ABO", Status.ACCEPTED),
        ("ABOHNS", Status.ACCEPTED),
        ("ME-MD", Status.ACCEPTED),
        ("ME-DO", Status.ACCEPTED),
        ("NC", Status.ACCEPTED),
        ("TN", Status.ACCEPTED),
        ("ABA", Status.SUBMITTED),
        ("ABIM", Status.SUBMITTED),
        ("ABPATH", Status.SUBMITTED),
        ("ABP", Status.SUBMITTED),
        ("ABS", Status.SUBMITTED),
    ],
)
def test_status_after_submission(board, status):
    (j,) = run([rec(board=board)])
    assert j.codes == [] and j.status == status and j.stored.status == status


def test_catalogue_names_every_board_of_the_spec():
    assert {b.code for b in CATALOGUE} == {
        "ABO",
        "ABOHNS",
        "ABA",
        "ABIM",
        "ABPATH",
        "ABP",
        "ABS",
        "ME-MD",
        "ME-DO",
        "NC",
        "TN",
    }


# -- match() (GetLearnerMatch) ------------------------------------------------------------------


def _match(**changes) -> list[int]:
    r = rec(**changes)
    return match(r, today=TODAY, catalogue=CATALOGUE, lookups=world())


@pytest.mark.parametrize(
    "changes, expected",
    [
        (dict(), []),
        (dict(first_name=" ánn ", last_name="LEE "), []),
        (dict(learner_id="9999"), [661]),
        (dict(dob="03/02"), [664]),
        (dict(first_name="Anne"), [665]),
        (dict(dob="03/02", first_name="Anne"), [664, 665]),
        (dict(learner_id=None), [621]),
        (dict(learner_id_type="NPI"), [712]),
        (dict(board="XYZ"), [713]),
        (dict(board="NC", learner_id_type="NPI", learner_id=NPI_1001), []),
        (dict(ABS_NO_ID, first_name="John", last_name="Smith", dob="01/15"), [718]),
        (dict(ABS_NO_ID, first_name="John", last_name="Smith", dob="01/16"), [718]),
        (dict(ABS_NO_ID, first_name="John", last_name="Smith", dob=None), [624, 718]),
        (dict(ABS_NO_ID, first_name="jose", last_name="nunez", dob="12/24"), []),
        (dict(board="ABS", learner_id="5001", first_name="John", last_name="Smith", dob="01/15"), []),
        # Fields a report needs but a match does not.
        (dict(activity_id=None, completion_date=None, credits=None, credit_types=(), action=None), []),
    ],
)
def test_match(changes, expected):
    assert _match(**changes) == expected


# -- the sandbox fixture (year 2026: activities from 2025-01-01) ------------------------------


@pytest.fixture(scope="module")
def sandbox():
    fx = sandbox_fixture()
    return MemoryLookups(
        [activity_from_dict(a, 2026) for a in fx["activities"]], [learner_from_dict(x, 2026) for x in fx["registry"]]
    )


def sandbox_rec(**changes) -> ReportedRecord:
    fields = dict(
        action="Add",
        credit_id="ccid:testprovider.org:1",
        board="ABIM",
        activity_id="200900001",
        learner_id_type="ABIM",
        learner_id="1000106",
        first_name="Test2",
        last_name="Account2",
        dob="03/01",
        completion_date="05/01/2026",
        credits="1",
        credit_types=("ABIM MOC Part II",),
    )
    fields.update(changes)
    return ReportedRecord(index=1, **fields)


@pytest.mark.parametrize(
    "changes, expected",
    [
        (dict(first_name=" tëst2 "), []),
        (dict(first_name="TEST2", last_name=" account2"), []),
        (dict(first_name="Test3"), [665]),
        (
            dict(
                board="ABS",
                learner_id=None,
                learner_id_type=None,
                first_name="John",
                last_name="Smith",
                dob="01/15",
                credit_types=("ABS Continuous Certification",),
            ),
            [718],
        ),
        (
            dict(
                board="ABS",
                learner_id=None,
                learner_id_type=None,
                first_name="Jose",
                last_name="NUNEZ",
                dob="12/24",
                credit_types=("ABS Continuous Certification",),
            ),
            [],
        ),
        (
            dict(
                learner_id="1000111",
                first_name="Test7",
                last_name="Account7",
                dob="08/01",
                completion_date="02/01/2026",
            ),
            [709],
        ),
        (dict(activity_id="200900002", credits="2.25"), [674]),
        # Activities span the previous and the current year: December's completions in January, 705's first day.
        (
            dict(
                board="ABPATH",
                learner_id_type="ABPATH",
                activity_id="200608132",
                completion_date="01/01/2025",
                credit_types=("ABPath MOC Part II",),
            ),
            [],
        ),
        (
            dict(
                board="ABO",
                learner_id_type="ABO",
                activity_id="200931446",
                completion_date="12/31/2024",
                credit_types=("ABO MOC Part II",),
            ),
            [672, 705],
        ),
        (
            dict(
                board="ME-MD",
                activity_id="200930135",
                learner_id_type="License",
                learner_id="MD9966",
                first_name="Traci",
                last_name="Tester",
                dob="11/10",
                completion_date="06/10/2026",
                credit_types=("AMA PRA Category 1",),
            ),
            [],
        ),
    ],
)
def test_sandbox_fixture(sandbox, changes, expected):
    (j,) = judge(
        [sandbox_rec(**changes)],
        today=TODAY,
        now=dt.datetime(2026, 6, 15, 9),
        catalogue=CATALOGUE,
        lookups=sandbox,
        source=Source.SOAP,
    )
    assert j.codes == expected


def test_sandbox_match_john_smith(sandbox):
    r = sandbox_rec(
        board="ABS", learner_id=None, learner_id_type=None, first_name="John", last_name="Smith", dob="01/15"
    )
    assert match(r, today=TODAY, catalogue=CATALOGUE, lookups=sandbox) == [718]
    assert (
        match(
            replace(r, learner_id="5550002", learner_id_type="ABS"), today=TODAY, catalogue=CATALOGUE, lookups=sandbox
        )
        == []
    )
