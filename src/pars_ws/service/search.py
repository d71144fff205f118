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
import zlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from sqlalchemy import Select, and_, case, exists, func, or_, select

from ..adapters import tables as t
from ..adapters.clock import as_utc
from ..adapters.store import record_from_row, redact_passwords
from ..domain.catalogue import Catalogue
from ..domain.dates import parse_completion_date
from ..domain.engine import Judgement, learner_key
from ..domain.errors import message
from ..domain.records import ReportedRecord, Source, Status, StoredRecord
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
        title=_text(params, "title"), last_name=_text(params, "last_name"),
        submitted_from=submitted[0], submitted_to=submitted[1], board=_board(params, catalogue),
        activity_id=_text(params, "activity_id"), provider_activity_id=_text(params, "provider_activity_id"),
        learner_id=_text(params, "learner_id"), id_type=_text(params, "id_type"), status=status,
        completed_from=completed[0], completed_to=completed[1],
    )
    if not (f.title or f.last_name or f.submitted_from or f.submitted_to):
        raise SearchRefused("Give at least one of: activity title keyword, learner last name, submission date range.")
    return f


@dataclass(frozen=True)
class SummaryFilter:
    reporting_year: int
    title: str | None = None
    provider_activity_id: str | None = None
    board: str | None = None


def summary_filter(params: Mapping[str, Any], catalogue: Catalogue, today: dt.date) -> SummaryFilter:
    year = _text(params, "year")
    if year is not None and not (year.isascii() and year.isdigit() and len(year) == 4):
        raise SearchRefused("year: a reporting year such as 2026.")
    return SummaryFilter(reporting_year=int(year) if year else today.year, title=_text(params, "title"),
                         provider_activity_id=_text(params, "provider_activity_id"), board=_board(params, catalogue))


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


@dataclass(frozen=True)
class LearnerResult:
    record: StoredRecord
    activity_title: str | None
    provider_activity_id: str | None


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
    return {"total": page.total, "page": page.page, "per_page": page.per_page,
            "results": [as_json(columns, item) for item in page.items]}


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

def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)


def _search_query(account: Account, f: SearchFilter) -> Select:
    lr, a = t.learner_records, t.activities
    q = (
        select(lr, a.c.title.label("activity_title"), a.c.provider_activity_id.label("provider_activity_id"))
        .select_from(lr.outerjoin(a, and_(a.c.environment == lr.c.environment, a.c.activity_id == lr.c.activity_id)))
        .where(lr.c.environment == account.environment, lr.c.provider_pk == account.provider_pk)
    )
    q = q.where(lr.c.deleted_at.is_(None) if f.status is None else lr.c.status == f.status.value)
    if f.title:
        q = q.where(a.c.title.icontains(f.title, autoescape=True))
    if f.last_name:
        q = q.where(lr.c.last_name.icontains(f.last_name, autoescape=True))
    if f.submitted_from:
        q = q.where(lr.c.submitted_at >= _day_start(f.submitted_from))
    if f.submitted_to:  # the whole last day (UTC)
        q = q.where(lr.c.submitted_at < _day_start(f.submitted_to + dt.timedelta(days=1)))
    if f.completed_from:
        q = q.where(lr.c.completion_date >= f.completed_from)
    if f.completed_to:
        q = q.where(lr.c.completion_date <= f.completed_to)
    if f.board:
        q = q.where(lr.c.board == f.board)
    if f.activity_id:
        q = q.where(lr.c.activity_id == f.activity_id)
    if f.provider_activity_id:
        q = q.where(func.lower(a.c.provider_activity_id) == f.provider_activity_id.lower())
    if f.learner_id:
        # Records are kept under the board's learner ID; a learner reported by NPI is found by either.
        q = q.where(or_(lr.c.learner_key == learner_key(f.learner_id), lr.c.npi == f.learner_id))
    if f.id_type:
        q = q.where(func.lower(lr.c.learner_id_type) == f.id_type.lower())
    return q


def _learner_result(row) -> LearnerResult:
    return LearnerResult(record_from_row(row), row.activity_title, row.provider_activity_id)


def _newest_first(q: Select) -> Select:
    lr = t.learner_records
    return q.order_by(lr.c.submitted_at.desc(), lr.c.id.desc())


def _count(conn, q: Select) -> int:
    return conn.execute(select(func.count()).select_from(q.order_by(None).subquery())).scalar_one()


