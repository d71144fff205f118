"""Opioid Analgesic REMS participant files: the tab-delimited REMS Participant Template and
MedBiquitous ActivityReport v2 `Participants`, read into reported participants; the CSV error report.

The tab-delimited file is read by Template B's machinery (template_b.read_rows: size, encoding,
quoting, blank lines); its columns follow ActivityReport v2's Participant, after the activity and
completion date the v2 document gives in Activity/Module. After the template's 10 columns come the
error report's own (Error Code, Error Message, Error Field), ignored on read, so a corrected
report is uploaded again as it is.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable
from functools import cache

from lxml import etree

from ..domain.errors import Code, message
from ..domain.rems import ReportedParticipant
from ..resources import schema_dir
from .activity_report import AR2, InvalidDocument, validate
from .template_b import FileRefused, read_rows
from .xml_guard import parse_xml

TEMPLATE_NAME = "REMS Participant Template"
HEADER: tuple[str, ...] = (
    "1. Template (DO NOT ALTER OR DELETE THIS COLUMN)",
    "2. ACCME Activity ID",
    "3. Participant ID",
    "4. Date of Completion",
    "5. Profession",
    "6. State of Primary Practice",
    "7. DEA Registration",
    "8. Practice Area",
    "9. Surgical Procedures (Yes/No)",
    "10. Time in Practice",
)
ERROR_HEADER = HEADER + ("11. Error Code", "12. Error Message", "13. Error Field")
SCHEMA_FILE = "pars-rems-activityreport-v2.xsd"
MSG_NOT_TEMPLATE = (
    "THE FILE IS NOT FORMATTED CORRECTLY. PLEASE USE THE FORMAT PROVIDED IN THE REMS PARTICIPANT TEMPLATE."
)
_COLUMNS = len(HEADER)
_TEMPLATE_KEY = TEMPLATE_NAME.casefold()


def msg_too_many(max_records: int) -> str:
    return f"THE FILE HAS MORE THAN {max_records:,} RECORDS. BATCH UPLOADS MAY NOT EXCEED {max_records:,} RECORDS."


# -- tab-delimited -------------------------------------------------------------------------------------


def read_rems_template(
    data: bytes, *, max_records: int = 2500, max_bytes: int = 16 * 1024 * 1024
) -> list[ReportedParticipant]:
    """Participants of a REMS Participant Template file (or its error report). Raises FileRefused."""
    return read_rows(data, lambda rows: _participants(rows, max_records), max_bytes=max_bytes)


def _participants(rows: Iterable[list[str]], max_records: int) -> list[ReportedParticipant]:
    found: list[ReportedParticipant] = []
    for row_no, row in enumerate(rows, start=1):
        first = row[0].strip().casefold() if row else ""
        if not "".join(row).strip():
            continue
        if not found and first.startswith(("1. template", "template")):
            continue  # the header
        if first != _TEMPLATE_KEY or len(row) > len(ERROR_HEADER) and "".join(row[len(ERROR_HEADER) :]).strip():
            raise FileRefused(MSG_NOT_TEMPLATE, f"row {row_no} is not a {TEMPLATE_NAME} row")
        if len(found) >= max_records:
            raise FileRefused(msg_too_many(max_records), f"row {row_no}")
        original = tuple(row[:_COLUMNS]) + ("",) * (_COLUMNS - min(len(row), _COLUMNS))
        v = [cell.strip() or None for cell in original]
        found.append(
            ReportedParticipant(
                index=len(found) + 1,
                activity_id=v[1],
                participant_id=v[2],
                participant_id_domain=None,
                completion_date=v[3],
                profession=v[4],
                state=v[5],
                dea_registration=v[6],
                practice_area=v[7],
                surgical_procedures=v[8],
                time_in_practice=v[9],
                original=original,
            )
        )
    if not found:
        raise FileRefused(MSG_NOT_TEMPLATE, "no participants")
    return found


def participant_columns(p: ReportedParticipant) -> tuple[str, ...]:
    """A participant's template columns: a tab row exactly as written; an XML participant's fields."""
    if p.original:
        return p.original
    fields = (
        p.activity_id,
        p.participant_id,
        p.completion_date,
        p.profession,
        p.state,
        p.dea_registration,
        p.practice_area,
        p.surgical_procedures,
        p.time_in_practice,
    )
    return (TEMPLATE_NAME, *(f or "" for f in fields))


def write_rems_template() -> bytes:
    """The empty tab-delimited template: its header line."""
    out = io.StringIO(newline="")
    csv.writer(out, dialect="excel-tab").writerow(HEADER)
    return out.getvalue().encode("utf-8")


def write_rems_error_report(rows: Iterable[tuple[ReportedParticipant, list[Code]]]) -> bytes:
    """The CSV error report: the template's columns + Error Code, Error Message (verbatim) and Error
    Field (the fields a 998 is about), one line per code. UTF-8 with BOM, CRLF, as Template B's."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, dialect="excel")
    writer.writerow(ERROR_HEADER)
    for p, codes in rows:
        for code in codes:
            writer.writerow([*participant_columns(p), str(int(code)), message(code), getattr(code, "name", "")])
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")


