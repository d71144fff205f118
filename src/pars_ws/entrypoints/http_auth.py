"""Authentication for the HTTP API (uploads, search, review): the provider's web-service
credential as HTTP Basic auth. The credential alone decides the environment, as in SOAP."""

from __future__ import annotations

from functools import wraps

from flask import Response, current_app, g, jsonify, request, stream_with_context

from .. import logs
from ..service.auth import AuthenticationFailed


def require_account(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        auth = request.authorization
        try:
            if auth is None or auth.type != "basic":
                raise AuthenticationFailed()
            g.account = services().auth.authenticate(auth.username, auth.password)
        except AuthenticationFailed:
            response = json_error(401, "Authentication failed.")
            response.headers["WWW-Authenticate"] = 'Basic realm="pars-ws"'
            return response
        return view(*args, **kwargs)

    return wrapped


def services():
    return current_app.config["PARS_SERVICES"]


def correlation_id() -> str:
    """The request's correlation ID (set by the WSGI front for every request; a fresh one without it)."""
    return logs.correlation_id.get() or logs.new_correlation_id()


def json_error(status: int, message: str, **extra):
    response = jsonify(error=message, **extra)
    response.status_code = status
    return response


def csv_download(chunks, name: str) -> Response:
    """CSV text chunks as a download named `name`-YYYYMMDD.csv, streamed: the chunks are produced while
    the response is sent (the first carries the byte order mark)."""
    file_name = f"{name}-{services().clock.today():%Y%m%d}.csv"
    return Response(
        stream_with_context(chunk.encode("utf-8") for chunk in chunks),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{file_name}"'},
    )


# Room for the multipart framing and form fields around an uploaded file at the size limit.
MULTIPART_SLACK = 64 * 1024
