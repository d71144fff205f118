"""Authentication for the HTTP API (uploads, search, review): the provider's web-service
credential as HTTP Basic auth. The credential alone decides the environment, as in SOAP."""
from __future__ import annotations

from functools import wraps

from flask import current_app, g, jsonify, request

from ..service.auth import AuthenticationFailed


def require_account(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        auth = request.authorization
        services = current_app.config["PARS_SERVICES"]
        try:
            if auth is None or auth.type != "basic":
                raise AuthenticationFailed()
            g.account = services.auth.authenticate(auth.username, auth.password)
        except AuthenticationFailed:
            response = jsonify(error="Authentication failed.")
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Basic realm="pars-ws"'
            return response
        return view(*args, **kwargs)

    return wrapped


def services():
    return current_app.config["PARS_SERVICES"]
