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