# -- ActivityReport v2 ----------------------------------------------------------------------------------

_Q = {
    name: f"{{{AR2}}}{name}"
    for name in (
        "ActivityReports",
        "ActivityReport",
        "Participant",
        "LocalIdentifier",
        "StateOfPrimaryPractice",
        "DEARegistration",
        "Profession",
        "PracticeArea",
        "SurgicalProcedures",
        "TimeInPractice",
        "Activity",
        "Module",
        "ModuleName",
        "CompletedDateTime",
    )
}


@cache
def rems_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(schema_dir() / SCHEMA_FILE)))


def _text(el) -> str | None:
    value = (el.text or "").strip() if el is not None else ""
    return value or None


def read_rems_document(data: bytes, limits) -> list[ReportedParticipant]:
    """Participants of an ActivityReport v2 document, each with its report's activity and completion
    date, in document order. Read by the hardened parser and checked against the REMS profile;
    raises XmlRefused, InvalidDocument or FileRefused (more than `limits.max_records` participants)."""
    root = parse_xml(data, limits, max_bytes=limits.max_file_bytes).getroot()
    if root.tag != _Q["ActivityReports"]:
        raise InvalidDocument(
            f"line {root.sourceline}: expected the ActivityReport v2 ActivityReports "
            f"element of a REMS file, found {root.tag}"
        )
    validate(root, rems_schema())
    found: list[ReportedParticipant] = []
    for report in root.iterchildren(_Q["ActivityReport"]):
        module = report.find(f"{_Q['Activity']}/{_Q['Module']}")
        activity_id = (module.find(_Q["ModuleName"]).get("moduleID") or "").strip() or None
        completed = _text(module.find(_Q["CompletedDateTime"]))
        for el in report.iter(_Q["Participant"]):
            if len(found) >= limits.max_records:
                raise FileRefused(msg_too_many(limits.max_records), f"line {el.sourceline}")
            local_id = el.find(_Q["LocalIdentifier"])
            found.append(
                ReportedParticipant(
                    index=len(found) + 1,
                    activity_id=activity_id,
                    participant_id=_text(local_id),
                    participant_id_domain=(local_id.get("domain") or "").strip() or None,
                    completion_date=completed,
                    profession=_text(el.find(_Q["Profession"])),
                    state=_text(el.find(_Q["StateOfPrimaryPractice"])),
                    dea_registration=_text(el.find(_Q["DEARegistration"])),
                    practice_area=_text(el.find(_Q["PracticeArea"])),
                    surgical_procedures=_text(el.find(_Q["SurgicalProcedures"])),
                    time_in_practice=_text(el.find(_Q["TimeInPractice"])),
                )
            )
    return found
