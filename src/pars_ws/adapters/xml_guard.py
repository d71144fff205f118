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
4. Attributes are counted on the bytes before parsing (a linear scan; an exact per-tag count
   only where a tag could be over), so a wide element never reaches libxml2.
5. Depth is enforced by libxml2 itself while parsing: (256 - max_depth) private wrapper
   elements are spliced in just inside the root element, so libxml2's fixed 256-level limit
   fires exactly past max_depth, early and at C speed; lxml's strip_tags then removes them
   (C speed, no copying), leaving exactly the tree a plain parse gives. Where the splice
   points are unclear (comments or PIs after the root, an empty root) a plain parse is
   followed by an XPath depth check. Measured on a 3.6 MB, 2,500-record request, the whole
   guard costs ~1.35x a plain lxml parse this way, ~1.55x with the XPath check instead, and
   2.2x or more with a per-element Python pre-scan (iterparse).
6. Records, XInclude elements, PIs and entity nodes are found by one C-filtered walk of the
   finished tree.

The parser never resolves entities, loads DTDs or touches the network, and its resolver
refuses everything, so even a check missed above cannot make it read a file or a URL.
"""
from __future__ import annotations

import os
import re
import threading
from functools import lru_cache

from lxml import etree

from ..settings import XmlLimits

__all__ = [
    "ACTIVITY_REPORT_TAG",
    "LIMIT_NAMES",
    "XmlLimits",
    "XmlRefused",
    "check_content_type",
    "parse_xml",
]

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

# Possessive and bounded: a declaration holds no '<', '>' or '?', and an unterminated one
# must not make the scan walk (and grow a backtracking stack over) the whole body.
_DECL_B = re.compile(rb"<\?xml(?=[ \t\r\n?])([^<>?]{0,512}+)\?>")
_DECL_S = re.compile(r"<\?xml(?=[ \t\r\n?])([^<>?]{0,512}+)\?>")
_DECL_START = re.compile(r"<\?xml[ \t\r\n?]")


_ENC_S = re.compile(r"""(encoding\s*=\s*)(?:"([^"<>]*)"|'([^'<>]*)')""")


def _match_decl(pattern: re.Pattern, text: bytes | str, start: int) -> re.Match | None:
    m = pattern.match(text, start)
    head = text[start:start + 6]
    if m is None and _DECL_START.match(head if isinstance(head, str) else head.decode("latin-1")):
        raise XmlRefused("malformed", "Malformed XML: the XML declaration cannot be read", 1)
    return m


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


# The declarations SOAP toolkits write, answered without the regular expressions below: what
# they would find is a UTF-8 declaration ending there.
_UTF8_DECLARATIONS = tuple(f"<?xml version={q}1.0{q} encoding={q}{name}{q}?>".encode()
                           for q in "\"'" for name in ("UTF-8", "utf-8"))


def _normalise_encoding(data: bytes) -> tuple[bytes, int]:
    """Return (ASCII-compatible bytes libxml2 may parse, offset just past the declaration).

    Refuses encodings outside the accepted four, declarations that contradict the bytes,
    UTF-32/UCS-4 and EBCDIC (sniffed, since they never get as far as a readable declaration).
    """
    for declaration in _UTF8_DECLARATIONS:
        if data.startswith(declaration):
            return data, len(declaration)
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
            m = _match_decl(_DECL_S, text, 0)
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
    m = _match_decl(_DECL_B, data, start)
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
_PROLOG_COMMENTS = 1000  # more than any real document; past it, stop walking comments one by one


def _check_prolog(data: bytes, pos: int) -> int | None:
    """Name a DOCTYPE or PI before the root element precisely, before any parsing; return
    where the root element starts (None if the prolog could not be walked).

    Not the only defence: the parser never loads a DTD or entity, and a DTD that still
    reached it is refused after parsing (docinfo); PIs are looked for again after parsing.
    """
    for _ in range(_PROLOG_COMMENTS):
        pos = _WS.match(data, pos).end()
        if data.startswith(b"<!--", pos):
            end = data.find(b"-->", pos + 4)
            if end < 0:
                return None  # unterminated: libxml2 reports it
            pos = end + 3
        elif data.startswith(b"<?", pos):
            if data[pos + 2:pos + 5].lower() == b"xml" and data[pos + 5:pos + 6] in b" \t\r\n?":
                raise XmlRefused("malformed", "Malformed XML: the XML declaration is allowed "
                                 "only at the very start", _line_at(data, pos))
            raise XmlRefused("processing-instruction", "Processing instructions are not allowed",
                             _line_at(data, pos))
        elif data[pos:pos + 9].upper() == b"<!DOCTYPE":
            raise XmlRefused("doctype", "DOCTYPE declarations are not allowed: SOAP forbids DTDs",
                             _line_at(data, pos))
        elif data[pos:pos + 8].upper() == b"<!ENTITY":
            raise XmlRefused("entity", "Entity declarations are not allowed",
                             _line_at(data, pos))
        else:
            return pos
    # A flood of comments: one C search still names a DOCTYPE hiding behind them.
    hit = data.find(b"<!DOCTYPE", pos)
    if hit >= 0:
        raise XmlRefused("doctype", "DOCTYPE declarations are not allowed: SOAP forbids DTDs",
                         _line_at(data, hit))
    return None


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


