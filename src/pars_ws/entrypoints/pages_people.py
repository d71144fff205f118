"""Settings: a provider's people (web users, who log in to these pages) and its web-service
credentials (SOAP and the JSON API), in the environment of the person logged in. Create, reset the
password, disable or enable again; a new password is shown once, on the answer to the POST that made
it (never kept in the session cookie). What is allowed is decided by service.accounts."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for

from ..service import accounts
from .http_auth import services
from .pages import protect

blueprint = Blueprint("pages_people", __name__)
protect(blueprint)


def _page(status: int = 200, shown: dict | None = None, error: str | None = None, form: dict | None = None):
    svc, account = services(), g.account
    return render_template(
        "settings.html", users=accounts.web_users(svc, account.provider_id, account.environment),
        credentials=accounts.credentials(svc, owner=account), shown=shown, error=error, form=form or {},
    ), status


def _field(name: str) -> str:
    return (request.form.get(name) or "")[:400]


@blueprint.get("/settings")
def settings():
    return _page()


@blueprint.post("/settings/users")
def add_user():
    account = g.account
    try:
        secret = accounts.create_web_user(services(), provider_id=account.provider_id,
                                          environment=account.environment, name=_field("name"),
                                          email=_field("email"))
    except accounts.AccountRefused as exc:
        return _page(400, error=str(exc), form={"name": _field("name"), "email": _field("email")})
    return _page(shown={"what": "New web user", "login": _field("email").strip().lower(), "secret": secret})


@blueprint.post("/settings/users/reset")
def reset_user():
    email = _field("email").strip().lower()
    try:
        secret = accounts.reset_web_user_password(services(), email, owner=g.account)
    except accounts.AccountRefused as exc:
        return _page(400, error=str(exc))
    if email == g.account.username:  # keep this session: its proof was bound to the old password
        session["proof"] = services().web_auth.session_proof(g.account)
    return _page(shown={"what": "New password for web user", "login": email, "secret": secret})


@blueprint.post("/settings/users/disable")
def disable_user():
    email, enable = _field("email"), request.form.get("enable") == "yes"
    try:
        accounts.set_web_user_disabled(services(), email, disabled=not enable, owner=g.account)
    except accounts.AccountRefused as exc:
        return _page(400, error=str(exc))
    flash(f"Web user {email} {'enabled' if enable else 'disabled'}.", "success")
    return redirect(url_for("pages_people.settings"), 303)


@blueprint.post("/settings/credentials")
def add_credential():
    try:
        secret = accounts.add_credential(services(), g.account, _field("username"))
    except accounts.AccountRefused as exc:
        return _page(400, error=str(exc), form={"username": _field("username")})
    return _page(shown={"what": "New web-service credential", "login": _field("username").strip(), "secret": secret})


@blueprint.post("/settings/credentials/rotate")
def rotate_credential():
    username = _field("username")
    try:
        secret = accounts.rotate_credential(services(), username, owner=g.account)
    except accounts.AccountRefused as exc:
        return _page(400, error=str(exc))
    return _page(shown={"what": "New password for web-service credential", "login": username, "secret": secret})


@blueprint.post("/settings/credentials/disable")
def disable_credential():
    username, enable = _field("username"), request.form.get("enable") == "yes"
    try:
        accounts.set_disabled(services(), username, disabled=not enable, owner=g.account)
    except accounts.AccountRefused as exc:
        return _page(400, error=str(exc))
    flash(f"Web-service credential {username} {'enabled' if enable else 'disabled'}.", "success")
    return redirect(url_for("pages_people.settings"), 303)
