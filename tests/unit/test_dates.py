"""Completion dates and DOBs as people, spreadsheets and XML write them."""

from __future__ import annotations

import datetime as dt

import pytest

from pars_ws.domain.dates import parse_completion_date, parse_dob
from pars_ws.domain.records import DOB

D = dt.date


@pytest.mark.parametrize(
    "text, expected",
    [
        # Spreadsheet forms (Template B "Date of Completion").
        ("10/06/2019", D(2019, 10, 6)),
        ("10/6/2019", D(2019, 10, 6)),  # seed Test5/Test8/Test9
        ("2/10/2019", D(2019, 2, 10)),  # seed Vincent Van Gogh
        ("5/5/2019", D(2019, 5, 5)),  # seed Georgia O'Keeffe
        ("12-31-2019", D(2019, 12, 31)),
        ("1-5-2019", D(2019, 1, 5)),
        ("02/29/2020", D(2020, 2, 29)),
        ("  05/25/2019\t", D(2019, 5, 25)),
        # ISO date and XML ar:CompletedDateTime.
        ("2019-01-05", D(2019, 1, 5)),
        ("2020-01-02T16:15:00", D(2020, 1, 2)),  # seed XML
        ("2020-01-02T16:15:00.5", D(2020, 1, 2)),
        ("2020-01-02T16:15:00.123456Z", D(2020, 1, 2)),
        ("2020-01-02T23:59:59-05:00", D(2020, 1, 2)),  # the date as written, not shifted to UTC
        ("2020-01-02T00:00:00+14:00", D(2020, 1, 2)),
        # Refused: impossible, ambiguous or foreign forms.
        ("02/30/2019", None),
        ("02/29/2019", None),
        ("13/01/2019", None),
        ("00/10/2019", None),
        ("10/00/2019", None),
        ("1/1/19", None),  # 2-digit year
        ("10-6-19", None),
        ("10/6-2019", None),  # mixed separators
        ("2019/10/06", None),
        ("2019-1-5", None),
        ("20191006", None),
        ("0000-01-01", None),
        ("2020-02-30", None),
        ("2020-01-02T24:00:00", None),
        ("2020-01-02T12:60:00", None),
        ("2020-01-02T12:00:60", None),
        ("2020-01-02T12:00", None),
        ("2020-01-02 12:00:00", None),
        ("2020-01-02T12:00:00+15:00", None),
        ("2020-01-02T12:00:00+05:60", None),
        ("2020-01-02T12:00:00z", None),
        ("Oct 6, 2019", None),
        ("6-Oct-2019", None),
        ("\u0661\u0660/\u0666/2019", None),  # Arabic-Indic digits
        ("10/6/2019\n", D(2019, 10, 6)),  # surrounding blanks include a line break
        ("10/6/2019 x", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_parse_completion_date(text, expected):
    assert parse_completion_date(text) == expected


def test_parse_completion_date_rejects_non_text():
    assert parse_completion_date(20191006) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("03/30", DOB(3, 30)),  # seed Vincent Van Gogh
        ("11/15", DOB(11, 15)),  # seed Georgia O'Keeffe
        ("7/1", DOB(7, 1)),
        ("10/1", DOB(10, 1)),
        ("03-01", DOB(3, 1)),
        ("3-1", DOB(3, 1)),
        ("02/29", DOB(2, 29)),  # no year: 29 February is possible
        ("12/31", DOB(12, 31)),
        (" 04/01 ", DOB(4, 1)),
        # Full dates: the year is ignored.
        ("10/01/1970", DOB(10, 1)),
        ("6/15/1970", DOB(6, 15)),
        ("06-15-1970", DOB(6, 15)),
        ("02/29/1970", DOB(2, 29)),
        # XML m:BirthDate (xs:date), year ignored.
        ("1900-03-01", DOB(3, 1)),
        ("1970-06-15Z", DOB(6, 15)),
        ("1970-06-15+02:00", DOB(6, 15)),
        ("--06-15", DOB(6, 15)),  # xs:gMonthDay
        # Excel's day-month rendering of MM/DD: seed Test9 "1-Oct" came from 10/01.
        ("1-Oct", DOB(10, 1)),
        ("01-Oct", DOB(10, 1)),
        ("Oct-1", DOB(10, 1)),
        ("Oct-01", DOB(10, 1)),
        ("15-Sep", DOB(9, 15)),
        ("29-Feb", DOB(2, 29)),
        ("1-oct", DOB(10, 1)),
        ("1-OCT", DOB(10, 1)),
        ("1-October", DOB(10, 1)),
        ("1-Sept", DOB(9, 1)),
        ("1 Oct", DOB(10, 1)),
        ("1-Oct-70", DOB(10, 1)),  # Excel d-mmm-yy of a full date: the year is not used
        ("1-Oct-1970", DOB(10, 1)),
        # Excel's month-year rendering: the day is lost, so no day (reported, never guessed).
        ("Jun-70", DOB(6, None)),  # seed Test5, from 06/70
        ("Sep-66", DOB(9, None)),  # seed Test8
        ("Feb-30", DOB(2, None)),  # Excel reads 2/30 as February 1930
        ("Oct-00", DOB(10, None)),
        ("Jun-1970", DOB(6, None)),
        # Refused.
        ("31-Feb", None),
        ("32-Jan", None),
        ("0-Jan", None),
        ("Foo-1", None),
        ("1-Foo", None),
        ("70-Jun", None),
        ("1-Oct-7", None),
        ("31-Feb-70", None),
        ("Jun-170", None),
        ("2/30", None),
        ("04/31", None),
        ("13/01", None),
        ("00/10", None),
        ("10/00", None),
        ("06/70", None),
        ("1/1/19", None),
        ("1970-02-30", None),
        ("1970-13-01", None),
        ("1970-06", None),
        ("1970-06-15T00:00:00", None),
        ("0615", None),
        ("10.01", None),
        ("\u0661\u0660/\u0661", None),
        ("", None),
        ("  ", None),
        (None, None),
    ],
)
def test_parse_dob(text, expected):
    assert parse_dob(text) == expected


def test_month_only_dob_prints_without_a_day():
    assert str(parse_dob("Jun-70")) == "06/--"
    assert str(parse_dob("1-Oct")) == "10/01"