def _new_parser() -> etree.XMLParser:
    parser = etree.XMLParser(**_PARSER_OPTIONS)
    parser.resolvers.add(_RefusingResolver())
    return parser


_local = threading.local()


def _thread_parser() -> etree.XMLParser:
    # Reused: a fresh lxml parser per call cost ~15% more on a 3 MB request. Per thread: one
    # lxml parser shared between threads serialises them on its lock.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _new_parser()
    return parser


def _probe_libxml2_max_depth() -> int | None:
    """The nesting depth libxml2 accepts with huge_tree off (256 in 2.9-2.14).

    Probed rather than assumed, since it is a libxml2 build constant; None means no limit was
    found, and depth is then checked with XPath after parsing instead.
    """
    parser = etree.XMLParser(**_PARSER_OPTIONS)

    def accepted(n: int) -> bool:
        try:
            etree.fromstring(b"<a>" * n + b"</a>" * n, parser)
            return True
        except etree.XMLSyntaxError:
            return False

    if accepted(256) and not accepted(257):
        return 256
    lo, hi = 0, 1
    while accepted(hi):
        if hi >= 1 << 14:
            return None
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if accepted(mid) else (lo, mid)
    return lo or None


_LIBXML_MAX_DEPTH = _probe_libxml2_max_depth()

_XINCLUDE_ANY = f"{{{XINCLUDE_NS}}}*"
_LT_EQ_DELETE = bytes(b for b in range(256) if b not in b"<=")
# Small temporaries: a multi-MB one makes glibc consolidate the previous request's freed
# tree before this parse, which measurably slowed the parse.
_SCAN_CHUNK = 32 * 1024


@lru_cache(maxsize=16)
def _too_deep_xpath(max_depth: int) -> etree.XPath:
    # Documents below _WRAP_FROM_BYTES, or libxml2's limit unknown. From the root (depth 1),
    # max_depth child steps reach depth max_depth + 1.
    return etree.XPath("(" + "/".join(["*"] * max_depth) + ")[1]")


@lru_cache(maxsize=16)
def _attribute_patterns(over: int) -> tuple[re.Pattern, re.Pattern]:
    # A '<' whose text up to the next '<' holds `over` or more '=' (possessive: linear) ...
    segment = re.compile(rb"<[^<=]*+(?:=[^<=]*+){%d}" % over)
    # ... and, anchored there, a start tag with `over` attributes or xmlns declarations.
    tag = re.compile(
        rb"""<[^\s/>!?<=]++(?:\s++[^\s=/>]++\s*+=\s*+(?:"[^"<]*+"|'[^'<]*+')){%d}""" % over)
    return segment, tag


def _check_attributes(data: bytes, limits: XmlLimits) -> None:
    """Refuse any start tag with more than max_attributes attributes (xmlns included).

    Attribute values cannot hold '<', so a tag with n attributes has n '=' before the next
    '<'. The first pass keeps only '<' and '=' and looks for a run of max+1 '=': linear and
    a few ms for 3 MB. Only if that finds one are tags parsed properly, to rule out '=' in
    text or comments.
    """
    over = limits.max_attributes + 1
    run = b"=" * over
    carry = b""
    for start in range(0, len(data), _SCAN_CHUNK):
        part = carry + data[start:start + _SCAN_CHUNK].translate(None, _LT_EQ_DELETE)
        if run in part:
            break
        carry = part[len(part.rstrip(b"=")):]
    else:
        return
    segment, tag = _attribute_patterns(over)
    for m in segment.finditer(data):
        if tag.match(data, m.start()):
            raise XmlRefused(
                "attributes",
                f"Attributes on one element exceed the limit of {limits.max_attributes}",
                _line_at(data, m.start()))


def _records_refusal(limits: XmlLimits, line: int | None) -> XmlRefused:
    return XmlRefused("records",
                      f"ActivityReport records exceed the limit of {limits.max_records}", line)


def _depth_refusal(limits: XmlLimits, line: int | None) -> XmlRefused:
    return XmlRefused("depth", f"Element depth exceeds the limit of {limits.max_depth}", line)


def _pi_refusal(line: int | None) -> XmlRefused:
    return XmlRefused("processing-instruction", "Processing instructions are not allowed", line)


