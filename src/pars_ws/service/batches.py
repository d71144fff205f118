"""Batch uploads: Template B (.txt), ActivityReports (.xml) and Excel learner template (.xlsx)
files of up to 2,500 records, or Opioid Analgesic REMS participant files (.txt, .xml: rems.py).

A file is checked whole when it is uploaded and refused before anything is stored if it cannot be
read; otherwise it is queued and a worker judges and stores it in chunks through LearnerService.
Each chunk's records, its per-row results and the batch's resume point commit in one transaction,
so a worker killed at any moment loses nothing and a resumed batch stores nothing twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import PurePath

from sqlalchemy.exc import IntegrityError

from .. import logs
from ..adapters.clock import as_utc, when_text
from ..adapters.excel import report_rows, write_error_report_csv, write_error_report_xlsx
from ..adapters.rems_files import write_rems_error_report
from ..adapters.template_b import write_error_report
from ..domain.errors import message
from ..domain.records import Source
from ..domain.rules import as_found
from . import rems
from .auth import Account
from .validate import UNREADABLE, count_records, read_records

log = logging.getLogger(__name__)

HISTORY = dt.timedelta(days=30)
DUPLICATE_WINDOW = dt.timedelta(days=30)
CHUNK_ROWS = 250  # rows per transaction: small enough to keep heartbeats frequent
MAX_ATTEMPTS = 5  # claims before a batch that keeps failing is given up

# Extensions accepted for each file type the provider chooses. The downloaded error report is a
# .csv the Template B reader takes back unchanged, so it may be re-uploaded as it is.
EXTENSIONS = {"txt": (".txt", ".csv"), "xml": (".xml",), "xlsx": (".xlsx",)}
SOURCES = {"txt": Source.TAB_BATCH, "xml": Source.XML_BATCH, "xlsx": Source.EXCEL_BATCH}

MSG_NO_FILE = "CHOOSE A FILE TO UPLOAD."
MSG_ACTIVE = (
    "A FILE IS ALREADY PROCESSING. ONLY ONE FILE MAY BE UPLOADED AT A TIME: "
    "UPLOAD THIS FILE ONCE THE CURRENT FILE HAS FINISHED PROCESSING."
)


def msg_too_large(max_bytes: int) -> str:
    mib = 1024 * 1024
    size = f"{max_bytes // mib} MB" if max_bytes % mib == 0 else f"{max_bytes:,} BYTES"
    return f"THE FILE IS LARGER THAN {size}. BATCH UPLOADS MAY NOT EXCEED {size}."


def msg_wrong_extension(file_type: str) -> str:
    ext = file_type.upper()
    return f"THE FILE SELECTED IS NOT A .{ext} FILE. PLEASE UPLOAD A .{ext} FILE."


class UploadRefused(Exception):
    """A file refused whole; nothing was stored. `reason`: invalid | duplicate | active."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.message = message
        self.reason = reason

    @property
    def http_status(self) -> int:
        return 400 if self.reason == "invalid" else 409  # a duplicate or a busy slot: Conflict


def uploaded_name(name: str) -> str:
    """A browser's or client's file name without the folders some send with it (either slash)."""
    return PurePath(name.replace("\\", "/")).name


@dataclass(frozen=True)
class BatchInfo:
    id: int
    file_name: str
    file_type: str
    submission_type: str  # boards | rems
    status: str  # queued | processing | done | failed
    records: int
    rows_done: int
    processed: int
    not_processed: int
    forced: bool
    message: str | None
    uploaded_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @classmethod
    def from_row(cls, row) -> BatchInfo:
        return cls(
            id=row.id,
            file_name=row.file_name,
            file_type=row.file_type,
            submission_type=row.submission_type,
            status=row.status,
            records=row.records_total or 0,
            rows_done=row.rows_done,
            processed=row.records_processed,
            not_processed=row.records_failed,
            forced=bool(row.forced),
            message=row.message,
            uploaded_at=as_utc(row.uploaded_at),
            started_at=as_utc(row.started_at),
            finished_at=as_utc(row.finished_at),
        )


@dataclass(frozen=True)
class ProcessedRecord:
    row: int
    result: str  # Submitted | Accepted | Deleted, when the row was processed
    credit_id: str | None
    status: str | None  # the stored record's status now (after board review); None for a delete
    activity_id: str | None
    board: str | None
    learner_id_type: str | None
    learner_id: str | None
    first_name: str | None
    last_name: str | None
    completion_date: dt.date | None
    credits: Decimal | None


