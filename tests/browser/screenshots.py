"""Screenshots of every provider page at 1280 px and 400 px wide, for docs/PAGES.md.

    python -m tests.browser.screenshots [OUT_DIR]      (default: docs/screenshots)

Starts the service on a fresh SQLite sandbox (PARS_TODAY as in the tests), fills it the way a
provider would (manual entries, one of them wrong, and a Template B upload), then visits each
page. `capture()` is also what the browser tests call, so the script cannot silently rot.
"""

from __future__ import annotations

import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.browser.support import (
    NARROW,
    WIDE,
    fill_row,
    launch,
    log_in,
    new_page,
    no_horizontal_scroll,
    rems_file,
    template_b_file,
    unavailable_reason,
)
from tests.conftest import ROOT, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD, start_server, stop_server

DEFAULT_OUT = ROOT / "docs" / "screenshots"


@dataclass(frozen=True)
class Shot:
    name: str  # file name stem: <name>-1280.png, <name>-400.png
    title: str
    path: str  # URL path, or "" for the state the setup left the page in


def _part_shot(page, selector: str, name: str, out_dir: Path, fits: dict) -> None:
    """A screenshot of one part of the page at each width; the page is left at WIDE."""
    for width in (WIDE, NARROW):
        page.set_viewport_size({"width": width, "height": 900})
        page.locator(selector).screenshot(path=str(out_dir / f"{name}-{width}.png"))
        fits.setdefault(name, {})[width] = no_horizontal_scroll(page)
    page.set_viewport_size({"width": WIDE, "height": 900})


def _prepare(page, base_url: str, out_dir: Path, fits: dict) -> dict[str, str]:
    """Data for the pages, entered through the pages. Returns the paths that depend on it."""
    log_in(page, base_url, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD)
    # Upload a Template B file (four ABPATH learners, one with a DOB the board does not have).
    page.goto(base_url + "/batches")
    page.get_by_label("Tab delimited file (.txt)").check()
    page.get_by_label("File to upload").set_input_files(
        files=[{"name": "200930149_May_Learners.txt", "mimeType": "text/plain", "buffer": template_b_file()}]
    )
    page.get_by_role("button", name="Upload file").click()
    # The message right after the upload; the worker usually has not started yet (if it has
    # finished already, the shot shows the finished message instead).
    page.locator("#processing").wait_for()
    _part_shot(page, "#processing", "batch-upload-processing", out_dir, fits)
    page.get_by_text("HAS FINISHED PROCESSING").wait_for(timeout=60_000)
    batch_records = page.get_by_role("link", name="View the processed records").get_attribute("href")
    # A REMS participant file (Step 2: Opioid Analgesic REMS), one participant with an error (998).
    page.goto(base_url + "/batches")
    page.get_by_label("Submit Learners for Opioid Analgesic REMS").check()
    _part_shot(page, "#submission-type", "batch-upload-step-2", out_dir, fits)
    page.get_by_label("File to upload").set_input_files(
        files=[{"name": "200930135_REMS.txt", "mimeType": "text/plain", "buffer": rems_file()}]
    )
    page.get_by_role("button", name="Upload file").click()
    page.get_by_text("HAS FINISHED PROCESSING").wait_for(timeout=60_000)
    rems_participants = page.get_by_role("link", name="View the processed records").get_attribute("href")
    # Manual entry on the North Carolina course: one learner right, one with the wrong DOB (664).
    page.goto(base_url + "/activities/200930054?board=NC&rows=2")
    fill_row(
        page,
        1,
        first="Traci",
        last="Test",
        completed="05/25/2026",
        dob="07/01",
        learner_id="999993",
        npi="1245319599",
        credits="5",
        credit_types=("AMA PRA Category 1",),
    )
    fill_row(
        page,
        2,
        first="Traci",
        last="Test",
        completed="05/25/2026",
        dob="07/01",
        learner_id="999998",
        credits="5",
        credit_types=("AMA PRA Category 1", "Controlled Substance"),
    )
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("999998 - 664").first.wait_for()
    inspector = page.get_by_role("link", name=re.compile("Inspect the record of Traci Test")).first.get_attribute(
        "href"
    )
    return {
        "batch_records": batch_records,
        "batch": batch_records.split("/")[2],
        "rems_participants": rems_participants,
        "inspector": inspector,
    }


def shots(paths: dict[str, str]) -> list[Shot]:
    return [
        Shot("login", "Log in", "/login"),
        Shot("activity-summary", "Activity Learner Summary", "/activities"),
        Shot(
            "activity-detail", "Activity Detail: learners and manual entry", "/activities/200930149?board=ABPATH&rows=2"
        ),
        Shot("activity-detail-errors", "Activity Detail: a saved row and a row with its error", ""),
        Shot("learner-search", "Learner Search", "/search?last_name=Test&search=1"),
        Shot(
            "batch-upload",
            "Batch Upload: the finished file, a new upload, the history",
            f"/batches?batch={paths['batch']}",
        ),
        Shot("batch-records", "Processed records of an upload", paths["batch_records"]),
        Shot("record-details", "Record details", "/records?activity_id=200930054&board=NC&learner_id=999993"),
        Shot("rems-participants", "Opioid Analgesic REMS participants of an upload", paths["rems_participants"]),
        Shot("record-inspector", "Record inspector", paths.get("inspector", "/records/inspect")),
        Shot("home", "Home", "/home"),
        Shot("activities", "Activities", "/manage/activities"),
        Shot("activity-register", "Register an activity", "/manage/activities/new"),
        Shot("activity-edit", "Edit an activity and its board registrations", "/manage/activities/200930149/edit"),
        Shot("settings", "Settings: people and web-service credentials", "/settings"),
    ]


def capture(base_url: str, out_dir: Path, browser) -> dict[str, dict[int, bool]]:
    """Take every screenshot; returns, per page and width, whether the body stayed within the window."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fits: dict[str, dict[int, bool]] = {}
    setup = new_page(browser, WIDE)
    paths = _prepare(setup, base_url, out_dir, fits)
    errors_state = setup  # left on the Activity Detail page showing the 664 row
    for width in (WIDE, NARROW):
        page = new_page(browser, width)
        log_in(page, base_url, SANDBOX_WEB_EMAIL, SANDBOX_WEB_PASSWORD)
        for shot in shots(paths):
            if shot.name == "login":
                anonymous = new_page(browser, width)
                anonymous.goto(base_url + shot.path)
                target = anonymous
            elif shot.path:
                page.goto(base_url + shot.path)
                target = page
            else:
                errors_state.set_viewport_size({"width": width, "height": 900})
                target = errors_state
            target.screenshot(path=str(out_dir / f"{shot.name}-{width}.png"), full_page=True)
            fits.setdefault(shot.name, {})[width] = no_horizontal_scroll(target)
            if target is not page and target is not errors_state:
                target.context.close()
        page.context.close()
    setup.context.close()
    return fits


def main(argv: list[str]) -> int:
    reason = unavailable_reason()
    if reason:
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    out_dir = Path(argv[0]) if argv else DEFAULT_OUT
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(f"sqlite:///{tmp}/pars.db", Path(tmp))
        try:
            with sync_playwright() as p:
                browser = launch(p)
                try:
                    fits = capture(server.base_url, out_dir, browser)
                finally:
                    browser.close()
        finally:
            stop_server(server)
    for name, by_width in fits.items():
        print(f"{name}: " + ", ".join(f"{w} px {'fits' if ok else 'SCROLLS SIDEWAYS'}" for w, ok in by_width.items()))
    print(f"screenshots in {out_dir}")
    return 0 if all(all(v.values()) for v in fits.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
