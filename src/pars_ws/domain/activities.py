"""Activities, their board registrations, and the board registries PARS matches learners against."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from .catalogue import fold
from .records import DOB


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

    def registration(self, board: str) -> Registration | None:
        return next((r for r in self.registrations if r.board == board), None)

    def problems(self) -> list[str]:
        """What makes this activity unfit to store (points must be finite and non-negative)."""
        found = []
        if self.end_date < self.start_date:
            found.append("The activity's end date is before its start date.")
        if not (self.credits.is_finite() and self.credits >= 0):
            found.append(f"Credits must be a non-negative number, not {self.credits}.")
        for reg in self.registrations:
            if not (reg.max_points.is_finite() and reg.max_points >= 0):
                found.append(f"{reg.board}: MaxPoints must be a non-negative number, not {reg.max_points}.")
        return found


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
