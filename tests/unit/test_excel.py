"""The Excel learner template: reading ACCME's layout (dates, DOBs and numbers as Excel keeps them,
one row reporting CME and MOC), the error report, the generated template, and hostile workbooks
refused before openpyxl opens them."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import openpyxl
import pytest

from pars_ws.adapters import excel_guard as guard
from pars_ws.adapters.data_files import load_catalogue
from pars_ws.adapters.excel import (
    HEADER,
    is_npi,
    read_workbook,
    report_rows,
    write_error_report_csv,
    write_error_report_xlsx,
    write_template,
)
from pars_ws.adapters.template_b import MSG_NOT_TEMPLATE, FileRefused
from pars_ws.domain.errors import message
from pars_ws.service.validate import file_kind, read_records
from pars_ws.settings import ExcelLimits, XmlLimits
from tests.support import EXCEL_BOTH, excel_workbook

CATALOGUE = load_catalogue()


def read(data: bytes, **kwargs):
    return read_workbook(data, catalogue=CATALOGUE, **kwargs)


def refusal(data: bytes, **kwargs) -> str:
    with pytest.raises(FileRefused) as refused:
        read(data, **kwargs)
    return refused.value.message


# -- reading ------------------------------------------------------------------------------------------


def test_a_row_reporting_cme_and_moc_is_one_record_per_board():
    cme, moc = read(excel_workbook([EXCEL_BOTH]))
    assert (cme.index, cme.row, cme.part, moc.index, moc.row, moc.part) == (1, 3, "CME", 2, 3, "MOC")
    for r in (cme, moc):
        assert (r.action, r.activity_id, r.completion_date, r.first_name, r.last_name, r.dob) == (
            "Add",
            "200900001",
            "01/05/2026",
            "Test2",
            "Account2",
            "03/01",
        )
        assert r.credit_id is None  # assigned by the service, as for Template B
    # CME: the state board, the NPI (a number cell) as learner ID, AMA PRA Category 1 plus the pair
    # whose credit type only the state board offers.
    assert (cme.board, cme.learner_id_type, cme.learner_id, cme.npi, cme.credits) == (
        "NC",
        "NPI",
        "1679576722",
        "1679576722",
        "2",
    )
    assert cme.credit_types == ("AMA PRA Category 1", "Controlled Substance")
    # MOC: the certifying board, its ID (a number cell), Total Board Credits, the board's credit type.
    assert (moc.board, moc.learner_id_type, moc.learner_id, moc.npi, moc.credits, moc.credit_types) == (
        "ABIM",
        "ABIM",
        "1000106",
        None,
        "3.5",
        ("ABIM MOC Part II",),
    )


def test_each_part_alone_and_a_licence_number():
    cme_only = ["Delete", "200930054", "01/05/2026", "Traci", "Test", "09/09", "NC", "999998", 1]
    moc_only = [
        "Add",
        "200930149",
        "01/06/2026",
        "Test3",
        "Account3",
        "04/01",
        None,
        None,
        None,
        "ABPATH",
        "1000107",
        None,
        "ABPath MOC Part II",
        1.25,
    ]
    (cme,), (moc,) = read(excel_workbook([cme_only])), read(excel_workbook([moc_only]))
    # A licence number is named by its state (Board.id_type); 999998 fails the NPI check digit.
    assert (cme.part, cme.board, cme.learner_id_type, cme.learner_id, cme.npi) == ("CME", "NC", "NC", "999998", None)
    assert cme.credit_types == ("AMA PRA Category 1",)
    # Without Total Board Credits, the first pair's credits (as XML's first numberOfCredits).
    assert (moc.part, moc.credits, moc.credit_types) == ("MOC", "1.25", ("ABPath MOC Part II",))


@pytest.mark.parametrize(
    "completed", [dt.datetime(2026, 1, 5), 46027, 46027.75, "01/05/2026", "1/5/2026", "2026-01-05"]
)
@pytest.mark.parametrize("dob", ["09/10", "9/10", dt.datetime(2026, 9, 10), 46275, "10-Sep"])
def test_dates_as_date_cells_serials_or_text(completed, dob):
    row = [*EXCEL_BOTH[:2], completed, "Test2", "Account2", dob, *EXCEL_BOTH[6:]]
    record = read(excel_workbook([row]))[0]
    from pars_ws.domain.dates import parse_completion_date, parse_dob

    assert parse_completion_date(record.completion_date) == dt.date(2026, 1, 5)
    assert (parse_dob(record.dob).month, parse_dob(record.dob).day) == (9, 10)


def test_text_nobody_can_read_as_a_date_is_left_to_the_rules():
    row = [*EXCEL_BOTH[:2], "sometime", "Test2", "Account2", "Jun-70", *EXCEL_BOTH[6:]]
    record = read(excel_workbook([row]))[0]
    assert (record.completion_date, record.dob) == ("sometime", "Jun-70")


def test_numbers_as_numbers_or_text():
    row = list(EXCEL_BOTH)
    row[1], row[8], row[11], row[10] = "200900001", "2.50", 3, "1000106"
    cme, moc = read(excel_workbook([row]))
    assert (cme.activity_id, cme.credits, moc.credits, moc.learner_id) == ("200900001", "2.50", "3", "1000106")


def test_the_guidance_row_may_be_missing_and_the_header_numbered():
    header = [f"{n}. {name}" for n, name in enumerate(HEADER, 1)]
    records = read(excel_workbook([EXCEL_BOTH], guidance=False, header=header))
    assert [r.part for r in records] == ["CME", "MOC"]


def test_a_state_content_credit_on_a_cme_only_row_goes_with_the_cme_record():
    row = [
        "Add",
        "200930054",
        "01/05/2026",
        "Test2",
        "Account2",
        "03/01",
        "NC",
        "1000106",
        2,
        None,
        None,
        None,
        "Opioid Prescribing",
        1,
    ]
    (cme,) = read(excel_workbook([row]))
    assert cme.credit_types == ("AMA PRA Category 1", "Opioid Prescribing")


def test_npi_check_digit():
    assert is_npi("1234567893") and is_npi("1679576722")
    assert not is_npi("1234567890") and not is_npi("123456789") and not is_npi("MD99660000")


def test_refused_whole_for_a_missing_column_extra_data_or_no_header():
    header = list(HEADER)
    header[7] = "License"
    assert refusal(excel_workbook([EXCEL_BOTH], header=header)) == (
        f"{MSG_NOT_TEMPLATE} THE FILE HAS NO COLUMN LICENSING ID OR NPI (COLUMN 8)."
    )
    extra = [*EXCEL_BOTH, *[None] * (len(HEADER) - len(EXCEL_BOTH)), "stray"]
    assert (
        refusal(excel_workbook([extra])) == f"{MSG_NOT_TEMPLATE} ROW 3 HAS DATA IN A COLUMN THE TEMPLATE DOES NOT HAVE."
    )
    book = openpyxl.Workbook()
    book.active.append(["Learner", "list"])
    out = io.BytesIO()
    book.save(out)
    assert refusal(out.getvalue()) == f"{MSG_NOT_TEMPLATE} THE FILE HAS NO HEADER ROW STARTING WITH RECORD ACTION."
    assert refusal(excel_workbook([])) == MSG_NOT_TEMPLATE  # no records


def test_more_than_the_record_limit_is_refused_counting_records_not_rows():
    assert len(read(excel_workbook([EXCEL_BOTH] * 2), max_records=4)) == 4
    assert refusal(excel_workbook([EXCEL_BOTH] * 3), max_records=5) == (
        "THE FILE HAS MORE THAN 5 RECORDS. BATCH UPLOADS MAY NOT EXCEED 5 RECORDS "
        "(A ROW REPORTING CME AND MOC IS TWO RECORDS)."
    )


def test_the_file_kind_is_guessed_for_validate():
    data = excel_workbook([EXCEL_BOTH])
    assert file_kind(data, "learners.bin") == "xlsx"
    source, records = read_records(data, "learners.xlsx", XmlLimits())
    assert source.value == "Excel batch" and len(records) == 2


# -- the error report ------------------------------------------------------------------------------------


def test_the_report_keeps_a_row_once_with_every_code_and_blanks_what_was_processed():
    cme, moc = read(excel_workbook([EXCEL_BOTH]))
    (both,) = report_rows([(cme, [661]), (moc, [664, 675])])
    assert both.cells[6:12] == ("NC", "1679576722", "2", "ABIM", "1000106", "3.5")
    assert both.codes == (661, 664, 675)
    assert both.messages == (f"CME: {message(661)}", f"MOC: {message(664)}", f"MOC: {message(675)}")
    # CME was stored: the row comes back with MOC only, so uploading it again stores CME no second time.
    (moc_left,) = report_rows([(moc, [675])])
    assert moc_left.cells[6:9] == ("", "", "") and moc_left.cells[14:16] == ("", "")
    assert moc_left.cells[9:12] == ("ABIM", "1000106", "3.5") and moc_left.messages == (message(675),)
    again = read(write_error_report_xlsx([moc_left]))
    assert [(r.part, r.board, r.credit_types) for r in again] == [("MOC", "ABIM", ("ABIM MOC Part II",))]


def test_the_report_as_workbook_and_csv():
    cme, moc = read(excel_workbook([EXCEL_BOTH]))
    rows = report_rows([(cme, [661]), (moc, [664])])
    sheet = openpyxl.load_workbook(io.BytesIO(write_error_report_xlsx(rows))).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[1][-2:] == ("Error Code", "Error Message")
    assert values[2][-2:] == ("661\n664", f"CME: {message(661)}\nMOC: {message(664)}")
    text = write_error_report_csv(rows).decode("utf-8-sig")
    assert text.startswith("Record Action,ACCME Activity ID,") and "Error Code,Error Message" in text.splitlines()[0]
    assert f"CME: {message(661)}" in text


# -- the template ----------------------------------------------------------------------------------------


def test_the_template_has_drop_downs_from_the_catalogue():
    book = openpyxl.load_workbook(io.BytesIO(write_template(CATALOGUE)))
    sheet, values = book["Sheet1"], book["Valid Values"]
    assert [c.value for c in sheet[2]] == list(HEADER)
    listed = {column[0].value: [c.value for c in column[1:] if c.value] for column in values.iter_cols()}
    assert listed["Record Action"] == ["Add", "Delete"]
    assert listed["Licensing State"] == ["ME-MD", "ME-DO", "NC", "TN"]
    assert "ABIM" in listed["Certifying Board"] and "NC" not in listed["Certifying Board"]
    assert "ABIM MOC Part II" in listed["Credit Type"] and "Controlled Substance" in listed["Credit Type"]
    rules = {str(dv.sqref).split(":")[0]: dv.formula1 for dv in sheet.data_validations.dataValidation}
    assert rules["A3"] == "'Valid Values'!$A$2:$A$3"
    assert rules["G3"].startswith("'Valid Values'!$B$2") and rules["J3"].startswith("'Valid Values'!$C$2")
    assert all(dv.type == "list" for dv in sheet.data_validations.dataValidation)
    # Filled in as a provider would, it reads.
    for column, value in enumerate(EXCEL_BOTH, start=1):
        sheet.cell(row=3, column=column, value=value)
    out = io.BytesIO()
    book.save(out)
    assert [r.part for r in read(out.getvalue())] == ["CME", "MOC"]


# -- hostile workbooks -------------------------------------------------------------------------------------

LIMITS = ExcelLimits()


def small_workbook() -> bytes:
    return excel_workbook([EXCEL_BOTH])


def tampered(
    data: bytes,
    add: dict[str, bytes] | None = None,
    replace: dict[str, bytes] | None = None,
    compression=zipfile.ZIP_DEFLATED,
) -> bytes:
    """The workbook's zip rewritten: parts replaced or added."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", compression) as target:
        for info in source.infolist():
            target.writestr(info.filename, (replace or {}).get(info.filename, source.read(info)))
        for name, content in (add or {}).items():
            target.writestr(name, content)
    return out.getvalue()