def search(services, account: Account, f: SearchFilter, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> Page:
    q = _search_query(account, f)
    with services.store.transaction(write=False) as repo:
        total = _count(repo.conn, q)
        rows = repo.conn.execute(_newest_first(q).limit(per_page).offset((page - 1) * per_page)).all()
    return Page([_learner_result(r) for r in rows], total, page, per_page)


def export_csv(services, account: Account, f: SearchFilter) -> Iterator[str]:
    """Every record the filter finds, as CSV text chunks (stream them; the first carries the BOM)."""
    with services.store.transaction(write=False) as repo:
        rows = repo.conn.execute(_newest_first(_search_query(account, f)).execution_options(yield_per=_CSV_CHUNK_ROWS))
        yield from write_csv(LEARNER_COLUMNS, map(_learner_result, rows))


# -- activity learner summary ---------------------------------------------------------------------

def _summary_query(account: Account, f: SummaryFilter) -> Select:
    a, lr, reg = t.activities, t.learner_records, t.registrations

    def count(status: Status):
        return func.coalesce(func.sum(case((lr.c.status == status.value, 1), else_=0)), 0)

    counts = (
        select(lr.c.activity_id, count(Status.SUBMITTED).label("submitted"), count(Status.ACCEPTED).label("accepted"),
               count(Status.REJECTED).label("rejected"), func.max(lr.c.updated_at).label("last_updated"))
        .where(lr.c.environment == account.environment, lr.c.provider_pk == account.provider_pk)
        .group_by(lr.c.activity_id).subquery()
    )
    q = (
        select(a.c.id, a.c.activity_id, a.c.provider_activity_id, a.c.title, a.c.activity_type,
               counts.c.submitted, counts.c.accepted, counts.c.rejected, counts.c.last_updated)
        .select_from(a.outerjoin(counts, counts.c.activity_id == a.c.activity_id))
        .where(a.c.environment == account.environment, a.c.provider_pk == account.provider_pk,
               a.c.reporting_year == f.reporting_year)
    )
    if f.title:
        q = q.where(a.c.title.icontains(f.title, autoescape=True))
    if f.provider_activity_id:
        q = q.where(func.lower(a.c.provider_activity_id) == f.provider_activity_id.lower())
    if f.board:
        q = q.where(exists().where(reg.c.activity_pk == a.c.id, reg.c.board == f.board))
    return q.order_by(a.c.activity_id)


def _summaries(conn, rows) -> list[ActivitySummary]:
    reg = t.registrations
    boards: dict[int, list[str]] = {}
    if rows:
        for r in conn.execute(select(reg.c.activity_pk, reg.c.board)
                              .where(reg.c.activity_pk.in_([row.id for row in rows])).order_by(reg.c.board)):
            boards.setdefault(r.activity_pk, []).append(r.board)
    return [
        ActivitySummary(
            activity_id=row.activity_id, provider_activity_id=row.provider_activity_id, title=row.title,
            activity_type=row.activity_type, boards=tuple(boards.get(row.id, ())), last_updated=row.last_updated,
            submitted=int(row.submitted or 0), accepted=int(row.accepted or 0), rejected=int(row.rejected or 0),
        )
        for row in rows
    ]


def activity_summary(services, account: Account, f: SummaryFilter, page: int = 1,
                     per_page: int = DEFAULT_PER_PAGE) -> Page:
    """Per activity of the reporting year: live learner records by status and their last update."""
    q = _summary_query(account, f)
    with services.store.transaction(write=False) as repo:
        total = _count(repo.conn, q)
        rows = repo.conn.execute(q.limit(per_page).offset((page - 1) * per_page)).all()
        items = _summaries(repo.conn, rows)
    return Page(items, total, page, per_page)


def export_summary_csv(services, account: Account, f: SummaryFilter) -> Iterator[str]:
    with services.store.transaction(write=False) as repo:
        items = _summaries(repo.conn, repo.conn.execute(_summary_query(account, f)).all())
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


LEARNER_SEARCH = Listing("learner-search", lambda services, params: search_filter(params, services.catalogue),
                         search, export_csv, LEARNER_COLUMNS, "records")
ACTIVITY_SUMMARY = Listing(
    "activity-summary", lambda services, params: summary_filter(params, services.catalogue, services.clock.today()),
    activity_summary, export_summary_csv, SUMMARY_COLUMNS, "activities")


# -- record history -------------------------------------------------------------------------------

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


def record_history(services, account: Account, credit_id: str) -> list[RecordHistory]:
    """Every record (live or deleted) of this provider with that CreditID, oldest first."""
    lr, ev, raw, b = t.learner_records, t.record_events, t.raw_requests, t.batches
    with services.store.transaction(write=False) as repo:
        conn = repo.conn
        rows = conn.execute(select(lr).where(
            lr.c.environment == account.environment, lr.c.provider_pk == account.provider_pk,
            lr.c.credit_id == credit_id.strip()).order_by(lr.c.id)).all()
        history = []
        for row in rows:
            events = [Event(e.status, e.at, e.code, e.note) for e in conn.execute(
                select(ev).where(ev.c.record_pk == row.id).order_by(ev.c.at, ev.c.id))]
            request = batch = None
            if row.request_pk is not None:
                r = conn.execute(select(raw).where(raw.c.id == row.request_pk)).one()
                request = RawRequest(r.source, r.received_at, r.correlation_id,
                                     # Copies stored before passwords were blanked at storage, too.
                                     redact_passwords(zlib.decompress(r.body)).decode("utf-8", errors="replace"))
            if row.batch_pk is not None:
                batch = BatchOrigin(row.batch_pk, conn.execute(select(b.c.file_name).where(b.c.id == row.batch_pk))
                                    .scalar(), row.batch_row)
            history.append(RecordHistory(record_from_row(row), row.deleted_at, events, request, batch))
    return history


def history_json(h: RecordHistory) -> dict:
    rec = h.record
    return {
        "credit_id": rec.credit_id, "status": rec.status.value, "source": rec.source.value,
        "submitted_at": _json_value(rec.submitted_at), "updated_at": _json_value(rec.updated_at),
        "deleted_at": _json_value(h.deleted_at) if h.deleted_at else None,
        "record": as_json(LEARNER_COLUMNS, LearnerResult(rec, None, None)),
        "events": [{"status": e.status, "at": _json_value(e.at), "code": e.code,
                    "message": message(e.code) if e.code else None, "note": e.note} for e in h.events],
        "request": None if h.request is None else {
            "source": h.request.source, "received_at": _json_value(h.request.received_at),
            "correlation_id": h.request.correlation_id, "body": h.request.body},
        "batch": None if h.batch is None else {"batch_id": h.batch.batch_id, "file_name": h.batch.file_name,
                                               "row": h.batch.row},
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
