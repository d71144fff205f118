"""The JSON/REST twin of the SOAP service (/api/v1; the shape of ACCME's JSON draft). HTTP Basic
auth with the web-service credential, which alone decides the environment, as in SOAP.

POST /api/v1/learner-activities            save learner activity (ActivityReports as JSON) -> 201 | 400
GET  /api/v1/learner-activities/status     by CreditId, or by moduleID + UniqueID + CompletionDate
                                           (+ BirthDate) -> 200 | 404
POST /api/v1/learner-match                 GetLearnerMatch's fields -> 200
POST /api/v1/activities                    save an activity -> 201 | 400
GET  /api/v1/activities/<activityId>       -> 200 | 404
GET  /api/v1/openapi.json, /api/v1/docs    the OpenAPI 3.1 document, and a page rendering it

Bodies become the SOAP requests' XML elements (adapters/activity_report_json), validated and read as
SOAP's are, and go to the same services; results carry SOAP's names, codes and verbatim messages,
records in request order. A body that is not JSON or not the document's shape is 400 with a problem
document (RFC 9457) naming the JSON pointer.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from decimal import Decimal
from functools import cache, wraps
from importlib import resources

from flask import Blueprint, Response, g, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from ..adapters.activity_report_json import InvalidJson, P, parse_json, read_json_reports, service_element
from ..adapters.clock import as_utc
from ..domain.activities import ActivityRefused
from ..domain.dates import parse_dob
from ..domain.errors import message
from ..domain.records import ReportedRecord, Source, Status
from ..service import faults
from . import sandbox_faults
from .http_auth import correlation_id, require_account, services
from .soap import Operations, service_schema

blueprint = Blueprint("api_v1", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
CREDENTIAL_FIELDS = ("ProviderId", "User", "Password")  # HTTP Basic carries the credential


@cache
def openapi_document() -> dict:
    return json.loads(resources.files("pars_ws.data").joinpath("openapi.json").read_text(encoding="utf-8"))


def problem(status: int, detail: str, pointer: str | None = None, codes=()) -> Response:
    body = {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status, "detail": detail}
    if pointer is not None:
        body["pointer"] = pointer
    if codes:
        body["errors"] = _errors(codes)
    return Response(json.dumps(body), status=status, mimetype=PROBLEM)


_TITLES = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _json(body, status: int = 200, **headers) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def _errors(codes) -> list[dict]:
    return [{"Code": int(code), "Message": message(code)} for code in codes]


def _decimal(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


def _body() -> bytes:
    """The request body, within the SOAP body limit (RequestEntityTooLarge past it)."""
    request.max_content_length = services().settings.limits.max_body_bytes
    return request.get_data(cache=False)


def _document():
    return parse_json(_body())


@blueprint.after_request
def _log_call(response):
    """One JSON line per call, as SOAP calls have, with the request's correlation ID."""
    if log.isEnabledFor(logging.INFO):
        account = g.get("account")
        log.info(
            json.dumps(
                {
                    "event": "api_call",
                    "correlation_id": correlation_id(),
                    "operation": request.endpoint,
                    "status": response.status_code,
                    "provider_id": account.provider_id if account else None,
                    "environment": account.environment if account else None,
                }
            )
        )
    return response


@blueprint.errorhandler(InvalidJson)
def _invalid(exc: InvalidJson):
    return problem(400, exc.detail, exc.pointer)


@blueprint.errorhandler(RequestEntityTooLarge)
def _too_large(exc):
    limit = services().settings.limits.max_body_bytes
    return problem(413, f"The body is larger than {limit:,} bytes.")


@blueprint.app_errorhandler(404)
def _no_such_path(exc):
    # Paths under /api/v1 that match no route answer as the API does; others keep their own page.
    if request.path.startswith(blueprint.url_prefix + "/"):
        return problem(404, "No such resource.")
    return exc


