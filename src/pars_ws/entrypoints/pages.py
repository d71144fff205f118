"""Web pages for CME providers, as the PARS tutorial shows them: log in, Activity Learner Summary,
Activity Detail with manual learner entry, Learner Search, Batch Upload with its history, and
Record details with delete.

Server-rendered (Jinja2), usable without JavaScript. The pages translate form fields into service
calls and results into HTML; every rule (what a learner record needs, what may be deleted, which
environment a log-in reaches) is the service layer's. People log in as web users, not with the
web-service credential of SOAP and the JSON API (PARS keeps the two apart); a session is re-checked
against its web user on every request, so a disabled web user or a reset password is logged out at
once. Every POST carries the session's CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import RequestEntityTooLarge

from ..adapters.clock import when_text
from ..adapters.excel import write_template
from ..adapters.template_b import write_template_b
from ..domain.catalogue import fold
from ..domain.errors import message
from ..domain.records import ReportedRecord, Source, Status
from ..service import batches, rems, search
from ..service.auth import Account, AuthenticationFailed
from .http_auth import MULTIPART_SLACK, correlation_id, csv_download, services
from .http_batches import REPORT_MIMETYPES, report_download

blueprint = Blueprint("pages", __name__)

PER_PAGE = 20
MAX_ENTRY_ROWS = 50  # manual entry rows in one form
_FORM_BYTES = 1024 * 1024  # any page form but a file upload
CSRF_FIELD = "csrf_token"
_PUBLIC = {"pages.login"}
HOME = "pages_activities.home"  # where a log-in lands, as PARS's Home tab
ROW_FIELDS = ("first_name", "last_name", "completion_date", "dob", "learner_id_type", "learner_id", "npi", "credits")
ATTESTATION = (
    "In submitting learner completion data for this CME activity, you: 1) attest that you have obtained "
    "permission from each learner to provide ACCME with the completion data; 2) agree to allow ACCME to "
    "release information about this activity and its learners to the authorized entities for their "
    "unrestricted use; 3) understand that ACCME may publish information about this activity and/or "
    "aggregate information about the learners."
)


# -- sessions (the proof and its checks: Authenticator.session_proof / resume) ---------------------


def _session_account() -> Account | None:
    username, proof = session.get("user"), session.get("proof")
    if not (isinstance(username, str) and isinstance(proof, str)):
        return None
    return services().web_auth.resume(username, proof)


@blueprint.app_template_global("csrf_token")
def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _csrf_ok() -> bool:
    sent, expected = request.form.get(CSRF_FIELD, ""), session.get("csrf")
    return isinstance(expected, str) and bool(sent) and hmac.compare_digest(sent.encode(), expected.encode())


def safe_next(target: str | None) -> str | None:
    # Only a path on this site: never "//host" or a scheme.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@blueprint.before_request
def _guard():
    g.account = None
    if request.method == "POST":
        # Bound the body before anything reads it: a file upload may be as large as a batch file,
        # every other form is small.
        uploading = request.endpoint == "pages.batch_upload_post"
        limit = services().settings.limits.max_file_bytes + MULTIPART_SLACK if uploading else _FORM_BYTES
        request.max_content_length = limit
        try:
            ok = _csrf_ok()
        except RequestEntityTooLarge:
            if not uploading:
                return _error_page(413, "The form is too large.")
            ok = True  # the upload view answers the size; nothing was stored
        if not ok:
            return _error_page(
                400, "This form has expired or did not come from this site. Reload the page and try again."
            )
    if request.endpoint in _PUBLIC:
        return None
    account = _session_account()
    if account is None:
        if session.pop("user", None) is not None:
            session.pop("proof", None)
            flash("Your session has ended. Log in again.", "info")
        return redirect(url_for("pages.login", next=request.full_path.rstrip("?")))
    g.account = account
    return None


@blueprint.after_request
def _no_store(response):
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@blueprint.record_once
def _jinja_globals(state):
    state.app.jinja_env.globals["CSRF_FIELD"] = CSRF_FIELD


@blueprint.app_context_processor
def _template_context():
    return {"account": g.get("account")}


@blueprint.errorhandler(404)
def _not_found(exc):
    return _error_page(404, "There is no such page, or it belongs to another provider or environment.")


def _error_page(status: int, text: str):
    return render_template("error.html", status=status, text=text), status


def protect(other: Blueprint) -> None:
    """Pages of another module: the same log-in, CSRF, no-store and not-found handling as these."""
    other.before_request(_guard)
    other.after_request(_no_store)
    other.register_error_handler(404, _not_found)


# -- template filters -----------------------------------------------------------------------------


@blueprint.app_template_filter("us_date")
def _us_date(value) -> str:
    if value is None:
        return ""
    return value.strftime("%m/%d/%Y")


@blueprint.app_template_filter("when")
def _when(value) -> str:
    return "" if value is None else when_text(value)


@blueprint.app_template_filter("error_message")
def _error_message(code) -> str:
    return message(int(code))


@blueprint.app_template_filter("points")
def _points(value) -> str:
    if value is None:
        return ""
    return format(Decimal(value).normalize(), "f")


# -- log in / log out -----------------------------------------------------------------------------


@blueprint.get("/")
def index():
    return redirect(url_for(HOME))


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        if _session_account() is not None:
            return redirect(next_url or url_for(HOME))
        csrf_token()
        return render_template("login.html", next_url=next_url, form={})
    form = request.form
    try:
        account = services().web_auth.authenticate(
            form.get("email"), form.get("password"), (form.get("provider_id") or "").strip() or None
        )
        proof = services().web_auth.session_proof(account)
    except AuthenticationFailed:
        return render_template(
            "login.html",
            next_url=next_url,
            form=form,
            error="Log in failed. Check the provider ID, e-mail and password.",
        ), 401
    session.clear()  # a new session on every log in (no fixation)
    session.permanent = True
    session["user"] = account.username
    session["proof"] = proof
    session["csrf"] = secrets.token_urlsafe(32)
    return redirect(next_url or url_for(HOME), 303)


@blueprint.post("/logout")
def logout():
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("pages.login"), 303)


# -- exports --------------------------------------------------------------------------------------


def _query(**params) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


# -- Activity Learner Summary ---------------------------------------------------------------------


def _board_choices():
    cat = services().catalogue
    return [(b.code, f"{b.code} - {b.name}", b.kind) for b in cat]


def activities_of_year(args) -> dict:
    """One page of the provider's activities of a reporting year, as the filters in args ask (the
    Activity Learner Summary's and the Activities tab's list): result, error, year, years."""
    svc = services()
    today = svc.clock.today()
    error, result, f = None, None, None
    try:
        f = search.summary_filter(args, svc.catalogue, today)
        page, per_page = search.paging({"page": args.get("page"), "per_page": PER_PAGE})
        result = search.activity_summary(svc, g.account, f, page, per_page)
    except search.SearchRefused as exc:
        error = str(exc)
    year = f.reporting_year if f else today.year
    years = sorted({*range(today.year - 4, today.year + 2), year}, reverse=True)
    return {"result": result, "error": error, "year": year, "years": years}


@blueprint.get("/activities")
def summary():
    args = request.args
    found = activities_of_year(args)
    filters = {k: args.get(k, "") for k in ("title", "provider_activity_id", "board")}
    return render_template(
        "summary.html", **found, filters=filters, boards=_board_choices(), query=_query(**filters, year=found["year"])
    ), 400 if found["error"] else 200


@blueprint.get("/activities.csv")
def summary_csv():
    svc = services()
    try:
        f = search.summary_filter(request.args, svc.catalogue, svc.clock.today())
    except search.SearchRefused as exc:
        return _error_page(400, str(exc))
    return csv_download(search.export_summary_csv(svc, g.account, f), search.ACTIVITY_SUMMARY.name)


# -- Activity Detail and manual entry -------------------------------------------------------------


@dataclass
class EntryRow:
    """One "Add Learners Manually" row as typed, and what saving it gave."""

    n: int
    first_name: str = ""
    last_name: str = ""
    completion_date: str = ""
    dob: str = ""
    learner_id_type: str = ""
    learner_id: str = ""
    npi: str = ""
    credits: str = ""
    credit_types: tuple[str, ...] = ()
    errors: list[tuple[int, str]] = field(default_factory=list)
    status: str | None = None  # set when the row was saved

    @property
    def blank(self) -> bool:
        return not any(getattr(self, f).strip() for f in ROW_FIELDS if f != "learner_id_type")

    @property
    def label(self) -> str:
        """How errors name the row: the learner ID, as the seed shows it."""
        return self.learner_id.strip() or f"Row {self.n}"


def _blank_row(n: int, registration) -> EntryRow:
    # New rows start with the registration's first credit type ticked, as the seed's form does.
    return EntryRow(n, credit_types=registration.credit_types[:1])


def _rows_from_form(form) -> list[EntryRow]:
    numbers = []
    for value in form.getlist("row"):
        if value.isdigit() and int(value) not in numbers:
            numbers.append(int(value))
    rows = []
    for n in numbers[:MAX_ENTRY_ROWS]:
        values = {name: (form.get(f"r{n}-{name}") or "")[: search.MAX_TEXT] for name in ROW_FIELDS}
        types = tuple(dict.fromkeys(t[: search.MAX_TEXT] for t in form.getlist(f"r{n}-credit_type") if t))
        rows.append(EntryRow(n, credit_types=types[:6], **values))
    return rows


def _reported(row: EntryRow, index: int, activity, board) -> ReportedRecord:
    def text(value: str) -> str | None:
        return value.strip() or None

    return ReportedRecord(
        index=index,
        action="Add",
        board=board.code,
        activity_id=activity.activity_id,
        # The form offers the board's learner ID types; a board with one type needs no choice.
        learner_id_type=text(row.learner_id_type) or board.learner_id_types[0],
        learner_id=text(row.learner_id),
        first_name=text(row.first_name),
        last_name=text(row.last_name),
        dob=text(row.dob),
        completion_date=text(row.completion_date),
        credits=text(row.credits),
        credit_types=row.credit_types,
        npi=text(row.npi),
    )


def _audit_bytes(form) -> bytes:
    # The submitted form as received, without the CSRF token.
    return urlencode([(k, v) for k, v in form.items(multi=True) if k != CSRF_FIELD]).encode()


def _registration(activity, wanted: str | None):
    if wanted:
        found = activity.registration(wanted.strip().upper())
        if found is not None:
            return found
    return activity.registrations[0] if activity.registrations else None


def _activity_or_404(activity_id: str):
    activity = services().activities.get(g.account, activity_id)
    if activity is None:
        abort(404)
    return activity


@dataclass
class Entry:
    """The manual-entry form of one Activity Detail page, and what a POST made of it."""

    rows: list[EntryRow] = field(default_factory=list)  # rows in the form
    saved: list[EntryRow] = field(default_factory=list)  # rows just saved (shown, not re-sent)
    errors: list[EntryRow] = field(default_factory=list)  # rows refused, kept in the form
    notice: str | None = None
    status: int = 200


def _entry_post(activity, registration, board) -> Entry:
    """Add a row, remove a row, or save the filled rows through the learner service."""
    form = request.form
    entry = Entry(rows=_rows_from_form(form))
    if form.get("add_row"):
        if len(entry.rows) < MAX_ENTRY_ROWS:
            entry.rows.append(_blank_row(max((r.n for r in entry.rows), default=0) + 1, registration))
        else:
            entry.notice = f"At most {MAX_ENTRY_ROWS} rows can be saved at a time."
        return entry
    if form.get("remove_row"):
        entry.rows = [r for r in entry.rows if str(r.n) != form.get("remove_row")]
        return entry
    filled = [r for r in entry.rows if not r.blank]
    if not filled:
        entry.notice, entry.status = "Enter at least one learner before saving.", 400
        return entry
    judgements = services().learners.save(
        g.account,
        [_reported(r, i, activity, board) for i, r in enumerate(filled, 1)],
        source=Source.WEB_FORM,
        raw=_audit_bytes(form),
        correlation_id=correlation_id(),
    )
    for j in judgements:
        row = filled[j.record.index - 1]
        if j.ok:
            row.status = j.status.value
            entry.saved.append(row)
        else:
            row.errors = [(code, message(code)) for code in j.codes]
            entry.errors.append(row)
    entry.rows = entry.errors  # only the rows to fix stay in the form
    return entry


@blueprint.route("/activities/<activity_id>", methods=["GET", "POST"])
def activity_detail(activity_id: str):
    svc = services()
    activity = _activity_or_404(activity_id)
    registration = _registration(activity, request.values.get("board"))
    if registration is None:  # registered for no board: nothing to report
        return render_template("activity.html", activity=activity, registration=None, entry=Entry())
    board = svc.catalogue[registration.board]
    entry = Entry()
    if request.method == "POST":
        entry = _entry_post(activity, registration, board)
        if entry.saved and not entry.errors:
            for row in entry.saved:
                flash(f"{row.first_name} {row.last_name} ({row.label}) saved: {row.status.upper()}", "success")
            return redirect(
                url_for("pages.activity_detail", activity_id=activity.activity_id, board=registration.board), 303
            )
    elif request.args.get("rows", "").isdigit():
        entry.rows = [_blank_row(n, registration) for n in range(1, min(int(request.args["rows"]), MAX_ENTRY_ROWS) + 1)]
    learners = search.search(
        svc,
        g.account,
        search.SearchFilter(activity_id=activity.activity_id, board=registration.board),
        _page(),
        PER_PAGE,
    )
    return render_template(
        "activity.html",
        activity=activity,
        registration=registration,
        board=board,
        learners=learners,
        entry=entry,
        attestation=ATTESTATION,
        blank_row=_blank_row(0, registration),
        board_name=lambda code: svc.catalogue[code].name,
        has=_has_type,
    ), entry.status


def _page() -> int:
    """The page asked for; the first when the number cannot be read."""
    try:
        return search.paging({"page": request.args.get("page")})[0]
    except search.SearchRefused:
        return 1


def _has_type(record, credit_type: str) -> bool:
    key = fold(credit_type)
    return any(fold(t) == key for t in record.credit_types)


@blueprint.get("/activities/<activity_id>/learners.csv")
def activity_csv(activity_id: str):
    activity = _activity_or_404(activity_id)
    registration = _registration(activity, request.args.get("board"))
    f = search.SearchFilter(activity_id=activity.activity_id, board=registration.board if registration else None)
    return csv_download(search.export_csv(services(), g.account, f), f"activity-{activity.activity_id}")


# -- Learner Search -------------------------------------------------------------------------------

SEARCH_FIELDS = (
    "title",
    "last_name",
    "submitted_from",
    "submitted_to",
    "specialty_board",
    "state_board",
    "activity_id",
    "provider_activity_id",
    "learner_id",
    "id_type",
    "status",
    "completed_from",
    "completed_to",
)


def _search_params(args) -> dict:
    """The page's fields as the search filter reads them: its two board lists name one board."""
    params = {name: (args.get(name) or "").strip() for name in SEARCH_FIELDS}
    specialty, state = params.pop("specialty_board"), params.pop("state_board")
    if specialty and state:
        raise search.SearchRefused("Choose a specialty board or a state medical board, not both.")
    params["board"] = specialty or state
    return params


