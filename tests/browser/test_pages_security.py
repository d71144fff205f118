"""The provider pages' security, without a browser: Flask's test client against the real app and a
real database (SQLite, and PostgreSQL when PARS_TEST_DATABASE_URL is set), with no worker running.

Logged-out requests go to the log-in page; every POST needs the session's CSRF token; the session
cookie is HttpOnly + SameSite=Lax and holds no secret; people log in as web users, never with a
web-service credential, and a disabled web user or a reset password ends its sessions; a sandbox
session never sees production data (and the other way round).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from pars_ws.adapters import tables as t
from pars_ws.adapters.migrate import upgrade
from pars_ws.domain.activities import Activity, RegisteredLearner, Registration
from pars_ws.domain.records import DOB
from pars_ws.entrypoints.web import create_web_app
from pars_ws.service import accounts
from pars_ws.service.auth import hash_secret
from pars_ws.service.container import Services
from pars_ws.service.sandbox import seed_sandbox
from pars_ws.settings import Settings
from tests.browser.support import template_b_file
from tests.conftest import PROVIDER_ID, SANDBOX_PASSWORD, SANDBOX_USER, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD, TODAY

PROD_USER, PROD_PASSWORD = "pages-prod-user", "pages-prod-password"
PROD_EMAIL, PROD_WEB_PASSWORD = "prod.person@testprovider.org", "pages-prod-web-password"
PROD_ACTIVITY, PROD_TITLE = "300000077", "Production Only Grand Rounds"
MSG_664 = "999998 - 664: Diplomate date of birth does not match Board record for this diplomate ID."
PAGES = [
    "/",
    "/activities",
    "/activities.csv",
    "/activities/200930149",
    "/activities/200930149/learners.csv",
    "/search",
    "/search.csv?last_name=Test",
    "/batches",
    "/batches/1/records",
    "/batches/1/errors.csv",
    "/batches/1/errors.xlsx",
    "/batches/1/status",
    "/batches/template.txt",
    "/batches/template.xlsx",
    "/records?activity_id=200930149&board=ABIM&learner_id=1",
    "/home",
    "/manage/activities",
    "/manage/activities/new",
    "/manage/activities/200930149/edit",
    "/settings",
]


@pytest.fixture(scope="module")
def services(database_url, tmp_path_factory):
    upgrade(database_url)
    svc = Services(
        Settings(
            database_url=database_url,
            today=dt.date.fromisoformat(TODAY),
            secret_key=b"pages-key",
            outbox_dir=tmp_path_factory.mktemp("outbox"),
        )
    )
    seed_sandbox(svc, username=SANDBOX_USER, password=SANDBOX_PASSWORD, web_password=SANDBOX_WEB_PASSWORD)
    with svc.store.transaction() as uow:
        accounts = uow.accounts
        pk = accounts.provider(PROVIDER_ID).id
        accounts.add_credential(pk, "production", PROD_USER, hash_secret(PROD_PASSWORD), svc.clock.now())
        accounts.add_web_user(
            pk, "production", "Prod Person", PROD_EMAIL, hash_secret(PROD_WEB_PASSWORD), svc.clock.now()
        )
        uow.learners.import_learners("production", [RegisteredLearner("ABO", "P1", "Prod", "Learner", DOB(2, 2))])
    production = svc.auth.authenticate(PROD_USER, PROD_PASSWORD)
    svc.activities.save(
        production,
        Activity(
            activity_id=PROD_ACTIVITY,
            title=PROD_TITLE,
            activity_type="Course",
            start_date=dt.date(2026, 1, 1),
            end_date=dt.date(2026, 12, 31),
            reporting_year=2026,
            credits=Decimal(5),
            provider_activity_id="PROD-1",
            registrations=(Registration("ABO", Decimal(5), ("ABO MOC Part II",)),),
        ),
    )
    yield svc
    svc.engine.dispose()


@pytest.fixture(scope="module")
def app(services):
    app = create_web_app(services)
    app.config["TESTING"] = False  # exceptions become 500s, as in production
    return app


def token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def log_in(app, email=SANDBOX_WEB_EMAIL, password=SANDBOX_WEB_PASSWORD):
    client = app.test_client()
    page = client.get("/login")
    response = client.post("/login", data={"csrf_token": token(page.text), "email": email, "password": password})
    assert response.status_code == 303, response.text
    return client


def add_learner(client, activity_id: str, board: str, **fields) -> str:
    page = client.get(f"/activities/{activity_id}?board={board}&rows=1")
    data = {"csrf_token": token(page.text), "board": board, "row": "1", "save": "1"}
    data.update({f"r1-{k}": v for k, v in fields.items()})
    response = client.post(f"/activities/{activity_id}", data=data, follow_redirects=True)
    return response.text


def records_in(services, environment: str) -> int:
    with services.engine.begin() as conn:
        return conn.execute(
            select(func.count()).select_from(t.learner_records).where(t.learner_records.c.environment == environment)
        ).scalar_one()


# -- logged out -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_logged_out_pages_redirect_to_log_in(app, path):
    response = app.test_client().get(path)
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert target.path == "/login" and "next=" in target.query


def test_log_in_returns_to_the_page_asked_for_but_never_off_site(app):
    client = app.test_client()
    page = client.get("/login?next=/search")
    response = client.post(
        "/login",
        data={
            "csrf_token": token(page.text),
            "email": SANDBOX_WEB_EMAIL,
            "password": SANDBOX_WEB_PASSWORD,
            "next": "/search",
        },
    )
    assert response.headers["Location"].endswith("/search")
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        client = app.test_client()
        page = client.get("/login")
        response = client.post(
            "/login",
            data={
                "csrf_token": token(page.text),
                "email": SANDBOX_WEB_EMAIL,
                "password": SANDBOX_WEB_PASSWORD,
                "next": evil,
            },
        )
        assert urlsplit(response.headers["Location"]).path == "/home", evil
        assert "evil" not in response.headers["Location"]


def test_failed_log_in_says_nothing_about_which_part_was_wrong(app):
    answers = []
    for email, password, provider in (
        (SANDBOX_WEB_EMAIL, "wrong", ""),
        ("nobody@x.org", SANDBOX_WEB_PASSWORD, ""),
        (SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD, "7654321"),
        (SANDBOX_USER, SANDBOX_PASSWORD, ""),
    ):  # a web-service credential
        client = app.test_client()
        page = client.get("/login")
        response = client.post(
            "/login",
            data={"csrf_token": token(page.text), "email": email, "password": password, "provider_id": provider},
        )
        assert response.status_code == 401
        answers.append(re.search(r'role="alert"[^>]*>([^<]+)<', response.text).group(1))
        assert client.get("/activities").status_code == 302  # still logged out
    assert len(set(answers)) == 1, answers
    log_in(app)  # a success resets the failed-login count


# -- CSRF -------------------------------------------------------------------------------------------


def test_posts_without_the_csrf_token_are_refused(app, services):
    client = log_in(app)
    good = token(client.get("/activities").text)
    before = records_in(services, "sandbox")
    entry = {
        "board": "NC",
        "row": "1",
        "save": "1",
        "r1-first_name": "Traci",
        "r1-last_name": "Test",
        "r1-completion_date": "05/25/2026",
        "r1-dob": "07/01",
        "r1-learner_id": "999993",
        "r1-credits": "5",
        "r1-credit_type": "AMA PRA Category 1",
    }
    for sent in ({}, {"csrf_token": ""}, {"csrf_token": good[:-2] + "xx"}):
        assert client.post("/activities/200930054", data={**entry, **sent}).status_code == 400
        assert client.post("/records/delete", data={"credit_id": "ccid:x:1", **sent}).status_code == 400
        assert client.post("/batches", data={"file_type": "txt", **sent}).status_code == 400
        assert client.post("/logout", data=sent).status_code == 400
    assert records_in(services, "sandbox") == before
    assert client.get("/activities").status_code == 200  # the refused log-out did not log out
    # Another session's token is no good either.
    other = log_in(app)
    assert client.post("/logout", data={"csrf_token": token(other.get("/activities").text)}).status_code == 400
    # A log-in form without the token (a login-CSRF attempt) is refused too.
    fresh = app.test_client()
    refused = fresh.post("/login", data={"email": SANDBOX_WEB_EMAIL, "password": SANDBOX_WEB_PASSWORD})
    assert refused.status_code == 400 and fresh.get("/activities").status_code == 302
    # With the token the same log-out works.
    assert client.post("/logout", data={"csrf_token": good}).status_code == 303
    assert client.get("/activities").status_code == 302


# -- the session ------------------------------------------------------------------------------------


def test_session_cookie_is_httponly_lax_and_holds_no_secret(app):
    client = app.test_client()
    page = client.get("/login")
    response = client.post(
        "/login", data={"csrf_token": token(page.text), "email": SANDBOX_WEB_EMAIL, "password": SANDBOX_WEB_PASSWORD}
    )
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("pars_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    data = app.session_interface.get_signing_serializer(app).loads(value)
    assert data["user"] == SANDBOX_WEB_EMAIL and SANDBOX_WEB_PASSWORD not in repr(data)
    # A tampered cookie is no session at all.
    client.set_cookie("pars_session", value[:-3] + "abc")
    assert client.get("/activities").status_code == 302


def test_pages_send_security_headers(app):
    client = log_in(app)
    response = client.get("/activities")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def _new_web_user(services, email: str, password: str) -> None:
    accounts.create_web_user(
        services, provider_id=PROVIDER_ID, environment="sandbox", name="Page Tester", email=email, password=password
    )


def test_disabled_web_user_is_logged_out(app, services):
    _new_web_user(services, "pages-disable@testprovider.org", "secret-one-12")
    client = log_in(app, "Pages-Disable@testprovider.org", "secret-one-12")  # e-mail case does not matter
    assert client.get("/activities").status_code == 200
    accounts.set_web_user_disabled(services, "pages-disable@testprovider.org", True)
    response = client.get("/activities")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"
    accounts.set_web_user_disabled(services, "pages-disable@testprovider.org", False)
    assert client.get("/activities").status_code == 302  # the session stays ended


def test_reset_password_logs_the_web_user_out(app, services):
    _new_web_user(services, "pages-rotate@testprovider.org", "secret-one-12")
    client = log_in(app, "pages-rotate@testprovider.org", "secret-one-12")
    assert client.get("/search").status_code == 200
    accounts.reset_web_user_password(services, "pages-rotate@testprovider.org", "secret-two-12")
    assert client.get("/search").status_code == 302
    assert log_in(app, "pages-rotate@testprovider.org", "secret-two-12").get("/search").status_code == 200


# -- environments -----------------------------------------------------------------------------------


def test_sandbox_session_never_shows_production_data(app, services):
    prod = log_in(app, PROD_EMAIL, PROD_WEB_PASSWORD)
    summary = prod.get("/activities").text
    assert "PRODUCTION" in summary and PROD_TITLE in summary and "An Other is an Other" not in summary
    saved = add_learner(
        prod,
        PROD_ACTIVITY,
        "ABO",
        first_name="Prod",
        last_name="Learner",
        completion_date="03/03/2026",
        dob="02/02",
        learner_id="P1",
        credits="1",
        credit_type="ABO MOC Part II",
    )
    assert "saved: ACCEPTED" in saved
    assert records_in(services, "production") == 1

    sandbox = log_in(app)
    summary = sandbox.get("/activities").text
    assert "SANDBOX" in summary and "PRODUCTION" not in summary
    assert PROD_TITLE not in summary and "An Other is an Other" in summary
    assert PROD_TITLE.encode() not in sandbox.get("/activities.csv").data
    assert sandbox.get(f"/activities/{PROD_ACTIVITY}").status_code == 404
    assert sandbox.get(f"/activities/{PROD_ACTIVITY}/learners.csv").status_code == 404
    assert sandbox.get(f"/records?activity_id={PROD_ACTIVITY}&board=ABO&learner_id=P1").status_code == 404
    found = sandbox.get("/search?last_name=Learner&search=1").text
    assert "Showing 0 - 0 of 0 records" in found and "Prod" not in found
    assert b"Prod" not in sandbox.get("/search.csv?submitted_from=01/01/2000").data
    # ...and production sees none of the sandbox's.
    assert prod.get("/activities/200930149").status_code == 404
    assert "P1" in prod.get("/search?last_name=Learner&search=1").text


def test_production_upload_history_is_not_the_sandbox_s(app, services):
    prod = log_in(app, PROD_EMAIL, PROD_WEB_PASSWORD)
    page = prod.get("/batches")
    response = prod.post(
        "/batches",
        data={
            "csrf_token": token(page.text),
            "file_type": "txt",
            "file": (io.BytesIO(template_b_file()), "prod-batch.txt"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    batch_id = int(re.search(r"batch=(\d+)", response.headers["Location"]).group(1))
    sandbox = log_in(app)
    assert "prod-batch.txt" not in sandbox.get("/batches").text
    for path in (f"/batches/{batch_id}/status", f"/batches/{batch_id}/records", f"/batches/{batch_id}/errors.csv"):
        assert sandbox.get(path).status_code == 404, path
    assert prod.get(f"/batches/{batch_id}/status").json["status"] == "queued"


# -- pages that need no worker to check ---------------------------------------------------------------


def test_upload_shows_the_processing_message_while_queued(app):
    client = log_in(app)
    page = client.get("/batches")
    response = client.post(
        "/batches",
        data={
            "csrf_token": token(page.text),
            "file_type": "txt",
            "file": (io.BytesIO(template_b_file(bad_dob=False)), "200930149_May_Learners.txt"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "YOUR FILE (200930149_MAY_LEARNERS.TXT) IS PROCESSING. THIS MAY TAKE UP TO 10 MINUTES." in response.text
    assert "QUEUED" in response.text
    # One file at a time: a second upload is refused with the service's message, nothing stored.
    again = client.post(
        "/batches",
        data={"csrf_token": token(response.text), "file_type": "txt", "file": (io.BytesIO(b"x"), "other.txt")},
        content_type="multipart/form-data",
    )
    assert again.status_code in (400, 409) and 'role="alert"' in again.text
    wrong = client.post(
        "/batches",
        data={"csrf_token": token(response.text), "file_type": "xml", "file": (io.BytesIO(b"x"), "learners.txt")},
        content_type="multipart/form-data",
    )
    assert wrong.status_code == 400 and "THE FILE SELECTED IS NOT A .XML FILE. PLEASE UPLOAD A .XML FILE." in wrong.text


def test_manual_entry_keeps_rows_with_errors_and_reports_them_per_row(app):
    client = log_in(app)
    page = client.get("/activities/200930054?board=NC&rows=2")
    row = {
        "last_name": "Test",
        "completion_date": "05/25/2026",
        "dob": "07/01",
        "credits": "5",
        "credit_type": "AMA PRA Category 1",
        "learner_id_type": "License",
    }
    data = {"csrf_token": token(page.text), "board": "NC", "row": ["1", "2"], "save": "1"}
    data.update({f"r1-{k}": v for k, v in {**row, "first_name": "Traci", "learner_id": "999993"}.items()})
    data.update({f"r2-{k}": v for k, v in {**row, "first_name": "Traci", "learner_id": "999998"}.items()})
    response = client.post("/activities/200930054", data=data)
    assert response.status_code == 200
    html = response.text
    assert html.count(MSG_664) == 2  # in the Errors list and under its row
    assert 'value="999998"' in html and 'name="r2-first_name"' in html  # the wrong row keeps its values
    assert 'name="r1-first_name"' not in html and "ACCEPTED" in html  # the saved row is shown, not re-sent


def test_entry_rows_are_added_and_removed_without_javascript(app):
    client = log_in(app)
    page = client.get("/activities/200930149?board=ABIM&rows=1")
    base = {"csrf_token": token(page.text), "board": "ABIM", "row": "1", "r1-first_name": "Test2"}
    added = client.post("/activities/200930149", data={**base, "add_row": "1"})
    assert added.status_code == 200
    assert 'id="r1-first_name"' in added.text and 'value="Test2"' in added.text and 'id="r2-first_name"' in added.text
    removed = client.post("/activities/200930149", data={**base, "row": ["1", "2"], "remove_row": "1"})
    assert 'id="r1-first_name"' not in removed.text and 'id="r2-first_name"' in removed.text
    empty = client.post("/activities/200930149", data={**base, "r1-first_name": "", "save": "1"})
    assert empty.status_code == 400 and "Enter at least one learner before saving." in empty.text
