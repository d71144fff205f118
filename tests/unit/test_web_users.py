"""People's web users (the pages' log-in) beside web-service credentials: each logs in only where it
belongs, a provider manages only its own in its own environment, and the seed and the CLI make one."""

from __future__ import annotations

import re

import pytest

from pars_ws.service import accounts
from pars_ws.service.auth import AuthenticationFailed
from pars_ws.service.sandbox import seed_sandbox
from tests.conftest import (
    PROVIDER_ID,
    SANDBOX_PASSWORD,
    SANDBOX_USER,
    SANDBOX_WEB_EMAIL,
    SANDBOX_WEB_PASSWORD,
    make_services,
    run_cli,
    service_env,
)


@pytest.fixture(scope="module")
def services(database_url):
    svc = make_services(database_url, login_max_failures=3)
    seed_sandbox(svc, username=SANDBOX_USER, password=SANDBOX_PASSWORD, web_password=SANDBOX_WEB_PASSWORD)
    yield svc
    svc.engine.dispose()


@pytest.fixture(scope="module")
def person(services):
    return services.web_auth.authenticate(SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD)


def test_the_seed_s_web_user_logs_in_to_the_pages_and_the_credential_does_not(services, person):
    assert (person.person, person.environment, person.provider_id) == ("Johnny Tester", "sandbox", PROVIDER_ID)
    assert person.credential_pk == 0  # a web user's upload came through no credential
    assert services.web_auth.authenticate(SANDBOX_WEB_EMAIL.upper(), SANDBOX_WEB_PASSWORD) == person
    with pytest.raises(AuthenticationFailed):
        services.web_auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)  # a credential is not a web user
    with pytest.raises(AuthenticationFailed):
        services.auth.authenticate(SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD)  # nor a web user a credential
    # A session proof of one kind is no proof of the other.
    proof = services.web_auth.session_proof(person)
    assert services.web_auth.resume(SANDBOX_WEB_EMAIL, proof) == person
    assert services.auth.resume(SANDBOX_WEB_EMAIL, proof) is None


def test_creating_a_web_user_checks_what_it_needs(services, person):
    secret = accounts.create_web_user(
        services, provider_id=PROVIDER_ID, environment="sandbox", name=" Ann Other ", email=" Ann.Other@Example.ORG "
    )
    assert len(secret) >= 24
    ann = services.web_auth.authenticate("ann.other@example.org", secret)
    assert (ann.person, ann.username) == ("Ann Other", "ann.other@example.org")
    for name, email, password, says in (
        ("Ann Again", "ann.other@example.org", None, "already"),
        ("", "x@example.org", None, "name is required"),
        ("X", "not-an-address", None, "e-mail address"),
        ("X", "x@example.org", "short", "at least 12"),
    ):
        with pytest.raises(accounts.AccountRefused, match=says):
            accounts.create_web_user(
                services, provider_id=PROVIDER_ID, environment="sandbox", name=name, email=email, password=password
            )
    with pytest.raises(accounts.AccountRefused, match="no provider"):
        accounts.create_web_user(
            services, provider_id="0000099", environment="sandbox", name="X", email="x@example.org"
        )


def test_a_provider_manages_only_its_own_in_its_own_environment(services, person):
    accounts.create_credential(
        services, provider_id=PROVIDER_ID, environment="production", username="prod-cred", password="prod-cred-secret"
    )
    accounts.create_web_user(
        services,
        provider_id=PROVIDER_ID,
        environment="production",
        name="Prod Person",
        email="prod@example.org",
        password="prod-password-1",
    )
    # A sandbox person sees and changes sandbox log-ins only.
    assert "prod-cred" not in {c.username for c in accounts.credentials(services, owner=person)}
    assert "prod@example.org" not in {u.email for u in accounts.web_users(services, PROVIDER_ID, "sandbox")}
    for change in (
        lambda: accounts.rotate_credential(services, "prod-cred", owner=person),
        lambda: accounts.set_disabled(services, "prod-cred", True, owner=person),
        lambda: accounts.reset_web_user_password(services, "prod@example.org", owner=person),
        lambda: accounts.set_web_user_disabled(services, "prod@example.org", True, owner=person),
    ):
        with pytest.raises(accounts.AccountRefused, match="^no "):
            change()
    services.auth.authenticate("prod-cred", "prod-cred-secret")  # untouched
    services.web_auth.authenticate("prod@example.org", "prod-password-1")
    with pytest.raises(accounts.AccountRefused, match="your own log-in"):
        accounts.set_web_user_disabled(services, SANDBOX_WEB_EMAIL, True, owner=person)
    # Its own: a new credential in its environment, its secret shown once, rotated and disabled.
    secret = accounts.add_credential(services, person, "page-made-cred")
    made = services.auth.authenticate("page-made-cred", secret)
    assert (made.environment, made.provider_id) == ("sandbox", PROVIDER_ID)
    with pytest.raises(accounts.AccountRefused, match="no spaces"):
        accounts.add_credential(services, person, "two words")
    rotated = accounts.rotate_credential(services, "page-made-cred", owner=person)
    with pytest.raises(AuthenticationFailed):
        services.auth.authenticate("page-made-cred", secret)
    accounts.set_disabled(services, "page-made-cred", True, owner=person)
    with pytest.raises(AuthenticationFailed):
        services.auth.authenticate("page-made-cred", rotated)


