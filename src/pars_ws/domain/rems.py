"""Opioid Analgesic REMS participant reporting: the participants a provider reports for a REMS
activity (MedBiquitous ActivityReport v2 `Participants/Participant`), and the rules they are judged by.

PARS lists no REMS-specific error codes. A rule uses the nearest existing code: 621 (missing ID),
630/690/670 (activity), 631/671/672 (completion date); a participant field that is missing or not
one of ActivityReport v2's values is 998, with the field named beside the message (`as_found`).
Each rule is a small function next to its code, as in rules.py; one problem is reported once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .activities import Activity
from .catalogue import fold
from .dates import parse_completion_date
from .errors import Code
from .records import Status

FIELD_VALUE = 998  # "General learner record processing error.": no PARS code names a REMS field


@dataclass(frozen=True)
class RemsValues:
    """The values ActivityReport v2 allows for a participant's fields (data/rems.json)."""

    professions: tuple[str, ...]
    dea_registrations: tuple[str, ...]
    practice_areas: tuple[str, ...]
    time_in_practice: tuple[str, ...]
    states: Mapping[str, str]  # postal code -> name

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RemsValues:
        return cls(
            tuple(d["professions"]),
            tuple(d["dea_registrations"]),
            tuple(d["practice_areas"]),
            tuple(d["time_in_practice"]),
            dict(d["states"]),
        )

    def state(self, text: str | None) -> str | None:
        """The postal code of a state named by its code or its name, folded; None if it is neither."""
        key = fold(text or "")
        return next((code for code, name in self.states.items() if key in (fold(code), fold(name))), None)


def one_of(values: tuple[str, ...], text: str | None) -> str | None:
    """The allowed value `text` names (case and accents aside), as the standard spells it; else None."""
    key = fold(text or "")
    return next((v for v in values if fold(v) == key), None)


_TRUE, _FALSE = ("true", "yes", "y", "1"), ("false", "no", "n", "0")


def surgical_procedures(text: str | None) -> bool | None:
    key = (text or "").strip().casefold()
    return True if key in _TRUE else False if key in _FALSE else None


@dataclass(frozen=True)
class ReportedParticipant:
    """One REMS participant as a file states it: text, not yet judged. `index` is 1-based."""

    index: int
    activity_id: str | None
    participant_id: str | None
    participant_id_domain: str | None
    completion_date: str | None
    profession: str | None
    state: str | None
    dea_registration: str | None
    practice_area: str | None
    surgical_procedures: str | None
    time_in_practice: str | None
    original: tuple[str, ...] | None = None  # a tab-delimited row exactly as written


@dataclass(frozen=True)
class ParticipantCase:
    p: ReportedParticipant
    activity: Activity | None  # this provider's activity of that ID, if any
    values: RemsValues
    today: dt.date

    @property
    def completion(self) -> dt.date | None:
        return parse_completion_date(self.p.completion_date)


@dataclass(frozen=True)
class ParticipantRule:
    code: int
    field: str | None  # the participant field a 998 names
    check: Callable[[ParticipantCase], bool]


RULES: list[ParticipantRule] = []


def rule(code: int, field: str | None = None):
    def register(fn):
        RULES.append(ParticipantRule(code, field, fn))
        fn.code = code
        return fn

    return register


# -- participant ID and activity ------------------------------------------------------------------


@rule(621)
def participant_id_missing(c) -> bool:
    return c.p.participant_id is None


@rule(630)
def activity_id_missing(c) -> bool:
    return c.p.activity_id is None


@rule(690)
def activity_unknown(c) -> bool:
    return c.p.activity_id is not None and c.activity is None


@rule(670)
def activity_not_rems(c) -> bool:
    """Participants are reported only for activities registered for the Opioid Analgesic REMS."""
    return c.activity is not None and not c.activity.rems


# -- completion date -------------------------------------------------------------------------------


@rule(631)
def completion_date_missing(c) -> bool:
    return c.p.completion_date is None