def _search_form_options():
    cat = services().catalogue
    return {
        "specialty_boards": [(b.code, f"{b.code} - {b.name}") for b in cat if b.certifying],
        "state_boards": [(b.code, f"{b.code} - {b.name}") for b in cat if not b.certifying],
        "id_types": [(t, t) for t in sorted({t for b in cat for t in b.learner_id_types})],
        "statuses": [(s.value, s.value) for s in search.SEARCHABLE_STATUSES],
    }


@blueprint.get("/search")
def learner_search():
    svc, args = services(), request.args
    values = {name: args.get(name, "") for name in SEARCH_FIELDS}
    searched = any(values.values()) or "search" in args
    result, error = None, None
    if searched:
        try:
            f = search.search_filter(_search_params(args), svc.catalogue)
            page, _ = search.paging({"page": args.get("page")})
            result = search.search(svc, g.account, f, page, PER_PAGE)
        except search.SearchRefused as exc:
            error = str(exc)
    return render_template(
        "search.html", values=values, result=result, error=error, query=_query(**values), **_search_form_options()
    ), 400 if error else 200


@blueprint.get("/search.csv")
def search_csv():
    svc = services()
    try:
        f = search.search_filter(_search_params(request.args), svc.catalogue)
    except search.SearchRefused as exc:
        values = {name: request.args.get(name, "") for name in SEARCH_FIELDS}
        return render_template(
            "search.html", values=values, result=None, error=str(exc), query=_query(**values), **_search_form_options()
        ), 400
    return csv_download(search.export_csv(svc, g.account, f), search.LEARNER_SEARCH.name)


