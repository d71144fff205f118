"""Tab-delimited "Learner Template B" batch files and the CSV error report providers download.

Columns are always read by template position: a header that went through a spreadsheet may be
garbled (the seed's error report lists Learner ID before Learner ID Type while the values follow
the template), so the header is only checked for the columns a record needs (1 to 12: a file may
end at the 1st certification, as the tutorial's delete file does), never used to map them. After
the template's 17 columns come the error report's own: Error Code and Error Message (ignored), and
CreditID where the records had one (XML records), read back when the header names it.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TypeVar

from pars_ws.domain.dates import parse_completion_date, parse_dob
from pars_ws.domain.records import ReportedRecord

__all__ = [
    "CREDIT_ID_HEADER",
    "ERROR_HEADER",
    "FileRefused",
    "HEADER",
    "MSG_ENCODING",
    "MSG_NOT_TEMPLATE",
    "TEMPLATE_NAME",
    "read_rows",
    "read_template_b",
    "record_columns",
    "report_columns",
    "write_error_report",
    "write_template_b",
]

TEMPLATE_NAME = "Learner Template B"

HEADER: tuple[str, ...] = (
    "1. Template (DO NOT ALTER OR DELETE THIS COLUMN)",
    "2. Activity Registration",
    "3. ACCME Activity ID",
    "4. Learner ID Type",
    "5. Learner ID",
    "6. First Name",
    "7. Last Name",
    "8. Date of Birth (MM/DD)",
    "9. Date of Completion",
    "10. Action",
    "11. Number of Credits",
    "12. Activity Certification (1st)",
    "13. Activity Certification (2nd)",
    "14. Activity Certification (3rd)",
    "15. Activity Certification (4th)",
    "16. Activity Certification (5th)",
    "17. Activity Certification (6th)",
)
ERROR_HEADER: tuple[str, ...] = HEADER + ("18. Error Code", "19. Error Message")
CREDIT_ID_HEADER = "20. CreditID"  # after the error columns, in reports of records that had one

_COLUMNS = len(HEADER)  # 17 template columns
_REQUIRED = 12  # through "12. Activity Certification (1st)"
_MAX_COLUMNS = len(ERROR_HEADER)  # plus Error Code and Error Message, ignored on read
_CODE = _COLUMNS  # position of the Error Code column
_CREDIT_ID = _MAX_COLUMNS  # position of the CreditID column
_PADDING = ("",) * _COLUMNS
# What a header cell names when it has no number: the column's name as the template prints it,
# longest first (Learner ID Type before Learner ID), compared folded and without a trailing note.
_NAMES = sorted(
    ((re.sub(r"^\d+\.\s*", "", h).split(" (")[0].casefold(), n) for n, h in enumerate(HEADER, 1) if n < 12),
    key=lambda item: -len(item[0]),
)
_NUMBERED = re.compile(r"^\s*(\d{1,2})\s*\.")
_TEMPLATE_KEY = TEMPLATE_NAME.casefold()
# A real row is well under 1 KB, plus at most 16,383 empty cells Excel may keep.
_MAX_LINE = 65536

# Runs of blank lines (after line ends are made "\n"), folded in C: a loop turn each would let a
# 16 MiB file of empty lines take seconds.
_BLANK_RUNS = {"\t": re.compile(r"\n[ \t\n]*\n"), ",": re.compile(r"\n[ \t,\n]*\n")}

MSG_NOT_TEMPLATE = "THE FILE IS NOT FORMATTED CORRECTLY. PLEASE USE THE FORMAT PROVIDED IN THIS TEMPLATE."
MSG_ENCODING = (
    "THE FILE COULD NOT BE READ AS TEXT. PLEASE SAVE IT AS TAB DELIMITED TEXT "
    "(UTF-8, UNICODE TEXT OR WINDOWS TEXT) AND UPLOAD IT AGAIN."
)

# C0 controls other than tab/CR/LF mean a binary file (xlsx, xls, PDF) or a wrong encoding.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
T = TypeVar("T")


class FileRefused(Exception):
    """The whole file is refused before anything is stored; `message` is shown to the provider."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail  # for logs only: which line, which limit


def _size_text(n: int) -> str:
    mib = 1024 * 1024
    return f"{n // mib} MB" if n % mib == 0 else f"{n:,} BYTES"


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Excel "Unicode text"
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise FileRefused(MSG_ENCODING, f"bad UTF-16: {exc}") from None
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            # Only when the bytes are not UTF-8: Windows "Text (Tab delimited)" is cp1252.
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError as exc:
                raise FileRefused(MSG_ENCODING, f"neither UTF-8 nor cp1252: {exc}") from None
    if m := _CONTROL.search(text):
        raise FileRefused(MSG_ENCODING, f"control character {m.group()!r} at offset {m.start()}")
    return text


class _NotPlainCsv(Exception):
    """A stray quote: the quote-aware reading cannot be trusted for this file."""


def _lines(text: str) -> Iterator[str]:
    for line in io.StringIO(text, newline=""):  # "\n" only: line ends were made "\n"
        if len(line) > _MAX_LINE:  # bounds the cells of one row (memory, time)
            raise FileRefused(MSG_NOT_TEMPLATE, f"a line longer than {_MAX_LINE:,} characters")
        yield line


