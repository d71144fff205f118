"""Sandbox fault injection: a request header makes the sandbox fail the way a busy or broken PARS
does (a 998 fault, a late answer, a dropped connection), so an LMS team can test its retries and
timeouts. `fault_for` is the one place that decides, and it looks at the environment first: a
production credential never gets a fault, whatever it sends."""
from __future__ import annotations

from dataclasses import dataclass

from .auth import Account
from .sandbox import SANDBOX

HEADER = "X-PARS-Sandbox-Fault"
FAIL, DELAY, DROP = "998", "delay", "drop"
# Below gunicorn's worker timeout (120 s), so a delayed answer is never cut off by the server itself.
MAX_DELAY_SECONDS = 30
USAGE = f"{HEADER} takes one of: 998 | delay=N (N from 1 to {MAX_DELAY_SECONDS} seconds) | drop."


@dataclass(frozen=True)
class Fault:
    kind: str  # FAIL, DELAY or DROP
    seconds: int = 0  # DELAY: how long the answer waits


class FaultUnreadable(ValueError):
    """A sandbox request asked for a fault that is not one of USAGE's."""


def read_fault(value: str) -> Fault:
    kind, _, seconds = value.strip().lower().partition("=")
    kind = kind.strip()
    if kind in (FAIL, DROP) and not seconds:
        return Fault(kind)
    if kind == DELAY and seconds.strip().isdigit() and 1 <= int(seconds) <= MAX_DELAY_SECONDS:
        return Fault(DELAY, int(seconds))
    raise FaultUnreadable(USAGE)


def fault_for(account: Account, header: str | None) -> Fault | None:
    """The fault this call asked for: in the sandbox only, and only when the header is sent."""
    if account.environment != SANDBOX or not header:
        return None
    return read_fault(header)