# -- upload -------------------------------------------------------------------------------------


def upload(
    services,
    account: Account,
    *,
    file_name: str,
    data: bytes,
    file_type: str,
    force: bool = False,
    submission_type: str = rems.BOARDS,
) -> BatchInfo:
    """Check a file whole and queue it, or raise UploadRefused with the message for the provider.
    `submission_type`: boards (Licensing or Specialty Board learners) or rems (REMS participants)."""
    file_name = uploaded_name(file_name)
    if file_type not in EXTENSIONS:
        raise UploadRefused("CHOOSE THE FILE TYPE: TAB DELIMITED (.TXT), XML (.XML) OR EXCEL (.XLSX).", "invalid")
    if submission_type not in rems.SUBMISSION_TYPES:
        raise UploadRefused(rems.MSG_SUBMISSION_TYPE, "invalid")
    if submission_type == rems.REMS and file_type not in rems.FILE_TYPES:
        raise UploadRefused(rems.MSG_FILE_TYPE, "invalid")
    if not file_name.lower().endswith(EXTENSIONS[file_type]):
        raise UploadRefused(msg_wrong_extension(file_type), "invalid")
    limits = services.settings.limits
    if len(data) > limits.max_file_bytes:
        raise UploadRefused(msg_too_large(limits.max_file_bytes), "invalid")
    try:
        if submission_type == rems.REMS:
            total = len(rems.read_participants(data, file_type, limits))
        else:
            total = count_records(
                data, limits, file_type, catalogue=services.catalogue, excel_limits=services.settings.excel_limits
            )
    except UNREADABLE as exc:
        raise UploadRefused(str(exc), "invalid") from None
    sha = hashlib.sha256(data).hexdigest()
    now = services.clock.now()
    try:
        with services.store.transaction() as uow:
            if submission_type == rems.REMS and not uow.rems.participates(account.environment, account.provider_pk):
                raise UploadRefused(rems.MSG_NOT_PARTICIPATING, "invalid")
            store = uow.batches
            earlier = (
                None
                if force
                else store.same_content_since(account.environment, account.provider_pk, sha, now - DUPLICATE_WINDOW)
            )
            if earlier is not None:
                raise UploadRefused(
                    f"THIS FILE WAS ALREADY UPLOADED ON {when_text(earlier.uploaded_at)} AS {earlier.file_name} "
                    f"(BATCH {earlier.id}). UPLOAD IT AGAIN WITH FORCE TO PROCESS IT A SECOND TIME.",
                    "duplicate",
                )
            batch_id = store.insert(
                environment=account.environment,
                provider_pk=account.provider_pk,
                credential_pk=account.credential_pk or None,
                file_name=file_name[:255],
                file_type=file_type,
                submission_type=submission_type,
                content_sha256=sha,
                content=data,
                forced=force,
                records_total=total,
                uploaded_at=now,
            )
            row = store.batch(account.environment, account.provider_pk, batch_id)
    except IntegrityError:
        # uq_batches_active decides races: this provider already has a file queued or processing.
        if not _has_active(services, account):
            raise
        raise UploadRefused(MSG_ACTIVE, "active") from None
    log.info(
        "batch uploaded",
        extra={"event": "batch_uploaded", "batch": batch_id, "provider_id": account.provider_id, "records": total},
    )
    return BatchInfo.from_row(row)


def _has_active(services, account: Account) -> bool:
    with services.store.transaction(write=False) as uow:
        return uow.batches.active(account.environment, account.provider_pk) is not None


# -- reading --------------------------------------------------------------------------------------


def history(services, account: Account) -> list[BatchInfo]:
    """The provider's uploads of the last 30 days, newest first."""
    since = services.clock.now() - HISTORY
    with services.store.transaction(write=False) as uow:
        rows = uow.batches.history(account.environment, account.provider_pk, since)
    return [BatchInfo.from_row(r) for r in rows]


def get(services, account: Account, batch_id: int) -> BatchInfo | None:
    with services.store.transaction(write=False) as uow:
        row = uow.batches.batch(account.environment, account.provider_pk, batch_id)
    return None if row is None else BatchInfo.from_row(row)


REPORT_FORMATS = ("csv", "xlsx")


