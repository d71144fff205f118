"""Batch uploads (issue 4): filled in by the batch-upload work."""
from __future__ import annotations


def process_next(services, worker: str) -> int:
    return 0