@rule(671)
def completion_date_invalid(c) -> bool:
    if c.p.completion_date is None:
        return False
    completed = c.completion
    if completed is None or completed > c.today:
        return True
    return c.activity is not None and completed > c.activity.end_date


@rule(672)
def completion_before_start(c) -> bool:
    return c.completion is not None and c.activity is not None and c.completion < c.activity.start_date


# -- participant fields (ActivityReport v2 values) -------------------------------------------------


@rule(FIELD_VALUE, "Profession")
def profession_invalid(c) -> bool:
    return one_of(c.values.professions, c.p.profession) is None  # required by the standard


@rule(FIELD_VALUE, "State of Primary Practice")
def state_invalid(c) -> bool:
    return c.p.state is not None and c.values.state(c.p.state) is None


@rule(FIELD_VALUE, "DEA Registration")
def dea_registration_invalid(c) -> bool:
    return c.p.dea_registration is not None and one_of(c.values.dea_registrations, c.p.dea_registration) is None


@rule(FIELD_VALUE, "Practice Area")
def practice_area_invalid(c) -> bool:
    return c.p.practice_area is not None and one_of(c.values.practice_areas, c.p.practice_area) is None


@rule(FIELD_VALUE, "Surgical Procedures")
def surgical_procedures_invalid(c) -> bool:
    return c.p.surgical_procedures is not None and surgical_procedures(c.p.surgical_procedures) is None


@rule(FIELD_VALUE, "Time in Practice")
def time_in_practice_invalid(c) -> bool:
    return c.p.time_in_practice is not None and one_of(c.values.time_in_practice, c.p.time_in_practice) is None


# -- judging ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Participant:
    """A participant as stored: every field in the standard's own spelling, the state as its postal code."""

    activity_id: str
    participant_id: str
    participant_id_domain: str | None
    completion_date: dt.date
    profession: str
    state: str | None
    dea_registration: str | None
    practice_area: str | None
    surgical_procedures: bool | None
    time_in_practice: str | None


@dataclass(frozen=True)
class ParticipantJudgement:
    participant: ReportedParticipant
    codes: list[Code]
    stored: Participant | None

    @property
    def ok(self) -> bool:
        return not self.codes

    @property
    def status(self) -> Status:
        return Status.ACCEPTED if self.ok else Status.NOT_PROCESSED


def found_codes(c: ParticipantCase) -> list[Code]:
    """Each code the participant breaks once, in code order; a 998 names the fields it is about."""
    broken: dict[int, list[str]] = {}
    for r in RULES:
        if r.check(c):
            broken.setdefault(r.code, []).extend([r.field] if r.field else [])
    return [Code(code, ", ".join(fields)) for code, fields in sorted(broken.items())]


def judge_participant(
    p: ReportedParticipant, activity: Activity | None, values: RemsValues, today: dt.date
) -> ParticipantJudgement:
    case = ParticipantCase(p, activity, values, today)
    codes = found_codes(case)
    if codes:
        return ParticipantJudgement(p, codes, None)
    return ParticipantJudgement(
        p,
        [],
        Participant(
            activity_id=p.activity_id,
            participant_id=p.participant_id,
            participant_id_domain=p.participant_id_domain,
            completion_date=case.completion,
            profession=one_of(values.professions, p.profession),
            state=values.state(p.state),
            dea_registration=one_of(values.dea_registrations, p.dea_registration),
            practice_area=one_of(values.practice_areas, p.practice_area),
            surgical_procedures=surgical_procedures(p.surgical_procedures),
            time_in_practice=one_of(values.time_in_practice, p.time_in_practice),
        ),
    )


def as_found(code: int, p: ReportedParticipant, values: RemsValues) -> Code:
    """A stored code with the fields its 998 is about, found again from the participant as written
    (the field rules ask nothing stored)."""
    if code != FIELD_VALUE:
        return Code(code, "")
    case = ParticipantCase(p, None, values, dt.date.max)
    return Code(code, ", ".join(r.field for r in RULES if r.field and r.check(case)))
