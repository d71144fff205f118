"""Finding learner records: learner search and its CSV export, the activity learner summary, a
record's history, and deleting records from the details view.

Every query is scoped to the account's environment and provider. Filters arrive as text (query
string, form fields, CLI options) and are parsed here once, so every entry point reads them alike.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..adapters.clock import as_utc
from ..domain.catalogue import Catalogue
from ..domain.dates import parse_completion_date
from ..domain.engine import Judgement
from ..domain.errors import message
from ..domain.records import ReportedRecord, Source, Status
from ..domain.search import LearnerResult, RecordHistory, SearchFilter, SummaryFilter
from .auth import Account

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 200
MAX_TEXT = 200
SEARCHABLE_STATUSES = (Status.SUBMITTED, Status.ACCEPTED, Status.REJECTED, Status.DELETED)
# Excel runs a cell that starts like a formula; a leading apostrophe makes it text (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CSV_CHUNK_ROWS = 500


class SearchRefused(ValueError):
    """A filter that cannot be read; the message says which and why."""


# -- reading filters ------------------------------------------------------------------------------


def _text(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    value = str(value).strip() if value is not None else ""
    if len(value) > MAX_TEXT:
        raise SearchRefused(f"{name}: at most {MAX_TEXT} characters.")
    return value or None


def _date(params: Mapping[str, Any], name: str) -> dt.date | None:
    text = _text(params, name)
    if text is None:
        return None
    value = parse_completion_date(text)
    if value is None:
        raise SearchRefused(f"{name}: {text!r} is not a date (MM/DD/YYYY or YYYY-MM-DD).")
    return value


def _date_range(params: Mapping[str, Any], start: str, end: str) -> tuple[dt.date | None, dt.date | None]:
    first, last = _date(params, start), _date(params, end)
    if first and last and first > last:
        raise SearchRefused(f"{start} is after {end}.")
    return first, last


def _board(params: Mapping[str, Any], catalogue: Catalogue) -> str | None:
    text = _text(params, "board")
    if text is None:
        return None
    board = catalogue.by_registration(text)
    if board is None:
        raise SearchRefused(f"board: no board or program {text!r}.")
    return board.code


def paging(params: Mapping[str, Any]) -> tuple[int, int]:
    """(page, per_page) from `page` and `per_page`; 1-based pages."""
    try:
        page = int(_text(params, "page") or 1)
        per_page = int(_text(params, "per_page") or DEFAULT_PER_PAGE)
    except ValueError:
        raise SearchRefused("page and per_page must be whole numbers.") from None
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise SearchRefused(f"page must be 1 or more and per_page between 1 and {MAX_PER_PAGE}.")
    return page, per_page


def search_filter(params: Mapping[str, Any], catalogue: Catalogue) -> SearchFilter:
    submitted = _date_range(params, "submitted_from", "submitted_to")
    completed = _date_range(params, "completed_from", "completed_to")
    status_text = _text(params, "status")
    status = None
    if status_text is not None:
        status = next((s for s in SEARCHABLE_STATUSES if s.value.lower() == status_text.lower()), None)
        if status is None:
            raise SearchRefused(f"status: one of {', '.join(s.value for s in SEARCHABLE_STATUSES)}.")
    f = SearchFilter(
        title=_text(params, "title"),
        last_name=_text(params, "last_name"),
        submitted_from=submitted[0],
        submitted_to=submitted[1],
        board=_board(params, catalogue),
        activity_id=_text(params, "activity_id"),
        provider_activity_id=_text(params, "provider_activity_id"),
        learner_id=_text(params, "learner_id"),
        id_type=_text(params, "id_type"),
        status=status,
        completed_from=completed[0],
        completed_to=completed[1],
    )
    if not (f.title or f.last_name or f.submitted_from or f.submitted_to):
        raise SearchRefused("Give at least one of: activity title keyword, learner last name, submission date range.")
    return f


def summary_filter(params: Mapping[str, Any], catalogue: Catalogue, today: dt.date) -> SummaryFilter:
    year = _text(params, "year")
    if year is not None and not (year.isascii() and year.isdigit() and len(year) == 4):
        raise SearchRefused("year: a reporting year such as 2026.")
    return SummaryFilter(
        reporting_year=int(year) if year else today.year,
        title=_text(params, "title"),
        provider_activity_id=_text(params, "provider_activity_id"),
        board=_board(params, catalogue),
    )


# -- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    items: list
    total: int
    page: int
    per_page: int

    @property
    def first(self) -> int:
        """1-based position of the first item shown ("Showing 1 - 20 of 31"); 0 when none."""
        return (self.page - 1) * self.per_page + 1 if self.items else 0

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0


@dataclass(frozen=True)
class Column:
    key: str  # JSON name
    header: str  # CSV and page header
    get: Callable[[Any], Any]


def _code(r: LearnerResult) -> int | None:
    return r.record.reject_code


LEARNER_COLUMNS = (
    Column("credit_id", "CreditID", lambda r: r.record.credit_id),
    Column("activity_id", "ACCME Activity ID", lambda r: r.record.activity_id),
    Column("provider_activity_id", "Provider Activity ID", lambda r: r.provider_activity_id),
    Column("activity_title", "Activity Title", lambda r: r.activity_title),
    Column("board", "Board or Program", lambda r: r.record.board),
    Column("first_name", "First Name", lambda r: r.record.first_name),
    Column("last_name", "Last Name", lambda r: r.record.last_name),
    Column("dob", "DOB (MM/DD)", lambda r: str(r.record.dob) if r.record.dob else None),
    Column("learner_id_type", "Learner ID Type", lambda r: r.record.learner_id_type),
    Column("learner_id", "Learner ID", lambda r: r.record.learner_id),
    Column("npi", "NPI", lambda r: r.record.npi),
    Column("matched_learner_id", "Board Learner ID", lambda r: r.record.matched_learner_id),
    Column("completion_date", "Date Completed", lambda r: r.record.completion_date),
    Column("credits", "Credits/Points", lambda r: r.record.credits),
    Column("credit_types", "Credit Types", lambda r: r.record.credit_types),
    Column("status", "Status", lambda r: r.record.status.value),
    Column("error_code", "Error Code", _code),
    Column("error_message", "Error Message", lambda r: message(_code(r)) if _code(r) else None),
    Column("source", "Submitted Via", lambda r: r.record.source.value),
    Column("submitted_at", "Date Submitted (UTC)", lambda r: r.record.submitted_at),
    Column("updated_at", "Last Updated (UTC)", lambda r: r.record.updated_at),
)


SUMMARY_COLUMNS = (
    Column("activity_id", "ACCME Activity ID", lambda s: s.activity_id),
    Column("provider_activity_id", "Provider Activity ID", lambda s: s.provider_activity_id),
    Column("title", "Activity Title", lambda s: s.title),
    Column("activity_type", "Activity Type", lambda s: s.activity_type),
    Column("boards", "Boards or Programs", lambda s: s.boards),
    Column("last_updated", "Learners Last Updated (UTC)", lambda s: s.last_updated),
    Column("submitted", "Submitted", lambda s: s.submitted),
    Column("accepted", "Accepted", lambda s: s.accepted),
    Column("rejected", "Rejected", lambda s: s.rejected),
)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return as_utc(value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, tuple):
        return list(value)
    return value


def as_json(columns: Sequence[Column], item) -> dict:
    return {c.key: _json_value(c.get(item)) for c in columns}


def page_json(columns: Sequence[Column], page: Page) -> dict:
    return {
        "total": page.total,
        "page": page.page,
        "per_page": page.per_page,
        "results": [as_json(columns, item) for item in page.items],
    }


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        text = as_utc(value).strftime("%Y-%m-%d %H:%M:%S")
    elif isinstance(value, dt.date):
        text = value.strftime("%m/%d/%Y")
    elif isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, tuple):
        text = "; ".join(value)
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_csv(columns: Sequence[Column], items: Iterable) -> Iterator[str]:
    """CSV that Excel opens as is: UTF-8 byte order mark, RFC 4180 quoting, CRLF line ends."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    buf.write("\ufeff")
    writer.writerow([c.header for c in columns])
    for n, item in enumerate(items, 1):
        writer.writerow([csv_cell(c.get(item)) for c in columns])
        if n % _CSV_CHUNK_ROWS == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