# -- Record details and delete --------------------------------------------------------------------


@dataclass(frozen=True)
class RecordLine:
    result: search.LearnerResult
    accepted: Decimal | None  # credits the board accepted; None while Submitted


def _record_lines(results) -> tuple[list[RecordLine], Decimal]:
    lines = [RecordLine(r, r.record.accepted_credits) for r in results]
    return lines, sum((line.accepted or Decimal(0) for line in lines), Decimal(0))


@blueprint.get("/records")
def record_details():
    svc, args = services(), request.args
    activity = _activity_or_404(args.get("activity_id", ""))
    registration = _registration(activity, args.get("board"))
    learner_id = (args.get("learner_id") or "").strip()[: search.MAX_TEXT]
    if registration is None or not learner_id:
        abort(404)
    f = search.SearchFilter(activity_id=activity.activity_id, board=registration.board, learner_id=learner_id)
    found = search.search(svc, g.account, f, _page(), search.MAX_PER_PAGE)
    lines, total = _record_lines(found.items)
    first = found.items[0].record if found.items else None
    # A Submitted record cannot be deleted until the board has processed it: no checkbox, and why.
    awaiting = sum(1 for line in lines if line.result.record.status == Status.SUBMITTED)
    return render_template(
        "record.html",
        activity=activity,
        registration=registration,
        learner_id=learner_id,
        found=found,
        lines=lines,
        total=total,
        first=first,
        has=_has_type,
        awaiting=awaiting,
        deletable=len(lines) > awaiting,
        board_name=svc.catalogue[registration.board].name,
        query=_query(activity_id=activity.activity_id, board=registration.board, learner_id=learner_id),
    )


