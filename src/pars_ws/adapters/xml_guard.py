"""Hardened XML reading: the one way pars-ws turns untrusted bytes into an lxml tree.

Used in front of spyne (which lets DOCTYPEs through and 500s on entities, see STACK-NOTES)
and by the batch-file readers. Framework-free: lxml and the standard library only.

How a document is read (SPEC 5):

1. Size is checked before anything else looks at the bytes.
2. The encoding is settled from the BOM / first bytes and the XML declaration; only
   UTF-8, UTF-16, US-ASCII and ISO-8859-1 pass. UTF-16 is transcoded to UTF-8 here so that
   every later byte scan sees ASCII-compatible bytes (line numbers are unchanged).
3. NUL bytes and the prolog (DOCTYPE, PIs) are checked by hand, so libxml2 never even sees a
   DTD: nothing can be fetched from disk or network however the parser is configured.
4. The parse itself streams (lxml's push parser, fed in chunks) with C-side tag filtering, so
   records, XInclude elements and PIs stop the parse early without Python work per element.
   Depth is then checked with one compiled XPath. A document that might have an element with
   too many attributes (a cheap, exact-or-over byte count) is instead streamed with a Python
   check on every element, which also counts depth and attributes exactly and stops early.

The parser never resolves entities, loads DTDs or touches the network, and its resolver
refuses everything, so even a check missed above cannot make it read a file or a URL.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lxml import etree

__all__ = [
    "ACTIVITY_REPORT_TAG",
    "LIMIT_NAMES",
    "XmlLimits",
    "XmlRefused",
    "check_content_type",
    "parse_xml",
]

MiB = 1024 * 1024

AR_NS = "http://ns.medbiq.org/activityreport/v1/"
ACTIVITY_REPORT_TAG = f"{{{AR_NS}}}ActivityReport"
XINCLUDE_NS = "http://www.w3.org/2001/XInclude"

LIMIT_NAMES = (
    "body-size",
    "doctype",
    "entity",
    "processing-instruction",
    "depth",
    "attributes",
    "records",
    "malformed",
    "encoding",
    "multipart",
    "xinclude",
)

# lxml's push parser is fed this much at a time; small enough that a refusal stops the
# parse early, big enough that the per-call overhead does not show.
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class XmlLimits:
    """Hostile-input limits (SPEC 5). All configurable.

    max_attributes counts namespace declarations too: both are attributes on the wire and
    both cost the parser memory. max_depth counts the root element as depth 1; libxml2 itself
    never goes past 256 (huge_tree stays off), so larger values act as 256.
    """

    max_body_bytes: int = 8 * MiB
    max_depth: int = 64
    max_attributes: int = 50
    max_records: int = 2500
    max_file_bytes: int = 16 * MiB

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_depth", "max_attributes", "max_records",
                     "max_file_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"XmlLimits.{name} must be a non-negative int, not {value!r}")
        if self.max_depth < 1:
            raise ValueError("XmlLimits.max_depth must be at least 1")


class XmlRefused(Exception):
    """A document refused by a hostile-input guard.

    `limit` is one of LIMIT_NAMES (stable, for fault codes, metrics and tests); `line` is the
    1-based line where the problem was seen, when known; str() is the human message.
    """

    def __init__(self, limit: str, message: str, line: int | None = None) -> None:
        assert limit in LIMIT_NAMES, limit
        if line:
            message = f"{message} (line {line})."
        else:
            message = f"{message}."
        super().__init__(message)
        self.limit = limit
        self.line = line or None
        self.message = message

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------- content type

_XML_CHARSETS = {
    # name as written (lower case) -> family
    "utf-8": "utf-8", "utf8": "utf-8",
    "utf-16": "utf-16", "utf16": "utf-16", "utf-16le": "utf-16", "utf-16be": "utf-16",
    "us-ascii": "ascii", "ascii": "ascii", "ansi_x3.4-1968": "ascii",
    "iso-8859-1": "latin-1", "iso8859-1": "latin-1", "iso_8859-1": "latin-1",
    "latin1": "latin-1", "latin-1": "latin-1", "l1": "latin-1",
}
_ACCEPTED = "UTF-8, UTF-16, US-ASCII or ISO-8859-1"


def check_content_type(content_type: str | None) -> None:
    """Refuse HTTP bodies that are not a plain XML document.

    multipart/related is MTOM/SwA: spyne re-parses those parts with lxml's default parser,
    around every guard here, so any multipart type is refused, as is the XOP root type.
    A charset parameter must name an accepted encoding. A missing header is left to the caller.
    """
    if not content_type:
        return
    mime, _, params = content_type.partition(";")
    mime = mime.strip().lower()
    if mime.startswith("multipart/") or mime == "application/xop+xml":
        raise XmlRefused(
            "multipart",
            f"Content type {mime} is not accepted: MTOM/SwA attachments are not supported, "
            "send the SOAP envelope as a plain XML body",
        )
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'").lower()
            if charset and charset not in _XML_CHARSETS:
                raise XmlRefused(
                    "encoding",
                    f"Content type charset {charset!r} is not accepted; use {_ACCEPTED}",
                )


# --------------------------------------------------------------------------- encoding

_DECL_B = re.compile(rb"<\?xml(?=[ \t\r\n?])(.*?)\?>", re.S)
_DECL_S = re.compile(r"<\?xml(?=[ \t\r\n?])(.*?)\?>", re.S)
_ENC_S = re.compile(r"""(encoding\s*=\s*)(?:"([^"<>]*)"|'([^'<>]*)')""")


