"""Writes learners.xlsx beside this file: the service's Excel learner template (ACCME's layout, with
its drop-downs) filled with sandbox learners. Run from the project root:

    .venv/bin/python sample_requests/excel/make_learners_xlsx.py
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from openpyxl import load_workbook

from pars_ws.adapters.data_files import load_catalogue
from pars_ws.adapters.excel import write_template

ROWS = [
    # CME to North Carolina (by NPI) and MOC to ABIM on one row: two records.
    [
        "Add",
        200900001,
        dt.datetime(2026, 2, 10),
        "Test2",
        "Account2",
        "03/01",
        "NC",
        1679576722,
        2,
        "ABIM",
        1000106,
        2,
        "ABIM MOC Part II",
        2,
        "Controlled Substance",
        1,
    ],
    # MOC only: ABPATH, its points as text, the completion date typed as text.
    [
        "Add",
        200930149,
        "02/11/2026",
        "Test3",
        "Account3",
        "04/01",
        None,
        None,
        None,
        "ABPATH",
        1000107,
        "1.5",
        "ABPath MOC Part II",
        "1.5",
    ],
    # CME only: Maine (MD board) by licence number.
    ["Add", 200930054, dt.datetime(2026, 2, 12), "Traci", "Test", "09/09", "ME-MD", "999998", 3],
]


def learners_xlsx() -> bytes:
    book = load_workbook(io.BytesIO(write_template(load_catalogue())))
    sheet = book["Sheet1"]
    for r, row in enumerate(ROWS, start=3):
        for c, value in enumerate(row, start=1):
            sheet.cell(row=r, column=c, value=value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


if __name__ == "__main__":
    Path(__file__).with_name("learners.xlsx").write_bytes(learners_xlsx())