def _quoted_rows(text: str, delimiter: str) -> Iterator[list[str]]:
    """Rows of cells, honouring Excel's quoting ("..." with doubled quotes)."""
    reader = csv.reader(_lines(text), delimiter=delimiter, strict=True)
    last = 0
    try:
        for row in reader:
            # No Template B cell holds a line break: a row spanning lines means a stray quote
            # swallowed the lines after it.
            if reader.line_num != last + 1:
                raise _NotPlainCsv
            last = reader.line_num
            yield row
    except csv.Error:
        raise _NotPlainCsv from None


def _plain_rows(text: str, delimiter: str) -> Iterator[list[str]]:
    """Line by line, taking only wholly quoted cells as quoted: what a stray quote needs."""
    for line in _lines(text):
        yield [_unquote(cell) for cell in line.rstrip("\n").split(delimiter)]


def _unquote(cell: str) -> str:
    if len(cell) >= 2 and cell[0] == '"' and cell[-1] == '"':
        return cell[1:-1].replace('""', '"')
    return cell


def _is_header(first_cell: str) -> bool:
    key = first_cell.casefold()
    return key.startswith("1. template") or key.startswith("template")


def _header_column(cell: str, position: int) -> int | None:
    """The template column (1-based) a header cell names: by its number ("8. Date of Birth"), else by
    its name, else (a name no template prints) the column at its position; None for a blank cell."""
    text = cell.strip()
    if not text:
        return None
    if m := _NUMBERED.match(text):
        return int(m[1])
    key = text.casefold()
    return next((n for name, n in _NAMES if key.startswith(name)), position)


def _check_header(row: list[str]) -> bool:
    """Refuse a header that lacks a column a record needs, naming it; whether it has the CreditID column."""
    named = {_header_column(cell, i) for i, cell in enumerate(row, 1)}
    missing = [n for n in range(1, _REQUIRED + 1) if n not in named]
    if missing:
        column = HEADER[missing[0] - 1]
        raise FileRefused(
            f"{MSG_NOT_TEMPLATE} THE FILE HAS NO COLUMN {column.upper()}.", f"header lacks column {missing[0]}"
        )
    return len(row) > _CREDIT_ID and _NUMBERED.sub("", row[_CREDIT_ID]).replace(" ", "").casefold() == "creditid"


def read_template_b(data: bytes, *, max_records: int = 2500, max_bytes: int = 16 * 1024 * 1024) -> list[ReportedRecord]:
    """Read a Learner Template B file (tab-delimited, or the CSV error report as downloaded).

    Raises FileRefused, before anything is stored, for a file over `max_bytes` or `max_records`,
    one that is not text, or one that is not Template B. Record errors are left to the rules.
    """
    return read_rows(data, lambda rows: _records(rows, max_records), max_bytes=max_bytes)


def read_rows(data: bytes, read: Callable[[Iterable[list[str]]], T], *, max_bytes: int) -> T:
    """`read` applied to the rows of cells of a tab-delimited file (or its CSV error report): the
    size, encoding, line ends, blank lines and quoting handled as for Template B. Raises FileRefused."""
    if len(data) > max_bytes:
        size = _size_text(max_bytes)
        raise FileRefused(
            f"THE FILE IS LARGER THAN {size}. BATCH UPLOADS MAY NOT EXCEED {size}.",
            f"{len(data)} bytes",
        )
    text = _decode(data).replace("\r\n", "\n").replace("\r", "\n")
    # The leading "\n" lets blank lines at the start fold too; it is dropped after.
    text = _BLANK_RUNS["\t"].sub("\n", "\n" + text)[1:]
    # The downloaded error report is CSV; it may come back unchanged.
    first_line = text[: text.find("\n")] if "\n" in text else text
    delimiter = "," if "\t" not in first_line and "," in first_line else "\t"
    if delimiter == ",":
        text = _BLANK_RUNS[","].sub("\n", "\n" + text)[1:]
    try:
        return read(_quoted_rows(text, delimiter))
    except _NotPlainCsv:
        return read(_plain_rows(text, delimiter))


