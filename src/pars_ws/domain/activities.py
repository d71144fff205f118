"""Activities, their board registrations, and the board registries PARS matches learners against."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from decimal import Decimal

from .catalogue import Catalogue, fold
from .errors import message
from .records import DOB


class ActivityRefused(Exception):
    """An activity that cannot be stored: the PARS code (None for a plain data problem) and why."""

    def __init__(self, code: int | None, text: str):
        super().__init__(text)
        self.code = code


# The most credits or points an activity may offer: what a record's points column holds (10 digits, 2 decimals).
MAX_POINTS = Decimal("99999999.99")


def _points_ok(points: Decimal) -> bool:
    return points.is_finite() and 0 <= points <= MAX_POINTS


@dataclass(frozen=True)
class Registration:
    board: str
    max_points: Decimal
    credit_types: tuple[str, ...]

    def offers(self, credit_type: str) -> bool:
        key = fold(credit_type)
        return any(fold(t) == key for t in self.credit_types)


@dataclass(frozen=True)
class Activity:
    activity_id: str  # 9-digit ACCME activity ID
    title: str
    activity_type: str
    start_date: dt.date
    end_date: dt.date
    reporting_year: int
    credits: Decimal  # AMA PRA Category 1
    registrations: tuple[Registration, ...] = ()
    provider_activity_id: str | None = None
    rems: bool = False  # registered for the Opioid Analgesic REMS: participants may be reported for it

    def registration(self, board: str) -> Registration | None:
        return next((r for r in self.registrations if r.board == board), None)

    def problems(self) -> list[str]:
        """What makes this activity unfit to store (a title and type; points finite, non-negative, at most
        MAX_POINTS)."""
        found = [
            f"The activity's {what} is required."
            for what, value in (("title", self.title), ("type", self.activity_type))
            if not (value or "").strip()
        ]
        if self.end_date < self.start_date:
            found.append("The activity's end date is before its start date.")
        if not _points_ok(self.credits):
            found.append(f"Credits must be a non-negative number up to {MAX_POINTS:,}, not {self.credits}.")
        for reg in self.registrations:
            if not _points_ok(reg.max_points):
                found.append(
                    f"{reg.board}: MaxPoints must be a non-negative number up to {MAX_POINTS:,}, not {reg.max_points}."
                )
        return found

    def registered_with(self, catalogue: Catalogue) -> Activity:
        """This activity with each registration named by its board's code and its credit types by the
        catalogue's names; ActivityRefused for an unknown board (713), an unknown credit type (676)
        or a problem above."""
        regs = []
        for reg in self.registrations:
            board = catalogue.by_registration(reg.board)
            if board is None:
                raise ActivityRefused(713, f"{message(713)} ({reg.board})")
            types = []
            for name in reg.credit_types:
                credit_type = board.credit_type(name)
                if credit_type is None:
                    raise ActivityRefused(676, f"{message(676)} ({board.code}: {name})")
                types.append(credit_type.name)
            regs.append(replace(reg, board=board.code, credit_types=tuple(types)))
        problems = self.problems()
        if problems:
            raise ActivityRefused(None, " ".join(problems))
        return replace(self, registrations=tuple(regs))


@dataclass(frozen=True)
class RegisteredLearner:
    """One diplomate or licensee in a board's own registry."""

    board: str
    learner_id: str
    first_name: str
    last_name: str
    dob: DOB | None
    npi: str | None = None
    # Sandbox only: the board review rejects this learner's records with this code.
    review_reject_code: int | None = None
    # Completions the board already has from outside PARS: (activity ID, completion date).
    completions: frozenset[tuple[str, dt.date]] = field(default_factory=frozenset)