def test_failed_logins_lock_a_web_user_and_a_password_reset_lifts_it(services):
    accounts.create_web_user(
        services,
        provider_id=PROVIDER_ID,
        environment="sandbox",
        name="Locked Out",
        email="locked@example.org",
        password="right-password-1",
    )
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            services.web_auth.authenticate("locked@example.org", "wrong")
    with pytest.raises(AuthenticationFailed):  # locked: the right password too
        services.web_auth.authenticate("locked@example.org", "right-password-1")
    services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)  # the credentials' counts are their own
    new = accounts.reset_web_user_password(services, "locked@example.org")
    assert services.web_auth.authenticate("locked@example.org", new).person == "Locked Out"


def test_the_cli_seeds_prints_and_adds_web_users(database_url, tmp_path):
    env = service_env(database_url, tmp_path)
    seeded = run_cli(
        env, "sandbox", "seed", "--username", "cli-seed-user", "--web-password", SANDBOX_WEB_PASSWORD
    ).stdout
    printed = re.search(r"sandbox web log-in for the pages.*\n\s+E-mail:\s+(\S+)\n\s+Password:\s+(\S+)", seeded)
    assert printed and (printed[1], printed[2]) == (SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD), seeded
    added = run_cli(
        env,
        "users",
        "add",
        "--provider-id",
        PROVIDER_ID,
        "--environment",
        "sandbox",
        "--name",
        "Cli Person",
        "--email",
        "Cli.Person@example.org",
    ).stdout
    password = re.search(r"Password: (\S+)", added)[1]
    assert (
        "cli.person@example.org\tCli Person\tactive"
        in run_cli(env, "users", "list", "--provider-id", PROVIDER_ID, "--environment", "sandbox").stdout
    )
    refused = run_cli(
        env,
        "users",
        "add",
        "--provider-id",
        PROVIDER_ID,
        "--environment",
        "sandbox",
        "--name",
        "Again",
        "--email",
        "cli.person@example.org",
        check=False,
    )
    assert refused.returncode == 2 and "already" in refused.stderr
    run_cli(env, "users", "disable", "cli.person@example.org")
    services = make_services(database_url)
    try:
        with pytest.raises(AuthenticationFailed):
            services.web_auth.authenticate("cli.person@example.org", password)
        run_cli(env, "users", "disable", "--enable", "cli.person@example.org")
        assert services.web_auth.authenticate("cli.person@example.org", password).person == "Cli Person"
    finally:
        services.engine.dispose()


# -- the pages (Flask's test client on the real app and database) -------------------------------------


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html)[1]


def _pages_as(services, email: str, password: str):
    from pars_ws.entrypoints.web import create_web_app

    client = create_web_app(services).test_client()
    page = client.get("/login")
    assert (
        client.post("/login", data={"csrf_token": _token(page.text), "email": email, "password": password}).status_code
        == 303
    )
    return client