def _line_at(data: bytes, pos: int) -> int:
    return data.count(b"\n", 0, pos) + 1


def _declared(decl: bytes | str | None) -> str | None:
    """The encoding named in an XML declaration body, lower-cased; None when not named."""
    if decl is None:
        return None
    if isinstance(decl, bytes):
        decl = decl.decode("latin-1")  # the declaration itself is ASCII; never fails
    m = _ENC_S.search(decl)
    if m is None:
        if "encoding" in decl:
            # A declaration libxml2 might still read an encoding from, but we cannot.
            raise XmlRefused("encoding", "The XML declaration's encoding cannot be read", 1)
        return None
    name = m.group(2) if m.group(2) is not None else m.group(3)
    return name.strip().lower()


def _refuse_encoding(name: str) -> XmlRefused:
    return XmlRefused(
        "encoding", f"Encoding {name!r} is not accepted; use {_ACCEPTED}", 1)


def _normalise_encoding(data: bytes) -> tuple[bytes, int]:
    """Return (ASCII-compatible bytes libxml2 may parse, offset just past the declaration).

    Refuses encodings outside the accepted four, declarations that contradict the bytes,
    UTF-32/UCS-4 and EBCDIC (sniffed, since they never get as far as a readable declaration).
    """
    head = data[:4]
    if head in (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00", b"\x00\x00\x00<", b"<\x00\x00\x00",
                b"\x00\x00<\x00", b"\x00<\x00\x00"):
        raise _refuse_encoding("UTF-32")
    if head == b"\x4c\x6f\xa7\x94":  # "<?xm" in EBCDIC
        raise _refuse_encoding("EBCDIC")

    utf16 = None
    if head[:2] == b"\xfe\xff":
        utf16, skip = "utf-16-be", 2
    elif head[:2] == b"\xff\xfe":
        utf16, skip = "utf-16-le", 2
    elif len(head) >= 2 and head[0] == 0 and head[1] != 0:
        utf16, skip = "utf-16-be", 0  # no BOM; libxml2 would guess the same
    elif len(head) >= 2 and head[1] == 0 and head[0] != 0:
        utf16, skip = "utf-16-le", 0

    if utf16:
        try:
            text = data[skip:].decode(utf16)
            m = _DECL_S.match(text)
            declared = _declared(m.group(1) if m else None)
            if declared is not None and _XML_CHARSETS.get(declared) != "utf-16":
                if declared in _XML_CHARSETS:
                    raise XmlRefused(
                        "encoding",
                        f"The XML declaration says {declared!r} but the bytes are UTF-16", 1)
                raise _refuse_encoding(declared)
            if m:
                # lxml must not be told UTF-16 about what is now UTF-8; same line count.
                decl = _ENC_S.sub(r'\1"UTF-8"', m.group(0), count=1)
                text = decl + text[m.end():]
            data = text.encode("utf-8")
        except UnicodeError as exc:
            raise XmlRefused("encoding", f"The document is not valid UTF-16 ({exc.reason})") \
                from None
        m = _DECL_B.match(data)
        return data, (m.end() if m else 0)

    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    m = _DECL_B.match(data, start)
    declared = _declared(m.group(1) if m else None)
    end = m.end() if m else start
    if declared is None:
        return data, end
    family = _XML_CHARSETS.get(declared)
    if family is None:
        raise _refuse_encoding(declared)
    if family == "utf-16":
        raise XmlRefused("encoding", f"The XML declaration says {declared!r} but the bytes "
                         "are not UTF-16", 1)
    if start and family != "utf-8":
        raise XmlRefused("encoding", f"The XML declaration says {declared!r} but the document "
                         "starts with a UTF-8 byte order mark", 1)
    if family == "ascii" and not data.isascii():
        pos = re.search(rb"[\x80-\xff]", data).start()
        raise XmlRefused("encoding", f"The XML declaration says {declared!r} but the document "
                         "has non-ASCII bytes", _line_at(data, pos))
    return data, end


