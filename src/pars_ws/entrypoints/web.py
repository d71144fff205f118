"""HTTP pages and endpoints other than SOAP (Flask)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from flask import Flask, jsonify, request
from flask.sessions import SecureCookieSessionInterface

# Pages load only their own CSS and script: no inline code, no other origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SESSION_HOURS = 8


class _SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over HTTPS (directly or via a proxy
    that sets wsgi.url_scheme)."""

    def get_cookie_secure(self, app) -> bool:
        return app.config["SESSION_COOKIE_SECURE"] or request.is_secure


def create_web_app(services) -> Flask:
    app = Flask("pars_ws")
    app.config["PARS_SERVICES"] = services
    # The signing key is derived from PARS_SECRET_KEY (`serve` makes a random one for its processes
    # when unset; set it when several hosts serve).
    app.secret_key = hmac.new(services.settings.secret_key, b"pars-ws web session cookie", hashlib.sha256).hexdigest()
    app.config.update(
        SESSION_COOKIE_NAME="pars_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=SESSION_HOURS),
        SESSION_REFRESH_EACH_REQUEST=True,
    )
    app.session_interface = _SessionInterface()

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    @app.get("/healthz")
    def healthz():
        try:
            with services.store.transaction(write=False) as uow:
                uow.ping()
        except Exception:  # noqa: BLE001 - health reports, it does not raise
            return jsonify(status="error", database="unreachable"), 503
        return jsonify(status="ok", database="ok")

    from . import (
        http_api_v1,
        http_batches,
        http_review,
        pages,
        pages_activities,
        pages_inspector,
        pages_people,
        pages_rems,
    )

    app.register_blueprint(http_api_v1.blueprint)
    app.register_blueprint(http_batches.blueprint)
    app.register_blueprint(http_review.blueprint)
    app.register_blueprint(pages.blueprint)
    app.register_blueprint(pages_rems.blueprint)
    app.register_blueprint(pages_inspector.blueprint)
    app.register_blueprint(pages_activities.blueprint)
    app.register_blueprint(pages_people.blueprint)
    return app
