"""Judging a request: every record against every rule, in request order; a record sees what the earlier
records of the same request added or deleted (RequestState), and one record's failure changes no other."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from typing import Protocol

from .activities import Activity, RegisteredLearner, Registration
from .catalogue import NPI, Board, Catalogue, fold
from .dates import parse_completion_date, parse_dob
from .errors import message
from .records import DOB, ReportedRecord, Source, Status, StoredRecord
from .rules import ADD, DELETE, RULES, as_found, board_of, credit_id_already_used

log = logging.getLogger(__name__)

UNEXPECTED = 998
# re.ASCII: \d must not accept other scripts' digits (Decimal() would happily read them).
_POINTS = re.compile(r"^(\d+(\.\d*)?|\.\d+)$", re.ASCII)


class Lookups(Protocol):
    """What the rules need to know beyond the record itself (answered from storage)."""

    def activity(self, activity_id: str) -> Activity | None: ...
    def registered_learner(self, board: str, id_type: str, learner_id: str) -> RegisteredLearner | None: ...
    def learners_by_name_and_dob(self, board: str, first: str, last: str, dob: DOB) -> list[RegisteredLearner]: ...
    def live_record(self, credit_id: str) -> StoredRecord | None: ...
    # What a learner holds for an activity, by the key its records are kept under (learner_key):
    # the points of its live records not rejected, and its live records completed on one day.
    def points_held(self, board: str, activity_id: str, key: str) -> Decimal: ...
    def records_on(self, board: str, activity_id: str, key: str, day: dt.date) -> list[StoredRecord]: ...


class cached_property:  # noqa: N801 - a drop-in for functools.cached_property
    """functools.cached_property without the per-property lock Python 3.11 takes on every first
    access, which cost more than most rules. A Case never leaves the thread that judges it."""

    def __init__(self, fn):
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


def parse_points(text: str | None) -> Decimal | None:
    """A non-negative decimal, or None."""
    if text is None or not _POINTS.match(text.strip()):
        return None
    return Decimal(text.strip())


# The same dates and point values recur throughout a file: parse each once (pure, immutable results).
_completion_date = lru_cache(maxsize=4096)(parse_completion_date)
_dob = lru_cache(maxsize=4096)(parse_dob)
_points = lru_cache(maxsize=4096)(parse_points)


def learner_key(learner_id: str) -> str:
    return fold(learner_id)


@dataclass
class RequestState:
    """What earlier records of the same request did, so later ones see it."""

    added: dict[str, StoredRecord] = field(default_factory=dict)  # by CreditID
    deleted: set[str] = field(default_factory=set)  # CreditIDs deleted in this request
    # By (board, activity ID, learner key): records this request added, and stored ones it deleted.
    by_learner: dict[tuple[str, str, str], list[StoredRecord]] = field(default_factory=lambda: defaultdict(list))
    deleted_stored: dict[tuple[str, str, str], list[StoredRecord]] = field(default_factory=lambda: defaultdict(list))


class Case:
    """One record, with everything the rules ask about it, worked out once and on demand."""

    def __init__(
        self,
        r: ReportedRecord,
        *,
        today: dt.date,
        catalogue: Catalogue,
        lookups: Lookups,
        state: RequestState,
        source: Source,
    ):
        self.r = r
        self.today = today
        self.catalogue = catalogue
        self.lookups = lookups
        self.state = state
        self.source = source

    # -- the record's own fields, parsed
    @cached_property
    def action_text(self) -> str | None:
        return self.r.action.strip() if self.r.action and self.r.action.strip() else None

    @cached_property
    def action(self) -> str | None:
        text = (self.action_text or "").lower()
        return text if text in (ADD, DELETE) else None

    @cached_property
    def credit_id(self) -> str | None:
        """The CreditID as compared and stored: surrounding blanks do not count."""
        return self.r.credit_id.strip() or None if self.r.credit_id else None

    @property
    def credit_id_required(self) -> bool:
        return self.source.carries_credit_id

    @cached_property
    def board(self) -> Board | None:
        return board_of(self.catalogue, self.r)

    @cached_property
    def completion(self) -> dt.date | None:
        return _completion_date(self.r.completion_date)

    @cached_property
    def dob(self) -> DOB | None:
        return _dob(self.r.dob)

    @cached_property
    def points(self) -> Decimal | None:
        return _points(self.r.credits)

    # -- the activity
    @cached_property
    def activity(self) -> Activity | None:
        return self.lookups.activity(self.r.activity_id.strip()) if self.r.activity_id else None

    @cached_property
    def registration(self) -> Registration | None:
        if self.activity is None or self.board is None:
            return None
        return self.activity.registration(self.board.code)

    # -- the learner in the board's registry
    @cached_property
    def id_type(self) -> str | None:
        if self.board is None or self.r.learner_id_type is None:
            return None
        return self.board.id_type(self.r.learner_id_type)

    @property
    def id_lookup_possible(self) -> bool:
        return self.id_type is not None and self.r.learner_id is not None

    @cached_property
    def registered(self) -> RegisteredLearner | None:
        if not self.id_lookup_possible:
            return None
        return self.lookups.registered_learner(self.board.code, self.id_type, self.r.learner_id)

    @property
    def matches_on_name_and_dob(self) -> bool:
        return self.board is not None and not self.board.id_required and self.r.learner_id is None

    @cached_property
    def name_dob_matches(self) -> list[RegisteredLearner]:
        dob = self.dob
        if not (self.r.first_name and self.r.last_name and dob and dob.day):
            return []
        return self.lookups.learners_by_name_and_dob(self.board.code, self.r.first_name, self.r.last_name, dob)

    @cached_property
    def learner(self) -> RegisteredLearner | None:
        if self.registered is not None:
            return self.registered
        if self.matches_on_name_and_dob and len(self.name_dob_matches) == 1:
            return self.name_dob_matches[0]
        return None

    @cached_property
    def learner_key(self) -> str | None:
        return learner_key(self.learner.learner_id) if self.learner is not None else None

    # -- what the learner already holds for this activity
    @cached_property
    def held_key(self) -> tuple[str, str, str] | None:
        if self.learner_key is None or self.activity is None or self.board is None:
            return None
        return self.board.code, self.activity.activity_id, self.learner_key

    @cached_property
    def points_held(self) -> Decimal:
        """Points of the learner's live records not rejected, with this request's adds and deletes."""
        key = self.held_key
        if key is None:
            return Decimal(0)
        stored = self.lookups.points_held(*key)
        dropped = points_counted(self.state.deleted_stored.get(key, ()))
        return stored - dropped + points_counted(self.state.by_learner.get(key, ()))

    @cached_property
    def completed_same_day(self) -> bool:
        """Whether the learner holds another live record, not rejected, completed on this record's day."""
        key = self.held_key
        if key is None or self.completion is None:
            return False
        held = [
            rec for rec in self.lookups.records_on(*key, self.completion) if rec.credit_id not in self.state.deleted
        ]
        held += [rec for rec in self.state.by_learner.get(key, ()) if rec.completion_date == self.completion]
        return any(rec.status != Status.REJECTED for rec in held)

    # -- CreditIDs
    @cached_property
    def credit_id_taken(self) -> bool:
        cid = self.credit_id
        if cid is None:
            return False
        if cid in self.state.added:
            return True
        return cid not in self.state.deleted and self.lookups.live_record(cid) is not None

    @cached_property
    def delete_target(self) -> StoredRecord | None:
        cid = self.credit_id
        if cid is not None:
            if cid in self.state.added:
                return self.state.added[cid]
            if cid in self.state.deleted:
                return None
            return self.lookups.live_record(cid)
        return self._delete_target_by_fields()

    def _delete_target_by_fields(self) -> StoredRecord | None:
        """Tab-delimited deletes name the record by its fields, as the seed describes."""
        if self.board is None or self.r.activity_id is None:
            return None
        # Records are kept under the registry's learner ID: a learner reported by NPI, or an ABS
        # learner matched on name + DOB, is found under it; otherwise the ID as written.
        who = self.learner_key or (learner_key(self.r.learner_id) if self.r.learner_id else None)
        if who is None:
            return None
        if self.completion is None:
            return None
        key = (self.board.code, self.r.activity_id.strip(), who)
        candidates = [
            r for r in self.lookups.records_on(*key, self.completion) if r.credit_id not in self.state.deleted
        ]
        candidates += [r for r in self.state.by_learner.get(key, []) if r.completion_date == self.completion]
        # A Submitted record cannot be deleted yet: prefer a processed one with the same fields.
        candidates.sort(key=lambda rec: rec.status == Status.SUBMITTED)
        return next((rec for rec in candidates if self.points is None or rec.credits == self.points), None)


