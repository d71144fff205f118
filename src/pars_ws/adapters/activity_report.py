"""Reading MedBiquitous ActivityReports (PARS profile) into reported records.

Structure is checked with the project's XSD (compiled once per process). Three fields are read as
text even when their type is wrong (a bad date, a non-numeric point value): the rules turn those
into the nearest code for that record instead of refusing the whole request.
"""
from __future__ import annotations

import re
from functools import lru_cache

from lxml import etree

from ..domain.records import ReportedRecord
from ..domain.rules import naming_its_board
from ..resources import schema_dir
from .data_files import catalogue
from .xml_guard import AR_NS as AR, parse_xml
M = "http://ns.medbiq.org/member/v1/"
N = "http://ns.medbiq.org/name/v1/"
HX = "http://ns.medbiq.org/lom/extend/v1/"
EX = "urn:pars-ws:activityreport-extension:v1"
NSMAP = {"ar": AR, "m": M, "n": N, "hx": HX, "ex": EX}

# Elements whose wrong *type* is a per-record error (rules give 671, 673, 664), not a fault.
TOLERATED = {f"{{{AR}}}CompletedDateTime", f"{{{HX}}}numberOfCredits", f"{{{M}}}BirthDate"}
# libxml2 names the element in Clark notation: "Element '{ns}name': 'x' is not a valid value of ..."
_TYPE_ERROR = re.compile(r"^Element '(\{[^}]*\}[^']+)': .* is not a valid value of the (local )?atomic type")


class InvalidDocument(Exception):
    """The document is malformed or does not conform to the PARS profile. Names line and path."""


@lru_cache(maxsize=None)
def activity_report_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(schema_dir() / "pars-activityreport.xsd")))


def _text(el) -> str | None:
    if el is None or el.text is None:
        return None
    value = el.text.strip()
    return value or None


def _tolerated(error) -> bool:
    found = _TYPE_ERROR.match(error.message)
    return found is not None and found.group(1) in TOLERATED


def validate(element: etree._Element, schema: etree.XMLSchema | None = None) -> None:
    """Raise InvalidDocument unless every error is a tolerated field-type error."""
    schema = schema or activity_report_schema()
    if schema.validate(element):
        return
    for error in schema.error_log:
        if not _tolerated(error):
            raise InvalidDocument(f"line {error.line}: {error.path}: {error.message}")


def read_activity_reports(reports: etree._Element) -> list[ReportedRecord]:
    """Records of a validated ar:ActivityReports element, in document order (Index is 1-based), each
    naming the board it reports to (see rules.naming_its_board)."""
    if reports.tag != f"{{{AR}}}ActivityReports":
        raise InvalidDocument(f"line {reports.sourceline}: expected ar:ActivityReports, found {reports.tag}")
    boards = catalogue()
    return [naming_its_board(boards, _record(i, el))
            for i, el in enumerate(reports.iterchildren(f"{{{AR}}}ActivityReport"), start=1)]


_UNIQUE_ID, _BIRTH_DATE = f"{{{M}}}UniqueID", f"{{{M}}}BirthDate"
_GIVEN, _FAMILY = f"{{{N}}}GivenName", f"{{{N}}}FamilyName"
_MODULE_NAME, _COMPLETED, _CERTIFICATE = f"{{{AR}}}ModuleName", f"{{{AR}}}CompletedDateTime", f"{{{AR}}}CreditCertificate"
_CREDIT_ID, _XTENSIBLE = f"{{{AR}}}CreditID", f"{{{AR}}}XtensibleInfo"
_BODY, _CERTIFICATION, _CREDITS = f"{{{HX}}}accreditingBody", f"{{{HX}}}activityCertification", f"{{{HX}}}numberOfCredits"
# The elements a record is read from, in one pass filtered in C: looking each up with find() (and
# its Python path machinery) cost more than everything else in reading a record. The XSD fixes
# where each may occur and how often (one CreditID and at most one of each hx element per
# certificate), so document order gives the same "first" as walking the paths would.
_READ = (_UNIQUE_ID, _GIVEN, _FAMILY, _BIRTH_DATE, _MODULE_NAME, _COMPLETED, _CERTIFICATE, _CREDIT_ID, _BODY,
         _CERTIFICATION, _CREDITS, _XTENSIBLE)


def _record(index: int, report) -> ReportedRecord:
    found: dict[str, object] = {}
    credit_types = []
    has_certificate = False
    action = None
    for el in report.iter(*_READ):
        tag = el.tag
        if tag == _XTENSIBLE:
            # The last child, with any foreign content: the action is the first learnerRecordAction
            # outside the ar namespace.
            for x in el.iter():
                if isinstance(x.tag, str) and x.tag.endswith("}learnerRecordAction") and not x.tag.startswith(f"{{{AR}}}"):
                    action = _text(x)
                    break
            break
        if tag == _CERTIFICATE:
            has_certificate = True
        elif tag == _CERTIFICATION:
            if (value := _text(el)) is not None:
                credit_types.append(value)
        elif tag in (_CREDIT_ID, _BODY, _CREDITS):
            # The first non-empty one, certificate by certificate.
            if found.get(tag) is None:
                found[tag] = _text(el)
        elif tag not in found:
            found[tag] = el
    uid = found.get(_UNIQUE_ID)
    module_name = found.get(_MODULE_NAME)
    activity_id = module_name.get("moduleID") if module_name is not None else None
    return ReportedRecord(
        index=index,
        action=action,
        credit_id=found.get(_CREDIT_ID),
        board=found.get(_BODY),
        activity_id=activity_id.strip() or None if activity_id else None,
        learner_id_type=(uid.get("domain") or "").strip() or None if uid is not None else None,
        learner_id=_text(uid),
        first_name=_text(found.get(_GIVEN)),
        last_name=_text(found.get(_FAMILY)),
        dob=_text(found.get(_BIRTH_DATE)),
        completion_date=_text(found.get(_COMPLETED)),
        credits=found.get(_CREDITS),
        credit_types=tuple(credit_types),
        has_credit_certificate=has_certificate,
    )


def read_document(data: bytes, limits) -> list[ReportedRecord]:
    """The records of an XML document holding an ar:ActivityReports element (the element itself, a
    SaveLearnerActivity body or a whole SOAP envelope), read by the hardened parser and validated."""
    return read_activity_reports(_valid_reports(data, limits))


def count_document(data: bytes, limits) -> int:
    """How many records such a document holds, after the same checks, without reading their fields."""
    return sum(1 for _ in _valid_reports(data, limits).iterchildren(f"{{{AR}}}ActivityReport"))


def _valid_reports(data: bytes, limits):
    root = parse_xml(data, limits, max_bytes=limits.max_file_bytes).getroot()
    reports = root if root.tag == f"{{{AR}}}ActivityReports" else next(root.iter(f"{{{AR}}}ActivityReports"), None)
    if reports is None:
        raise InvalidDocument("no ar:ActivityReports element in the document")
    validate(reports)
    return reports
