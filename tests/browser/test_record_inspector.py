"""The record inspector in a real browser (Chromium through Playwright, gunicorn on loopback): reached
from learner search and from the activity detail, by keyboard alone, at 400 px; only the record's own
provider and environment see it."""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import pytest
import requests

from tests.browser.support import NARROW, launch, log_in, new_page, no_horizontal_scroll, unavailable_reason
from tests.conftest import SANDBOX_PASSWORD, SANDBOX_USER, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD, run_cli
from tests.support import record, soap11_save, template_file

REASON = unavailable_reason()
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(REASON is not None, reason=f"browser tests skipped: {REASON}")]

AUTH = (SANDBOX_USER, SANDBOX_PASSWORD)
REJECTED = "ccid:testprovider.org:inspect-664"
MSG_664 = "664: Diplomate date of birth does not match Board record for this diplomate ID."
SEARCH = "/search?last_name=Account11&search=1"


def inspector_path(credit_id: str) -> str:
    return "/records/inspect?credit_id=" + quote(credit_id, safe="")


@pytest.fixture(scope="module")
def records(server):
    """Test11 Account11 over SOAP (Submitted, then Rejected 664 by the review) and a Template B file."""
    body = soap11_save([record(REJECTED, learner_id="1000104", first="Test11", last="Account11", dob="1900-01-01")])
    answer = requests.post(
        server.service_url,
        data=body,
        timeout=30,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"SaveLearnerActivity"'},
    )
    assert "<p:Status>Submitted</p:Status>" in answer.text or ">Submitted<" in answer.text, answer.text
    assert requests.post(server.base_url + "/api/review/run", auth=AUTH, timeout=30).json()["rejected"] == 1
    upload = requests.post(
        server.base_url + "/api/batches",
        auth=AUTH,
        timeout=60,
        data={"file_type": "txt"},
        files={"file": ("inspect.txt", template_file(1, bad={}))},
    ).json()
    deadline = time.monotonic() + 60
    while (
        requests.get(f"{server.base_url}/api/batches/{upload['id']}", auth=AUTH, timeout=30).json()["status"] != "done"
    ):
        assert time.monotonic() < deadline, "batch not processed"
        time.sleep(0.2)
    batch = requests.get(f"{server.base_url}/api/batches/{upload['id']}/records", auth=AUTH, timeout=30).json()
    return {"batch_id": upload["id"], "batch_credit_id": batch["records"][0]["credit_id"]}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch(p)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server, records):
    page = new_page(browser)
    log_in(page, server.base_url, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD)
    yield page
    page.context.close()


def expect_text(locator, text: str) -> None:
    from playwright.sync_api import expect

    expect(locator).to_contain_text(text)


def test_from_search_to_the_inspector_and_back(page, server):
    page.goto(server.base_url + SEARCH)
    page.get_by_role("link", name=re.compile("Inspect the record of Test11 Account11")).click()
    expect_text(page.locator("h1"), "Record inspector")
    main = page.locator("main")
    expect_text(main, REJECTED)
    expect_text(page.locator(".rule-outcomes"), MSG_664)  # the code with its verbatim message
    history = page.locator("table.history tbody tr")
    assert [history.nth(i).locator("td").nth(1).inner_text() for i in range(history.count())] == [
        "Submitted",
        "Rejected",
    ]
    expect_text(page.locator("p.review"), "ABIM reviewed it")
    raw = page.locator("pre.raw-request")
    text = raw.inner_text()
    # The request as sent, escaped (text, never markup), its password blanked.
    assert "<p:SaveLearnerActivity>" in text and "<p:Password>********</p:Password>" in text
    assert SANDBOX_PASSWORD not in page.content()
    assert raw.locator("*").count() == 0
    page.get_by_role("link", name="Back").click()
    page.wait_for_url("**" + SEARCH)
    expect_text(page.locator("#results"), "1000104")


def test_from_activity_detail_to_the_inspector_and_its_links(page, server, records):
    page.goto(server.base_url + "/activities/200930149?board=ABIM")
    page.get_by_role("link", name=re.compile("Inspect the record of Test11 Account11")).click()
    expect_text(page.locator("main"), REJECTED)
    page.get_by_role("link", name="Other records of Test11 Account11").click()
    expect_text(page.locator("#results"), "1000104")
    # A batch record names its upload and row, and links to it.
    page.goto(server.base_url + inspector_path(records["batch_credit_id"]))
    expect_text(page.locator("main"), "Uploaded in a batch file")
    page.get_by_role("link", name=re.compile(r"Batch upload inspect\.txt, row 1")).click()
    page.wait_for_url(f"**/batches/{records['batch_id']}/records")
    page.go_back()
    page.get_by_role("link", name=re.compile("^Activity 200930149")).click()
    page.wait_for_url("**/activities/200930149?board=ABPATH")


def test_keyboard_only_reaches_the_inspector(page, server):
    page.goto(server.base_url + SEARCH)
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent").startswith("Inspect the record of Test11"):
            break
    else:
        pytest.fail("the Inspect link is not reachable by Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/records/inspect?**")
    expect_text(page.locator("h1"), "Record inspector")
    # The raw request's box takes focus, so it scrolls by keyboard.
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('raw-request')"):
            break
    else:
        pytest.fail("the raw request cannot be reached by Tab")


def test_inspector_fits_400_px(browser, server, records):
    page = new_page(browser, NARROW)
    log_in(page, server.base_url, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD)
    page.goto(server.base_url + inspector_path(REJECTED))
    expect_text(page.locator("main"), MSG_664)
    assert no_horizontal_scroll(page)
    box = page.locator("pre.raw-request").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= NARROW
    page.context.close()


def test_only_the_records_provider_and_environment_see_it(browser, server, records):
    run_cli(
        server.env,
        "credentials",
        "create",
        "--provider-id",
        "1234567",
        "--environment",
        "production",
        "--username",
        "inspect-production",
        "--password",
        "production-password",
    )
    run_cli(
        server.env,
        "credentials",
        "create",
        "--provider-id",
        "7654321",
        "--environment",
        "sandbox",
        "--username",
        "inspect-other",
        "--password",
        "other-password",
        "--provider-name",
        "Other Provider",
        "--provider-domain",
        "other.example",
        "--provider-email",
        "cme@other.example",
    )
    run_cli(
        server.env,
        "users",
        "add",
        "--provider-id",
        "1234567",
        "--environment",
        "production",
        "--name",
        "Production Person",
        "--email",
        "production@testprovider.org",
        "--password",
        "production-password",
    )
    run_cli(
        server.env,
        "users",
        "add",
        "--provider-id",
        "7654321",
        "--environment",
        "sandbox",
        "--name",
        "Other Person",
        "--email",
        "person@other.example",
        "--password",
        "other-password",
    )
    for user, password in (
        ("production@testprovider.org", "production-password"),
        ("person@other.example", "other-password"),
    ):
        page = new_page(browser)
        log_in(page, server.base_url, user, password)
        for credit_id in (REJECTED, records["batch_credit_id"]):
            answer = page.goto(server.base_url + inspector_path(credit_id))
            assert answer.status == 404, (user, credit_id)
            assert credit_id not in page.content()
        page.context.close()
    page = new_page(browser)
    log_in(page, server.base_url, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD)
    assert page.goto(server.base_url + inspector_path("ccid:testprovider.org:no-such-record")).status == 404
    assert page.goto(server.base_url + "/records/inspect").status == 404
    assert page.goto(server.base_url + inspector_path(REJECTED)).status == 200
    page.context.close()
