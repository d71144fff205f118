"""Where the static contract lives: schemas/ and wsdl/ at the project root (PARS_SCHEMA_DIR / PARS_WSDL_DIR override)."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def schema_dir() -> Path:
    return Path(os.environ.get("PARS_SCHEMA_DIR") or ROOT / "schemas")


def wsdl_dir() -> Path:
    return Path(os.environ.get("PARS_WSDL_DIR") or ROOT / "wsdl")
