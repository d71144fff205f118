"""The provider pages in a real browser: Debian's Chromium driven by Playwright against gunicorn and
its worker on loopback (the `server` fixture: sandbox seeded, PARS_TODAY fixed).

A provider's day, in order: log in, add two learners by hand (one wrong, shown on its row, then
fixed), upload a Template B file and follow it into the history, search and export, delete from the
record details. Then keyboard-only use, and every page at 400 px wide.
"""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.browser.support import (
    NARROW,
    fill_row,
    launch,
    log_in,
    new_page,
    no_horizontal_scroll,
    template_b_file,
    unavailable_reason,
)
from tests.conftest import PROVIDER_ID, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD, start_server, stop_server

REASON = unavailable_reason()
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(REASON is not None, reason=f"browser tests skipped: {REASON}")]

MSG_664 = "999998 - 664: Diplomate date of birth does not match Board record for this diplomate ID."
TRACI = dict(first="Traci", last="Test", completed="05/25/2026", dob="07/01", credits="5")


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
    page.goto(server.base_url + "/activities")  # Home's "Report Participants": where these tests start
    yield page
    page.context.close()


def expect_text(locator, text: str) -> None:
    from playwright.sync_api import expect

    expect(locator).to_contain_text(text)


def test_log_in_shows_environment_and_provider(browser, server):
    page = new_page(browser)
    page.goto(server.base_url + "/search")
    assert page.url.startswith(server.base_url + "/login")  # logged out: the log-in page first
    page.get_by_label("Provider ID").fill(PROVIDER_ID)
    page.get_by_label("E-mail", exact=True).fill(SANDBOX_WEB_EMAIL)
    page.get_by_label("Password", exact=True).fill(SANDBOX_WEB_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/search")  # back to the page asked for
    expect_text(page.get_by_test_id("environment"), "SANDBOX")
    expect_text(page.get_by_test_id("person-name"), "Johnny Tester")  # the person, not a credential
    expect_text(page.get_by_test_id("provider-name"), "Western Regional Medical Center")
    expect_text(page.get_by_test_id("provider-id"), PROVIDER_ID)
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    page.goto(server.base_url + "/activities")
    assert "/login" in page.url
    page.context.close()


def test_add_two_learners_one_with_an_error_shown_on_its_row(page, server):
    # Find the activity from the summary, as the tutorial does.
    page.get_by_label("Activity title").fill("North Carolina")
    page.get_by_role("button", name="Search").click()
    expect_text(page.locator("#summary-count"), "Showing 1 - 1 of 1 Activities")
    page.get_by_role("link", name="200930054").click()
    page.get_by_label("Board or program").select_option("NC")
    page.get_by_role("button", name="Select board or program").click()
    expect_text(page.locator(".board-line"), "North Carolina Medical Board")
    page.get_by_role("link", name="+ Add learners manually").click()
    page.get_by_role("button", name="+ Add learners manually").click()  # a second row
    fill_row(page, 1, learner_id="999993", npi="1245319599", credit_types=("AMA PRA Category 1",), **TRACI)
    fill_row(page, 2, learner_id="999998", credit_types=("AMA PRA Category 1", "Controlled Substance"), **TRACI)
    page.get_by_role("button", name="Save", exact=True).click()

    errors = page.locator("#entry-errors")
    expect_text(errors, "Errors:")
    expect_text(errors, MSG_664)
    expect_text(page.locator("#r2-errors"), MSG_664)  # on the row itself
    saved = page.locator("tr.saved-row")
    expect_text(saved, "999993")
    expect_text(saved, "ACCEPTED")
    # The wrong row keeps what was typed, so only the DOB needs fixing.
    assert page.get_by_label("First name, row 2").input_value() == "Traci"
    assert page.get_by_label("Learner ID #, row 2").input_value() == "999998"
    assert page.get_by_label("Controlled Substance").is_checked()
    assert page.get_by_label("First name, row 1").count() == 0  # the saved row is not sent again
    page.get_by_label("DOB, row 2").fill("09/09")
    page.get_by_role("button", name="Save", exact=True).click()
    expect_text(page.locator(".messages"), "Traci Test (999998) saved: ACCEPTED")
    learners = page.locator("#learners")
    expect_text(learners, "999993")
    expect_text(learners, "999998")
    expect_text(page.locator("#learners-count"), "Showing 1 - 2 of 2 result(s) found")


def test_upload_a_template_b_file_and_see_it_in_the_history(page, server):
    page.get_by_role("link", name="Batch Upload Learners").click()
    page.get_by_label("Tab delimited file (.txt)").check()
    page.get_by_label("File to upload").set_input_files(
        files=[{"name": "200930149_May_Learners.txt", "mimeType": "text/plain", "buffer": template_b_file()}]
    )
    page.get_by_role("button", name="Upload file").click()
    message = page.locator("#processing")
    first = message.inner_text()
    assert (
        "YOUR FILE (200930149_MAY_LEARNERS.TXT) IS PROCESSING. THIS MAY TAKE UP TO 10 MINUTES." in first
        or "YOUR FILE (200930149_MAY_LEARNERS.TXT) HAS FINISHED PROCESSING" in first
    ), first
    # The page checks the status by itself and shows the result when the worker is done.
    message.get_by_text("HAS FINISHED PROCESSING").wait_for(timeout=60_000)
    expect_text(message, "3 RECORDS PROCESSED, 1 RECORD NOT PROCESSED")
    row = page.locator("#history-table tbody tr", has_text="200930149_May_Learners.txt")
    expect_text(row, "3 Records Processed")
    expect_text(row, "1 Record Not Processed")
    with page.expect_download() as info:
        row.get_by_role("link", name="Download Errors").click()
    report = list(csv.reader(io.StringIO(open(info.value.path(), encoding="utf-8-sig").read())))
    assert (
        len(report) == 2
        and report[1][6] == "Account5"
        and report[1][-2:] == ["664", "Diplomate date of birth does not match Board record for this diplomate ID."]
    )
    row.get_by_role("link", name="View").click()
    processed = page.locator("#processed tbody tr")
    assert processed.count() == 3
    expect_text(page.locator("#processed"), "Account2")
    # The same file again within 30 days is refused, and can be forced.
    page.goto(server.base_url + "/batches")
    page.get_by_label("File to upload").set_input_files(
        files=[{"name": "again.txt", "mimeType": "text/plain", "buffer": template_b_file()}]
    )
    page.get_by_role("button", name="Upload file").click()
    expect_text(page.locator("#upload-error"), "THIS FILE WAS ALREADY UPLOADED")
    assert page.get_by_label("Upload this file again anyway", exact=False).is_visible()


def test_search_and_export(page, server):
    page.get_by_role("link", name="Learner Search").click()
    page.get_by_role("button", name="Search").click()  # nothing required given: the page says what is
    expect_text(page.get_by_role("alert"), "Give at least one of")
    page.get_by_label("Learner last name").fill("Test")
    page.get_by_label("State medical board").select_option("NC")
    page.get_by_role("button", name="Search").click()
    results = page.locator("#results")
    expect_text(results, "999993")
    expect_text(results, "999998")
    expect_text(page.locator("#results-count"), "of 2 records")
    with page.expect_download() as info:
        page.get_by_role("button", name="Export results").click()
    download = info.value
    assert re.fullmatch(r"learner-search-\d{8}\.csv", download.suggested_filename)
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8-sig").read())))
    assert sorted(r["Learner ID"] for r in rows) == ["999993", "999998"]
    assert {r["Board or Program"] for r in rows} == {"NC"} and {r["Status"] for r in rows} == {"Accepted"}
    # The activity summary exports too.
    page.get_by_role("link", name="Activity Learner Summary").click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Export results").click()
    summary = list(csv.DictReader(io.StringIO(open(info.value.path(), encoding="utf-8-sig").read())))
    nc = next(r for r in summary if r["ACCME Activity ID"] == "200930054")
    assert (nc["Accepted"], nc["Submitted"], nc["Rejected"]) == ("2", "0", "0")


def test_delete_from_record_details(page, server):
    page.goto(server.base_url + "/activities/200930054?board=NC")
    page.get_by_role("link", name=re.compile(r"Details of Traci Test")).first.click()
    expect_text(page.locator("h2.learner-name"), "Traci Test")
    total = page.get_by_test_id("total")
    records = page.locator("#records tbody tr")
    assert records.count() == 1
    learner = page.locator("main").inner_text()
    deleted_id = "999993" if "Learner ID: 999993" in learner else "999998"
    expect_text(total, "5")
    page.get_by_label(re.compile("to delete")).check()
    page.get_by_role("button", name="Delete").click()
    expect_text(page.locator(".messages"), "Deleted 1 record.")
    expect_text(page.locator("main"), "no live records")
    expect_text(total, "0")
    page.goto(server.base_url + "/activities/200930054?board=NC")
    assert deleted_id not in page.locator("#learners").inner_text()
    # Deleting with nothing ticked says so.
    page.get_by_role("link", name=re.compile(r"Details of Traci Test")).first.click()
    page.get_by_role("button", name="Delete").click()
    expect_text(page.locator(".messages"), "Give the CreditIDs of the records to delete.")


def test_keyboard_only_log_in_and_entry(browser, server):
    page = new_page(browser)
    page.goto(server.base_url + "/login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "provider_id"
    # Focus is visible: an outline or a ring, never nothing.
    ring = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
                                    return [s.outlineStyle, s.outlineWidth, s.boxShadow]; }""")
    assert ring[0] != "none" and ring[1] != "0px" or ring[2] != "none", ring
    page.keyboard.type(PROVIDER_ID)
    page.keyboard.press("Tab")
    page.keyboard.type(SANDBOX_WEB_EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type(SANDBOX_WEB_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/home")
    expect_text(page.get_by_test_id("environment"), "SANDBOX")
    # Skip link first on every page, and it moves focus to the main content.
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # Manual entry by keyboard alone: the first field of the new row, then Enter saves.
    page.goto(server.base_url + "/activities/200930149?board=ABIM&rows=1")
    page.get_by_label("First name, row 1").focus()
    for text in ("Test2", "Account2", "05/02/2026", "03/01"):
        page.keyboard.type(text)
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "r1-learner_id"
    page.keyboard.type("1000106")
    page.keyboard.press("Tab")  # NPI
    page.keyboard.press("Tab")  # credits
    page.keyboard.type("1")
    page.keyboard.press("Enter")
    expect_text(page.locator(".messages"), "Test2 Account2 (1000106) saved: SUBMITTED")
    page.context.close()


def test_every_page_fits_400_px_and_screenshots_can_be_taken(browser, tmp_path_factory):
    """The screenshot script, on its own server: every page at 1280 px and 400 px, no sideways scroll."""
    from tests.browser.screenshots import capture, shots

    data_dir = tmp_path_factory.mktemp("screens")
    server = start_server(f"sqlite:///{data_dir}/pars.db", data_dir)
    try:
        fits = capture(server.base_url, data_dir / "shots", browser)
    finally:
        stop_server(server)
    assert set(fits) == {s.name for s in shots({"batch_records": "", "batch": "", "rems_participants": ""})} | {
        "batch-upload-processing",
        "batch-upload-step-2",
    }
    assert all(fits[name][NARROW] for name in fits), fits
    assert all((data_dir / "shots" / f"{name}-{w}.png").stat().st_size > 5000 for name in fits for w in fits[name])


def test_narrow_window_uses_cards_for_entry_rows(browser, server):
    page = new_page(browser, NARROW)
    log_in(page, server.base_url, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD)
    page.goto(server.base_url + "/activities/200930149?board=ABPATH&rows=2")
    assert no_horizontal_scroll(page)
    label = page.locator("label[for='r1-first_name']")
    assert label.is_visible()  # the column headers' text moves onto each field
    box = page.get_by_label("First name, row 1").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= NARROW
    page.context.close()