def test_the_pages_forms_need_their_token_and_stay_in_their_environment(services):
    accounts.create_web_user(
        services,
        provider_id=PROVIDER_ID,
        environment="production",
        name="Prod Pages",
        email="prod.pages@example.org",
        password="prod-pages-password",
    )
    accounts.create_credential(
        services,
        provider_id=PROVIDER_ID,
        environment="production",
        username="prod-pages-cred",
        password="prod-pages-cred-secret",
    )
    sandbox = _pages_as(services, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD)
    token = _token(sandbox.get("/settings").text)
    for path, data in (
        ("/settings/users", {"name": "X", "email": "x@example.org"}),
        ("/settings/users/disable", {"email": "prod.pages@example.org"}),
        ("/settings/credentials", {"username": "forged"}),
        ("/settings/credentials/rotate", {"username": SANDBOX_USER}),
        ("/manage/activities/new", {"title": "Forged"}),
    ):
        assert sandbox.post(path, data=data).status_code == 400, path  # no CSRF token
    assert accounts.web_users(services, PROVIDER_ID, "sandbox")[0].disabled is False
    # Production log-ins are neither listed nor changed from a sandbox session.
    settings = sandbox.get("/settings").text
    assert "prod.pages@example.org" not in settings and "prod-pages-cred" not in settings
    refused = sandbox.post("/settings/credentials/rotate", data={"csrf_token": token, "username": "prod-pages-cred"})
    assert refused.status_code == 400 and "no credential" in refused.text
    services.auth.authenticate("prod-pages-cred", "prod-pages-cred-secret")
    # A production person cannot open a sandbox activity to edit it.
    prod = _pages_as(services, "prod.pages@example.org", "prod-pages-password")
    assert prod.get("/manage/activities/200930149/edit").status_code == 404
    assert (
        prod.post(
            "/manage/activities/200930149/edit",
            data={"csrf_token": _token(prod.get("/settings").text), "title": "Taken over"},
        ).status_code
        == 404
    )


def test_the_activity_form_answers_with_the_same_codes_as_save_activity(services):
    client = _pages_as(services, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD)
    form = {
        "csrf_token": _token(client.get("/manage/activities/new").text),
        "title": "Forged Types",
        "activity_type": "Course",
        "start_date": "2026-01-01",
        "end_date": "12/31/2026",
        "credits": "3",
        "reg-ABO": "yes",
        "points-ABO": "3",
        "types-ABO": ["ABIM MOC Part II"],
    }
    refused = client.post("/manage/activities/new", data=form)
    assert refused.status_code == 400 and "676 - " in refused.text and "(ABO: ABIM MOC Part II)" in refused.text
    unread = client.post(
        "/manage/activities/new", data={**form, "credits": "three", "points-ABO": "", "start_date": "02/30/2026"}
    )
    assert unread.status_code == 400
    for says in (
        "Credits: &#39;three&#39; is not a number.",
        "ABO: Maximum points is required.",
        "Start date: &#39;02/30/2026&#39; is not a date",
    ):
        assert says in unread.text, says
    saved = client.post("/manage/activities/new", data={**form, "types-ABO": ["abo moc part ii"]})
    assert saved.status_code == 303
    [activity_id] = re.findall(r"Activity (\d{9}) \(Forged Types\) saved", client.get(saved.location).text)
    stored = services.activities.get(
        services.web_auth.authenticate(SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD), activity_id
    )
    assert stored.registrations[0].credit_types == ("ABO MOC Part II",)  # the catalogue's name, as SOAP stores it


def test_0010_adds_and_drops_web_users_and_a_first_start_without_them_says_how_to_add_one(tmp_path):
    from alembic import command
    from sqlalchemy import inspect

    from pars_ws.adapters.database import make_engine
    from pars_ws.adapters.migrate import alembic_config, upgrade

    url = f"sqlite:///{tmp_path}/before-web-users.db"
    env = service_env(url, tmp_path)
    run_cli(env, "db", "upgrade", "--revision", "0009")
    run_cli(
        env,
        "credentials",
        "create",
        "--provider-id",
        PROVIDER_ID,
        "--environment",
        "sandbox",
        "--username",
        "old-cred",
        "--provider-name",
        "Old",
        "--provider-email",
        "old@example.org",
    )
    first_start = run_cli(env, "db", "prepare", "--seed").stdout  # what `serve` runs first
    assert "no web users yet: add one for the pages with 'pars-ws users add" in first_start
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert "web_users" in inspect(conn).get_table_names()
        command.downgrade(alembic_config(url), "0009")
        with engine.connect() as conn:
            assert "web_users" not in inspect(conn).get_table_names()
            assert "credentials" in inspect(conn).get_table_names()
        upgrade(url)
    finally:
        engine.dispose()
    run_cli(
        env,
        "users",
        "add",
        "--provider-id",
        PROVIDER_ID,
        "--environment",
        "sandbox",
        "--name",
        "New",
        "--email",
        "new@example.org",
        "--password",
        "new-person-password",
    )
    assert "no web users" not in run_cli(env, "db", "prepare", "--seed").stdout
