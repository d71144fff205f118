"""Audit copies of requests: passwords blanked, compressed."""

from __future__ import annotations

import re
import zlib

from ..domain.records import Source

# A Password element's text (the body's or WS-Security's, plain or CDATA), in any ASCII-compatible encoding.
_PASSWORD = re.compile(
    rb"(<(?:[\w.-]+:)?Password\b[^>]*>)(?:<!\[CDATA\[.*?\]\]>|<!--.*?-->|[^<])*(</(?:[\w.-]+:)?Password\s*>)", re.DOTALL
)


def redact_passwords(body: bytes) -> bytes:
    """The request with every password replaced by ********: the audit copy never holds a secret."""
    return _PASSWORD.sub(lambda m: m[1] + b"********" + m[2], body)


class AuditCopy:
    """A request as kept for audit: passwords blanked (see redact_passwords), compressed."""

    __slots__ = ("source", "correlation_id", "compressed")

    def __init__(self, body: bytes, source: Source, correlation_id: str):
        self.source, self.correlation_id = source, correlation_id
        self.compressed = zlib.compress(redact_passwords(body), 1)


def read_audit_copy(compressed: bytes) -> str:
    """An audit copy as text (passwords blanked again: copies kept before blanking existed)."""
    return redact_passwords(zlib.decompress(compressed)).decode("utf-8", errors="replace")