def error_report(services, account: Account, batch_id: int, report_format: str = "csv") -> tuple[str, bytes] | None:
    """(file name, report of the rows not processed), None for no such batch or no such report.

    Template B and XML batches: CSV, the original columns + Error Code + Error Message, one line per
    code. Excel batches: the template's layout + Error Code + Error Message, each provider row once
    with every code of its records, as .xlsx (re-uploaded as it is) or CSV.
    """
    if report_format not in REPORT_FORMATS:
        return None
    with services.store.transaction(write=False) as uow:
        store = uow.batches
        batch = store.batch(account.environment, account.provider_pk, batch_id, with_content=True)
        if batch is None or (report_format == "xlsx" and batch.file_type != "xlsx"):
            return None
        failed = store.failed_results(batch_id)
    records = _records(services, batch, batch.content) if failed else []
    if batch.submission_type == rems.REMS:
        return batch.file_name, write_rems_error_report(rems.error_rows(records, failed))
    by_row = {r.index: r for r in records}
    found = []
    for result in failed:
        record = by_row[result.row_index]
        found.append((record, [as_found(int(c), record) for c in result.codes.split(",")]))
    if batch.file_type == "xlsx":
        rows = report_rows(found)
        report = write_error_report_xlsx(rows) if report_format == "xlsx" else write_error_report_csv(rows)
        return batch.file_name, report
    # Tab rows are written back exactly as uploaded; XML records as Template B with their CreditIDs.
    return batch.file_name, write_error_report([(r, [(code, message(code)) for code in codes]) for r, codes in found])


def error_report_download_name(file_name: str, report_format: str = "csv") -> str:
    """learners.txt -> learners_errors.csv, safe in a Content-Disposition header."""
    return f"{PurePath(file_name).stem}_errors.{report_format}".replace('"', "")


def processed_records(services, account: Account, batch_id: int) -> list[ProcessedRecord] | None:
    with services.store.transaction(write=False) as uow:
        store = uow.batches
        if store.batch(account.environment, account.provider_pk, batch_id) is None:
            return None
        rows = store.processed(batch_id)
    return [
        ProcessedRecord(
            row=r.row_index,
            result=r.result,
            credit_id=r.credit_id,
            status=r.status,
            activity_id=r.activity_id,
            board=r.board,
            learner_id_type=r.learner_id_type,
            learner_id=r.learner_id,
            first_name=r.first_name,
            last_name=r.last_name,
            completion_date=r.completion_date,
            credits=None if r.credits is None else Decimal(r.credits),
        )
        for r in rows
    ]


def _records(services, batch, content: bytes):
    if batch.submission_type == rems.REMS:
        return rems.read_participants(content, batch.file_type, services.settings.limits)
    _, records = read_records(
        content,
        batch.file_name,
        services.settings.limits,
        kind=batch.file_type,
        catalogue=services.catalogue,
        excel_limits=services.settings.excel_limits,
    )
    return records


# -- processing -------------------------------------------------------------------------------------


class _ClaimLost(Exception):
    """Another worker took the batch over (this one was thought dead): stop without storing."""


def process_next(services, worker: str, stop: threading.Event | None = None) -> int:
    """Claim one batch (queued, or abandoned by a dead worker) and process it to the end, or until
    `stop` is set: then it is handed back, to be resumed where it stopped. 1 if any."""
    now = services.clock.now()
    stale = dt.timedelta(seconds=services.settings.batch_stale_seconds)
    # A claim names this worker and this attempt, so a worker that was presumed dead but wakes up
    # can never advance a batch another worker has taken over.
    claim = f"{worker}#{secrets.token_hex(4)}"[-100:]
    with services.store.transaction(write=False) as uow:
        if not uow.batches.any_claimable(now - stale):
            return 0
    with services.store.transaction() as uow:
        store = uow.batches
        batch = store.claim(claim, now, now - stale)
        if batch is None:
            return 0
        uploader = store.uploader(batch)
        if batch.attempts > MAX_ATTEMPTS:
            _give_up(
                uow,
                batch,
                uploader,
                "PROCESSING FAILED REPEATEDLY; PLEASE UPLOAD THE FILE AGAIN.",
                now,
                batch_page_url(services.settings, batch.id),
            )
            return 1
        content = store.content(batch.id)
    account = Account(
        batch.credential_pk or 0,
        uploader.username or "",
        batch.environment,
        batch.provider_pk,
        uploader.provider_id,
        uploader.name,
        uploader.domain,
        uploader.email,
    )
    logs.correlation_id.set(f"batch-{batch.id}")  # the worker's log lines about this batch name it
    log.info(
        "batch claimed",
        extra={
            "event": "batch_claimed",
            "batch": batch.id,
            "worker": claim,
            "resume_at": batch.rows_done,
            "attempt": batch.attempts,
        },
    )
    try:
        records = _records(services, batch, content)
    except UNREADABLE as exc:
        # Checked at upload; only a lowered limit gets here.
        with services.store.transaction() as uow:
            _give_up(uow, batch, uploader, str(exc), services.clock.now(), batch_page_url(services.settings, batch.id))
        return 1
    try:
        for start in range(batch.rows_done, len(records), CHUNK_ROWS):
            if stop is not None and stop.is_set():
                with services.store.transaction() as uow:
                    uow.batches.release(batch.id, claim)
                log.info(
                    "batch released",
                    extra={"event": "batch_released", "batch": batch.id, "worker": claim, "resume_at": start},
                )
                break
            _process_chunk(services, account, batch, uploader, claim, records, start)
    except _ClaimLost:
        log.warning("batch claim lost", extra={"event": "batch_claim_lost", "batch": batch.id, "worker": claim})
    return 1


