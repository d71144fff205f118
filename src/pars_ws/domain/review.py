"""The board review: what happens to a Submitted record when its board reviews it."""

from __future__ import annotations

from .catalogue import Catalogue
from .records import Status


def outcome(reject_code: int | None) -> tuple[Status, int | None]:
    """Accepted, unless the board's registry rejects this learner's records with a code."""
    return (Status.REJECTED, reject_code) if reject_code else (Status.ACCEPTED, None)


def reviewing_boards(catalogue: Catalogue) -> list[str]:
    """The boards whose records wait as Submitted for their review (the others are Accepted at once)."""
    return sorted(b.code for b in catalogue if b.review)
