"""Hardened XML reading: the one way pars-ws turns untrusted bytes into an lxml tree.

Used by the SOAP protocol (entrypoints/soap.py) and by the batch-file readers. lxml and the
standard library only. How a document is read (SPEC 5):

1. Its size is checked, and its encoding from the first bytes and the XML declaration: only
   UTF-8, UTF-16, US-ASCII and ISO-8859-1 pass.
2. lxml parses it with its safe settings: no DTD loading, no entity resolution, no network, no
   huge trees (libxml2 keeps its own limits: depth 256, text nodes of 10,000,000 characters), and a
   resolver that answers every request for an external resource with nothing.
3. Any DOCTYPE is refused; then one walk of the tree checks depth, attributes per element
   (namespace declarations included), the ActivityReport count, and refuses processing
   instructions, entity references and XInclude elements.
"""

from __future__ import annotations

import re

from lxml import etree

from ..settings import XmlLimits

__all__ = ["AR_NS", "LIMIT_NAMES", "XmlLimits", "XmlRefused", "check_content_type", "parse_xml"]

AR_NS = "http://ns.medbiq.org/activityreport/v1/"
AR_V2_NS = "http://ns.medbiq.org/activityreport/v2/"
RECORD_TAGS = frozenset((f"{{{AR_NS}}}ActivityReport", f"{{{AR_V2_NS}}}ActivityReport"))
XINCLUDE_PREFIX = "{http://www.w3.org/2001/XInclude}"

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
        message = f"{message} (line {line})." if line else f"{message}."
        super().__init__(message)
        self.limit = limit
        self.line = line or None
        self.message = message

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------- encodings

# Names as written (lower case) -> family.
_CHARSETS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-16": "utf-16",
    "utf16": "utf-16",
    "utf-16le": "utf-16",
    "utf-16be": "utf-16",
    "us-ascii": "ascii",
    "ascii": "ascii",
    "iso-8859-1": "latin-1",
    "iso8859-1": "latin-1",
    "iso_8859-1": "latin-1",
    "latin1": "latin-1",
    "latin-1": "latin-1",
    "l1": "latin-1",
}
_ACCEPTED = "UTF-8, UTF-16, US-ASCII or ISO-8859-1"
# First bytes of UTF-32 (either byte order, with or without a BOM) and of "<?xm" in EBCDIC
# (XML 1.0 Appendix F): libxml2 would read some of these, the service does not.
_REFUSED_STARTS = {
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\x00<": "UTF-32",
    b"<\x00\x00\x00": "UTF-32",
    b"Lo\xa7\x94": "EBCDIC",
}
_DECLARED = re.compile(r"<\?xml[^>]{0,200}?encoding\s*=\s*[\"']?([^\"'\s?>]{0,40})")


def _encoding_refusal(name: str) -> XmlRefused:
    return XmlRefused("encoding", f"Encoding {name!r} is not accepted; use {_ACCEPTED}", 1)


def check_content_type(content_type: str | None) -> None:
    """Refuse HTTP bodies that are not a plain XML document.

    multipart/related is MTOM/SwA (attachments parsed outside this guard), so any multipart type is
    refused, as is the XOP root type. A charset parameter must name an accepted encoding.
    """
    if not content_type:
        return
    mime, _, params = content_type.partition(";")
    mime = mime.strip().lower()
    if mime.startswith("multipart/") or mime == "application/xop+xml":
        raise XmlRefused(
            "multipart",
            f"Content type {mime} is not accepted: MTOM/SwA attachments are not "
            "supported, send the SOAP envelope as a plain XML body",
        )
    for param in params.split(";"):
        key, _, value = param.partition("=")
        charset = value.strip().strip("\"'").lower()
        if key.strip().lower() == "charset" and charset and charset not in _CHARSETS:
            raise XmlRefused("encoding", f"Content type charset {charset!r} is not accepted; use {_ACCEPTED}")


def _check_encoding(data: bytes) -> None:
    """The encoding the first bytes show and the one the XML declaration names must agree on an
    accepted one (the parser checks the bytes themselves)."""
    refused = _REFUSED_STARTS.get(data[:4])
    if refused:
        raise _encoding_refusal(refused)
    head = data[:256]
    if head[:2] in (b"\xfe\xff", b"\xff\xfe"):
        shown, text = "utf-16", head.decode("utf-16", "replace")
    elif len(head) > 1 and (head[0] == 0) != (head[1] == 0):  # "<" in UTF-16 without a BOM
        shown, text = "utf-16", head.decode("utf-16-be" if head[0] == 0 else "utf-16-le", "replace")
    else:
        shown, text = ("utf-8" if head.startswith(b"\xef\xbb\xbf") else None), head.decode("latin-1")
    declared = _DECLARED.match(text.lstrip("\ufeff\u00ef\u00bb\u00bf"))
    if declared is None:
        return
    name = declared.group(1).lower()
    family = _CHARSETS.get(name)
    if family is None:
        raise _encoding_refusal(name)
    if (family == "utf-16") != (shown == "utf-16") or (shown == "utf-8" and family != "utf-8"):
        raise XmlRefused(
            "encoding",
            f"The XML declaration says {name!r} but the document's first bytes say {shown or 'an 8-bit encoding'}",
            1,
        )


# --------------------------------------------------------------------------- parsing


class _NothingResolver(etree.Resolver):
    """Every external resource (a DTD, an entity) reads as empty, whatever else the parser was told:
    some options make libxml2 ask for a DOCTYPE's external subset even with load_dtd off (seen with
    collect_ids=False)."""

    def resolve(self, system_url, public_id, context):
        return self.resolve_string("", context)


_PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def new_parser(**options) -> etree.XMLParser:
    # PIs stay in the tree: they are refused.
    parser = etree.XMLParser(**_PARSER_OPTIONS, remove_pis=False, **options)
    parser.resolvers.add(_NothingResolver())
    return parser


class _Seen(Exception):
    pass


class _FirstMarkup:
    """A parser target that stops at the DOCTYPE (before its internal subset) or at the root
    element, whichever comes first."""

    def doctype(self, *_):
        raise _Seen(True)

    def start(self, *_):
        raise _Seen(False)

    def close(self):
        return False


def _declares_doctype(data: bytes) -> bool:
    """Whether a document that failed to parse had a DOCTYPE (its failure may be in the DTD)."""
    try:
        return etree.fromstring(data, new_parser(target=_FirstMarkup()))
    except _Seen as seen:
        return seen.args[0]
    except etree.XMLSyntaxError:
        return False


# libxml2's errors that stand for a limit of their own; any other is malformed XML. With huge_tree
# off, libxml2 stops past depth 256, at text of 10,000,000 characters (more than a request may hold)
# and at an entity expanding too far (only possible with a DTD, which is refused as such).
_SYNTAX_LIMITS = {
    getattr(etree.ErrorTypes, name): limit
    for limit, names in (
        (
            "entity",
            (
                "ERR_UNDECLARED_ENTITY",
                "WAR_UNDECLARED_ENTITY",
                "ERR_ENTITY_LOOP",
                "ERR_UNPARSED_ENTITY",
                "ERR_ENTITYREF_IN_PROLOG",
                "ERR_ENTITYREF_IN_EPILOG",
                "ERR_PEREF_IN_PROLOG",
                "ERR_PEREF_IN_EPILOG",
            ),
        ),
        ("encoding", ("ERR_INVALID_ENCODING", "ERR_UNKNOWN_ENCODING", "ERR_UNSUPPORTED_ENCODING", "ERR_ENCODING_NAME")),
        ("depth", ("ERR_RESOURCE_LIMIT",)),
    )
    for name in names
}


def _doctype_refusal() -> XmlRefused:
    return XmlRefused("doctype", "DOCTYPE declarations are not allowed: SOAP forbids DTDs")


def _syntax_refusal(exc: etree.XMLSyntaxError, data: bytes) -> XmlRefused:
    if _declares_doctype(data):
        return _doctype_refusal()
    last = exc.error_log.last_error
    text = last.message if last is not None else exc.msg
    limit = _SYNTAX_LIMITS.get(exc.code, "malformed")
    return XmlRefused(limit, f"{'Malformed XML' if limit == 'malformed' else 'Refused XML'}: {text}", exc.lineno)


def _walk(root: etree._Element, limits: XmlLimits) -> None:
    """Depth, attributes per element (namespace declarations count: both cost the parser), the
    record count, and the node kinds that are refused, in one walk."""
    max_depth, max_attributes, max_records = limits.max_depth, limits.max_attributes, limits.max_records
    depth = declared = records = 0
    for event, node in etree.iterwalk(root, events=("start", "end", "start-ns", "pi")):
        if event == "start":
            depth += 1
            tag = node.tag
            if depth > max_depth:
                raise XmlRefused("depth", f"Element depth exceeds the limit of {max_depth}", node.sourceline)
            if declared + len(node.attrib) > max_attributes:
                raise XmlRefused(
                    "attributes", f"Attributes on one element exceed the limit of {max_attributes}", node.sourceline
                )
            declared = 0
            if tag in RECORD_TAGS:
                records += 1
                if records > max_records:
                    raise XmlRefused(
                        "records", f"ActivityReport records exceed the limit of {max_records}", node.sourceline
                    )
            elif tag is etree.Entity:
                raise XmlRefused("entity", "Entity references are not allowed", node.sourceline)
            elif tag.startswith(XINCLUDE_PREFIX):
                raise XmlRefused("xinclude", "XInclude elements are not allowed", node.sourceline)
        elif event == "end":
            depth -= 1
        elif event == "start-ns":
            declared += 1
        else:
            raise XmlRefused("processing-instruction", "Processing instructions are not allowed", node.sourceline)


def parse_xml(data: bytes, limits: XmlLimits, *, max_bytes: int | None = None) -> etree._ElementTree:
    """Parse untrusted XML, or raise XmlRefused naming the limit it broke.

    max_bytes overrides limits.max_body_bytes (batch readers pass limits.max_file_bytes). Never
    reads a file or the network. The result keeps line numbers (`sourceline`).
    """
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(f"parse_xml needs bytes, not {type(data).__name__}")
    cap = limits.max_body_bytes if max_bytes is None else max_bytes
    if len(data) > cap:
        raise XmlRefused("body-size", f"Body of {len(data)} bytes exceeds the limit of {cap} bytes")
    _check_encoding(data)
    try:
        root = etree.fromstring(data, new_parser())
    except etree.XMLSyntaxError as exc:
        raise _syntax_refusal(exc, data) from None
    tree = root.getroottree()
    if tree.docinfo.doctype:
        raise _doctype_refusal()
    for node in (*root.itersiblings(etree.PI, preceding=True), *root.itersiblings(etree.PI)):
        raise XmlRefused("processing-instruction", "Processing instructions are not allowed", node.sourceline)
    _walk(root, limits)
    return tree
