"""HTTP API for board review, learner search and export, the activity summary, record history and
deletes. HTTP Basic with the provider's web-service credential; the credential picks the environment."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from ..service import review, search
from .http_auth import correlation_id, csv_download, json_error, require_account, services

blueprint = Blueprint("review", __name__)


@blueprint.post("/api/review/run")
@require_account
def review_run():
    try:
        summary = review.run_now(services(), g.account)
    except review.ReviewRefused as exc:
        return json_error(403, str(exc))
    return jsonify(summary.as_dict())


# /api/search and /api/summary: a page as JSON; the same path with .csv: every match as CSV.
LISTINGS = {"search": search.LEARNER_SEARCH, "summary": search.ACTIVITY_SUMMARY}


@blueprint.get("/api/<any(search, summary):kind>", defaults={"as_csv": False})
@blueprint.get("/api/<any(search, summary):kind>.csv", defaults={"as_csv": True})
@require_account
def listing(kind: str, as_csv: bool):
    chosen = LISTINGS[kind]
    try:
        f = chosen.read_filter(services(), request.args)
        paged = None if as_csv else search.paging(request.args)
    except search.SearchRefused as exc:
        return json_error(400, str(exc))
    if paged is not None:
        return jsonify(search.page_json(chosen.columns, chosen.page(services(), g.account, f, *paged)))
    return csv_download(chosen.export(services(), g.account, f), chosen.name)


@blueprint.get("/api/records/<path:credit_id>/history")
@require_account
def record_history(credit_id: str):
    found = search.record_history(services(), g.account, credit_id)
    if not found:
        return json_error(404, "No record with that CreditID.")
    return jsonify(records=[search.history_json(h) for h in found])


@blueprint.post("/api/records/delete")
@require_account
def delete_records():
    body = request.get_json(silent=True) if request.is_json else None
    credit_ids = body.get("credit_ids") if isinstance(body, dict) else request.form.getlist("credit_id")
    if not isinstance(credit_ids, list):
        return json_error(400, 'Send {"credit_ids": [...]} as JSON.')
    try:
        judgements = search.delete_records(services(), g.account, credit_ids, correlation_id=correlation_id())
    except search.SearchRefused as exc:
        return json_error(400, str(exc))
    return jsonify(results=[j.as_dict() for j in judgements])