def _error_codes(*names: str) -> frozenset[int]:
    return frozenset(getattr(etree.ErrorTypes, n) for n in names if hasattr(etree.ErrorTypes, n))


_ENTITY_ERRORS = _error_codes(
    "ERR_UNDECLARED_ENTITY", "WAR_UNDECLARED_ENTITY", "ERR_ENTITY_LOOP", "ERR_ENTITY_IS_EXTERNAL",
    "ERR_ENTITY_IS_PARAMETER", "ERR_ENTITY_PE_INTERNAL", "ERR_ENTITY_BOUNDARY",
    "ERR_ENTITY_PROCESSING", "ERR_ENTITY_NOT_STARTED", "ERR_ENTITY_NOT_FINISHED",
    "ERR_ENTITY_CHAR_ERROR", "ERR_UNPARSED_ENTITY", "ERR_EXT_ENTITY_STANDALONE",
    "ERR_ENTITYREF_IN_PROLOG", "ERR_ENTITYREF_IN_EPILOG", "ERR_ENTITYREF_IN_DTD",
    "ERR_PEREF_AT_EOF", "ERR_PEREF_IN_EPILOG", "ERR_PEREF_IN_INT_SUBSET", "ERR_PEREF_IN_PROLOG",
    "ERR_PEREF_NO_NAME", "ERR_PEREF_SEMICOL_MISSING", "ERR_REDECL_PREDEF_ENTITY",
    "WAR_ENTITY_REDEFINED",
)
_ENCODING_ERRORS = _error_codes(
    "ERR_INVALID_ENCODING", "ERR_UNKNOWN_ENCODING", "ERR_UNSUPPORTED_ENCODING",
    "ERR_ENCODING_NAME", "ERR_MISSING_ENCODING", "WAR_ENCODING_MISMATCH",
)
_DOCTYPE_ERRORS = _error_codes("ERR_DOCTYPE_NOT_FINISHED", "ERR_NO_DTD")
_PI_ERRORS = _error_codes("ERR_PI_NOT_FINISHED", "ERR_PI_NOT_STARTED")
_RESOURCE_LIMIT = getattr(etree.ErrorTypes, "ERR_RESOURCE_LIMIT", -1)
_POSITION_SUFFIX = re.compile(r",? line \d+, column \d+\s*$")
_UNDECLARED = re.compile(r"Entity '([^']{1,80})' not defined")
_MISMATCH = re.compile(r"Opening and ending tag mismatch: (\S+) line (\d+) and (\S+)")


def _syntax_refusal(exc: etree.XMLSyntaxError, limits: XmlLimits,
                    wrapper: str | None = None, root: str | None = None) -> XmlRefused:
    """Name the limit behind a libxml2 error; anything unrecognised is 'malformed'.

    `wrapper`: the depth wrappers' private name; `root`: the root's name when parsed without them.
    A tag mismatch against either is told the same way, so the message does not depend on which
    way the document was parsed."""
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
    outermost = wrapper or root
    if outermost and outermost in msg:
        # Never show the private wrapper: say what it means for the client's document.
        m = _MISMATCH.search(msg)
        if m and m.group(3) == outermost:
            msg = f"element <{m.group(1)}> opened on line {m.group(2)} is not closed"
        elif m and m.group(1) == outermost:
            msg = f"unexpected end tag </{m.group(3)}>"
        elif wrapper:
            msg = msg.replace(wrapper, "(document)")
    return XmlRefused("malformed", f"Malformed XML: {msg}", line)


# The root's start tag (names and attribute values cannot hold these delimiters) ...
_ROOT_START = re.compile(
    rb"""<([^\s/>!?<=]++)(?:\s++[^\s=/>]++\s*+=\s*+(?:"[^"<]*+"|'[^'<]*+'))*+\s*+(/?)>""")
# ... and its end tag, with nothing but whitespace after it.
_ROOT_END = re.compile(rb"</([^\s/>!?<=]++)\s*+>[ \t\r\n]*+")


def _root_name(data: bytes, root_pos: int | None) -> str | None:
    """The root element's name as written, when its start tag is plain to see."""
    start = _ROOT_START.match(data, root_pos) if root_pos is not None else None
    return start.group(1).decode("utf-8", "replace") if start else None


def _splice_points(data: bytes, root_pos: int | None) -> tuple[int, int] | None:
    """Just after the root's start tag and just before its end tag, or None when that is not
    plain to see (empty root, anything but whitespace after the root, a malformed start)."""
    if root_pos is None:
        return None
    start = _ROOT_START.match(data, root_pos)
    if start is None or start.group(2):
        return None
    end = data.rfind(b"</")
    if end < start.end():
        return None
    close = _ROOT_END.fullmatch(data, end)
    if close is None or close.group(1) != start.group(1):
        return None
    return start.end(), end


