"""Lookups answered from memory: the service fills one per request from storage, tests fill it by hand."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from .activities import Activity, RegisteredLearner
from .catalogue import NPI, fold
from .engine import points_counted
from .names import name_key
from .records import DOB, Status, StoredRecord


class MemoryLookups:
    def __init__(
        self,
        activities: Iterable[Activity] = (),
        learners: Iterable[RegisteredLearner] = (),
        records: Iterable[StoredRecord] = (),
    ):
        self.activities: dict[str, Activity] = {}
        self._by_id: dict[tuple[str, str], RegisteredLearner] = {}
        self._by_npi: dict[tuple[str, str], RegisteredLearner] = {}
        self._learners: list[RegisteredLearner] = []
        self._by_name: dict[tuple[str, str, str], list[RegisteredLearner]] | None = None  # built when first asked
        self._live: dict[str, StoredRecord] = {}
        self._of_learner: dict[tuple[str, str, str], list[StoredRecord]] = defaultdict(list)
        for a in activities:
            self.add_activity(a)
        for learner in learners:
            self.add_learner(learner)
        for rec in records:
            self.add_record(rec)

    def add_activity(self, activity: Activity) -> None:
        self.activities[activity.activity_id] = activity

    def add_learner(self, learner: RegisteredLearner) -> None:
        self._by_id[(learner.board, fold(learner.learner_id))] = learner
        if learner.npi:
            self._by_npi[(learner.board, fold(learner.npi))] = learner
        self._learners.append(learner)
        self._by_name = None

    def add_record(self, rec: StoredRecord) -> None:
        """A record already stored."""
        if rec.status == Status.DELETED:
            return
        self._live[rec.credit_id] = rec
        self._of_learner[(rec.board, rec.activity_id, rec.learner_key)].append(rec)

    # -- Lookups
    def activity(self, activity_id: str) -> Activity | None:
        return self.activities.get(activity_id)

    def registered_learner(self, board: str, id_type: str, learner_id: str) -> RegisteredLearner | None:
        index = self._by_npi if fold(id_type) == NPI else self._by_id
        return index.get((board, fold(learner_id)))

    def learners_by_name_and_dob(self, board: str, first: str, last: str, dob: DOB) -> list[RegisteredLearner]:
        if self._by_name is None:
            # Name keys are slow to compute and only boards without learner IDs match on names.
            self._by_name = defaultdict(list)
            for learner in self._learners:
                self._by_name[(learner.board, name_key(learner.first_name), name_key(learner.last_name))].append(
                    learner
                )
        return [
            learner
            for learner in self._by_name.get((board, name_key(first), name_key(last)), [])
            if learner.dob is not None and learner.dob == dob
        ]

    def live_record(self, credit_id: str) -> StoredRecord | None:
        return self._live.get(credit_id)

    def points_held(self, board: str, activity_id: str, key: str) -> Decimal:
        return points_counted(self._of_learner.get((board, activity_id, key), ()))

    def records_on(self, board: str, activity_id: str, key: str, day: dt.date) -> list[StoredRecord]:
        return [rec for rec in self._of_learner.get((board, activity_id, key), ()) if rec.completion_date == day]
