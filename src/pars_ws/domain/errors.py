"""PARS error codes and their messages, verbatim (typos included: clients match on them)."""

from __future__ import annotations

import csv
from importlib import resources

# 678's message names the certification a record repeats where the list prints this placeholder.
CERTIFICATE_NAME = "[Activity Certificate Name]"


def _load() -> dict[int, str]:
    # Package data shipped with the code, read once at import.
    text = resources.files("pars_ws.data").joinpath("error-codes.tsv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    return {int(row["code"]): row["message"] for row in rows}


MESSAGES: dict[int, str] = _load()


class Code(int):
    """A code as found on one record, with the name its message mentions (678: the certification).
    It is the code everywhere an int is expected; `message()` fills the name in."""

    def __new__(cls, code: int, name: str):
        found = super().__new__(cls, code)
        found.name = name
        return found


def message(code: int) -> str:
    name = getattr(code, "name", None)
    text = MESSAGES[code]
    return text.replace(CERTIFICATE_NAME, name) if name else text
