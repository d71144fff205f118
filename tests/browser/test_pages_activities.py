"""Home, Activities and Settings in a real browser (Debian's Chromium through Playwright, against
gunicorn on loopback): register an activity with its boards, edit it, reach its participants from the
list; manage people and web-service credentials; a keyboard-only registration; 400 px wide."""

from __future__ import annotations

import re

import pytest
import requests

from tests.browser.support import NARROW, launch, log_in, new_page, no_horizontal_scroll, unavailable_reason
from tests.browser.test_pages import expect_text
from tests.conftest import SANDBOX_PASSWORD, SANDBOX_USER, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD

REASON = unavailable_reason()
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(REASON is not None, reason=f"browser tests skipped: {REASON}")]
NEW_PAGES = ["/home", "/manage/activities", "/manage/activities/new", "/manage/activities/200930149/edit", "/settings"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch(p)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    page = new_page(browser)
    log_in(page, server.base_url, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD)
    yield page
    page.context.close()


def focused(page) -> str:
    return page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()")


def tab_to(page, target: str, most: int = 80) -> None:
    """Press Tab until the element with this id (or text) has the focus."""
    for _ in range(most):
        if focused(page) == target:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {target!r}; focus is on {focused(page)!r}")


def test_register_an_activity_edit_it_and_reach_its_participants(page, server):
    expect_text(page.locator("h1"), "Home")
    expect_text(page.get_by_test_id("person-name"), "Johnny Tester")
    page.get_by_role("link", name="Register an activity").click()
    page.get_by_label("Activity title").fill("Grand Rounds by Web")
    page.get_by_label("Provider activity ID (optional)").fill("GR-WEB-1")
    page.get_by_label("Activity type").fill("Regularly Scheduled Series")
    page.get_by_label("Start date").fill("02/01/2026")
    page.get_by_label("End date").fill("01/01/2026")  # before the start: the service refuses it
    page.get_by_label("AMA PRA Category 1 credits").fill("12.5")
    page.get_by_label("Registered for ABIM").check()
    page.get_by_label("Maximum points, ABIM").fill("12.5")
    page.get_by_role("group", name="Credit types, ABIM").get_by_label("ABIM MOC Part II").check()
    page.get_by_role("button", name="Register activity").click()
    expect_text(page.locator("#activity-problems"), "The activity's end date is before its start date.")
    assert page.get_by_label("Activity title").input_value() == "Grand Rounds by Web"  # kept as typed
    assert page.get_by_label("Registered for ABIM").is_checked()
    page.get_by_label("End date").fill("12/31/2026")
    page.get_by_role("button", name="Register activity").click()

    page.wait_for_url("**/manage/activities?year=2026")
    expect_text(page.locator(".messages"), "(Grand Rounds by Web) saved.")
    activity_id = re.search(r"Activity (\d{9}) ", page.locator(".messages").inner_text())[1]
    row = page.locator("tr", has_text=activity_id)
    expect_text(row, "Grand Rounds by Web")
    expect_text(row, "ABIM")
    # Edit: a second board, and the title.
    row.get_by_role("link", name="Edit Grand Rounds by Web").click()
    assert page.get_by_label("Maximum points, ABIM").input_value() == "12.5"
    page.get_by_label("Activity title").fill("Grand Rounds by Web, edited")
    page.get_by_label("Registered for NC").check()
    page.get_by_label("Maximum points, NC").fill("12.5")
    nc = page.get_by_role("group", name="Credit types, NC")
    nc.get_by_label("AMA PRA Category 1").check()
    nc.get_by_label("Controlled Substance").check()
    page.get_by_role("button", name="Save activity").click()
    row = page.locator("tr", has_text=activity_id)
    expect_text(row, "Grand Rounds by Web, edited")
    expect_text(row, "ABIM, NC")
    # The same activity over the JSON API, as SaveActivity would have stored it.
    stored = requests.get(
        f"{server.base_url}/api/v1/activities/{activity_id}", timeout=30, auth=(SANDBOX_USER, SANDBOX_PASSWORD)
    ).json()
    assert (stored["Title"], stored["ProviderActivityID"], stored["StartDate"], stored["Credits"]) == (
        "Grand Rounds by Web, edited",
        "GR-WEB-1",
        "2026-02-01",
        "12.50",
    )
    assert [r["Board"] for r in stored["Registrations"]["Registration"]] == ["ABIM", "NC"]
    # From the list to its participants (the Activity Detail), and to the Participant Summary.
    row.get_by_role("link", name="Participants of Grand Rounds by Web, edited").click()
    expect_text(page.locator("h1"), "Grand Rounds by Web, edited")
    assert f"/activities/{activity_id}" in page.url
    page.get_by_role("link", name="Activities", exact=True).click()
    page.get_by_role("link", name="View Participant Summary").click()
    page.wait_for_url("**/activities?year=2026")
    page.get_by_role("link", name="Home", exact=True).click()
    page.get_by_role("link", name="Report Participants").click()
    expect_text(page.locator("h1"), "Activity Learner Summary")
    expect_text(page.locator("table"), "Grand Rounds by Web, edited")


def test_settings_manage_people_and_credentials(page, server, browser):
    page.get_by_role("navigation", name="Learner reporting").get_by_role("link", name="Settings").click()
    people = page.locator("section", has=page.get_by_role("heading", name="People (web users)"))
    expect_text(people, SANDBOX_WEB_EMAIL)
    expect_text(people, "You")
    page.get_by_label("Name", exact=True).fill("Ann Other")
    page.get_by_label("E-mail", exact=True).fill("ann.other@testprovider.org")
    page.get_by_role("button", name="Add person").click()
    expect_text(page.locator("#shown-secret"), "ann.other@testprovider.org")
    ann_password = page.get_by_label("Password").input_value()
    # Ann logs in with it and sees her own name.
    ann = new_page(browser)
    log_in(ann, server.base_url, "ann.other@testprovider.org", ann_password)
    expect_text(ann.get_by_test_id("person-name"), "Ann Other")
    # Disabled, her session ends on her next page.
    page.goto(server.base_url + "/settings")
    page.get_by_role("button", name="Disable ann.other@testprovider.org").click()
    expect_text(page.locator(".messages"), "Web user ann.other@testprovider.org disabled.")
    ann.goto(server.base_url + "/activities")
    assert "/login" in ann.url
    ann.context.close()
    # One's own log-in has no Disable button.
    assert page.get_by_role("button", name=f"Disable {SANDBOX_WEB_EMAIL}").count() == 0

    # A web-service credential: made here, it works for the JSON API (and never for the pages).
    page.get_by_label("User name").fill("lms-connector")
    page.get_by_role("button", name="Add credential").click()
    expect_text(page.locator("#shown-secret"), "lms-connector")
    secret = page.get_by_label("Password").input_value()
    api = f"{server.base_url}/api/v1/activities/200930149"
    assert requests.get(api, auth=("lms-connector", secret), timeout=30).status_code == 200
    page.get_by_role("button", name="Reset password for lms-connector").click()
    rotated = page.get_by_label("Password").input_value()
    assert rotated != secret
    assert requests.get(api, auth=("lms-connector", secret), timeout=30).status_code == 401
    assert requests.get(api, auth=("lms-connector", rotated), timeout=30).status_code == 200
    page.get_by_role("button", name="Disable lms-connector").click()
    expect_text(page.locator(".messages"), "Web-service credential lms-connector disabled.")
    assert requests.get(api, auth=("lms-connector", rotated), timeout=30).status_code == 401
    other = new_page(browser)
    other.goto(server.base_url + "/login")
    other.get_by_label("E-mail", exact=True).fill("lms-connector")
    other.get_by_label("Password", exact=True).fill(rotated)
    other.get_by_role("button", name="Log in").click()
    assert "/login" in other.url
    other.context.close()


def test_keyboard_only_registration(browser, server):
    page = new_page(browser)
    log_in(page, server.base_url, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD)
    page.keyboard.press("Tab")
    assert focused(page) == "Skip to main content"
    tab_to(page, "Register an activity")
    page.keyboard.press("Enter")
    page.wait_for_url("**/manage/activities/new")
    tab_to(page, "title")
    for field, text in (
        ("title", "Keyboard Course"),
        ("provider_activity_id", "KB-1"),
        ("activity_type", "Course"),
        ("start_date", "03/01/2026"),
        ("end_date", "03/31/2026"),
        ("reporting_year", ""),
        ("credits", "2"),
    ):
        assert focused(page) == field  # the fields come in reading order
        page.keyboard.type(text)
        page.keyboard.press("Tab")
    tab_to(page, "reg-TN")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert focused(page) == "points-TN"
    page.keyboard.type("2")
    page.keyboard.press("Tab")
    assert focused(page) == "types-TN-1"
    page.keyboard.press("Space")  # AMA PRA Category 1
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert focused(page) == "types-TN-3"
    page.keyboard.press("Space")  # Medical Ethics
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "points-TN"
    page.keyboard.press("Enter")  # submits the form from a text field
    page.wait_for_url("**/manage/activities?year=2026")
    expect_text(page.locator(".messages"), "(Keyboard Course) saved.")
    activity_id = re.search(r"Activity (\d{9}) ", page.locator(".messages").inner_text())[1]
    stored = requests.get(
        f"{server.base_url}/api/v1/activities/{activity_id}", timeout=30, auth=(SANDBOX_USER, SANDBOX_PASSWORD)
    ).json()
    assert stored["Registrations"]["Registration"] == [
        {"Board": "TN", "MaxPoints": "2", "CreditTypes": {"CreditType": ["AMA PRA Category 1", "Medical Ethics"]}}
    ]
    page.context.close()


@pytest.mark.parametrize("path", NEW_PAGES)
def test_new_pages_fit_400_px(browser, server, path):
    page = new_page(browser, NARROW)
    log_in(page, server.base_url, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD)
    page.goto(server.base_url + path)
    assert page.locator("h1").count() == 1
    assert no_horizontal_scroll(page), path
    page.context.close()
