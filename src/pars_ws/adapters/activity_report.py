"""Reading MedBiquitous ActivityReports (PARS profile, Activity Report v1 or v2) into reported records.

Structure is checked with the project's XSD for the document's version (compiled once per process).
Three fields are read as text even when their type is wrong (a bad date, a non-numeric point value):
the rules turn those into the nearest code for that record instead of refusing the whole request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from lxml import etree

from ..domain.records import ReportedRecord
from ..resources import schema_dir
from .xml_guard import AR_NS as AR
from .xml_guard import parse_xml

M = "http://ns.medbiq.org/member/v1/"
N = "http://ns.medbiq.org/name/v1/"
HX = "http://ns.medbiq.org/lom/extend/v1/"
EX = "urn:pars-ws:activityreport-extension:v1"
NSMAP = {"ar": AR, "m": M, "n": N, "hx": HX, "ex": EX}
# Activity Report v2 (member v2, name v2; the credit elements stay lom/extend v1).
AR2 = "http://ns.medbiq.org/activityreport/v2/"
M2 = "http://ns.medbiq.org/member/v2/"
N2 = "http://ns.medbiq.org/name/v2/"
SCHEMA_FILES = {AR: "pars-activityreport.xsd", AR2: "pars-activityreport-v2.xsd"}
REPORTS_TAGS = tuple(f"{{{ns}}}ActivityReports" for ns in SCHEMA_FILES)

# Elements whose wrong *type* is a per-record error (rules give 671, 673, 664), not a fault.
TOLERATED = (
    {f"{{{ar}}}CompletedDateTime" for ar in (AR, AR2)}
    | {f"{{{m}}}BirthDate" for m in (M, M2)}
    | {f"{{{HX}}}numberOfCredits"}
)
# libxml2 names the element in Clark notation: "Element '{ns}name': 'x' is not a valid value of ..."
_TYPE_ERROR = re.compile(r"^Element '(\{[^}]*\}[^']+)': .* is not a valid value of the (local )?atomic type")


class InvalidDocument(Exception):
    """The document is malformed or does not conform to the PARS profile. Names line and path;
    `line` and `message` are the first schema error's own (the JSON twin names its element by them)."""

    def __init__(self, text: str, line: int | None = None, message: str | None = None):
        super().__init__(text)
        self.line = line
        self.message = message or text


@cache
def activity_report_schema(namespace: str = AR) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(schema_dir() / SCHEMA_FILES[namespace])))


def _text(el) -> str | None:
    if el is None or el.text is None:
        return None
    value = el.text.strip()
    return value or None


def _tolerated(error) -> bool:
    found = _TYPE_ERROR.match(error.message)
    return found is not None and found.group(1) in TOLERATED


def validate(element: etree._Element, schema: etree.XMLSchema | None = None) -> None:
    """Raise InvalidDocument unless every error is a tolerated field-type error. Without a schema,
    an ar:ActivityReports element is checked against the profile of its version."""
    if schema is None:
        namespace = etree.QName(element).namespace
        schema = activity_report_schema(namespace if namespace in SCHEMA_FILES else AR)
    if schema.validate(element):
        return
    for error in schema.error_log:
        if not _tolerated(error):
            raise InvalidDocument(f"line {error.line}: {error.path}: {error.message}", error.line, error.message)


@dataclass(frozen=True)
class _Tags:
    """The tags a record is read from, in one version's namespaces."""

    report: str
    unique_id: str
    birth_date: str
    given: str
    family: str
    module_name: str
    completed: str
    certificate: str
    credit_id: str
    xtensible: str
    # The elements a record is read from, in one pass filtered in C: looking each up with find() (and
    # its Python path machinery) cost more than everything else in reading a record. The XSD fixes
    # where each may occur and how often (one CreditID and at most one of each hx element per
    # certificate), so document order gives the same "first" as walking the paths would.
    read: tuple[str, ...]

    @classmethod
    def of(cls, ar: str, m: str, n: str) -> _Tags:
        uid, birth, given, family = f"{{{m}}}UniqueID", f"{{{m}}}BirthDate", f"{{{n}}}GivenName", f"{{{n}}}FamilyName"
        module_name, completed = f"{{{ar}}}ModuleName", f"{{{ar}}}CompletedDateTime"
        certificate, credit_id, xtensible = f"{{{ar}}}CreditCertificate", f"{{{ar}}}CreditID", f"{{{ar}}}XtensibleInfo"
        read = (
            uid,
            given,
            family,
            birth,
            module_name,
            completed,
            certificate,
            credit_id,
            _BODY,
            _CERTIFICATION,
            _CREDITS,
            xtensible,
        )
        return cls(
            f"{{{ar}}}ActivityReport",
            uid,
            birth,
            given,
            family,
            module_name,
            completed,
            certificate,
            credit_id,
            xtensible,
            read,
        )


