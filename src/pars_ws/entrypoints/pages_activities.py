"""The Home and Activities tabs as in PARS: Home leads to "Report Participants"; Activities lists the
provider's activities, registers a new one and edits one, with its board registrations (boards,
credit types, maximum points), and leads to "View Participant Summary".

Saving goes through the same ActivityService.save as SOAP SaveActivity and the JSON API, so the page
gets the same refusals (713 unknown board, 676 unknown credit type, 690 another provider's activity,
dates, points). The page only reads the form's text into an Activity.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from ..domain.activities import Activity, ActivityRefused, Registration
from ..domain.dates import parse_completion_date
from ..service import search
from .http_auth import services
from .pages import _query, activities_of_year, protect

blueprint = Blueprint("pages_activities", __name__)
protect(blueprint)

# The longest text each field takes (the service schema's TitleText, IdText and LabelText).
MAX_TITLE, MAX_PROVIDER_ACTIVITY_ID, MAX_TYPE = 500, 50, 100
TEXT_FIELDS = ("title", "provider_activity_id", "activity_type", "start_date", "end_date", "reporting_year", "credits")


@blueprint.get("/home")
def home():
    return render_template("home.html")


@blueprint.get("/manage/activities")
def activities():
    found = activities_of_year(request.args)
    title = request.args.get("title", "")
    return render_template(
        "manage_activities.html", **found, title=title, query=_query(year=found["year"], title=title)
    ), 400 if found["error"] else 200


# -- the register / edit form ---------------------------------------------------------------------


@dataclass
class BoardChoice:
    """One board of the catalogue in the form: registered or not, its maximum points and credit types."""

    code: str
    name: str
    credit_types: tuple[str, ...]  # what the board offers
    registered: bool = False
    max_points: str = ""
    chosen: tuple[str, ...] = ()


@dataclass
class ActivityForm:
    values: dict[str, str]
    boards: list[BoardChoice]
    problems: list[str] = field(default_factory=list)


def _form_for(activity: Activity | None) -> ActivityForm:
    regs = {r.board: r for r in activity.registrations} if activity else {}
    boards = []
    for board in services().catalogue:
        reg = regs.get(board.code)
        boards.append(
            BoardChoice(
                board.code,
                board.name,
                tuple(t.name for t in board.credit_types),
                registered=reg is not None,
                max_points=format(reg.max_points.normalize(), "f") if reg else "",
                chosen=reg.credit_types if reg else (),
            )
        )
    if activity is None:
        return ActivityForm({name: "" for name in TEXT_FIELDS}, boards)
    return ActivityForm(
        {
            "title": activity.title,
            "provider_activity_id": activity.provider_activity_id or "",
            "activity_type": activity.activity_type,
            "start_date": activity.start_date.strftime("%m/%d/%Y"),
            "end_date": activity.end_date.strftime("%m/%d/%Y"),
            "reporting_year": str(activity.reporting_year),
            "credits": format(activity.credits.normalize(), "f"),
        },
        boards,
    )


def _number(text: str, what: str, problems: list[str]) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        problems.append(f"{what}: {text.strip()!r} is not a number." if text.strip() else f"{what} is required.")
        return Decimal(0)
    return value


def _date(text: str, what: str, problems: list[str]) -> dt.date:
    value = parse_completion_date(text)
    if value is None:
        problems.append(
            f"{what}: {text.strip()!r} is not a date (mm/dd/yyyy)." if text.strip() else f"{what} is required."
        )
        return dt.date.min
    return value


def _read_form(form, activity_id: str | None) -> tuple[ActivityForm, Activity | None]:
    """The form as typed, and the Activity it describes (None when a field cannot be read)."""
    typed = _form_for(None)
    typed.values = {name: (form.get(name) or "").strip() for name in TEXT_FIELDS}
    v, problems = typed.values, typed.problems
    for name, what, most in (
        ("title", "Title", MAX_TITLE),
        ("provider_activity_id", "Provider activity ID", MAX_PROVIDER_ACTIVITY_ID),
        ("activity_type", "Activity type", MAX_TYPE),
    ):
        if len(v[name]) > most:
            problems.append(f"{what}: at most {most} characters.")
    start, end = _date(v["start_date"], "Start date", problems), _date(v["end_date"], "End date", problems)
    credits = _number(v["credits"], "Credits", problems)
    year = v["reporting_year"]
    if year and not (year.isascii() and year.isdigit() and len(year) == 4):
        problems.append("Reporting year: a year such as 2026.")
    regs = []
    for board in typed.boards:
        board.registered = form.get(f"reg-{board.code}") == "yes"
        board.max_points = (form.get(f"points-{board.code}") or "").strip()[: search.MAX_TEXT]
        # As sent: a credit type the board does not offer is the service's to refuse (676).
        board.chosen = tuple(dict.fromkeys(t[: search.MAX_TEXT] for t in form.getlist(f"types-{board.code}") if t))[:10]
        if board.registered:
            points = _number(board.max_points, f"{board.code}: Maximum points", problems)
            regs.append(Registration(board.code, points, board.chosen))
    if problems:
        return typed, None
    return typed, Activity(
        activity_id=activity_id,
        provider_activity_id=v["provider_activity_id"] or None,
        title=v["title"],
        activity_type=v["activity_type"],
        start_date=start,
        end_date=end,
        reporting_year=int(year) if year else start.year,
        credits=credits,
        registrations=tuple(regs),
    )


def _save(activity_id: str | None):
    typed, activity = _read_form(request.form, activity_id)
    if activity is not None:
        try:
            saved = services().activities.save(g.account, activity)
        except ActivityRefused as exc:
            typed.problems.append(f"{exc.code} - {exc}" if exc.code else str(exc))
        else:
            flash(f"Activity {saved.activity_id} ({saved.title}) saved.", "success")
            return redirect(url_for("pages_activities.activities", year=saved.reporting_year), 303)
    return render_template("activity_form.html", form=typed, activity_id=activity_id), 400


@blueprint.route("/manage/activities/new", methods=["GET", "POST"])
def register():
    if request.method == "POST":
        return _save(None)
    return render_template("activity_form.html", form=_form_for(None), activity_id=None)


@blueprint.route("/manage/activities/<activity_id>/edit", methods=["GET", "POST"])
def edit(activity_id: str):
    activity = services().activities.get(g.account, activity_id)
    if activity is None:
        abort(404)
    if request.method == "POST":
        return _save(activity.activity_id)
    return render_template("activity_form.html", form=_form_for(activity), activity_id=activity.activity_id)