@blueprint.post("/records/delete")
def delete_records():
    form = request.form
    back = url_for(
        "pages.record_details",
        activity_id=form.get("activity_id", ""),
        board=form.get("board", ""),
        learner_id=form.get("learner_id", ""),
    )
    try:
        judgements = search.delete_records(
            services(), g.account, form.getlist("credit_id"), correlation_id=correlation_id()
        )
    except search.SearchRefused as exc:
        flash(str(exc), "error")
        return redirect(back, 303)
    deleted = [j for j in judgements if j.ok]
    if deleted:
        flash(f"Deleted {len(deleted)} record{'s' if len(deleted) != 1 else ''}.", "success")
    for j in judgements:
        for code in j.codes:
            flash(f"{j.record.credit_id} - {code}: {message(code)}", "error")
    return redirect(back, 303)


# -- Batch Upload ---------------------------------------------------------------------------------


def _history_page(
    status: int = 200,
    refused: batches.UploadRefused | None = None,
    file_type: str = "txt",
    file_name: str | None = None,
    submission_type: str = "boards",
):
    svc = services()
    shown = None
    wanted = request.args.get("batch", "")
    if wanted.isdigit():
        shown = batches.get(svc, g.account, int(wanted))
    return render_template(
        "batches.html",
        history=batches.history(svc, g.account),
        shown=shown,
        refused=refused,
        file_type=file_type,
        file_name=file_name,
        submission_type=submission_type,
        rems_provider=rems.participates(svc, g.account),
        max_records=svc.settings.limits.max_records,
    ), status


