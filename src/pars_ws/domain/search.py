"""What a provider searches for and what a search finds: learner search, activity learner summary,
and a record's history (plain values; storage fills them, the service reads filters into them)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .records import Status, StoredRecord


@dataclass(frozen=True)
class SearchFilter:
    """Learner search, as in the seed: at least one of title keyword, last name, submission dates."""

    title: str | None = None
    last_name: str | None = None
    submitted_from: dt.date | None = None
    submitted_to: dt.date | None = None
    board: str | None = None
    activity_id: str | None = None
    provider_activity_id: str | None = None
    learner_id: str | None = None
    id_type: str | None = None
    status: Status | None = None  # None: every live record (Deleted only when asked for)
    completed_from: dt.date | None = None
    completed_to: dt.date | None = None


@dataclass(frozen=True)
class SummaryFilter:
    reporting_year: int
    title: str | None = None
    provider_activity_id: str | None = None
    board: str | None = None


@dataclass(frozen=True)
class LearnerResult:
    record: StoredRecord
    activity_title: str | None
    provider_activity_id: str | None


@dataclass(frozen=True)
class ActivitySummary:
    activity_id: str
    provider_activity_id: str | None
    title: str
    activity_type: str
    boards: tuple[str, ...]
    last_updated: dt.datetime | None  # of the activity's learner records
    submitted: int
    accepted: int
    rejected: int


@dataclass(frozen=True)
class Event:
    status: str
    at: dt.datetime
    code: int | None
    note: str | None


@dataclass(frozen=True)
class RawRequest:
    source: str
    received_at: dt.datetime
    correlation_id: str
    body: str  # passwords blanked


@dataclass(frozen=True)
class BatchOrigin:
    batch_id: int
    file_name: str | None
    row: int | None


@dataclass(frozen=True)
class RecordHistory:
    record: StoredRecord
    deleted_at: dt.datetime | None
    events: list[Event]
    request: RawRequest | None  # SOAP and web-form submissions
    batch: BatchOrigin | None  # batch uploads keep the file itself