@dataclass
class Judgement:
    record: ReportedRecord
    action: str | None
    codes: list[int]
    status: Status
    stored: StoredRecord | None = None  # the new record (Add) or the record removed (Delete)

    @property
    def ok(self) -> bool:
        return not self.codes

    def as_dict(self) -> dict:
        """The outcome as the JSON API and `pars-ws validate --json` give it."""
        return {
            "index": self.record.index,
            "credit_id": self.record.credit_id,
            "status": self.status.value,
            "errors": [{"code": c, "message": message(c)} for c in self.codes],
        }


def judge(
    records: Iterable[ReportedRecord],
    *,
    today: dt.date,
    now: dt.datetime,
    catalogue: Catalogue,
    lookups: Lookups,
    source: Source,
) -> list[Judgement]:
    """Judge every record of one request or file. One record's failure never changes another's."""
    state = RequestState()
    results = []
    for r in records:
        try:
            results.append(_judge_one(r, today, now, catalogue, lookups, state, source))
        except Exception:  # noqa: BLE001 - one record's surprise must not sink the others
            log.exception("unexpected failure judging record %s", r.index)
            results.append(Judgement(r, None, [UNEXPECTED], Status.NOT_PROCESSED))
    return results


# The rules that apply to each action (None: neither add nor delete), in code order, as (code, check).
_RULES_FOR = {
    action: [(rule.code, rule.check) for rule in RULES if rule.action in ("any", action)]
    for action in (ADD, DELETE, None)
}


