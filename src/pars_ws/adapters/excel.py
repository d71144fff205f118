"""ACCME's Excel learner template (.xlsx): reading it into records, its error report, the blank template.

The first sheet holds the data: a guidance row, then the header row (found among the first rows, so
a sheet without the guidance row reads too), then one row per learner completion. Columns are read
by position, as ACCME's template orders them; the header is checked, naming a column that is missing
or out of place. After the Credit Type / Credits Awarded pairs, Error Code and Error Message columns
(those of a downloaded error report) are ignored, so a fixed report is uploaded again as it is.

One row may report CME to a state board (Licensing State, Licensing ID or NPI, Number of CME
Credits) and MOC to a certifying board (Certifying Board, Certifying Board ID, Total Board Credits,
the credit type pairs): it becomes one record per board reported, each with the row's Record Action,
activity, completion date, names and DOB (docs/WIRE.md says how).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
from dataclasses import dataclass

import openpyxl
from openpyxl.utils.datetime import from_excel
from openpyxl.worksheet.datavalidation import DataValidation

from ..domain.catalogue import Board, Catalogue, fold
from ..domain.errors import message
from ..domain.records import ReportedRecord
from ..settings import ExcelLimits
from .excel_guard import MSG_NOT_XLSX, check_workbook
from .template_b import MSG_NOT_TEMPLATE, FileRefused

__all__ = [
    "HEADER",
    "is_npi",
    "read_workbook",
    "report_rows",
    "write_error_report_csv",
    "write_error_report_xlsx",
    "write_template",
]

MAX_CREDIT_TYPES = 6  # per record, as Template B's six Activity Certification columns and the XSD allow
PAIRS = 6  # Credit Type / Credits Awarded pairs in the template: one, and five additional

HEADER: tuple[str, ...] = (
    "Record Action",
    "ACCME Activity ID",
    "Completion Date (MM/DD/YYYY)",
    "First Name",
    "Last Name",
    "Date of Birth (MM/DD)",
    "Licensing State",
    "Licensing ID or NPI",
    "Number of CME Credits",
    "Certifying Board",
    "Certifying Board ID",
    "Total Board Credits",
    "Credit Type",
    "Credits Awarded for Credit Type",
    *[
        name
        for n in range(1, PAIRS)
        for name in (f"Additional Credit Type {n}", f"Credits Awarded for Additional Credit Type {n}")
    ],
)
ERROR_COLUMNS = ("Error Code", "Error Message")
GUIDANCE = (
    "One row per learner completion. Record Action: Add or Delete. Report CME to a state board (Licensing State, "
    "Licensing ID or NPI, Number of CME Credits), MOC to a certifying board (Certifying Board, Certifying Board ID, "
    "Total Board Credits, Credit Type and Credits Awarded), or both on the same row. Dates MM/DD/YYYY; date of "
    "birth MM/DD. At most {records:,} records a file. Do not change the header row below."
)
REPORT_GUIDANCE = (
    "Rows not processed. Correct what the Error Code and Error Message columns describe and upload this workbook "
    "again (the error columns are ignored). A part of a row that was processed (CME or MOC) is left blank here, "
    "so it is not reported twice."
)

# Column positions (0-based).
ACTION, ACTIVITY, COMPLETED, FIRST, LAST, DOB = range(6)
STATE, LICENCE, CME_CREDITS = 6, 7, 8
BOARD, BOARD_ID, BOARD_CREDITS = 9, 10, 11
PAIRS_FROM = 12
CME_COLUMNS = (STATE, LICENCE, CME_CREDITS)
MOC_COLUMNS = (BOARD, BOARD_ID, BOARD_CREDITS)

_HEADER_ROWS = 5  # the header row is looked for among this many first rows
_NUMBER = re.compile(r"^\s*\d+\s*[.)]\s*")  # "1. Record Action": a numbered header reads the same
_LAST_SERIAL = 2958465  # 9999-12-31: a larger number is no Excel date
_ERROR_KEYS = {fold(c) for c in ERROR_COLUMNS}


def _key(cell) -> str:
    return fold(_NUMBER.sub("", str(cell))).split(" (")[0] if cell is not None else ""


def _expected(position: int) -> tuple[str, ...]:
    """What the header cell at a position may say, folded: its name, and for the credit pairs any pair's."""
    if position < PAIRS_FROM:
        return (_key(HEADER[position]),)
    if (position - PAIRS_FROM) % 2 == 0:
        return ("credit type", "additional credit type")
    return ("credits awarded",)


