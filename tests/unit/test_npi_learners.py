"""A learner reported by NPI is kept with that NPI as reported, under the registry learner it matched:
shown and found by the NPI, and by the board's own ID; points held count across both ways of naming."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from pars_ws.domain.records import ReportedRecord, Source, Status
from pars_ws.entrypoints.web import create_web_app
from pars_ws.service import search
from pars_ws.service.sandbox import seed_sandbox
from tests.conftest import SANDBOX_PASSWORD, SANDBOX_USER, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD, make_services

ACTIVITY = "200930054"  # North Carolina Course: ME-MD and NC


def me_md(credit_id: str, id_type: str, learner_id: str, credits: str = "5") -> ReportedRecord:
    return ReportedRecord(
        index=1,
        action="Add",
        credit_id=credit_id,
        board="ME-MD",
        activity_id=ACTIVITY,
        learner_id_type=id_type,
        learner_id=learner_id,
        first_name="Traci",
        last_name="Tester",
        dob="11/10",
        completion_date="03/02/2026",
        credits=credits,
        credit_types=("AMA PRA Category 1",),
    )


@pytest.fixture(scope="module")
def world(database_url):
    services = make_services(database_url)
    seed_sandbox(services, username=SANDBOX_USER, password=SANDBOX_PASSWORD, web_password=SANDBOX_WEB_PASSWORD)
    account = services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    [j] = services.learners.save(
        account,
        [me_md("ccid:npi.test:1", "NPI", " 1234567893 ")],
        source=Source.SOAP,
        raw=b"<test/>",
        correlation_id="npi",
    )
    assert j.ok, j.codes
    yield services, account
    services.engine.dispose()


def test_the_record_keeps_the_npi_as_reported_and_the_registry_learner_it_matched(world):
    services, account = world
    [rec] = services.learners.status_by_credit_id(account, "ccid:npi.test:1")
    assert (rec.learner_id_type, rec.learner_id, rec.npi) == ("NPI", "1234567893", "1234567893")
    assert (rec.matched_learner_id, rec.learner_key) == ("MD9966", "md9966")
    assert rec.status == Status.ACCEPTED


@pytest.mark.parametrize("learner_id", ["1234567893", " 1234567893", "MD9966", "md9966"])
def test_search_finds_it_by_the_npi_and_by_the_boards_id(world, learner_id):
    services, account = world
    found = search.search(services, account, search.SearchFilter(title="North Carolina", learner_id=learner_id))
    assert [r.record.credit_id for r in found.items] == ["ccid:npi.test:1"]


def test_status_by_learner_finds_it_by_the_npi(world):
    services, account = world
    found = services.learners.status_by_learner(account, ACTIVITY, "1234567893", dt.date(2026, 3, 2))
    assert [r.credit_id for r in found] == ["ccid:npi.test:1"]


def test_points_held_count_however_the_learner_was_named(world):
    """500 points in all for ME-MD: 5 reported by NPI, so 495 more by licence pass and 496 do not."""
    services, account = world
    [over] = services.learners.save(
        account,
        [me_md("ccid:npi.test:2", "License", "MD9966", "495.25")],
        source=Source.SOAP,
        raw=b"<test/>",
        correlation_id="npi-over",
    )
    assert over.codes == [711]


def test_the_record_page_shows_the_npi_and_the_board_record(world):
    services, _ = world
    client = create_web_app(services).test_client()
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    assert (
        client.post(
            "/login", data={"csrf_token": csrf, "email": SANDBOX_WEB_EMAIL, "password": SANDBOX_WEB_PASSWORD}
        ).status_code
        == 303
    )
    html = client.get(f"/records?activity_id={ACTIVITY}&board=ME-MD&learner_id=1234567893").text
    assert re.search(
        r"Learner ID: <strong>1234567893</strong> · NPI: <strong>1234567893</strong>"
        r"\s*· Board record: <strong>MD9966</strong>",
        html,
    ), html[:3000]
