"""Board review (issue 5): filled in by the board-review work."""
from __future__ import annotations


def run_due(services) -> int:
    return 0