_BODY, _CERTIFICATION = f"{{{HX}}}accreditingBody", f"{{{HX}}}activityCertification"
_CREDITS = f"{{{HX}}}numberOfCredits"
_TAGS = {REPORTS_TAGS[0]: _Tags.of(AR, M, N), REPORTS_TAGS[1]: _Tags.of(AR2, M2, N2)}


def read_activity_reports(reports: etree._Element) -> list[ReportedRecord]:
    """Records of a validated ar:ActivityReports element (v1 or v2), in document order (Index is 1-based)."""
    tags = _TAGS.get(reports.tag)
    if tags is None:
        raise InvalidDocument(f"line {reports.sourceline}: expected ar:ActivityReports, found {reports.tag}")
    return [_record(i, el, tags) for i, el in enumerate(reports.iterchildren(tags.report), start=1)]


def id_domain(domain: str | None) -> str | None:
    """The issuer a learner ID's domain names: v2's form idd:<host>:<name> (idd:accme.org:ABO) names
    it last; v1's is the name itself (ABO, NPI, NC)."""
    domain = (domain or "").strip()
    if domain.startswith("idd:"):
        domain = domain.rsplit(":", 1)[1].strip()
    return domain or None


def _record(index: int, report, tags: _Tags) -> ReportedRecord:
    found: dict[str, object] = {}
    credit_types = []
    has_certificate = False
    action = None
    for el in report.iter(*tags.read):
        tag = el.tag
        if tag == tags.xtensible:
            # The last child, with any foreign content: the action is the first learnerRecordAction
            # outside the ar namespace.
            for x in el.iter():
                if isinstance(x.tag, str) and x.tag.endswith("}learnerRecordAction") and x.tag not in _AR_TAGS:
                    action = _text(x)
                    break
            break
        if tag == tags.certificate:
            has_certificate = True
        elif tag == _CERTIFICATION:
            if (value := _text(el)) is not None:
                credit_types.append(value)
        elif tag in (tags.credit_id, _BODY, _CREDITS):
            # The first non-empty one, certificate by certificate.
            if found.get(tag) is None:
                found[tag] = _text(el)
        elif tag not in found:
            found[tag] = el
    uid = found.get(tags.unique_id)
    module_name = found.get(tags.module_name)
    activity_id = module_name.get("moduleID") if module_name is not None else None
    return ReportedRecord(
        index=index,
        action=action,
        credit_id=found.get(tags.credit_id),
        board=found.get(_BODY),
        activity_id=activity_id.strip() or None if activity_id else None,
        learner_id_type=id_domain(uid.get("domain")) if uid is not None else None,
        learner_id=_text(uid),
        first_name=_text(found.get(tags.given)),
        last_name=_text(found.get(tags.family)),
        dob=_text(found.get(tags.birth_date)),
        completion_date=_text(found.get(tags.completed)),
        credits=found.get(_CREDITS),
        credit_types=tuple(credit_types),
        has_credit_certificate=has_certificate,
    )


# learnerRecordAction in an ar namespace is not the extension's.
_AR_TAGS = {f"{{{ar}}}learnerRecordAction" for ar in SCHEMA_FILES}


def read_document(data: bytes, limits) -> list[ReportedRecord]:
    """The records of an XML document holding an ar:ActivityReports element (the element itself, a
    SaveLearnerActivity body or a whole SOAP envelope), read by the hardened parser and validated."""
    return read_activity_reports(_valid_reports(data, limits))


def count_document(data: bytes, limits) -> int:
    """How many records such a document holds, after the same checks, without reading their fields."""
    reports = _valid_reports(data, limits)
    return sum(1 for _ in reports.iterchildren(_TAGS[reports.tag].report))


def _valid_reports(data: bytes, limits):
    root = parse_xml(data, limits, max_bytes=limits.max_file_bytes).getroot()
    reports = root if root.tag in REPORTS_TAGS else next(root.iter(*REPORTS_TAGS), None)
    if reports is None:
        raise InvalidDocument("no ar:ActivityReports element in the document")
    validate(reports)
    return reports
