"""Checks on an uploaded .xlsx before openpyxl opens it.

A workbook is a zip of XML parts: what it unpacks to is read from the zip's directory, and a part
that lies about its size fails zipfile's own check when read. Refused whole, with a message for
the provider: anything that is not a zip, a zip bomb (too many parts, too large unpacked, an
unlikely compression ratio), a text table (sharedStrings.xml) too large to hold, links to other
workbooks, macros, and DTDs or entity declarations in any part (Excel writes none).
"""

from __future__ import annotations

import io
import zipfile

from ..settings import ExcelLimits
from .template_b import FileRefused

MiB = 1024 * 1024

MSG_NOT_XLSX = (
    "THE FILE IS NOT AN EXCEL WORKBOOK (.XLSX). PLEASE SAVE IT AS AN EXCEL WORKBOOK (.XLSX) AND UPLOAD IT AGAIN."
)
MSG_TOO_LARGE_UNPACKED = (
    "THE WORKBOOK IS TOO LARGE WHEN OPENED. PLEASE UPLOAD A WORKBOOK WITH ONLY THE "
    "LEARNER TEMPLATE'S SHEETS AND AT MOST {records:,} RECORDS."
)
MSG_SHARED_STRINGS = (
    "THE WORKBOOK HOLDS TOO MUCH TEXT. PLEASE UPLOAD A WORKBOOK WITH ONLY THE LEARNER "
    "TEMPLATE'S SHEETS AND AT MOST {records:,} RECORDS."
)
MSG_EXTERNAL_LINKS = (
    "THE WORKBOOK LINKS TO OTHER WORKBOOKS. PLEASE BREAK THE LINKS (DATA > EDIT LINKS), "
    "SAVE IT AS AN EXCEL WORKBOOK (.XLSX) AND UPLOAD IT AGAIN."
)
MSG_MACROS = (
    "THE WORKBOOK CONTAINS MACROS. PLEASE SAVE IT AS AN EXCEL WORKBOOK (.XLSX) WITHOUT MACROS AND UPLOAD IT AGAIN."
)
MSG_DTD = (
    "THE WORKBOOK CONTAINS XML THAT EXCEL DOES NOT WRITE (A DTD OR ENTITY DECLARATION). PLEASE SAVE "
    "IT FROM EXCEL AS AN EXCEL WORKBOOK (.XLSX) AND UPLOAD IT AGAIN."
)

_CONTENT_TYPES = "[Content_Types].xml"
_SHARED_STRINGS = "xl/sharedStrings.xml"
_MACRO_MARKERS = (b"vbaProject", b"macroEnabled", b"vnd.ms-excel.macrosheet", b"vnd.ms-excel.intlmacrosheet")
_DTD_MARKERS = (b"<!DOCTYPE", b"<!ENTITY")
_RATIO_FLOOR = MiB  # small parts (styles, themes) may compress well beyond any bomb's ratio


def check_workbook(data: bytes, limits: ExcelLimits, max_records: int) -> None:
    """Raise FileRefused unless `data` is a zip a learner workbook could be."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FileRefused(MSG_NOT_XLSX, f"not a zip: {exc}") from None
    with archive:
        parts = archive.infolist()
        names = {p.filename for p in parts}
        if _CONTENT_TYPES not in names or not any(n.startswith("xl/") for n in names):
            raise FileRefused(MSG_NOT_XLSX, "no [Content_Types].xml or xl/ part")
        too_large = MSG_TOO_LARGE_UNPACKED.format(records=max_records)
        if len(parts) > limits.max_parts:
            raise FileRefused(too_large, f"{len(parts)} parts")
        total = 0
        for part in parts:
            total += part.file_size
            name = part.filename.lower()
            if name == _SHARED_STRINGS.lower() and part.file_size > limits.max_shared_strings_bytes:
                raise FileRefused(
                    MSG_SHARED_STRINGS.format(records=max_records), f"sharedStrings.xml: {part.file_size} bytes"
                )
            if part.file_size > limits.max_part_bytes or total > limits.max_total_bytes:
                raise FileRefused(too_large, f"{part.filename}: {part.file_size} bytes, {total} in all")
            if part.file_size > _RATIO_FLOOR and part.file_size > limits.max_ratio * max(part.compress_size, 1):
                raise FileRefused(
                    too_large, f"{part.filename}: ratio {part.file_size / max(part.compress_size, 1):.0f}"
                )
            if name.startswith("xl/externallinks/"):
                raise FileRefused(MSG_EXTERNAL_LINKS, part.filename)
            if "vbaproject" in name or (name.endswith(".bin") and "macro" in name):
                raise FileRefused(MSG_MACROS, part.filename)
        # Every part is read once, within the limits above: the content types name macro parts,
        # and no part may declare a DTD or entities.
        for part in parts:
            if part.is_dir():
                continue
            try:
                content = archive.read(part)
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError, RuntimeError) as exc:
                raise FileRefused(MSG_NOT_XLSX, f"{part.filename}: {exc}") from None
            if part.filename == _CONTENT_TYPES and any(m in content for m in _MACRO_MARKERS):
                raise FileRefused(MSG_MACROS, "macro content type")
            if any(m in content for m in _DTD_MARKERS):
                raise FileRefused(MSG_DTD, part.filename)
