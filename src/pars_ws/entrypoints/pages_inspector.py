"""Record inspector: one record's story on a page, as the JSON API's record history tells it (the
request it came from, passwords blanked; its rule outcomes; its status history and board review).
The provider's own records in the session's environment only: any other CreditID is a 404."""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request, url_for

from ..service import search
from .http_auth import services
from .pages import protect, safe_next

blueprint = Blueprint("inspector", __name__)
protect(blueprint)


@blueprint.get("/records/inspect")
def record_inspector():
    credit_id = (request.args.get("credit_id") or "").strip()[: search.MAX_TEXT]
    versions = search.record_history(services(), g.account, credit_id) if credit_id else []
    if not versions:
        abort(404)
    back = safe_next(request.args.get("back")) or url_for("pages.learner_search")
    return render_template(
        "record_inspector.html",
        credit_id=credit_id,
        versions=versions,
        back=back,
        boards=services().catalogue,
        settings=services().settings,
    )