def sandbox_faults_honoured(view):
    """X-PARS-Sandbox-Fault (service.faults decides; production never gets one): 998 and drop answer
    before the operation runs, so nothing is stored; a delay holds the operation's answer back; a hold
    is the save's (the header goes to the service with the records)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        try:
            fault = sandbox_faults.asked(g.account, request.environ)
        except faults.FaultUnreadable as exc:
            return problem(400, str(exc))
        if fault is not None and fault.kind == faults.DROP:
            sandbox_faults.drop_connection(request.environ)
            return problem(503, "The sandbox dropped the connection, as asked.")  # written to a closed socket
        if fault is not None and fault.kind == faults.FAIL:
            return problem(500, f"998 {message(998)}", codes=[998])
        response = view(*args, **kwargs)
        sandbox_faults.wait(fault)
        return response

    return wrapped


# -- learner activity ---------------------------------------------------------------------------------


def _record_result(j) -> dict:
    result = {"Index": j.record.index}
    if j.record.credit_id:
        result["CreditID"] = j.record.credit_id
    if j.action:
        result["Action"] = j.action.capitalize()
    result.update(Status=j.status.value, Errors=_errors(j.codes))
    return result


@blueprint.post("/learner-activities")
@require_account
@sandbox_faults_honoured
def save_learner_activity():
    body = _body()
    records = read_json_reports(parse_json(body), services().settings.limits.max_records)
    judgements = services().learners.save(
        g.account,
        records,
        source=Source.JSON,
        raw=body,
        correlation_id=correlation_id(),
        sandbox_fault=sandbox_faults.header(request.environ),
    )
    ok = sum(1 for j in judgements if j.ok)
    summary = "Success" if ok == len(judgements) else ("Failure" if ok == 0 else "Partial success")
    return _json({"ResultSummary": summary, "Results": [_record_result(j) for j in judgements]}, 201 if ok else 400)


def _statuses(records) -> list[dict]:
    return [
        {
            "CreditID": rec.credit_id,
            "ActivityID": rec.activity_id,
            "Board": rec.board,
            "LearnerID": rec.learner_id or "",
            "CompletionDate": rec.completion_date.isoformat(),
            "Credits": _decimal(rec.credits),
            "Status": rec.status.value,
            "Errors": _errors([rec.reject_code] if rec.status == Status.REJECTED and rec.reject_code else []),
            "Submitted": as_utc(rec.submitted_at).isoformat(),
            "Updated": as_utc(rec.updated_at).isoformat(),
        }
        for rec in records
    ]


_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # what SOAP's XML cannot carry either


def _query(name: str, required: bool = True) -> str | None:
    value = (request.args.get(name) or "").strip()
    if required and not value:
        raise InvalidJson(f"The query parameter {name} is required (or CreditId alone).", f"/{name}")
    if _NOT_TEXT.search(value):
        raise InvalidJson(f"The query parameter {name} holds a control character.", f"/{name}")
    return value or None


@blueprint.get("/learner-activities/status")
@require_account
@sandbox_faults_honoured
def learner_status():
    learners = services().learners
    credit_id = _query("CreditId", required=False)
    if credit_id is not None:
        found = learners.status_by_credit_id(g.account, credit_id)
    else:
        activity_id, learner_id, completed = _query("moduleID"), _query("UniqueID"), _query("CompletionDate")
        try:
            completion = dt.date.fromisoformat(completed)
        except ValueError:
            raise InvalidJson("CompletionDate must be given as YYYY-MM-DD.", "/CompletionDate") from None
        birth = _query("BirthDate", required=False)
        dob = parse_dob(birth) if birth else None
        if birth and (dob is None or dob.day is None):
            raise InvalidJson("BirthDate must be given as MM-DD or YYYY-MM-DD.", "/BirthDate")
        found = learners.status_by_learner(g.account, activity_id, learner_id, completion, dob)
    if not found:
        return problem(404, "No learner record matches.")
    return _json({"LearnerStatus": _statuses(found)})


@blueprint.post("/learner-match")
@require_account
@sandbox_faults_honoured
def learner_match():
    fields = _document()
    if isinstance(fields, dict) and (sent := [k for k in CREDENTIAL_FIELDS if k in fields]):
        raise InvalidJson("The credential goes in the Authorization header (HTTP Basic).", f"/{sent[0]}")
    el = service_element(fields, "GetLearnerMatch", None, service_schema())

    def text(name: str) -> str | None:
        value = el.findtext(f"{{{P}}}{name}")
        return value.strip() or None if value else None

    record = ReportedRecord(
        index=1,
        board=text("Board"),
        learner_id_type=text("LearnerIDType"),
        learner_id=text("LearnerID"),
        first_name=text("FirstName"),
        last_name=text("LastName"),
        dob=text("DOB"),
    )
    codes = services().learners.match_learner(g.account, record)
    return _json({"Matched": not codes, "Errors": _errors(codes)})


# -- activities -----------------------------------------------------------------------------------------


def _activity(activity) -> dict:
    found = {"ActivityID": activity.activity_id}
    if activity.provider_activity_id:
        found["ProviderActivityID"] = activity.provider_activity_id
    found.update(
        Title=activity.title,
        ActivityType=activity.activity_type,
        StartDate=activity.start_date.isoformat(),
        EndDate=activity.end_date.isoformat(),
        ReportingYear=activity.reporting_year,
        Credits=_decimal(activity.credits),
        Registrations={
            "Registration": [
                {
                    "Board": reg.board,
                    "MaxPoints": _decimal(reg.max_points),
                    "CreditTypes": {"CreditType": list(reg.credit_types)},
                }
                for reg in activity.registrations
            ]
        },
    )
    return found


@blueprint.post("/activities")
@require_account
@sandbox_faults_honoured
def save_activity():
    el = service_element(_document(), "SaveActivity", "Activity", service_schema())
    try:
        activity = Operations._activity_from(el)
    except ValueError as exc:  # an xs:date Python's calendar has not (a time zone, a year past 9999)
        raise InvalidJson(f"A date is not a calendar date PARS keeps: {exc}.") from None
    try:
        saved = services().activities.save(g.account, activity)
    except ActivityRefused as exc:
        return problem(400, str(exc), codes=[exc.code] if exc.code else ())
    return _json(_activity(saved), 201, Location=url_for("api_v1.get_activity", activity_id=saved.activity_id))


@blueprint.get("/activities/<activity_id>")
@require_account
@sandbox_faults_honoured
def get_activity(activity_id: str):
    found = services().activities.get(g.account, activity_id)
    if found is None:
        return problem(404, f"690 {message(690)}", codes=[690])
    return _json(_activity(found))


# -- the contract -------------------------------------------------------------------------------------------


@blueprint.get("/openapi.json")
def openapi():
    return _json(openapi_document())


@blueprint.get("/docs")
def docs():
    return render_template("api_docs.html", api=openapi_document())
