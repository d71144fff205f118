"""Opioid Analgesic REMS participants through the pages, in Debian's Chromium at 400 px wide: Batch
Upload's Step 2 chosen by keyboard alone, the REMS file uploaded, its participants page and its
error report."""

from __future__ import annotations

import csv
import io

import pytest

from pars_ws.adapters.rems_files import HEADER
from tests.browser import test_pages
from tests.browser.support import (
    NARROW,
    log_in,
    new_page,
    no_horizontal_scroll,
    rems_file,
)
from tests.conftest import SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD

pytestmark = test_pages.pytestmark
browser = test_pages.browser  # the module's Chromium, launched as test_pages launches it


def focused(page, what: str):
    return page.evaluate(f"() => document.activeElement.{what}")


def tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element `selector` names has the focus (fails after `limit` presses)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    pytest.fail(f"Tab never reached {selector}")


def test_keyboard_only_step_2_and_a_rems_upload_at_400_px(browser, server):
    from playwright.sync_api import expect

    page = new_page(browser, NARROW)
    # Playwright turns file-chooser interception on without waiting for it: a listener from the
    # start has it on long before the key press that opens the chooser.
    page.on("filechooser", lambda _: None)
    log_in(page, server.base_url, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD)
    page.goto(server.base_url + "/batches")
    step2 = page.get_by_role("group", name="Step 2 of 3: Select submission type")
    expect(step2.get_by_label("Submit Learners for Licensing or Specialty Board")).to_be_checked()
    assert no_horizontal_scroll(page)
    # Tab lands on the checked radio of each group: Step 1's file type, then Step 2's submission type.
    tab_to(page, "input[name=file_type]")
    assert focused(page, "id") == "file_type-txt"
    page.keyboard.press("Tab")
    assert focused(page, "id") == "submission_type-boards"
    page.keyboard.press("ArrowDown")  # a radio group moves its choice with the arrows
    assert focused(page, "id") == "submission_type-rems"
    expect(step2.get_by_label("Submit Learners for Opioid Analgesic REMS")).to_be_checked()
    # Step 3: Space on the file field opens the chooser; then on to the button and Enter.
    tab_to(page, "input[type=file]")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(files=[{"name": "200930135_REMS.txt", "mimeType": "text/plain", "buffer": rems_file()}])
    tab_to(page, "button[type=submit]")
    page.keyboard.press("Enter")
    message = page.locator("#processing")
    message.get_by_text("HAS FINISHED PROCESSING").wait_for(timeout=60_000)
    expect(message).to_contain_text("1 RECORD PROCESSED, 1 RECORD NOT PROCESSED")
    row = page.locator("#history-table tbody tr", has_text="200930135_REMS.txt")
    expect(row).to_contain_text("REMS")
    assert no_horizontal_scroll(page)
    # The error report names the field its 998 is about.
    with page.expect_download() as info:
        row.get_by_role("link", name="Download Errors").click()
    report = list(csv.reader(io.StringIO(open(info.value.path(), encoding="utf-8-sig").read())))
    assert [r[2] for r in report[1:]] == ["K2"] and report[1][10:] == [
        "998",
        "General learner record processing error.",
        "Profession",
    ]
    # The participants stored, reached by keyboard from the finished message.
    tab_to(page, "#processing a[href$='/participants']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/participants")
    table = page.locator("#participants tbody tr")
    assert table.count() == 1
    expect(table.first).to_contain_text("K1")
    expect(table.first).to_contain_text("Individual")
    assert no_horizontal_scroll(page)
    page.context.close()


def test_the_rems_template_downloads_from_step_2(browser, server):
    page = new_page(browser)
    log_in(page, server.base_url, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD)
    page.goto(server.base_url + "/batches")
    with page.expect_download() as info:
        page.get_by_role("link", name="REMS participant template").click()
    assert info.value.suggested_filename == "rems-participant-template.txt"
    assert open(info.value.path(), encoding="utf-8").read().rstrip("\r\n").split("\t") == list(HEADER)
    # A learner batch's page is not a participants page.
    assert page.goto(server.base_url + "/batches/999999/participants").status == 404
    page.context.close()
