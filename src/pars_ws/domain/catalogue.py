"""The board catalogue: what each board or program accepts. Built from data, never hard-coded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

PATIENT_SAFETY = "patient-safety"
PRACTICE_ASSESSMENT = "practice-assessment"

# The catalogue's deletion deadlines: the last day a record of this completion date may be deleted (706).
DELETION_DEADLINES: dict[str, Callable[[dt.date], dt.date]] = {
    "end_of_completion_year": lambda completed: dt.date(completed.year, 12, 31),
}


NPI = "npi"  # the learner ID type of a National Provider Identifier, folded


@lru_cache(maxsize=8192)  # the same codes, names and learner IDs are folded many times per record
def fold(text: str) -> str:
    """Key for case-insensitive comparison of codes and vocabulary names."""
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class CreditType:
    name: str
    kind: str  # standard | patient-safety | practice-assessment | content


@dataclass(frozen=True)
class Board:
    code: str
    name: str
    kind: str  # certifying | state
    review: bool  # True: records stay Submitted until the board reviews them
    learner_id_types: tuple[str, ...]
    registration_codes: tuple[str, ...]
    id_required: bool
    dob_required: bool
    one_completion_per_day: bool
    credit_unit: str
    credit_types: tuple[CreditType, ...]
    reporting_years_back: int
    deletion_deadline: str
    state: str | None = None  # state boards: the licensing state (ME, NC, TN)
    # Folded name -> entry, for the lookups every record makes (the first of equal names wins).
    _credit_types: dict = field(init=False, repr=False, compare=False)
    _id_types: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_credit_types", {})
        object.__setattr__(self, "_id_types", {})
        for t in self.credit_types:
            self._credit_types.setdefault(fold(t.name), t)
        for t in self.learner_id_types:
            self._id_types.setdefault(fold(t), t)
        # The board itself or its state names the board's own ID: its board ID, or its licence number.
        for name in (self.code, *self.registration_codes, *filter(None, [self.state])):
            self._id_types.setdefault(fold(name), self.learner_id_types[0])
        if self.deletion_deadline not in DELETION_DEADLINES:
            raise ValueError(
                f"{self.code}: unknown deletion_deadline {self.deletion_deadline!r} "
                f"(known: {', '.join(DELETION_DEADLINES)})"
            )

    @property
    def certifying(self) -> bool:
        return self.kind == "certifying"

    def credit_type(self, name: str) -> CreditType | None:
        return self._credit_types.get(fold(name))

    def id_type(self, name: str) -> str | None:
        """The learner ID type a learner ID's domain (Template B: Learner ID Type) names for this board:
        one of its types (ABIM, License, NPI), or the board or its state for the board's own ID
        (NC and ME-MD name a licence number)."""
        return self._id_types.get(fold(name))

    def last_deletion_day(self, completed: dt.date) -> dt.date:
        return DELETION_DEADLINES[self.deletion_deadline](completed)


class Catalogue:
    def __init__(self, boards: Mapping[str, Board]):
        self.boards = dict(boards)
        self._by_registration = {fold(code): board for board in boards.values() for code in board.registration_codes}
        self._offering: dict[str, set[str]] = {}  # folded credit type -> codes of the boards offering it
        for board in boards.values():
            for t in board.credit_types:
                self._offering.setdefault(fold(t.name), set()).add(board.code)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Catalogue:
        boards = {}
        for code, b in data["boards"].items():
            boards[code] = Board(
                code=code,
                name=b["name"],
                kind=b["kind"],
                review=bool(b["review"]),
                learner_id_types=tuple(b["learner_id_types"]),
                registration_codes=tuple(b["registration_codes"]),
                id_required=bool(b["id_required"]),
                dob_required=bool(b["dob_required"]),
                one_completion_per_day=bool(b["one_completion_per_day"]),
                credit_unit=b.get("credit_unit", "Point"),
                credit_types=tuple(CreditType(t["name"], t["kind"]) for t in b["credit_types"]),
                reporting_years_back=int(b["reporting_deadline"]["years_back"]),
                deletion_deadline=b["deletion_deadline"],
                state=b.get("state"),
            )
        return cls(boards)

    def by_registration(self, code: str | None) -> Board | None:
        """The board an activity registration code (Template B 'Activity Registration') names."""
        if not code:
            return None
        return self._by_registration.get(fold(code))

    def offering(self, credit_types: Iterable[str]) -> Board | None:
        """The one board that offers every one of these credit types the catalogue knows; None when
        none is known or several boards offer them all (AMA PRA Category 1: every state board)."""
        known = [self._offering[key] for name in credit_types if (key := fold(name)) in self._offering]
        boards = set.intersection(*known) if known else set()
        return self.boards[boards.pop()] if len(boards) == 1 else None

    def __getitem__(self, code: str) -> Board:
        return self.boards[code]

    def __iter__(self):
        return iter(self.boards.values())
