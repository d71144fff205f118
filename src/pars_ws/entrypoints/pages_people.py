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
        "settings.html",
        users=accounts.web_users(svc, account.provider_id, account.environment),
        credentials=accounts.credentials(svc, owner=account),
        shown=shown,
        error=error,
        form=form or {},
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
        secret = accounts.create_web_user(
            services(),
            provider_id=account.provider_id,
            environment=account.environment,
            name=_field("name"),
            email=_field("email"),
        )
    except accounts.AccountRefused as exc:
        return _page(400, error=str(exc), form={"name": _field("name"), "email": _field("email")})
    return _page(shown={"what": "New web user", "login": _field("email").strip().lower(), "secret": secret})


def _new_password(reset, login: str, what: str):
    """Reset a log-in's password with reset(services, login, owner=...) and show the new one."""
    try:
        secret = reset(services(), login, owner=g.account)
    except accounts.AccountRefused as exc:
        return _page(400, error=str(exc))
    if login == g.account.username:  # one's own: keep this session, whose proof was bound to the old password
        session["proof"] = services().web_auth.session_proof(g.account)
    return _page(shown={"what": f"New password for {what}", "login": login, "secret": secret})


def _disable(set_disabled, login: str, what: str):
    """Disable a log-in with set_disabled(services, login, disabled, owner=...), or enable it again."""
    enable = request.form.get("enable") == "yes"
    try:
        set_disabled(services(), login, not enable, owner=g.account)
    except accounts.AccountRefused as exc:
        return _page(400, error=str(exc))
    flash(f"{what} {login} {'enabled' if enable else 'disabled'}.", "success")
    return redirect(url_for("pages_people.settings"), 303)


@blueprint.post("/settings/users/reset")
def reset_user():
    return _new_password(accounts.reset_web_user_password, _field("email").strip().lower(), "web user")


@blueprint.post("/settings/users/disable")
def disable_user():
    return _disable(accounts.set_web_user_disabled, _field("email").strip().lower(), "Web user")


@blueprint.post("/settings/credentials")
def add_credential():
    try:
        secret = accounts.add_credential(services(), g.account, _field("username"))
    except accounts.AccountRefused as exc:
        return _page(400, error=str(exc), form={"username": _field("username")})
    return _page(shown={"what": "New web-service credential", "login": _field("username").strip(), "secret": secret})


@blueprint.post("/settings/credentials/rotate")
def rotate_credential():
    return _new_password(accounts.rotate_credential, _field("username"), "web-service credential")


@blueprint.post("/settings/credentials/disable")
def disable_credential():
    return _disable(accounts.set_disabled, _field("username"), "Web-service credential")