def _process_chunk(services, account: Account, batch, uploader, claim: str, records: list, start: int) -> None:
    chunk = records[start : start + CHUNK_ROWS]
    end = start + len(chunk)
    finished = end == len(records)

    def record_progress(uow, results: list[tuple[int, str, str, str | None]]) -> None:
        """(row, status, comma-separated codes, CreditID) of each row of the chunk."""
        store = uow.batches
        ok = sum(1 for _, _, codes, _ in results if not codes)
        now = services.clock.now()
        if not store.advance(
            batch.id,
            claim,
            rows_from=start,
            rows_to=end,
            processed=ok,
            failed=len(results) - ok,
            finished=finished,
            now=now,
        ):
            raise _ClaimLost  # rolls back this chunk's records too
        store.add_results(batch.id, results)
        if finished:
            _queue_finished_mail(uow, batch, uploader, now, batch_page_url(services.settings, batch.id))

    def record_judgements(uow, judgements) -> None:
        record_progress(
            uow,
            [
                (
                    j.record.index,
                    j.status.value,
                    ",".join(map(str, j.codes)),
                    j.stored.credit_id if j.stored is not None else j.record.credit_id,
                )
                for j in judgements
            ],
        )

    if batch.submission_type == rems.REMS:
        rems.save_chunk(services, account, batch.id, chunk, record_progress)
        return
    services.learners.save(
        account,
        chunk,
        source=SOURCES[batch.file_type],
        raw=None,
        correlation_id=f"batch-{batch.id}",
        batch_pk=batch.id,
        in_same_transaction=record_judgements,
    )


def batch_page_url(settings, batch_id: int) -> str:
    """The batch's page on the web pages (they ask the provider to log in), as an absolute URL for
    mail: PARS_PUBLIC_URL, else the address `pars-ws serve` binds (PARS_BIND, 127.0.0.1:8000)."""
    return f"{settings.public_url or 'http://' + settings.bind}/batches?batch={batch_id}"


def _queue_finished_mail(uow, batch, uploader, now: dt.datetime, page: str) -> None:
    total, processed, failed = uow.batches.counts(batch.id)
    lines = [
        f"Your batch upload {batch.file_name} (batch {batch.id}, uploaded {when_text(batch.uploaded_at)}) "
        "has finished processing.",
        "",
        f"Records: {total}",
        f"Records processed: {processed}",
        f"Records not processed: {failed}",
        "",
    ]
    if failed:
        lines += [
            f"Download the records that were not processed, with their errors, from the batch's page: {page}",
            "Correct them and upload the file again.",
        ]
    else:
        lines += [f"The batch's page: {page}"]
    uow.outbox.queue(
        environment=batch.environment,
        provider_pk=batch.provider_pk,
        kind="batch-finished",
        recipient=uploader.email,
        subject=f"PARS batch upload {batch.file_name}: {processed} processed, {failed} not processed",
        body="\n".join(lines),
        now=now,
    )


def _give_up(uow, batch, uploader, reason: str, now: dt.datetime, page: str) -> None:
    uow.batches.fail(batch.id, reason, now)
    uow.outbox.queue(
        environment=batch.environment,
        provider_pk=batch.provider_pk,
        kind="batch-finished",
        recipient=uploader.email,
        subject=f"PARS batch upload {batch.file_name}: not processed",
        body=f"Your batch upload {batch.file_name} (batch {batch.id}) could not be processed: {reason}\n\n"
        f"The batch's page: {page}",
        now=now,
    )
    log.error("batch failed", extra={"event": "batch_failed", "batch": batch.id, "reason": reason})
