"""Web pages for Opioid Analgesic REMS participant reporting: the participants a REMS batch stored,
and the tab-delimited REMS participant template. Upload is the Batch Upload page's (Step 2 chooses
REMS); these pages sit behind the same log-in and headers as the others (pages.protect)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, render_template

from ..adapters.rems_files import write_rems_template
from ..service import batches, rems
from .http_auth import services
from .pages import protect

blueprint = Blueprint("pages_rems", __name__)
protect(blueprint)


@blueprint.get("/batches/<int:batch_id>/participants")
def participants(batch_id: int):
    svc = services()
    info = batches.get(svc, g.account, batch_id)
    if info is None or info.submission_type != rems.REMS:
        abort(404)
    return render_template(
        "rems_participants.html", batch=info, participants=rems.participants(svc, g.account, batch_id)
    )


@blueprint.get("/batches/rems-template.txt")
def rems_template():
    return Response(
        write_rems_template(),
        mimetype="text/plain; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="rems-participant-template.txt"'},
    )