def test_a_small_workbook_passes_the_checks():
    guard.check_workbook(small_workbook(), LIMITS, 2500)


def test_not_a_workbook():
    assert refusal(b"Learner Template B\tABIM\n") == guard.MSG_NOT_XLSX
    assert refusal(tampered(small_workbook())[:2000]) == guard.MSG_NOT_XLSX  # truncated
    plain_zip = io.BytesIO()
    with zipfile.ZipFile(plain_zip, "w") as z:
        z.writestr("notes.txt", "hello")
    assert refusal(plain_zip.getvalue()) == guard.MSG_NOT_XLSX


def test_zip_bomb_by_ratio_and_by_total_size():
    bomb = tampered(small_workbook(), add={"xl/media/padding.bin": b"\0" * (8 * 1024 * 1024)})
    assert refusal(bomb) == guard.MSG_TOO_LARGE_UNPACKED.format(records=2500)
    stored = tampered(
        small_workbook(), add={"xl/media/padding.bin": b"\0" * (2 * 1024 * 1024)}, compression=zipfile.ZIP_STORED
    )  # no ratio at all: the total counts
    assert refusal(stored, limits=ExcelLimits(max_total_bytes=2 * 1024 * 1024)) == (
        guard.MSG_TOO_LARGE_UNPACKED.format(records=2500)
    )
    # Just under the limits passes.
    read(stored, limits=ExcelLimits(max_total_bytes=3 * 1024 * 1024))


