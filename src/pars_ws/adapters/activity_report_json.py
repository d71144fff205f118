"""JSON documents mapped to the service's XML elements through the project's own XSDs, so a JSON
request goes through the same validation and the same reader as its SOAP twin.

The JSON is the XML's shape (that of ACCME's JSON draft): each key is an element's local name, in
any order; an element that may repeat is an array; an element with attributes is an object whose
text is "value" (`"UniqueID": [{"value": "1000106", "domain": "ABIM"}]`); a number stands for its
text as written; null is an absent element. `XtensibleInfo` takes the extension's elements by name
(`"LearnerRecordAction": "add"`, the draft's capital as well). The walk follows the schema's own
components (xmlschema): a key the schema does not have, an array where one element goes or an
object where text goes is refused with its JSON pointer. The element built is then validated
exactly as a SOAP request's (activity_report.validate), and a problem it finds names the JSON
pointer of the element it is about.
"""

from __future__ import annotations

import json
import re
from functools import cache

import xmlschema
from lxml import etree
from xmlschema.validators import XsdAnyElement, XsdElement

from ..resources import schema_dir
from .activity_report import AR, EX, InvalidDocument, read_activity_reports, validate

TEXT = "value"
P = "urn:pars-ws:learner:v1"
_CLARK = re.compile(r"\{[^}]*\}")


class InvalidJson(Exception):
    """The body is not JSON, or not the document's shape. `pointer`: where (RFC 6901)."""

    def __init__(self, detail: str, pointer: str = ""):
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer


@cache
def _components(schema_file: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(schema_dir() / schema_file))


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes):
    """The body as JSON, numbers kept as the text they were written as (3.50 stays 3.50)."""
    try:
        return json.loads(body, parse_float=str, parse_int=str, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise InvalidJson(f"The body is not JSON: {exc}") from None


def _pointer(pointer: str, key) -> str:
    return f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _scalar(value, pointer: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # a document built in Python
        return repr(value)
    kind = "an object" if isinstance(value, dict) else "an array" if isinstance(value, list) else "true or false"
    raise InvalidJson(f"Expected text or a number, found {kind}.", pointer)


class _Walk:
    """One document's walk: the elements made, each numbered (lxml's sourceline) with its JSON pointer."""

    def __init__(self, schema: xmlschema.XMLSchema):
        self.schema = schema
        self.pointers: list[str] = []

    def element(self, value, xsd: XsdElement, parent, pointer: str):
        tag = xsd.name
        el = etree.Element(tag, nsmap={"ar": AR, "ex": EX}) if parent is None else etree.SubElement(parent, tag)
        self.pointers.append(pointer)
        el.sourceline = len(self.pointers)
        xtype = xsd.type
        try:
            if xtype.is_simple() or xtype.has_simple_content():
                self._simple(value, el, xtype, pointer)
            else:
                self._complex(value, el, xtype, pointer)
        except ValueError as exc:  # lxml: a character XML cannot carry
            raise InvalidJson(f"{exc}.", pointer) from None
        return el

    def _simple(self, value, el, xtype, pointer: str) -> None:
        if not isinstance(value, dict):
            el.text = _scalar(value, pointer)
            return
        attributes = {} if xtype.is_simple() else xtype.attributes
        for key, item in value.items():
            if item is None:
                continue
            if key == TEXT:
                el.text = _scalar(item, _pointer(pointer, key))
            elif key in attributes:
                el.set(key, _scalar(item, _pointer(pointer, key)))
            else:
                raise InvalidJson(f"{etree.QName(el).localname} has no {key!r}.", _pointer(pointer, key))

    def _complex(self, value, el, xtype, pointer: str) -> None:
        name = etree.QName(el).localname
        if not isinstance(value, dict):
            raise InvalidJson(f"{name} must be an object.", pointer)
        content = list(xtype.content.iter_elements())
        children = {c.local_name: c for c in content if isinstance(c, XsdElement)}
        open_content = any(isinstance(c, XsdAnyElement) for c in content)
        for key, item in value.items():
            if key in xtype.attributes and item is not None:
                el.set(key, _scalar(item, _pointer(pointer, key)))
        # Children in the schema's order; the extension's elements (XtensibleInfo) after them.
        for local, child in children.items():
            if local in value:
                self._occurrences(value[local], child, el, _pointer(pointer, local))
        for key, item in value.items():
            if key in children or key in xtype.attributes:
                continue
            extension = self._extension(key) if open_content else None
            if extension is None:
                raise InvalidJson(f"{name} has no {key!r}.", _pointer(pointer, key))
            # The wildcard repeats: an array (xmlschema's form) or one value (the draft's).
            self._occurrences(item, extension, el, _pointer(pointer, key), repeats=isinstance(item, list))

    def _occurrences(self, value, xsd: XsdElement, parent, pointer: str, repeats: bool | None = None) -> None:
        if value is None:
            return
        if repeats is None:
            repeats = xsd.max_occurs is None or xsd.max_occurs > 1
        if repeats != isinstance(value, list):
            raise InvalidJson(f"{xsd.local_name} must {'be' if repeats else 'not be'} an array.", pointer)
        for i, item in enumerate(value) if repeats else [(None, value)]:
            if item is not None:
                self.element(item, xsd, parent, pointer if i is None else _pointer(pointer, i))

    def _extension(self, key: str) -> XsdElement | None:
        """An element of the PARS extension namespace named by `key` (its first letter in either case)."""
        for name in (key, key[:1].lower() + key[1:]):
            found = self.schema.maps.elements.get(f"{{{EX}}}{name}")
            if found is not None:
                return found
        return None

    def where(self, exc: InvalidDocument) -> InvalidJson:
        """A validation error as a problem with the JSON pointer of the element it names."""
        line = getattr(exc, "line", None)
        pointer = self.pointers[line - 1] if line and 0 < line <= len(self.pointers) else ""
        return InvalidJson(_CLARK.sub("", str(exc.message)), pointer)


def _root(document, key: str) -> object:
    if not isinstance(document, dict) or set(document) != {key}:
        raise InvalidJson(f"The body must be an object with one key, {key!r}.")
    return document[key]


def activity_reports(document, max_records: int) -> etree._Element:
    """`{"ActivityReports": {...}}` as a validated ar:ActivityReports element (v1). Raises InvalidJson."""
    reports = _root(document, "ActivityReports")
    if (
        isinstance(reports, dict)
        and isinstance(reports.get("ActivityReport"), list)
        and len(reports["ActivityReport"]) > max_records
    ):
        raise InvalidJson(
            f"At most {max_records:,} ActivityReport records may be sent at once.", "/ActivityReports/ActivityReport"
        )
    schema = _components("pars-activityreport.xsd")
    walk = _Walk(schema)
    element = walk.element(reports, schema.elements["ActivityReports"], None, "/ActivityReports")
    try:
        validate(element)
    except InvalidDocument as exc:
        raise walk.where(exc) from None
    return element


def read_json_reports(document, max_records: int):
    """The reported records of a JSON ActivityReports document, in document order. Raises InvalidJson."""
    try:
        return read_activity_reports(activity_reports(document, max_records))
    except InvalidDocument as exc:
        raise InvalidJson(str(exc)) from None


def service_element(value, operation: str, child: str | None, schema: etree.XMLSchema) -> etree._Element:
    """A JSON object as a SOAP operation's element (pars-learner-service.xsd), or as its `child`
    element, validated with the SOAP service's schema as SOAP validates it; that element is
    returned. Raises InvalidJson."""
    components = _components("pars-learner-service.xsd")
    walk = _Walk(components)
    xsd = components.elements[operation]
    if child is None:
        element = walk.element(value, xsd, None, "")
        wrapper = element
    else:
        wrapper = etree.Element(f"{{{P}}}{operation}", nsmap={"p": P})
        walk.pointers.append("")
        wrapper.sourceline = 1
        inner = next(c for c in xsd.type.content.iter_elements() if c.local_name == child)
        element = walk.element(value, inner, wrapper, "")
    try:
        validate(wrapper, schema)
    except InvalidDocument as exc:
        raise walk.where(exc) from None
    return element
