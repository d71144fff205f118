"""Search plumbing without a database: reading filters, the CSV Excel opens, password redaction in
the audit copy, and when the board review is due."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from types import SimpleNamespace

import pytest

from pars_ws.adapters.audit import redact_passwords
from pars_ws.adapters.data_files import load_catalogue
from pars_ws.domain.records import Status
from pars_ws.domain.review import outcome
from pars_ws.service.review import due_cutoff
from pars_ws.service.search import (
    LEARNER_COLUMNS,
    Column,
    SearchRefused,
    csv_cell,
    paging,
    search_filter,
    summary_filter,
    write_csv,
)
from tests.support import soap11_save

CATALOGUE = load_catalogue()
UTC = dt.timezone.utc
COLUMNS = (Column("a", "First, header", lambda r: r[0]), Column("b", "B", lambda r: r[1]))


def export(rows, columns=COLUMNS) -> bytes:
    return "".join(write_csv(columns, rows)).encode("utf-8")


# -- filters --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"board": "ABIM"},
        {"learner_id": "1000106", "status": "Accepted"},
        {"title": "   "},
        {"completed_from": "01/01/2026"},
    ],
)
def test_search_needs_title_last_name_or_submission_dates(params):
    with pytest.raises(SearchRefused, match="at least one of"):
        search_filter(params, CATALOGUE)


@pytest.mark.parametrize(
    "params",
    [{"title": "Other"}, {"last_name": "Account2"}, {"submitted_from": "06/01/2026"}, {"submitted_to": "2026-06-15"}],
)
def test_any_one_required_field_is_enough(params):
    search_filter(params, CATALOGUE)


def test_filters_are_read_from_text():
    f = search_filter(
        {
            "title": " Other ",
            "submitted_from": "6/1/2026",
            "submitted_to": "2026-06-15",
            "completed_from": "01-05-2026",
            "board": "abim",
            "status": "rejected",
            "page": "2",
        },
        CATALOGUE,
    )
    assert (f.title, f.board, f.status) == ("Other", "ABIM", Status.REJECTED)
    assert (f.submitted_from, f.submitted_to, f.completed_from) == (
        dt.date(2026, 6, 1),
        dt.date(2026, 6, 15),
        dt.date(2026, 1, 5),
    )


@pytest.mark.parametrize(
    "params, says",
    [
        ({"last_name": "x", "submitted_from": "13/45/2026"}, "submitted_from"),
        ({"last_name": "x", "completed_from": "06/02/2026", "completed_to": "06/01/2026"}, "after"),
        ({"last_name": "x", "board": "ABC"}, "board"),
        ({"last_name": "x", "status": "Not processed"}, "status"),
        ({"last_name": "x" * 201}, "at most"),
    ],
)
def test_unreadable_filters_are_refused_with_a_reason(params, says):
    with pytest.raises(SearchRefused, match=says):
        search_filter(params, CATALOGUE)


def test_paging_defaults_and_limits():
    assert paging({}) == (1, 20)
    assert paging({"page": "3", "per_page": "200"}) == (3, 200)
    for bad in ({"page": "0"}, {"per_page": "201"}, {"page": "two"}, {"per_page": "-1"}):
        with pytest.raises(SearchRefused):
            paging(bad)


def test_summary_year_defaults_to_this_year():
    today = dt.date(2026, 6, 15)
    assert summary_filter({}, CATALOGUE, today).reporting_year == 2026
    assert summary_filter({"year": "2019", "board": "abpath"}, CATALOGUE, today).board == "ABPATH"
    with pytest.raises(SearchRefused, match="year"):
        summary_filter({"year": "19"}, CATALOGUE, today)


# -- CSV ------------------------------------------------------------------------------------------


def test_csv_has_a_byte_order_mark_and_crlf_line_ends():
    data = export([("x", "y"), ("1", "2")])
    assert data.startswith(b"\xef\xbb\xbf")
    assert data == '\ufeff"First, header",B\r\nx,y\r\n1,2\r\n'.encode("utf-8")


def test_csv_quotes_commas_quotes_and_line_breaks_as_rfc_4180_says():
    awkward = ["O'Brien, Jr.", 'The "Best" Course', "two\nlines", "carriage\rreturn", "plain", "José Núñez"]
    data = export([(value, "") for value in awkward])
    text = data.decode("utf-8")
    assert '"O\'Brien, Jr.",' in text
    assert '"The ""Best"" Course",' in text
    assert '"two\nlines",' in text and '"carriage\rreturn",' in text
    assert "\r\nplain,\r\n" in text  # quoted only when needed
    assert "José Núñez".encode() in data
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))
    assert [r[0] for r in rows[1:]] == awkward


@pytest.mark.parametrize("value", ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_cells_excel_would_run_as_formulas_are_made_text(value):
    assert csv_cell(value) == "'" + value


def test_cell_formats():
    assert csv_cell(None) == ""
    assert csv_cell(dt.date(2026, 1, 5)) == "01/05/2026"
    assert csv_cell(dt.datetime(2026, 6, 15, 9, 30, tzinfo=UTC)) == "2026-06-15 09:30:00"
    assert csv_cell(dt.datetime(2026, 6, 15, 9, 30)) == "2026-06-15 09:30:00"  # SQLite: naive UTC
    assert csv_cell(Decimal("3.50")) == "3.50"
    assert csv_cell(("ABIM MOC Part II", "ABIM Patient Safety")) == "ABIM MOC Part II; ABIM Patient Safety"
    assert csv_cell(664) == "664"


def test_large_exports_stream_in_chunks_with_one_byte_order_mark():
    chunks = list(write_csv(COLUMNS, ((str(i), "b") for i in range(1201))))
    assert len(chunks) > 2
    assert chunks[0].startswith("\ufeff") and not any("\ufeff" in c for c in chunks[1:])
    rows = list(csv.reader(io.StringIO("".join(chunks).lstrip("\ufeff"), newline="")))
    assert len(rows) == 1202 and rows[-1] == ["1200", "b"]


def test_learner_columns_have_unique_keys_and_headers():
    assert len({c.key for c in LEARNER_COLUMNS}) == len({c.header for c in LEARNER_COLUMNS}) == len(LEARNER_COLUMNS)


# -- audit copy -----------------------------------------------------------------------------------


def test_passwords_are_blanked_in_the_audit_copy():
    header = (
        '<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">'
        "<wsse:UsernameToken><wsse:Username>u</wsse:Username>"
        '<wsse:Password Type="...#PasswordText">token-secret</wsse:Password></wsse:UsernameToken></wsse:Security>'
    )
    body = soap11_save([], password="body-secret", header=header).decode()
    body += "<Password><![CDATA[cdata<secret>]]></Password><Password>split<!---->secret</Password>"
    blanked = redact_passwords(body.encode()).decode()
    for secret in ("token-secret", "body-secret", "cdata<secret>", "split"):
        assert secret not in blanked
    assert "<p:Password>********</p:Password>" in blanked
    assert '<wsse:Password Type="...#PasswordText">********</wsse:Password>' in blanked
    assert "<p:User>sandbox-user</p:User>" in blanked


# -- review schedule ------------------------------------------------------------------------------


def test_sandbox_records_are_due_after_the_delay():
    now = dt.datetime(2026, 6, 15, 10, 0, 7, tzinfo=UTC)
    settings = SimpleNamespace(review_delay_seconds=5, review_interval_seconds=3600)
    assert due_cutoff("sandbox", now, settings) == dt.datetime(2026, 6, 15, 10, 0, 2, tzinfo=UTC)


def test_production_records_are_due_at_the_last_tick_of_the_schedule():
    settings = SimpleNamespace(review_delay_seconds=5, review_interval_seconds=3600)
    for minute in (0, 1, 59):
        now = dt.datetime(2026, 6, 15, 10, minute, 30, tzinfo=UTC)
        assert due_cutoff("production", now, settings) == dt.datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
    daily = SimpleNamespace(review_delay_seconds=5, review_interval_seconds=86400)
    assert due_cutoff("production", dt.datetime(2026, 6, 15, 23, 59, tzinfo=UTC), daily) == dt.datetime(
        2026, 6, 15, tzinfo=UTC
    )


def test_the_registry_decides_the_outcome():
    assert outcome(None) == (Status.ACCEPTED, None)
    assert outcome(664) == (Status.REJECTED, 664)
