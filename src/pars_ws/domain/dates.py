"""Completion dates and dates of birth as people and spreadsheets write them. Pure Python, no I/O.

Both parsers return None for anything they cannot read for certain: the rules turn that into a
per-record error (671 for a completion date; 664, or 718 on boards that match by name and date of
birth, for a DOB) rather than guessing.
"""

from __future__ import annotations

import datetime as dt
import re

from pars_ws.domain.records import DOB

__all__ = ["parse_completion_date", "parse_dob"]

# re.ASCII: \d must not accept other scripts' digits (int() would happily read them).
_US_DATE = re.compile(r"(\d{1,2})([/-])(\d{1,2})\2(\d{4})", re.ASCII)
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_TZ = r"(?:Z|[+-](\d{2}):(\d{2}))?"
_ISO_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?" + _TZ, re.ASCII)
_ISO_DATE_TZ = re.compile(r"(\d{4})-(\d{2})-(\d{2})" + _TZ, re.ASCII)  # xs:date may carry a zone
_GMONTHDAY = re.compile(r"--(\d{2})-(\d{2})" + _TZ, re.ASCII)  # xs:gMonthDay
_MONTH_DAY = re.compile(r"(\d{1,2})([/-])(\d{1,2})", re.ASCII)
# Excel d-mmm (1-Oct) or d-mmm-yy of a full birth date (1-Oct-70): the year is not used anyway.
_DAY_MON = re.compile(r"(\d{1,2})[- ]([A-Za-z]{3,9})\.?(?:[- ](?:\d{2}|\d{4}))?", re.ASCII)
_MON_NUM = re.compile(r"([A-Za-z]{3,9})\.?[- ](\d{1,2}|\d{4})", re.ASCII)  # Oct-1 or mmm-yy: Jun-70

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
# Year is never known for a DOB, so February allows the 29th.
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _clean(text: object) -> str | None:
    if not isinstance(text, str):
        return None
    text = text.strip()
    return text or None


def _date(year: str, month: str, day: str) -> dt.date | None:
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError:  # 02/30, month 13, year 0000
        return None


def _valid_zone(hours: str | None, minutes: str | None) -> bool:
    return hours is None or (int(hours) <= 14 and int(minutes or 0) <= 59)


def parse_completion_date(text: str | None) -> dt.date | None:
    """`MM/DD/YYYY`, `M/D/YYYY`, `MM-DD-YYYY`, `YYYY-MM-DD`, or an xs:dateTime; else None.

    For an xs:dateTime the calendar date is taken as written: a completion date is the learner's
    local day, so converting a zone to UTC would move it to another day.
    """
    text = _clean(text)
    if text is None:
        return None
    if m := _US_DATE.fullmatch(text):
        return _date(m[4], m[1], m[3])
    if m := _ISO_DATE.fullmatch(text):
        return _date(m[1], m[2], m[3])
    if m := _ISO_DATETIME.fullmatch(text):
        hour, minute, second = int(m[4]), int(m[5]), int(m[6])
        if hour > 23 or minute > 59 or second > 59 or not _valid_zone(m[7], m[8]):
            return None
        return _date(m[1], m[2], m[3])
    return None


def _month_day(month: int, day: int | None) -> DOB | None:
    if not 1 <= month <= 12:
        return None
    if day is not None and not 1 <= day <= _DAYS_IN_MONTH[month]:
        return None
    return DOB(month=month, day=day)


def parse_dob(text: str | None) -> DOB | None:
    """Month and day of birth; the year, where given, is ignored (PARS never uses it).

    `MM/DD`, `M/D`, `MM-DD`, `MM/DD/YYYY`, `YYYY-MM-DD` (XML m:BirthDate), and Excel's
    renderings: `1-Oct`/`Oct-1`/`1-Oct-70` (month 10, day 1) and `Jun-70` (Excel read 06/70 as
    June 1970: the day is lost, so DOB(6, None), which the rules report instead of guessing).
    None when unreadable.
    """
    text = _clean(text)
    if text is None:
        return None
    if m := _MONTH_DAY.fullmatch(text):
        return _month_day(int(m[1]), int(m[3]))
    if m := _US_DATE.fullmatch(text):
        return _month_day(int(m[1]), int(m[3]))
    if (m := _ISO_DATE_TZ.fullmatch(text)) and _valid_zone(m[4], m[5]):
        return _month_day(int(m[2]), int(m[3]))
    if (m := _GMONTHDAY.fullmatch(text)) and _valid_zone(m[3], m[4]):
        return _month_day(int(m[1]), int(m[2]))
    if m := _DAY_MON.fullmatch(text):
        month = _MONTHS.get(m[2].lower())
        return _month_day(month, int(m[1])) if month else None
    if m := _MON_NUM.fullmatch(text):
        month = _MONTHS.get(m[1].lower())
        if not month:
            return None
        number = int(m[2])
        # Excel shows mmm-yy only when the second number could not be a day of that month
        # (06/70 -> Jun-70, 2/30 -> Feb-30); a possible day is a day (Oct-1).
        if len(m[2]) <= 2 and 1 <= number <= _DAYS_IN_MONTH[month]:
            return DOB(month=month, day=number)
        return DOB(month=month, day=None)
    return None
