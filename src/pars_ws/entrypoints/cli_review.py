"""CLI commands for review (registered on `main` when cli.py is imported)."""
from __future__ import annotations

from .cli import main  # noqa: F401
