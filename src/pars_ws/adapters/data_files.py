"""Loading the data files: the board catalogue, the sandbox fixture, activity and registry imports."""

from __future__ import annotations

import datetime as dt
import json
import os
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from ..domain.activities import Activity, RegisteredLearner, Registration
from ..domain.catalogue import Catalogue
from ..domain.dates import parse_dob
from ..domain.rems import RemsValues


def _package_json(name: str) -> Any:
    return json.loads(resources.files("pars_ws.data").joinpath(name).read_text(encoding="utf-8"))


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    path = path or os.environ.get("PARS_CATALOGUE")
    data = json.loads(Path(path).read_text(encoding="utf-8")) if path else _package_json("boards.json")
    return Catalogue.from_dict(data)


def _with_year(value: str, year: int) -> str:
    """A fixture value with '{year}' (the clock's year at seeding) and '{previous_year}' filled in."""
    return str(value).replace("{previous_year}", str(year - 1)).replace("{year}", str(year))


def activity_from_dict(d: dict, year: int) -> Activity:
    y = lambda v: _with_year(v, year)  # noqa: E731
    return Activity(
        activity_id=y(d["activity_id"]),
        provider_activity_id=d.get("provider_activity_id"),
        title=d["title"],
        activity_type=d.get("type", "Course"),
        start_date=dt.date.fromisoformat(y(d["start_date"])),
        end_date=dt.date.fromisoformat(y(d["end_date"])),
        reporting_year=int(y(d.get("reporting_year", d["start_date"][:4]))),
        credits=Decimal(y(d.get("credits", "0"))),
        registrations=tuple(
            Registration(r["board"], Decimal(str(r["max_points"])), tuple(r.get("credit_types", ())))
            for r in d.get("registrations", ())
        ),
        rems=bool(d.get("rems", False)),
    )


def learner_from_dict(d: dict, year: int) -> RegisteredLearner:
    return RegisteredLearner(
        board=d["board"],
        learner_id=str(d["learner_id"]),
        first_name=d["first_name"],
        last_name=d["last_name"],
        dob=parse_dob(d.get("dob")),
        npi=d.get("npi"),
        review_reject_code=d.get("review_reject_code"),
        completions=frozenset(
            (c["activity_id"], dt.date.fromisoformat(_with_year(c["completion_date"], year)))
            for c in d.get("completions", ())
        ),
    )


def load_rems_values() -> RemsValues:
    return RemsValues.from_dict(_package_json("rems.json"))


def load_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def sandbox_fixture() -> dict:
    return _package_json("sandbox.json")
