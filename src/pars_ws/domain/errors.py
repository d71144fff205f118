"""PARS error codes and their messages, verbatim (typos included: clients match on them)."""
from __future__ import annotations

import csv
from importlib import resources


def _load() -> dict[int, str]:
    # Package data shipped with the code, read once at import.
    text = resources.files("pars_ws.data").joinpath("error-codes.tsv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    return {int(row["code"]): row["message"] for row in rows}


MESSAGES: dict[int, str] = _load()


def message(code: int) -> str:
    return MESSAGES[code]
