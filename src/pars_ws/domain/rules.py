"""The PARS rules. Each rule is a small function next to the code it produces.

A rule receives a `Case` (one record with everything PARS knows about it) and answers True when
the record breaks it. Rules that need a value another rule reports as missing or invalid stay
silent, so each problem is reported once, under its own code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .catalogue import PATIENT_SAFETY, PRACTICE_ASSESSMENT, Board, Catalogue, fold
from .errors import Code
from .names import same_name
from .records import ReportedRecord, Status

ADD = "add"
DELETE = "delete"

if TYPE_CHECKING:
    from .engine import Case

RuleFn = Callable[["Case"], bool]


@dataclass(frozen=True)
class Rule:
    code: int
    action: str  # ADD, DELETE or "any"
    check: RuleFn


RULES: list[Rule] = []


def rule(code: int, action: str = ADD):
    def register(fn: RuleFn) -> RuleFn:
        RULES.append(Rule(code, action, fn))
        fn.code = code  # so other code can name a rule's code through the rule
        return fn

    return register


# -- action ---------------------------------------------------------------------------------


@rule(601, "any")
def action_missing(c) -> bool:
    return c.action_text is None


@rule(602, "any")
def action_invalid(c) -> bool:
    return c.action_text is not None and c.action is None


# -- missing fields -------------------------------------------------------------------------


@rule(603)
def credit_id_already_used(c) -> bool:
    return c.credit_id is not None and c.credit_id_taken


@rule(621)
def learner_id_missing(c) -> bool:
    return c.r.learner_id is None and (c.board is None or c.board.id_required)


@rule(622)
def first_name_missing(c) -> bool:
    return c.r.first_name is None


@rule(623)
def last_name_missing(c) -> bool:
    return c.r.last_name is None


@rule(624)
def dob_missing(c) -> bool:
    return c.r.dob is None and (c.board is None or c.board.dob_required)


@rule(630)
def activity_id_missing(c) -> bool:
    return c.r.activity_id is None


@rule(631)
def completion_date_missing(c) -> bool:
    return c.r.completion_date is None


@rule(632)
def points_missing(c) -> bool:
    return c.r.credits is None and c.r.has_credit_certificate


@rule(650, "any")
def credit_id_missing(c) -> bool:
    return c.credit_id is None and c.credit_id_required


@rule(677)
def credit_certificate_missing(c) -> bool:
    return not c.r.has_credit_certificate or not c.r.credit_types


# -- board registry match -------------------------------------------------------------------


@rule(661)
def learner_id_unknown(c) -> bool:
    return c.id_lookup_possible and c.registered is None


@rule(664)
def dob_differs(c) -> bool:
    learner = c.registered
    if learner is None or c.r.dob is None:
        return False
    return c.dob is None or c.dob.day is None or learner.dob != c.dob


@rule(665)
def name_differs(c) -> bool:
    learner = c.registered
    if learner is None or c.r.first_name is None or c.r.last_name is None:
        return False
    return not (same_name(c.r.first_name, learner.first_name) and same_name(c.r.last_name, learner.last_name))


@rule(718)
def no_single_match_without_id(c) -> bool:
    return c.matches_on_name_and_dob and len(c.name_dob_matches) != 1


# -- activity and registration --------------------------------------------------------------


@rule(670)
def activity_not_registered_for_board(c) -> bool:
    return c.activity is not None and c.board is not None and c.registration is None


@rule(690)
def activity_unknown(c) -> bool:
    return c.r.activity_id is not None and c.activity is None


@rule(712)
def learner_id_type_invalid(c) -> bool:
    return c.board is not None and c.r.learner_id is not None and c.id_type is None


def board_of(catalogue: Catalogue, r: ReportedRecord) -> Board | None:
    """The board (activity registration) a record reports to.

    hx:accreditingBody (Template B: Activity Registration) decides when present: a learner ID domain
    or a credit type of another board is then judged like any other (712, 676). Without it, the
    learner ID's domain when it names a board (the tutorial's XML: domain="ABO"), else the credit
    types when exactly one board offers them. A domain and credit types naming two boards leave the
    record without one (713): PARS does not guess.
    """
    if r.board is not None:
        return catalogue.by_registration(r.board)
    by_domain = catalogue.by_registration(r.learner_id_type)
    by_credit = catalogue.offering(r.credit_types)
    if by_domain is not None and by_credit is not None and by_domain is not by_credit:
        return None
    return by_domain or by_credit


@rule(713)
def registration_type_invalid(c) -> bool:
    return c.board is None


# -- dates ----------------------------------------------------------------------------------


@rule(671)
def completion_date_invalid(c) -> bool:
    if c.r.completion_date is None:
        return False
    if c.completion is None or c.completion > c.today:
        return True
    after_end = c.activity is not None and c.completion > c.activity.end_date
    return after_end and c.board is not None and c.board.certifying


@rule(672)
def completion_before_start(c) -> bool:
    return c.completion is not None and c.activity is not None and c.completion < c.activity.start_date


@rule(705)
def reporting_deadline_passed(c) -> bool:
    if c.completion is None or c.board is None:
        return False
    return c.completion < dt.date(c.today.year - c.board.reporting_years_back, 1, 1)


@rule(706, DELETE)
def deletion_deadline_passed(c) -> bool:
    # The deleted record's own board: a Delete by CreditID need not name one.
    target = c.delete_target
    board = c.catalogue.boards.get(target.board) if target is not None else None
    return board is not None and c.today > board.last_deletion_day(target.completion_date)


@rule(709)
def reported_outside_pars(c) -> bool:
    learner = c.learner
    return (
        learner is not None
        and c.completion is not None
        and c.activity is not None
        and (c.activity.activity_id, c.completion) in learner.completions
    )


@rule(717)
def second_completion_same_day(c) -> bool:
    if c.board is None or not c.board.one_completion_per_day or c.completion is None:
        return False
    return c.completed_same_day


# -- points ---------------------------------------------------------------------------------


@rule(673)
def points_invalid(c) -> bool:
    return c.r.credits is not None and c.points is None


@rule(674)
def points_above_activity(c) -> bool:
    return c.points is not None and c.registration is not None and c.points > c.registration.max_points


@rule(675)
def points_not_quarter(c) -> bool:
    if c.points is None:
        return False
    # Exact integer arithmetic: Decimal's % raises (DivisionImpossible) past 28 digits.
    numerator, denominator = c.points.as_integer_ratio()
    return (numerator * 4) % denominator != 0


@rule(710)
def maximum_already_granted(c) -> bool:
    return c.registration is not None and c.learner_key is not None and c.points_held >= c.registration.max_points


@rule(711)
def points_push_past_maximum(c) -> bool:
    reg = c.registration
    if reg is None or c.points is None or c.learner_key is None:
        return False
    held = c.points_held
    return held < reg.max_points and c.points <= reg.max_points and held + c.points > reg.max_points


# -- credit types ---------------------------------------------------------------------------


@rule(676)
def credit_type_not_offered(c) -> bool:
    if c.board is None:
        return False
    for name in c.r.credit_types:
        kind = c.board.credit_type(name)
        if kind is None:
            return True
        standard = kind.kind not in (PATIENT_SAFETY, PRACTICE_ASSESSMENT)
        if standard and c.registration is not None and not c.registration.offers(name):
            return True
    return False


def repeated_credit_type(credit_types: tuple[str, ...]) -> str | None:
    """The first credit type a record names a second time (case and spacing aside), as first written."""
    seen: dict[str, str] = {}
    for name in credit_types:
        if (key := fold(name)) in seen:
            return seen[key]
        seen[key] = " ".join(name.split())
    return None


@rule(678)
def credit_type_repeated(c) -> bool:
    return repeated_credit_type(c.r.credit_types) is not None


def as_found(code: int, r: ReportedRecord) -> int:
    """A code as reported for this record: 678's message names the certification it repeats."""
    if code == credit_type_repeated.code and (name := repeated_credit_type(r.credit_types)):
        return Code(code, name)
    return code


def _unregistered_kind(c, kind: str) -> bool:
    if c.board is None or c.registration is None:
        return False
    return any(
        (t := c.board.credit_type(name)) is not None and t.kind == kind and not c.registration.offers(name)
        for name in c.r.credit_types
    )


@rule(680)
def patient_safety_not_registered(c) -> bool:
    return _unregistered_kind(c, PATIENT_SAFETY)


@rule(681)
def practice_assessment_not_registered(c) -> bool:
    return _unregistered_kind(c, PRACTICE_ASSESSMENT)


# -- deletes --------------------------------------------------------------------------------


@rule(605, DELETE)
def delete_target_not_found(c) -> bool:
    # A Submitted record is not yet "accepted into the system" (605's own description):
    # it can be deleted only once the board has reviewed it.
    if c.credit_id is None and c.credit_id_required:
        return False  # 650 says it
    return c.delete_target is None or c.delete_target.status == Status.SUBMITTED


RULES.sort(key=lambda r: r.code)
