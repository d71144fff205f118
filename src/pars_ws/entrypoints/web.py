"""HTTP pages and endpoints other than SOAP (Flask)."""
from __future__ import annotations

from flask import Flask, jsonify
from sqlalchemy import text


def create_web_app(services) -> Flask:
    app = Flask("pars_ws")
    app.config["PARS_SERVICES"] = services

    @app.get("/healthz")
    def healthz():
        try:
            with services.store.transaction(write=False) as repo:
                repo.conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - health reports, it does not raise
            return jsonify(status="error", database="unreachable"), 503
        return jsonify(status="ok", database="ok")

    from . import http_batches, http_review

    app.register_blueprint(http_batches.blueprint)
    app.register_blueprint(http_review.blueprint)
    return app
