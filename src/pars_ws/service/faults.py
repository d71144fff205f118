"""Sandbox fault injection: a request header makes the sandbox fail the way a busy or broken PARS
does (a 998 fault, a late answer, a dropped connection), so an LMS team can test its retries and
timeouts; or keeps the records a call saves Submitted for a while (a board that has not answered
yet), so it can test its polling. `fault_for` is the one place that decides, and it looks at the
environment first: a production credential never gets a fault, whatever it sends."""

from __future__ import annotations

from dataclasses import dataclass

from .auth import Account
from .sandbox import SANDBOX

HEADER = "X-PARS-Sandbox-Fault"
FAIL, DELAY, DROP, HOLD = "998", "delay", "drop", "hold"
# Below gunicorn's worker timeout (120 s), so a delayed answer is never cut off by the server itself.
MAX_DELAY_SECONDS = 30
MAX_HOLD_SECONDS = 86400  # a day: longer than any polling an LMS would test
_MAXIMA = {DELAY: MAX_DELAY_SECONDS, HOLD: MAX_HOLD_SECONDS}
USAGE = (
    f"{HEADER} takes one of: 998 | delay=N (N from 1 to {MAX_DELAY_SECONDS} seconds) | drop | "
    f"hold=N (N from 1 to {MAX_HOLD_SECONDS} seconds)."
)


@dataclass(frozen=True)
class Fault:
    kind: str  # FAIL, DELAY, DROP or HOLD
    seconds: int = 0  # DELAY: how long the answer waits; HOLD: how long saved records stay Submitted


class FaultUnreadable(ValueError):
    """A sandbox request asked for a fault that is not one of USAGE's."""


def read_fault(value: str) -> Fault:
    kind, _, seconds = value.strip().lower().partition("=")
    kind = kind.strip()
    if kind in (FAIL, DROP) and not seconds:
        return Fault(kind)
    if kind in _MAXIMA and seconds.strip().isdigit() and 1 <= int(seconds) <= _MAXIMA[kind]:
        return Fault(kind, int(seconds))
    raise FaultUnreadable(USAGE)


def fault_for(account: Account, header: str | None) -> Fault | None:
    """The fault this call asked for: in the sandbox only, and only when the header is sent."""
    if account.environment != SANDBOX or not header:
        return None
    return read_fault(header)


def hold_for(account: Account, header: str | None) -> int:
    """Seconds the records this call saves stay Submitted before the board review may take them
    (hold=N in the sandbox; 0 otherwise)."""
    fault = fault_for(account, header)
    return fault.seconds if fault is not None and fault.kind == HOLD else 0
