"""`pars-ws validate`: judge a file's records offline, against the board catalogue and the sandbox
fixture held in memory. Nothing is read from or written to a database, and no data folder is made.

Records already stored are stored data it does not have: the rules that ask for them (a CreditID
taken, 603; the record a Delete removes, 605 and 706; points and completions held, 710, 711, 717)
see only this file's own records, and a Delete of a record not in the file is not judged at all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from ..adapters.activity_report import InvalidDocument, count_document, read_document
from ..adapters.clock import Clock
from ..adapters.data_files import activity_from_dict, learner_from_dict, load_catalogue, sandbox_fixture
from ..adapters.excel import read_workbook
from ..adapters.template_b import FileRefused, read_template_b
from ..adapters.xml_guard import XmlRefused
from ..domain.engine import Judgement, judge
from ..domain.errors import message
from ..domain.lookups import MemoryLookups
from ..domain.records import Source
from ..domain.rules import (
    DELETE,
    credit_id_already_used,
    delete_target_not_found,
    deletion_deadline_passed,
    maximum_already_granted,
    points_push_past_maximum,
    second_completion_same_day,
)
from ..settings import Settings

# The rules that ask for records already stored: offline they see this file's records only.
NEEDS_STORED_RECORDS = tuple(
    sorted(
        rule.code
        for rule in (
            credit_id_already_used,
            delete_target_not_found,
            deletion_deadline_passed,
            maximum_already_granted,
            points_push_past_maximum,
            second_completion_same_day,
        )
    )
)
NOT_JUDGED = "Not judged offline"
DELETE_NEEDS = (delete_target_not_found.code, deletion_deadline_passed.code)


def not_judged_offline(j: Judgement) -> bool:
    """A Delete whose record is not in the file: whether it exists, and its year, are stored data."""
    return j.action == DELETE and j.codes == [delete_target_not_found.code]


@dataclass
class ValidationReport:
    file: str
    source: Source | None
    judgements: list[Judgement]
    refused: str | None = None
    today: dt.date | None = None

    @property
    def ok(self) -> bool:
        return self.refused is None and all(j.ok or not_judged_offline(j) for j in self.judgements)

    @property
    def offline(self) -> str:
        codes = ", ".join(map(str, NEEDS_STORED_RECORDS))
        return (
            f"Judged offline against the board catalogue and the sandbox fixture (its activities and test "
            f"learners; today {self.today}). Records already stored are not known here: {codes} count this "
            f"file's own records only, and a Delete of a record not in the file is not judged."
        )

    def lines(self) -> list[str]:
        if self.refused:
            return [f"{self.file}: refused: {self.refused}"]
        out = []
        for j in self.judgements:
            who = j.record.credit_id or " ".join(filter(None, (j.record.first_name, j.record.last_name))) or "-"
            if not_judged_offline(j):
                out.append(f"record {j.record.index} ({who}): {NOT_JUDGED}: the record it deletes is stored data")
            elif j.ok:
                out.append(f"record {j.record.index} ({who}): {j.status.value}")
            else:
                for code in j.codes:
                    out.append(f"record {j.record.index} ({who}): {code} {message(code)}")
        unknown = sum(1 for j in self.judgements if not_judged_offline(j))
        bad = sum(1 for j in self.judgements if not j.ok) - unknown
        summary = f"{len(self.judgements)} records, {len(self.judgements) - bad - unknown} pass, {bad} with errors"
        out.append(summary + (f", {unknown} not judged offline" if unknown else ""))
        out.append(self.offline)
        return out

    def as_dict(self) -> dict:
        records = []
        for j in self.judgements:
            found = j.as_dict()
            if not_judged_offline(j):
                found.update(status=NOT_JUDGED, errors=[], needs_stored_data=list(DELETE_NEEDS))
            records.append(found)
        return {
            "file": self.file,
            "ok": self.ok,
            "refused": self.refused,
            "records": records,
            "offline": None if self.refused else self.offline,
        }


# Whatever makes a file unreadable as a whole; each carries the message shown to the provider.
UNREADABLE = (XmlRefused, InvalidDocument, FileRefused)


def file_kind(data: bytes, name: str) -> str:
    """The kind of a file no provider chose one for: a zip is a workbook, "<" starts XML, else Template B."""
    if data[:4] == b"PK\x03\x04" or name.lower().endswith(".xlsx"):
        return "xlsx"
    return "xml" if data.lstrip()[:1] == b"<" or name.lower().endswith(".xml") else "txt"


def read_records(data: bytes, name: str, limits, kind: str | None = None, *, catalogue=None, excel_limits=None):
    """Records of an XML document (ActivityReports, SaveLearnerActivity or a whole SOAP envelope), a
    Template B file or an Excel learner template.

    `kind` ("xml", "txt" or "xlsx") is the type a provider chose for a batch; None guesses from the
    content and name. A workbook's credit types are told apart by the board `catalogue` (the
    packaged one by default). Raises one of UNREADABLE.
    """
    kind = kind or file_kind(data, name)
    if kind == "xml":
        return Source.XML_BATCH, read_document(data, limits)
    if kind == "xlsx":
        return Source.EXCEL_BATCH, read_workbook(
            data, catalogue=catalogue or load_catalogue(), max_records=limits.max_records, limits=excel_limits
        )
    return Source.TAB_BATCH, read_template_b(data, max_records=limits.max_records, max_bytes=limits.max_file_bytes)


def count_records(data: bytes, limits, kind: str, *, catalogue=None, excel_limits=None) -> int:
    """How many records a batch file holds, after the same checks as read_records (an XML file's
    fields are read by the worker that processes it: once is enough). Raises one of UNREADABLE."""
    if kind == "xml":
        return count_document(data, limits)
    return len(read_records(data, "", limits, kind, catalogue=catalogue, excel_limits=excel_limits)[1])


def sandbox_lookups(year: int) -> MemoryLookups:
    """The sandbox fixture's activities and test learners, as seeding on `year` would store them."""
    fixture = sandbox_fixture()
    return MemoryLookups(
        [activity_from_dict(a, year) for a in fixture["activities"]],
        [learner_from_dict(d, year) for d in fixture["registry"]],
    )


def validate_file(path, settings: Settings | None = None) -> ValidationReport:
    settings = settings or Settings.from_env()
    clock = Clock(settings.today)
    name, today, catalogue = str(path), clock.today(), load_catalogue()
    try:
        source, records = read_records(
            Path(path).read_bytes(), name, settings.limits, catalogue=catalogue, excel_limits=settings.excel_limits
        )
    except UNREADABLE as exc:
        return ValidationReport(name, None, [], refused=str(exc), today=today)
    judgements = judge(
        records, today=today, now=clock.now(), catalogue=catalogue, lookups=sandbox_lookups(today.year), source=source
    )
    return ValidationReport(name, source, judgements, today=today)