def test_too_many_parts():
    many = tampered(small_workbook(), add={f"xl/media/image{n}.png": b"x" for n in range(LIMITS.max_parts)})
    assert refusal(many) == guard.MSG_TOO_LARGE_UNPACKED.format(records=2500)


def test_a_part_that_lies_about_its_size_fails_when_read():
    data = bytearray(small_workbook())
    # The sheet's entry in the central directory (at the end of the zip): its uncompressed size made
    # small, so the checks pass; reading the part must then stop there, and fail its CRC.
    entry = bytes(data).rindex(b"xl/worksheets/sheet1.xml") - 46
    assert data[entry : entry + 4] == b"PK\x01\x02"
    data[entry + 24 : entry + 28] = (100).to_bytes(4, "little")
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        assert z.getinfo("xl/worksheets/sheet1.xml").file_size == 100
    assert refusal(bytes(data)) == guard.MSG_NOT_XLSX


def test_huge_shared_strings():
    strings = (
        b'<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + b"<si><t>learner</t></si>" * 400_000
        + b"</sst>"
    )
    data = tampered(small_workbook(), add={"xl/sharedStrings.xml": strings})
    assert refusal(data) == guard.MSG_SHARED_STRINGS.format(records=2500)


def test_external_links():
    link = b'<externalLink xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>'
    data = tampered(small_workbook(), add={"xl/externalLinks/externalLink1.xml": link})
    assert refusal(data) == guard.MSG_EXTERNAL_LINKS