@blueprint.get("/batches")
def batch_upload():
    return _history_page()


@blueprint.post("/batches")
def batch_upload_post():
    svc = services()
    limit = svc.settings.limits.max_file_bytes  # the body was bounded in _guard
    try:
        file = request.files.get("file")
        form = request.form
    except RequestEntityTooLarge:
        return _history_page(413, batches.UploadRefused(batches.msg_too_large(limit), "invalid"))
    file_type = (form.get("file_type") or "").strip().lower()
    submission_type = (form.get("submission_type") or rems.BOARDS).strip().lower()
    if file is None or not file.filename:
        return _history_page(
            400, batches.UploadRefused(batches.MSG_NO_FILE, "invalid"), file_type, submission_type=submission_type
        )
    name = batches.uploaded_name(file.filename)
    try:
        info = batches.upload(
            svc,
            g.account,
            file_name=name,
            data=file.stream.read(limit + 1),
            file_type=file_type,
            force=form.get("force") == "yes",
            submission_type=submission_type,
        )
    except batches.UploadRefused as refused:
        return _history_page(refused.http_status, refused, file_type, name, submission_type)
    return redirect(url_for("pages.batch_upload", batch=info.id) + "#processing", 303)


@blueprint.get("/batches/<int:batch_id>/status")
def batch_status(batch_id: int):
    info = batches.get(services(), g.account, batch_id)
    if info is None:
        abort(404)
    return jsonify(status=info.status, rows_done=info.rows_done, records=info.records)


@blueprint.get("/batches/<int:batch_id>/errors.<report_format>")
def batch_errors(batch_id: int, report_format: str):
    found = batches.error_report(services(), g.account, batch_id, report_format)
    if found is None:
        abort(404)
    return report_download(found, report_format)


@blueprint.get("/batches/<int:batch_id>/records")
def batch_records(batch_id: int):
    svc = services()
    info = batches.get(svc, g.account, batch_id)
    found = batches.processed_records(svc, g.account, batch_id)
    if info is None or found is None:
        abort(404)
    return render_template("batch_records.html", batch=info, records=found)


@blueprint.get("/batches/template.txt")
def batch_template():
    return Response(
        write_template_b([]),
        mimetype="text/plain; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="learner-template-b.txt"'},
    )


@blueprint.get("/batches/template.xlsx")
def batch_template_xlsx():
    svc = services()
    return Response(
        write_template(svc.catalogue, svc.settings.limits.max_records),
        mimetype=REPORT_MIMETYPES["xlsx"],
        headers={"Content-Disposition": 'attachment; filename="learner-template.xlsx"'},
    )