# --------------------------------------------------------------------------- prolog

_WS = re.compile(rb"[ \t\r\n]*")


def _check_prolog(data: bytes, pos: int) -> None:
    """Refuse a DOCTYPE or PI before the root element; both can only occur here or as PIs
    later (caught while parsing). Comments are skipped; anything odd is left to libxml2."""
    while True:
        pos = _WS.match(data, pos).end()
        if data.startswith(b"<!--", pos):
            end = data.find(b"-->", pos + 4)
            if end < 0:
                return
            pos = end + 3
        elif data.startswith(b"<?", pos):
            raise XmlRefused("processing-instruction", "Processing instructions are not allowed",
                             _line_at(data, pos))
        elif data[pos:pos + 9].upper() == b"<!DOCTYPE":
            raise XmlRefused("doctype", "DOCTYPE declarations are not allowed: SOAP forbids DTDs",
                             _line_at(data, pos))
        elif data[pos:pos + 8].upper() == b"<!ENTITY":
            raise XmlRefused("entity", "Entity declarations are not allowed",
                             _line_at(data, pos))
        else:
            return


# --------------------------------------------------------------------------- parser

class _RefusingResolver(etree.Resolver):
    """Last line of defence: any attempt to load an external resource is refused."""

    def resolve(self, system_url, public_id, context):  # noqa: D401 - lxml API
        raise XmlRefused("entity", "External resources are not loaded")


_PARSER_OPTIONS = dict(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    attribute_defaults=False,
    huge_tree=False,  # keeps libxml2's own depth (256) and text-size limits
    collect_ids=False,
    remove_pis=False,  # we refuse them, so they must stay visible
)


def _new_parser(events=None, tag=None) -> etree.XMLPullParser:
    parser = etree.XMLPullParser(events=events, tag=tag, **_PARSER_OPTIONS)
    parser.resolvers.add(_RefusingResolver())
    return parser


def _new_one_shot_parser() -> etree.XMLParser:
    parser = etree.XMLParser(**_PARSER_OPTIONS)
    parser.resolvers.add(_RefusingResolver())
    return parser


_FAST_EVENTS = ("start", "pi")
_FAST_TAGS = (ACTIVITY_REPORT_TAG, f"{{{XINCLUDE_NS}}}*", etree.PI)
_FULL_EVENTS = ("start", "end", "start-ns", "pi")

_LT_EQ_DELETE = bytes(b for b in range(256) if b not in b"<=")


@lru_cache(maxsize=16)
def _too_deep_xpath(max_depth: int) -> etree.XPath:
    # From the root (depth 1), max_depth child steps reach depth max_depth + 1.
    return etree.XPath("(" + "/".join(["*"] * max_depth) + ")[1]")


def _records_refusal(limits: XmlLimits, line: int | None) -> XmlRefused:
    return XmlRefused("records",
                      f"ActivityReport records exceed the limit of {limits.max_records}", line)


def _depth_refusal(limits: XmlLimits, line: int | None) -> XmlRefused:
    return XmlRefused("depth", f"Element depth exceeds the limit of {limits.max_depth}", line)


def _pi_refusal(line: int | None) -> XmlRefused:
    return XmlRefused("processing-instruction", "Processing instructions are not allowed", line)