# Below this size the depth is checked after the parse (an XPath of max_depth steps: microseconds on
# a SOAP request), where the wrappers cost ~35 µs whatever the document; on a file they stop
# libxml2 at the first element too deep instead of after building the whole tree.
_WRAP_FROM_BYTES = 256 * 1024


def _parse(data: bytes, root_pos: int | None, limits: XmlLimits) -> etree._Element:
    levels = 0
    if _LIBXML_MAX_DEPTH is not None:
        levels = max(0, _LIBXML_MAX_DEPTH - limits.max_depth)
    points = _splice_points(data, root_pos) if levels and len(data) >= _WRAP_FROM_BYTES else None
    parser = _thread_parser()

    if points is None:
        try:
            root = etree.fromstring(data, parser)
        except etree.XMLSyntaxError as exc:
            raise _syntax_refusal(exc, limits, root=_root_name(data, root_pos)) from None
        # levels == 0: max_depth is at or past libxml2's own limit, which has held.
        if levels or _LIBXML_MAX_DEPTH is None:
            too_deep = _too_deep_xpath(limits.max_depth)(root)
            if too_deep:
                raise _depth_refusal(limits, too_deep[0].sourceline)
    else:
        # A fresh random name each call: the input can neither guess it nor close a wrapper
        # early (end tags must match by name), so the wrappers nest exactly `levels` deep
        # around the root's content and every element below the root sits `levels` lower.
        wrapper = "w" + os.urandom(8).hex()
        after_start, before_end = points
        view = memoryview(data)
        wrapped = b"".join((view[:after_start], f"<{wrapper}>".encode() * levels,
                            view[after_start:before_end], f"</{wrapper}>".encode() * levels,
                            view[before_end:]))  # no newline added: line numbers stay the client's
        try:
            root = etree.fromstring(wrapped, parser)
        except etree.XMLSyntaxError as exc:
            raise _syntax_refusal(exc, limits, wrapper) from None
        finally:
            del wrapped
        # "{*}": under a default namespace the wrappers inherit it. strip_tags relinks the
        # children in C and leaves text, tails and line numbers exactly as a plain parse would.
        etree.strip_tags(root, "{*}" + wrapper)

    for node in (*root.itersiblings(etree.PI, preceding=True), *root.itersiblings(etree.PI)):
        raise _pi_refusal(node.sourceline)
    return root


def _check_tree(root: etree._Element, limits: XmlLimits) -> None:
    """Records, XInclude, PIs and entity nodes, in one walk that lxml filters in C."""
    records = 0
    max_records = limits.max_records
    for node in root.iter(ACTIVITY_REPORT_TAG, _XINCLUDE_ANY, etree.PI, etree.Entity):
        tag = node.tag
        if tag == ACTIVITY_REPORT_TAG:
            records += 1
            if records > max_records:
                raise _records_refusal(limits, node.sourceline)
        elif tag is etree.PI:
            raise _pi_refusal(node.sourceline)
        elif tag is etree.Entity:
            raise XmlRefused("entity", "Entity references are not allowed", node.sourceline)
        else:
            raise XmlRefused("xinclude", "XInclude elements are not allowed", node.sourceline)


def parse_xml(data: bytes, limits: XmlLimits, *,
              max_bytes: int | None = None) -> etree._ElementTree:
    """Parse untrusted XML, or raise XmlRefused naming the limit it broke.

    max_bytes overrides limits.max_body_bytes (batch readers pass limits.max_file_bytes).
    Never reads a file or the network. The result keeps line numbers (`sourceline`).

    The tree is the one a plain lxml parse would give. A UTF-16 document is returned as
    parsed from UTF-8 (docinfo.encoding says so); its text is the same.
    """
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(f"parse_xml needs bytes, not {type(data).__name__}")
    cap = limits.max_body_bytes if max_bytes is None else max_bytes
    if len(data) > cap:
        raise XmlRefused("body-size",
                         f"Body of {len(data)} bytes exceeds the limit of {cap} bytes")

    data, decl_end = _normalise_encoding(data)
    nul = data.find(b"\x00")
    if nul >= 0:
        raise XmlRefused("malformed", "Malformed XML: NUL byte", _line_at(data, nul))
    root_pos = _check_prolog(data, decl_end)
    _check_attributes(data, limits)

    root = _parse(data, root_pos, limits)
    _check_tree(root, limits)
    tree = root.getroottree()
    docinfo = tree.docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        # Unreachable after _check_prolog; kept so a prolog-scan bug cannot let a DTD through.
        raise XmlRefused("doctype", "DOCTYPE declarations are not allowed")
    return tree
