"""HTTP API for batch uploads (JSON; HTTP Basic auth with the provider's web-service credential).

POST /api/batches                      multipart: file, file_type (txt|xml|xlsx), force (true|false),
                                       submission_type (boards, the default | rems) -> 202
GET  /api/batches                      upload history, last 30 days
GET  /api/batches/<id>                 status and progress
GET  /api/batches/<id>/errors.csv      the rows not processed, with their error codes
GET  /api/batches/<id>/errors.xlsx     the same, as a workbook, for Excel uploads
GET  /api/batches/<id>/records         the rows processed, with their CreditIDs (REMS: the participants stored)

A batch of another provider or environment is answered 404, exactly like one that does not exist.
"""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, Response, g, jsonify, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from ..service import batches, rems
from .http_auth import MULTIPART_SLACK, json_error, require_account, services

blueprint = Blueprint("batches", __name__)

_TRUE = ("true", "1", "yes", "on")


def _not_found():
    return json_error(404, "No such batch.")


def _iso(value):
    return None if value is None else value.isoformat()


def _batch_json(info: batches.BatchInfo) -> dict:
    links = {"self": url_for("batches.status", batch_id=info.id)}
    if info.processed:
        links["records"] = url_for("batches.records", batch_id=info.id)
    if info.not_processed:
        links["errors"] = url_for("batches.errors", batch_id=info.id, report_format="csv")
        if info.file_type == "xlsx":
            links["errors_xlsx"] = url_for("batches.errors", batch_id=info.id, report_format="xlsx")
    return {
        "id": info.id,
        "file_name": info.file_name,
        "file_type": info.file_type,
        "submission_type": info.submission_type,
        "status": info.status,
        "records": info.records,
        "rows_done": info.rows_done,
        "processed": info.processed,
        "not_processed": info.not_processed,
        "forced": info.forced,
        "message": info.message,
        "uploaded_at": _iso(info.uploaded_at),
        "started_at": _iso(info.started_at),
        "finished_at": _iso(info.finished_at),
        "links": links,
    }


@blueprint.post("/api/batches")
@require_account
def upload():
    limit = services().settings.limits.max_file_bytes
    # Werkzeug stops reading a bigger body at once instead of spooling it to disk.
    request.max_content_length = limit + MULTIPART_SLACK
    try:
        file = request.files.get("file")
        form = request.form
    except RequestEntityTooLarge:
        return json_error(413, batches.msg_too_large(limit), reason="invalid")
    if file is None or not file.filename:
        return json_error(400, batches.MSG_NO_FILE, reason="invalid")
    try:
        info = batches.upload(
            services(),
            g.account,
            file_name=file.filename,
            data=file.stream.read(limit + 1),
            file_type=(form.get("file_type") or "").strip().lower(),
            force=(form.get("force") or "").strip().lower() in _TRUE,
            submission_type=(form.get("submission_type") or rems.BOARDS).strip().lower(),
        )
    except batches.UploadRefused as refused:
        return json_error(refused.http_status, refused.message, reason=refused.reason)
    response = jsonify(_batch_json(info))
    response.status_code = 202
    response.headers["Location"] = url_for("batches.status", batch_id=info.id)
    return response


@blueprint.get("/api/batches")
@require_account
def history():
    return jsonify(batches=[_batch_json(b) for b in batches.history(services(), g.account)])


@blueprint.get("/api/batches/<int:batch_id>")
@require_account
def status(batch_id: int):
    info = batches.get(services(), g.account, batch_id)
    return _not_found() if info is None else jsonify(_batch_json(info))


REPORT_MIMETYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def report_download(found: tuple[str, bytes], report_format: str) -> Response:
    """An error report (batches.error_report) as a download named after the uploaded file."""
    file_name, report = found
    name = batches.error_report_download_name(file_name, report_format)
    return Response(
        report,
        mimetype=REPORT_MIMETYPES[report_format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@blueprint.get("/api/batches/<int:batch_id>/errors.<report_format>")
@require_account
def errors(batch_id: int, report_format: str):
    found = batches.error_report(services(), g.account, batch_id, report_format)
    return _not_found() if found is None else report_download(found, report_format)


@blueprint.get("/api/batches/<int:batch_id>/records")
@require_account
def records(batch_id: int):
    info = batches.get(services(), g.account, batch_id)
    if info is not None and info.submission_type == rems.REMS:
        return jsonify(
            participants=[
                {
                    "row": p.batch_row,
                    "activity_id": p.activity_id,
                    "participant_id": p.participant_id,
                    "participant_id_domain": p.participant_id_domain,
                    "completion_date": _iso(p.completion_date),
                    "profession": p.profession,
                    "state_of_primary_practice": p.state,
                    "dea_registration": p.dea_registration,
                    "practice_area": p.practice_area,
                    "surgical_procedures": p.surgical_procedures,
                    "time_in_practice": p.time_in_practice,
                }
                for p in rems.participants(services(), g.account, batch_id)
            ]
        )
    found = batches.processed_records(services(), g.account, batch_id)
    if found is None:
        return _not_found()
    return jsonify(
        records=[
            {
                **asdict(r),
                "completion_date": _iso(r.completion_date),
                "credits": None if r.credits is None else str(r.credits),
            }
            for r in found
        ]
    )
