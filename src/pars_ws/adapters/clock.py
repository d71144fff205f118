"""The one clock every date rule reads."""

from __future__ import annotations

import datetime as dt


class Clock:
    """System time; `today` may be fixed (PARS_TODAY) so deadline cases can be replayed."""

    def __init__(self, fixed_today: dt.date | None = None):
        self.fixed_today = fixed_today

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)

    def today(self) -> dt.date:
        return self.fixed_today or self.now().date()


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A stored time as an aware UTC datetime: SQLite hands timezone-aware columns back naive, and
    every time is stored in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.timezone.utc)


def when_text(value: dt.datetime) -> str:
    """A time as providers read it on pages and in mail: 06/15/2026 02:30 PM UTC."""
    return as_utc(value).strftime("%m/%d/%Y %I:%M %p UTC")
