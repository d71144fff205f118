"""Excel learner template batches through the service layer, against a real database (SQLite, and
PostgreSQL when PARS_TEST_DATABASE_URL is set): a row reporting CME and MOC stores a record per
board, the error report comes back as a workbook that is fixed and uploaded again."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
from sqlalchemy import select

from pars_ws.adapters import tables as t
from pars_ws.adapters.excel import HEADER
from pars_ws.domain.errors import message
from pars_ws.service import batches
from tests.support import EXCEL_BOTH, excel_workbook
from tests.unit.test_batches_service import upload_and_process

LICENCE, BOARD_ID, DOB, COMPLETED = HEADER.index("Licensing ID or NPI"), HEADER.index("Certifying Board ID"), 5, 2


def stored(services, batch_id: int) -> list[tuple]:
    lr = t.learner_records
    with services.engine.begin() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(
                    lr.c.board,
                    lr.c.learner_id,
                    lr.c.npi,
                    lr.c.credits,
                    lr.c.credit_types,
                    lr.c.source,
                    lr.c.status,
                    lr.c.credit_id,
                )
                .where(lr.c.batch_pk == batch_id, lr.c.deleted_at.is_(None))
                .order_by(lr.c.batch_row)
            )
        ]


def row(completed: dt.datetime, **changes) -> list:
    cells = list(EXCEL_BOTH)
    cells[COMPLETED] = completed
    for position, value in changes.items():
        cells[int(position[1:])] = value
    return cells


def test_an_excel_batch_stores_each_board_and_its_report_goes_back_in(services, account):
    data = excel_workbook(
        [
            row(dt.datetime(2026, 1, 5)),  # both parts pass
            row(dt.datetime(2026, 1, 6), **{f"c{BOARD_ID}": "9999999"}),  # CME passes, MOC: 661
            row(dt.datetime(2026, 1, 7), **{f"c{DOB}": "12/31"}),  # both: 664
        ]
    )
    info = upload_and_process(services, account, data, name="learners.xlsx", file_type="xlsx")
    assert (info.file_type, info.records, info.processed, info.not_processed) == ("xlsx", 6, 3, 3)
    records = stored(services, info.id)
    assert [(r[0], r[1], r[2], str(r[3]), r[5], r[6]) for r in records] == [
        # The state board's learner reported by NPI keeps it (and matched registry learner 1000106).
        ("NC", "1679576722", "1679576722", "2.00", "Excel batch", "Accepted"),
        ("ABIM", "1000106", None, "3.50", "Excel batch", "Submitted"),
        ("NC", "1679576722", "1679576722", "2.00", "Excel batch", "Accepted"),
    ]
    assert records[0][4].splitlines() == ["AMA PRA Category 1", "Controlled Substance"]
    assert all(r[7].startswith(f"ccid:{account.domain}:") for r in records)  # CreditIDs the service assigned

    name, report = batches.error_report(services, account, info.id, "xlsx")
    assert batches.error_report_download_name(name, "xlsx") == "learners_errors.xlsx"
    sheet = openpyxl.load_workbook(io.BytesIO(report)).active
    values = [list(r) for r in sheet.iter_rows(min_row=3, values_only=True)]
    assert len(values) == 2  # each provider row once
    moc_only, both = values
    assert moc_only[6:9] == [None, None, None] and moc_only[-2:] == ["661", message(661)]
    assert both[6] == "NC" and both[-2:] == ["664\n664", f"CME: {message(664)}\nMOC: {message(664)}"]
    _, as_csv = batches.error_report(services, account, info.id, "csv")
    assert f"MOC: {message(664)}" in as_csv.decode("utf-8-sig")
    assert batches.error_report(services, account, info.id, "pdf") is None

    # Fixed in the report itself and uploaded again: only what was not processed is stored now.
    moc_only[BOARD_ID] = "1000106"
    both[DOB] = "03/01"
    fixed = openpyxl.load_workbook(io.BytesIO(report))
    for r, cells in enumerate((moc_only, both), start=3):
        for c, value in enumerate(cells, start=1):
            fixed.active.cell(row=r, column=c, value=value)
    out = io.BytesIO()
    fixed.save(out)
    again = upload_and_process(services, account, out.getvalue(), name="learners_errors.xlsx", file_type="xlsx")
    assert (again.records, again.processed, again.not_processed) == (3, 3, 0)
    assert [r[0] for r in stored(services, again.id)] == ["ABIM", "NC", "ABIM"]


def test_an_excel_delete_row_finds_the_record_by_its_fields(services, account):
    add = ["Add", "200930054", "02/02/2026", "Traci", "Test", "09/09", "NC", "999998", 1]
    added = upload_and_process(services, account, excel_workbook([add]), name="add.xlsx", file_type="xlsx")
    assert added.processed == 1
    removed = upload_and_process(
        services, account, excel_workbook([["Delete", *add[1:]]]), name="delete.xlsx", file_type="xlsx"
    )
    assert (removed.processed, removed.not_processed) == (1, 0)
    assert stored(services, added.id) == []


def test_a_hostile_workbook_is_refused_before_anything_is_stored(services, account):
    with pytest.raises(batches.UploadRefused) as refused:
        batches.upload(
            services, account, file_name="macro.xlsx", file_type="xlsx", data=b"PK\x03\x04 not really a workbook"
        )
    assert refused.value.message.startswith("THE FILE IS NOT AN EXCEL WORKBOOK (.XLSX).")
    with pytest.raises(batches.UploadRefused) as refused:
        batches.upload(services, account, file_name="learners.txt", file_type="xlsx", data=excel_workbook([EXCEL_BOTH]))
    assert refused.value.message == "THE FILE SELECTED IS NOT A .XLSX FILE. PLEASE UPLOAD A .XLSX FILE."