def _xinclude_refusal(line: int | None) -> XmlRefused:
    return XmlRefused("xinclude", "XInclude elements are not allowed", line)


def _error_names(*names: str) -> frozenset[int]:
    return frozenset(getattr(etree.ErrorTypes, n) for n in names if hasattr(etree.ErrorTypes, n))


_ENTITY_ERRORS = _error_names(
    "ERR_UNDECLARED_ENTITY", "WAR_UNDECLARED_ENTITY", "ERR_ENTITY_LOOP", "ERR_ENTITY_IS_EXTERNAL",
    "ERR_ENTITY_IS_PARAMETER", "ERR_ENTITY_PE_INTERNAL", "ERR_ENTITY_BOUNDARY",
    "ERR_ENTITY_PROCESSING", "ERR_ENTITY_NOT_STARTED", "ERR_ENTITY_NOT_FINISHED",
    "ERR_ENTITY_CHAR_ERROR", "ERR_UNPARSED_ENTITY", "ERR_EXT_ENTITY_STANDALONE",
    "ERR_ENTITYREF_IN_PROLOG", "ERR_ENTITYREF_IN_EPILOG", "ERR_ENTITYREF_IN_DTD",
    "ERR_PEREF_AT_EOF", "ERR_PEREF_IN_EPILOG", "ERR_PEREF_IN_INT_SUBSET", "ERR_PEREF_IN_PROLOG",
    "ERR_PEREF_NO_NAME", "ERR_PEREF_SEMICOL_MISSING", "ERR_REDECL_PREDEF_ENTITY",
    "WAR_ENTITY_REDEFINED",
)
_ENCODING_ERRORS = _error_names(
    "ERR_INVALID_ENCODING", "ERR_UNKNOWN_ENCODING", "ERR_UNSUPPORTED_ENCODING",
    "ERR_ENCODING_NAME", "ERR_MISSING_ENCODING", "WAR_ENCODING_MISMATCH",
)
_DOCTYPE_ERRORS = _error_names("ERR_DOCTYPE_NOT_FINISHED", "ERR_NO_DTD")
_PI_ERRORS = _error_names("ERR_PI_NOT_FINISHED", "ERR_PI_NOT_STARTED")
_RESOURCE_LIMIT = getattr(etree.ErrorTypes, "ERR_RESOURCE_LIMIT", -1)
_POSITION_SUFFIX = re.compile(r",? line \d+, column \d+\s*$")
_UNDECLARED = re.compile(r"Entity '([^']{1,80})' not defined")


def _syntax_refusal(exc: etree.XMLSyntaxError, limits: XmlLimits) -> XmlRefused:
    """Name the limit behind a libxml2 error; anything unrecognised is 'malformed'."""
    msg = _POSITION_SUFFIX.sub("", (exc.msg or "").strip()).strip()
    line = exc.lineno or None
    code = exc.code
    if code in _ENTITY_ERRORS:
        named = _UNDECLARED.match(msg)
        what = f"Entity reference &{named.group(1)}; is" if named else "Entity references are"
        return XmlRefused("entity", f"{what} not allowed", line)
    if code in _ENCODING_ERRORS:
        return XmlRefused("encoding", f"Encoding error: {msg}", line)
    if code in _DOCTYPE_ERRORS:
        return XmlRefused("doctype", "DOCTYPE declarations are not allowed", line)
    if code in _PI_ERRORS:
        return _pi_refusal(line)
    if code == _RESOURCE_LIMIT and "depth" in msg.lower():
        return _depth_refusal(limits, line)
    return XmlRefused("malformed", f"Malformed XML: {msg}", line)


def _parse_error(exc: etree.XMLSyntaxError, data: bytes, limits: XmlLimits) -> XmlRefused:
    if not exc.lineno:
        # lxml's push parser loses some libxml2 errors (an undeclared entity surfaces as
        # "no element found", line 0); the one-shot parser reports them properly. Error path
        # only, and the input is size-capped.
        try:
            etree.fromstring(data, _new_one_shot_parser())
        except etree.XMLSyntaxError as exact:
            return _syntax_refusal(exact, limits)
        except XmlRefused as refused:
            return refused
    return _syntax_refusal(exc, limits)