def _columns(header: list) -> tuple[int, set[int]]:
    """How many columns the template's header row has (through the last credit pair), and where the
    error report's columns are (ignored); refuses a header without one of the columns before the
    pairs, or with a column the template does not have, naming it."""
    keys = [_key(c) for c in header]
    for position in range(PAIRS_FROM + 2):
        got = keys[position] if position < len(keys) else ""
        if not any(got.startswith(name) for name in _expected(position)):
            raise FileRefused(
                f"{MSG_NOT_TEMPLATE} THE FILE HAS NO COLUMN {HEADER[position].upper()} (COLUMN {position + 1}).",
                f"header cell {position + 1}: {got!r}",
            )
    width = PAIRS_FROM + 2
    while (
        width + 1 < len(keys)
        and any(keys[width].startswith(n) for n in _expected(width))
        and keys[width + 1].startswith(_expected(width + 1))
    ):
        width += 2
    ignored = set()
    for position in range(width, len(keys)):
        if keys[position] in _ERROR_KEYS:
            ignored.add(position)
        elif keys[position]:
            raise FileRefused(
                f"{MSG_NOT_TEMPLATE} THE TEMPLATE HAS NO COLUMN {str(header[position]).upper()}.",
                f"header cell {position + 1}: {keys[position]!r}",
            )
    return width, ignored


# -- cells -------------------------------------------------------------------------------------------


def _text(value) -> str | None:
    """A cell as PARS reads text: numbers without a trailing .0 (IDs and points typed as numbers)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    text = str(value).strip()
    return text or None


def _as_date(value, epoch) -> dt.date | None:
    """A date cell, or a serial number in a cell formatted General (44742: 2022-06-30)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 1 <= value <= _LAST_SERIAL:
        try:
            return from_excel(value, epoch).date()
        except (ValueError, OverflowError, TypeError):
            return None
    return None


def _completion_text(value, epoch) -> str | None:
    """MM/DD/YYYY from a date or serial; text as written, for the domain's date parser."""
    day = _as_date(value, epoch)
    return day.strftime("%m/%d/%Y") if day is not None else _text(value)


def _dob_text(value, epoch) -> str | None:
    """MM/DD from a date or serial (Excel makes 09/10 a date in the current year); text as written."""
    day = _as_date(value, epoch)
    return f"{day.month:02d}/{day.day:02d}" if day is not None else _text(value)


def is_npi(value: str) -> bool:
    """A National Provider Identifier: 10 digits whose last is the Luhn check digit of the other nine
    prefixed 80840 (the NPI standard). Anything else in Licensing ID or NPI is a licence number."""
    if not (len(value) == 10 and value.isascii() and value.isdigit()):
        return False
    digits = [int(d) for d in "80840" + value]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# -- reading -----------------------------------------------------------------------------------------


def read_workbook(
    data: bytes, *, catalogue: Catalogue, max_records: int = 2500, limits: ExcelLimits | None = None
) -> list[ReportedRecord]:
    """Records of a workbook in ACCME's learner template layout. Raises FileRefused, before anything
    is stored, for a workbook that is hostile or too large unpacked (excel_guard), not a workbook, not
    the template, or holds more than `max_records` records. Record errors are left to the rules.
    (The upload's own size is checked by the batch upload, as for every file type.)"""
    check_workbook(data, limits or ExcelLimits(), max_records)
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # noqa: BLE001 - a damaged workbook raises whatever openpyxl meets first
        raise FileRefused(MSG_NOT_XLSX, f"openpyxl: {type(exc).__name__}: {exc}") from None
    try:
        return _records(book.worksheets[0].iter_rows(values_only=True), book.epoch, catalogue, max_records)
    except FileRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - as above, for a sheet damaged further in
        raise FileRefused(MSG_NOT_XLSX, f"openpyxl: {type(exc).__name__}: {exc}") from None
    finally:
        book.close()


def _records(rows, epoch, catalogue: Catalogue, max_records: int) -> list[ReportedRecord]:
    records: list[ReportedRecord] = []
    width, ignored = None, set()
    for row_no, row in enumerate(rows, start=1):
        cells = list(row)
        if width is None:
            if cells and _key(cells[0]).startswith(_key(HEADER[ACTION])):
                width, ignored = _columns(cells)
            elif row_no >= _HEADER_ROWS:
                raise FileRefused(
                    f"{MSG_NOT_TEMPLATE} THE FILE HAS NO HEADER ROW STARTING WITH RECORD ACTION.",
                    f"no header in the first {_HEADER_ROWS} rows",
                )
            continue
        texts = [_cell(position, value, epoch) for position, value in enumerate(cells[:width])]
        texts += [None] * (width - len(texts))
        if any(_text(v) for i, v in enumerate(cells[width:], width) if i not in ignored):
            raise FileRefused(
                f"{MSG_NOT_TEMPLATE} ROW {row_no} HAS DATA IN A COLUMN THE TEMPLATE DOES NOT HAVE.",
                f"row {row_no}: more than {width} columns",
            )
        if not any(texts):
            continue  # a blank row, or one of empty cells Excel kept
        records += _row_records(row_no, texts, catalogue, len(records) + 1)
        if len(records) > max_records:
            raise FileRefused(
                f"THE FILE HAS MORE THAN {max_records:,} RECORDS. BATCH UPLOADS MAY NOT EXCEED "
                f"{max_records:,} RECORDS (A ROW REPORTING CME AND MOC IS TWO RECORDS).",
                f"row {row_no}",
            )
    if width is None:
        raise FileRefused(f"{MSG_NOT_TEMPLATE} THE FILE HAS NO HEADER ROW STARTING WITH RECORD ACTION.", "empty sheet")
    if not records:
        raise FileRefused(MSG_NOT_TEMPLATE, "no records")
    return records