def test_macros_as_a_part_or_a_content_type():
    assert refusal(tampered(small_workbook(), add={"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0"})) == guard.MSG_MACROS
    with zipfile.ZipFile(io.BytesIO(small_workbook())) as z:
        types = z.read("[Content_Types].xml")
    macro = types.replace(b"spreadsheetml.sheet.main+xml", b"sheet.macroEnabled.main+xml")
    assert macro != types
    assert refusal(tampered(small_workbook(), replace={"[Content_Types].xml": macro})) == guard.MSG_MACROS


def test_a_dtd_or_entities_in_any_part():
    with zipfile.ZipFile(io.BytesIO(small_workbook())) as z:
        sheet = z.read("xl/worksheets/sheet1.xml")
    laughs = b'<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">]>' + sheet
    assert refusal(tampered(small_workbook(), replace={"xl/worksheets/sheet1.xml": laughs})) == guard.MSG_DTD


def test_the_sample_workbook_is_what_its_script_writes_and_passes_offline():
    import datetime as dt_

    from pars_ws.service.validate import validate_file
    from pars_ws.settings import Settings
    from tests.conftest import ROOT

    sample = ROOT / "sample_requests" / "excel" / "learners.xlsx"
    namespace: dict = {}
    exec(compile((sample.parent / "make_learners_xlsx.py").read_text(), "make_learners_xlsx.py", "exec"), namespace)
    assert read(sample.read_bytes()) == read(namespace["learners_xlsx"]())
    report = validate_file(sample, Settings(database_url="sqlite://", today=dt_.date(2026, 6, 15)))
    assert report.ok and [j.status.value for j in report.judgements] == [
        "Accepted",
        "Submitted",
        "Submitted",
        "Accepted",
    ]