def _feed_all(parser: etree.XMLPullParser, data: bytes, on_events) -> etree._Element:
    for start in range(0, len(data), _CHUNK):
        parser.feed(data[start:start + _CHUNK])
        on_events(parser.read_events())
    root = parser.close()
    on_events(parser.read_events())
    return root


def _parse_fast(data: bytes, limits: XmlLimits) -> etree._Element:
    """Stream with C-side tag filtering: Python sees only records, XInclude elements and PIs."""
    records = 0
    max_records = limits.max_records

    def on_events(events):
        nonlocal records
        for event, node in events:
            if event == "pi":
                raise _pi_refusal(node.sourceline)
            if node.tag == ACTIVITY_REPORT_TAG:
                records += 1
                if records > max_records:
                    raise _records_refusal(limits, node.sourceline)
            else:
                raise _xinclude_refusal(node.sourceline)

    root = _feed_all(_new_parser(_FAST_EVENTS, _FAST_TAGS), data, on_events)
    too_deep = _too_deep_xpath(limits.max_depth)(root)
    if too_deep:
        raise _depth_refusal(limits, too_deep[0].sourceline)
    return root


def _parse_full(data: bytes, limits: XmlLimits) -> etree._Element:
    """Stream with a check on every element: exact depth and attribute counts, early stop."""
    depth = 0
    pending_ns = 0
    records = 0
    max_depth, max_attributes, max_records = (
        limits.max_depth, limits.max_attributes, limits.max_records)
    xinclude_prefix = f"{{{XINCLUDE_NS}}}"

    def on_events(events):
        nonlocal depth, pending_ns, records
        for event, node in events:
            if event == "start":
                depth += 1
                line = node.sourceline
                if depth > max_depth:
                    raise _depth_refusal(limits, line)
                # start-ns events for an element arrive just before its start event.
                if len(node.attrib) + pending_ns > max_attributes:
                    raise XmlRefused(
                        "attributes",
                        f"Attributes on one element exceed the limit of {max_attributes}", line)
                pending_ns = 0
                tag = node.tag
                if tag == ACTIVITY_REPORT_TAG:
                    records += 1
                    if records > max_records:
                        raise _records_refusal(limits, line)
                elif tag.startswith(xinclude_prefix):
                    raise _xinclude_refusal(line)
            elif event == "end":
                depth -= 1
            elif event == "start-ns":
                pending_ns += 1
            else:  # pi
                raise _pi_refusal(node.sourceline)

    return _feed_all(_new_parser(_FULL_EVENTS), data, on_events)


def parse_xml(data: bytes, limits: XmlLimits, *,
              max_bytes: int | None = None) -> etree._ElementTree:
    """Parse untrusted XML, or raise XmlRefused naming the limit it broke.

    max_bytes overrides limits.max_body_bytes (batch readers pass limits.max_file_bytes).
    The returned tree keeps line numbers (`sourceline`) for later error messages. Never reads
    a file or the network. A UTF-16 document comes back as parsed from UTF-8
    (docinfo.encoding says so); its text is the same.
    """
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(f"parse_xml needs bytes, not {type(data).__name__}")
    cap = limits.max_body_bytes if max_bytes is None else max_bytes
    if len(data) > cap:
        raise XmlRefused("body-size",
                         f"Body of {len(data)} bytes exceeds the limit of {cap} bytes")

    data, after_decl = _normalise_encoding(data)
    nul = data.find(b"\x00")
    if nul >= 0:
        raise XmlRefused("malformed", "Malformed XML: NUL byte", _line_at(data, nul))
    _check_prolog(data, after_decl)

    # An element with n attributes (or xmlns declarations) has n '=' between its '<' and the
    # next '<' (values cannot hold '<'), so no run of max+1 '=' means no element is over.
    # Linear; a regex here was quadratic on '='-heavy input.
    wide = b"=" * (limits.max_attributes + 1) in data.translate(None, _LT_EQ_DELETE)
    try:
        root = _parse_full(data, limits) if wide else _parse_fast(data, limits)
    except etree.XMLSyntaxError as exc:
        raise _parse_error(exc, data, limits) from None

    tree = root.getroottree()
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        # Unreachable after _check_prolog; kept so a prolog-scan bug cannot let a DTD through.
        raise XmlRefused("doctype", "DOCTYPE declarations are not allowed")
    return tree
