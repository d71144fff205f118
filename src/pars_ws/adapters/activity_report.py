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
from ..resources import schema_dir

AR = "http://ns.medbiq.org/activityreport/v1/"
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
    """Records of a validated ar:ActivityReports element, in document order (Index is 1-based)."""
    if reports.tag != f"{{{AR}}}ActivityReports":
        raise InvalidDocument(f"line {reports.sourceline}: expected ar:ActivityReports, found {reports.tag}")
    return [_record(i, el) for i, el in enumerate(reports.iterchildren(f"{{{AR}}}ActivityReport"), start=1)]


def _record(index: int, report) -> ReportedRecord:
    member = report.find(f"{{{AR}}}Member")
    uid = member.find(f"{{{M}}}UniqueID") if member is not None else None
    name = member.find(f"{{{M}}}Name") if member is not None else None
    birth = member.find(f"{{{M}}}PersonalInfo/{{{M}}}BirthDate") if member is not None else None
    module = report.find(f"{{{AR}}}Activity/{{{AR}}}Module")
    certificates = module.findall(f"{{{AR}}}CreditCertificate") if module is not None else []
    module_name = module.find(f"{{{AR}}}ModuleName") if module is not None else None

    def first(path: str) -> str | None:
        for cert in certificates:
            value = _text(cert.find(path))
            if value is not None:
                return value
        return None

    credit_types = tuple(
        v for cert in certificates
        if (v := _text(cert.find(f"{{{AR}}}CreditReceived/{{{HX}}}activityCertification"))) is not None
    )
    action = None
    info = report.find(f"{{{AR}}}XtensibleInfo")
    if info is not None:
        for el in info.iter():
            if isinstance(el.tag, str) and el.tag.endswith("}learnerRecordAction") and not el.tag.startswith(f"{{{AR}}}"):
                action = _text(el)
                break
    activity_id = module_name.get("moduleID") if module_name is not None else None
    return ReportedRecord(
        index=index,
        action=action,
        credit_id=first(f"{{{AR}}}CreditID"),
        board=first(f"{{{AR}}}CreditReceived/{{{HX}}}accreditingBody"),
        activity_id=activity_id.strip() or None if activity_id else None,
        learner_id_type=(uid.get("domain") or "").strip() or None if uid is not None else None,
        learner_id=_text(uid),
        first_name=_text(name.find(f"{{{N}}}GivenName")) if name is not None else None,
        last_name=_text(name.find(f"{{{N}}}FamilyName")) if name is not None else None,
        dob=_text(birth),
        completion_date=_text(module.find(f"{{{AR}}}CompletedDateTime")) if module is not None else None,
        credits=first(f"{{{AR}}}CreditReceived/{{{HX}}}numberOfCredits"),
        credit_types=credit_types,
        has_credit_certificate=bool(certificates),
    )