def _cell(position: int, value, epoch) -> str | None:
    if position == COMPLETED:
        return _completion_text(value, epoch)
    if position == DOB:
        return _dob_text(value, epoch)
    return _text(value)


def _offers(board: Board | None, credit_type: str | None) -> bool:
    return board is not None and credit_type is not None and board.credit_type(credit_type) is not None


def _cme_credit_type(catalogue: Catalogue, board: Board | None) -> str | None:
    """What Number of CME Credits are: the state board's standard credit type (AMA PRA Category 1)."""
    board = board or next((b for b in catalogue if not b.certifying), None)
    return next((t.name for t in board.credit_types if t.kind == "standard"), None) if board else None


def _row_records(row_no: int, t: list[str | None], catalogue: Catalogue, index: int) -> list[ReportedRecord]:
    """The records one row reports: CME (state board), MOC (certifying board), or both.

    Credit pairs belong to MOC, except on a CME-only row, and on a row reporting both, the pairs whose
    credit type the state board offers and the certifying board does not (a state's content-specific
    credit). Each record keeps the row with the other part's cells blanked as its `original`: the
    error report shows only what was not processed.
    """
    original = tuple(c or "" for c in t)
    pairs = list(range(PAIRS_FROM, len(t), 2))
    cme = any(t[c] for c in CME_COLUMNS)
    moc_cells = any(t[c] for c in MOC_COLUMNS)
    state, certifying = catalogue.by_registration(t[STATE]), catalogue.by_registration(t[BOARD])
    filled = [p for p in pairs if t[p] or t[p + 1]]
    if cme and moc_cells:
        cme_pairs = [p for p in filled if _offers(state, t[p]) and not _offers(certifying, t[p])]
    else:
        cme_pairs = filled if cme else []
    moc_pairs = [p for p in filled if p not in cme_pairs]
    moc = moc_cells or bool(moc_pairs)
    common = dict(
        action=t[ACTION],
        activity_id=t[ACTIVITY],
        completion_date=t[COMPLETED],
        first_name=t[FIRST],
        last_name=t[LAST],
        dob=t[DOB],
        row=row_no,
    )

    def without(columns) -> tuple[str, ...]:
        return tuple("" if i in columns else cell for i, cell in enumerate(original))

    def record(offset: int, types: list[str], **fields) -> ReportedRecord:
        codes = (676,) if len(types) > MAX_CREDIT_TYPES else ()  # more types than a record may carry
        return ReportedRecord(index=index + offset, credit_types=tuple(types), reader_codes=codes, **common, **fields)

    found = []
    if cme:
        licence = t[LICENCE]
        npi = licence if licence and is_npi(licence) else None
        types = [t[p] for p in cme_pairs if t[p]]
        standard = _cme_credit_type(catalogue, state)
        if standard and not any(fold(name) == fold(standard) for name in types):
            types.insert(0, standard)
        # A state names its own licence numbers as the learner ID type (Board.id_type).
        others = set(MOC_COLUMNS) | {c for p in moc_pairs for c in (p, p + 1)}
        found.append(
            record(
                0,
                types,
                board=t[STATE],
                learner_id_type="NPI" if npi else t[STATE],
                learner_id=licence,
                npi=npi,
                credits=t[CME_CREDITS],
                part="CME",
                original=without(others) if moc else original,
            )
        )
    if moc or not cme:
        credits = t[BOARD_CREDITS] or next((t[p + 1] for p in moc_pairs if t[p + 1]), None)
        others = set(CME_COLUMNS) | {c for p in cme_pairs for c in (p, p + 1)}
        found.append(
            record(
                len(found),
                [t[p] for p in moc_pairs if t[p]],
                board=t[BOARD],
                learner_id_type=t[BOARD],
                learner_id=t[BOARD_ID],
                credits=credits,
                part="MOC" if moc else None,
                original=without(others) if cme else original,
            )
        )
    return found


# -- the error report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    """One provider row in the error report: its cells (parts processed blanked), codes and messages."""

    cells: tuple[str, ...]
    codes: tuple[int, ...]
    messages: tuple[str, ...]

    @property
    def code_text(self) -> str:
        return "\n".join(map(str, self.codes))

    @property
    def message_text(self) -> str:
        return "\n".join(self.messages)