# -- learner search -------------------------------------------------------------------------------


def search(services, account: Account, f: SearchFilter, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> Page:
    with services.store.transaction(write=False) as uow:
        total, items = uow.search.learners(
            account.environment, account.provider_pk, f, limit=per_page, offset=(page - 1) * per_page
        )
    return Page(items, total, page, per_page)


def export_csv(services, account: Account, f: SearchFilter) -> Iterator[str]:
    """Every record the filter finds, as CSV text chunks (stream them; the first carries the BOM)."""
    with services.store.transaction(write=False) as uow:
        yield from write_csv(
            LEARNER_COLUMNS, uow.search.all_learners(account.environment, account.provider_pk, f, _CSV_CHUNK_ROWS)
        )


# -- activity learner summary ---------------------------------------------------------------------


def activity_summary(
    services, account: Account, f: SummaryFilter, page: int = 1, per_page: int = DEFAULT_PER_PAGE
) -> Page:
    """Per activity of the reporting year: live learner records by status and their last update."""
    with services.store.transaction(write=False) as uow:
        total, items = uow.search.summaries(
            account.environment, account.provider_pk, f, limit=per_page, offset=(page - 1) * per_page
        )
    return Page(items, total, page, per_page)


def export_summary_csv(services, account: Account, f: SummaryFilter) -> Iterator[str]:
    with services.store.transaction(write=False) as uow:
        _, items = uow.search.summaries(account.environment, account.provider_pk, f)
    yield from write_csv(SUMMARY_COLUMNS, items)


@dataclass(frozen=True)
class Listing:
    """One searchable list (learner search, activity summary): how HTTP, CLI and pages read its
    filter, show a page of it and export all of it."""

    name: str  # also the export's file name
    read_filter: Callable[[Any, Mapping[str, Any]], Any]  # (services, params) -> filter; SearchRefused
    page: Callable[..., Page]  # (services, account, filter, page, per_page)
    export: Callable[..., Iterator[str]]  # (services, account, filter)
    columns: tuple[Column, ...]
    noun: str


LEARNER_SEARCH = Listing(
    "learner-search",
    lambda services, params: search_filter(params, services.catalogue),
    search,
    export_csv,
    LEARNER_COLUMNS,
    "records",
)
ACTIVITY_SUMMARY = Listing(
    "activity-summary",
    lambda services, params: summary_filter(params, services.catalogue, services.clock.today()),
    activity_summary,
    export_summary_csv,
    SUMMARY_COLUMNS,
    "activities",
)


# -- record history -------------------------------------------------------------------------------


def record_history(services, account: Account, credit_id: str) -> list[RecordHistory]:
    """Every record (live or deleted) of this provider with that CreditID, oldest first."""
    with services.store.transaction(write=False) as uow:
        return uow.search.histories(account.environment, account.provider_pk, credit_id.strip())


def history_json(h: RecordHistory) -> dict:
    rec = h.record
    return {
        "credit_id": rec.credit_id,
        "status": rec.status.value,
        "source": rec.source.value,
        "submitted_at": _json_value(rec.submitted_at),
        "updated_at": _json_value(rec.updated_at),
        "deleted_at": _json_value(h.deleted_at) if h.deleted_at else None,
        "record": as_json(LEARNER_COLUMNS, LearnerResult(rec, None, None)),
        "events": [
            {
                "status": e.status,
                "at": _json_value(e.at),
                "code": e.code,
                "message": message(e.code) if e.code else None,
                "note": e.note,
            }
            for e in h.events
        ],
        "request": None
        if h.request is None
        else {
            "source": h.request.source,
            "received_at": _json_value(h.request.received_at),
            "correlation_id": h.request.correlation_id,
            "body": h.request.body,
        },
        "batch": None
        if h.batch is None
        else {"batch_id": h.batch.batch_id, "file_name": h.batch.file_name, "row": h.batch.row},
    }


# -- deleting from the details view ---------------------------------------------------------------


def delete_records(services, account: Account, credit_ids: Sequence[str], *, correlation_id: str) -> list[Judgement]:
    """Delete records by CreditID through the same rules as every other Delete (605, 706, ...)."""
    ids = [c.strip() for c in credit_ids if isinstance(c, str) and c.strip()]
    if not ids:
        raise SearchRefused("Give the CreditIDs of the records to delete.")
    if len(ids) > services.settings.limits.max_records:
        raise SearchRefused(f"At most {services.settings.limits.max_records} records at a time.")
    records = [ReportedRecord(index=i, action="Delete", credit_id=cid) for i, cid in enumerate(ids, 1)]
    raw = json.dumps({"action": "delete", "credit_ids": ids}).encode()
    return services.learners.save(account, records, source=Source.WEB_FORM, raw=raw, correlation_id=correlation_id)
