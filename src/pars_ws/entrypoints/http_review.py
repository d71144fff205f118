"""HTTP endpoints for review."""
from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("review", __name__)