def report_rows(failed: list[tuple[ReportedRecord, list[int]]]) -> list[ReportRow]:
    """The rows not processed, each once, in file order, with every code of each of its records not
    processed. Where both parts of a row failed, each message names its part ("CME: ...", "MOC: ...")."""
    by_row: dict[int, list[tuple[ReportedRecord, list[int]]]] = {}
    for record, codes in failed:
        by_row.setdefault(record.row or record.index, []).append((record, codes))
    rows = []
    for _, found in sorted(by_row.items()):
        width = max(len(r.original) for r, _ in found)
        cells = tuple(
            next((r.original[i] for r, _ in found if i < len(r.original) and r.original[i]), "") for i in range(width)
        )
        named = len({r.part for r, _ in found}) > 1
        codes, messages = [], []
        for record, record_codes in found:
            for code in record_codes:
                codes.append(int(code))
                messages.append(f"{record.part}: {message(code)}" if named and record.part else message(code))
        rows.append(ReportRow(cells, tuple(codes), tuple(messages)))
    return rows


def _report_header(rows: list[ReportRow]) -> tuple[str, ...]:
    width = max([len(HEADER), *(len(r.cells) for r in rows)])
    pairs = [f"Additional Credit Type {n}" for n in range(PAIRS, PAIRS + (width - len(HEADER)) // 2)]
    extra = tuple(name for p in pairs for name in (p, f"Credits Awarded for {p}"))
    return HEADER + extra


def write_error_report_xlsx(rows: list[ReportRow]) -> bytes:
    """The error report as a workbook in the template's layout: re-uploaded as it is once fixed."""
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Sheet1")
    header = _report_header(rows)
    sheet.append([REPORT_GUIDANCE])
    sheet.append([*header, *ERROR_COLUMNS])
    for row in rows:
        cells = list(row.cells) + [""] * (len(header) - len(row.cells))
        sheet.append([c or None for c in cells] + [row.code_text, row.message_text])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def write_error_report_csv(rows: list[ReportRow]) -> bytes:
    """The same report as CSV (UTF-8 with BOM, as the Template B report), for other tools."""
    header = _report_header(rows)
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow([*header, *ERROR_COLUMNS])
    for row in rows:
        writer.writerow([*row.cells, *[""] * (len(header) - len(row.cells)), row.code_text, row.message_text])
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")


# -- the blank template ----------------------------------------------------------------------------------


def write_template(catalogue: Catalogue, max_records: int = 2500) -> bytes:
    """The learner template built from the board catalogue: drop-downs (data validation) for the
    record action, state and certifying boards and credit types, listed on a sheet of valid values."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Sheet1"
    values = book.create_sheet("Valid Values")
    lists = {
        "Record Action": ["Add", "Delete"],
        "Licensing State": [code for b in catalogue if not b.certifying for code in b.registration_codes],
        "Certifying Board": [code for b in catalogue if b.certifying for code in b.registration_codes],
        "Credit Type": list(dict.fromkeys(t.name for b in catalogue for t in b.credit_types)),
    }
    for column, (name, items) in enumerate(lists.items(), start=1):
        values.cell(row=1, column=column, value=name)
        for row, item in enumerate(items, start=2):
            values.cell(row=row, column=column, value=item)
    sheet.append([GUIDANCE.format(records=max_records)])
    sheet.append(list(HEADER))
    last = 2 + max_records
    letters = {position: openpyxl.utils.get_column_letter(position + 1) for position in range(len(HEADER))}
    targets = {
        "Record Action": [ACTION],
        "Licensing State": [STATE],
        "Certifying Board": [BOARD],
        "Credit Type": list(range(PAIRS_FROM, len(HEADER), 2)),
    }
    for column, name in enumerate(lists, start=1):
        source = openpyxl.utils.get_column_letter(column)
        rule = DataValidation(
            type="list",
            formula1=f"'Valid Values'!${source}$2:${source}${1 + len(lists[name])}",
            allow_blank=True,
            showErrorMessage=True,
            errorTitle=name,
            error=f"Choose a {name} from the list.",
        )
        for position in targets[name]:
            rule.add(f"{letters[position]}3:{letters[position]}{last}")
        sheet.add_data_validation(rule)
    # Dates typed into the date columns stay dates; a DOB stays text (09/10 is not a date in a year).
    for row in range(3, last + 1):
        sheet.cell(row=row, column=COMPLETED + 1).number_format = "mm/dd/yyyy"
        sheet.cell(row=row, column=DOB + 1).number_format = "@"
    for position, letter in letters.items():
        sheet.column_dimensions[letter].width = max(14, len(HEADER[position]) + 2)
    sheet.freeze_panes = "A3"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