def _records(rows: Iterable[list[str]], max_records: int) -> list[ReportedRecord]:
    records: list[ReportedRecord] = []
    previous_key: list[str | None] | None = None
    previous_codes: set[str] = set()
    seen_first = False
    width = _MAX_COLUMNS  # columns a row may fill: one more when the header names CreditID
    for row_no, row in enumerate(rows, start=1):
        first = row[0].strip() if row else ""
        if not first and not "".join(row).strip():
            continue  # blank line, or a row of empty cells Excel kept
        if not seen_first:
            seen_first = True
            if _is_header(first):
                width += _check_header(row)
                if len(row) > width and "".join(row[width:]).strip():
                    raise FileRefused(MSG_NOT_TEMPLATE, f"header has more than {width} columns")
                continue
        if len(row) > width and "".join(row[width:]).strip():
            detail = f"row {row_no} has more than {width} columns"
            raise FileRefused(MSG_NOT_TEMPLATE, detail)
        if first.casefold() != _TEMPLATE_KEY:
            detail = f"row {row_no}: first column is not {TEMPLATE_NAME}"
            raise FileRefused(MSG_NOT_TEMPLATE, detail)

        if len(row) < _COLUMNS:
            original = (*row, *_PADDING[len(row) :])
        else:
            original = tuple(row[:_COLUMNS])
        values = [cell.strip() or None for cell in original]
        # The CreditID column: part of the record, as the template's columns are.
        if width > _CREDIT_ID:
            values.append(row[_CREDIT_ID].strip() or None if len(row) > _CREDIT_ID else None)
        code = row[_CODE].strip() if len(row) > _CODE else ""
        # The error report repeats a record once per error code: those lines are one record.
        # A code seen again means a second, identical record that had the same error.
        if code:
            if values == previous_key and code not in previous_codes:
                previous_codes.add(code)
                continue
            previous_key, previous_codes = values, {code}
        else:
            previous_key = None

        if len(records) >= max_records:
            raise FileRefused(
                f"THE FILE HAS MORE THAN {max_records:,} RECORDS. "
                f"BATCH UPLOADS MAY NOT EXCEED {max_records:,} RECORDS.",
                f"row {row_no}",
            )
        records.append(
            ReportedRecord(
                index=len(records) + 1,
                action=values[9],
                credit_id=values[_COLUMNS] if width > _CREDIT_ID else None,
                board=values[1],
                activity_id=values[2],
                learner_id_type=values[3],
                learner_id=values[4],
                first_name=values[5],
                last_name=values[6],
                dob=values[7],
                completion_date=values[8],
                credits=values[10],
                credit_types=tuple([v for v in values[11:_COLUMNS] if v is not None]),
                original=original,
            )
        )
    if not records:
        raise FileRefused(MSG_NOT_TEMPLATE, "no records")
    return records


def record_columns(record: ReportedRecord) -> tuple[str, ...]:
    """The 17 template columns of a record, its fields as they are, for writing it into a file."""
    types = tuple(record.credit_types[:6]) + ("",) * (6 - min(len(record.credit_types), 6))
    fields = (
        record.board,
        record.activity_id,
        record.learner_id_type,
        record.learner_id,
        record.first_name,
        record.last_name,
        record.dob,
        record.completion_date,
        record.action,
        record.credits,
    )
    return (TEMPLATE_NAME, *(f or "" for f in fields), *types)


def report_columns(record: ReportedRecord) -> tuple[str, ...]:
    """A record's template columns in its error report: a Template B row exactly as the provider
    wrote it; an XML record's fields with dates as a provider reads them in the template (DOB
    MM/DD, completion date MM/DD/YYYY), so the report can be fixed and uploaded as Template B.
    A date PARS cannot read stays as written."""
    if record.original:
        return record.original
    dob, completed = parse_dob(record.dob), parse_completion_date(record.completion_date)
    return record_columns(
        replace(
            record,
            dob=str(dob) if dob is not None and dob.day else record.dob,
            completion_date=completed.strftime("%m/%d/%Y") if completed is not None else record.completion_date,
        )
    )


def _template_cells(row: Sequence[str | None] | ReportedRecord) -> list[str]:
    cells = record_columns(row) if isinstance(row, ReportedRecord) else row
    cells = ["" if c is None else str(c) for c in cells[:_COLUMNS]]
    return cells + [""] * (_COLUMNS - len(cells))


def write_error_report(
    rows: Iterable[tuple[Sequence[str] | ReportedRecord, list[tuple[int, str]]]], *, dialect: str = "excel"
) -> bytes:
    """The CSV error report: HEADER + Error Code + Error Message, one line per error code, and
    CreditID when a record had one (XML records: the report goes back in as Template B with them).

    A row is a record (see report_columns) or its cells. UTF-8 with BOM (so Excel shows accents),
    RFC 4180 quoting, CRLF. A row given no errors still gets one line, so no record silently drops
    out of the report.
    """
    rows = [
        (
            _template_cells(report_columns(r) if isinstance(r, ReportedRecord) else r),
            r.credit_id if isinstance(r, ReportedRecord) else None,
            errors,
        )
        for r, errors in rows
    ]
    with_credit_ids = any(credit_id for _, credit_id, _ in rows)
    out = io.StringIO(newline="")
    writer = csv.writer(out, dialect=dialect)
    writer.writerow(ERROR_HEADER + ((CREDIT_ID_HEADER,) if with_credit_ids else ()))
    for cells, credit_id, errors in rows:
        for code, message in errors or [("", "")]:
            writer.writerow([*cells, str(code), message, *([credit_id or ""] if with_credit_ids else [])])
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")


def write_template_b(
    rows: Iterable[Sequence[str | None] | ReportedRecord],
    *,
    header: bool = True,
    encoding: str = "utf-8",
) -> bytes:
    """A tab-delimited Template B file: header, then one line per row (17 columns or a record)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, dialect="excel-tab")
    if header:
        writer.writerow(HEADER)
    for row in rows:
        writer.writerow(_template_cells(row))
    return out.getvalue().encode(encoding)