def _judge_one(r, today, now, catalogue, lookups, state, source) -> Judgement:
    c = Case(r, today=today, catalogue=catalogue, lookups=lookups, state=state, source=source)
    action = c.action
    found = set(r.reader_codes) | {code for code, check in _RULES_FOR[action] if check(c)}
    codes = [as_found(code, r) for code in sorted(found)]
    if codes:
        return Judgement(r, action, codes, Status.NOT_PROCESSED)
    if action == DELETE:
        target = c.delete_target
        state.deleted.add(target.credit_id)
        key = (target.board, target.activity_id, target.learner_key)
        if state.added.pop(target.credit_id, None) is target:
            state.by_learner[key].remove(target)
        else:
            state.deleted_stored[key].append(target)
        return Judgement(r, action, [], Status.DELETED, target)
    # A learner reported by NPI is kept under that NPI as reported; the others under the board's own
    # spelling of their ID. Either way the record is held under the registry learner it matched.
    by_npi = c.id_type is not None and fold(c.id_type) == NPI
    reported_npi = r.learner_id.strip() if by_npi else None
    stored = StoredRecord(
        # Tab and web-form records get their CreditID from the service before judging; an
        # offline check (`pars-ws validate`) judges them without one.
        credit_id=c.credit_id or "",
        activity_id=c.activity.activity_id,
        board=c.board.code,
        learner_id_type=c.id_type or c.board.learner_id_types[0],
        learner_id=reported_npi or c.learner.learner_id,
        first_name=r.first_name.strip(),
        last_name=r.last_name.strip(),
        dob=c.dob,
        completion_date=c.completion,
        credits=c.points,
        credit_types=tuple(c.board.credit_type(t).name for t in r.credit_types),
        status=Status.SUBMITTED if c.board.review else Status.ACCEPTED,
        source=source,
        submitted_at=now,
        updated_at=now,
        npi=reported_npi or r.npi,
        learner_key=c.learner_key,
        matched_learner_id=c.learner.learner_id,
    )
    if stored.credit_id:
        state.added[stored.credit_id] = stored
    state.by_learner[c.held_key].append(stored)
    return Judgement(r, action, [], stored.status, stored)


def points_counted(records) -> Decimal:
    """Points that count toward a learner's total: a rejected record's do not."""
    return sum((rec.credits for rec in records if rec.status != Status.REJECTED), Decimal(0))


def credit_ids_taken(judgements: list[Judgement], taken: set[str]) -> None:
    """Adds whose CreditID another request stored first, as the store found when it wrote them
    (the unique index decided the race): 603, as if that request had come before this one."""
    for j in judgements:
        if j.ok and j.stored is not None and j.status != Status.DELETED and j.stored.credit_id in taken:
            j.codes, j.status, j.stored = [credit_id_already_used.code], Status.NOT_PROCESSED, None


MATCH_CODES = frozenset({621, 622, 623, 624, 661, 664, 665, 712, 713, 718})


def match(r: ReportedRecord, *, today: dt.date, catalogue: Catalogue, lookups: Lookups) -> list[int]:
    """GetLearnerMatch: the registry rules alone, for a learner not being reported. A learner ID sent
    without its type is taken as the board's first type (as the entry form offers it)."""
    board = catalogue.by_registration(r.board)
    if board is not None and r.learner_id and not r.learner_id_type:
        r = replace(r, learner_id_type=board.learner_id_types[0])
    c = Case(r, today=today, catalogue=catalogue, lookups=lookups, state=RequestState(), source=Source.SOAP)
    return [rule.code for rule in RULES if rule.code in MATCH_CODES and rule.check(c)]
