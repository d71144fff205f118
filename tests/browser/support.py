"""Driving Debian's Chromium with Playwright: finding it, launching it, and the steps the browser
tests and the screenshot script share (log in, fill manual-entry rows, a Template B file)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pars_ws.adapters import rems_files
from pars_ws.adapters.template_b import TEMPLATE_NAME, write_template_b

CHROMIUM_CANDIDATES = (os.environ.get("PARS_CHROMIUM", ""), "/usr/bin/chromium", "/usr/bin/chromium-browser")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDE, NARROW = 1280, 400
VIEWPORT_HEIGHT = 900


def chromium_path() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("chromium")
    return found


def unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright)"
    if chromium_path() is None:
        return "Chromium not found at /usr/bin/chromium (apt-get install -y chromium)"
    return None


def launch(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), args=LAUNCH_ARGS)


def new_page(browser, width: int = WIDE, **options):
    context = browser.new_context(viewport={"width": width, "height": VIEWPORT_HEIGHT}, **options)
    context.set_default_timeout(20_000)
    return context.new_page()


def log_in(page, base_url: str, email: str, password: str, provider_id: str = "") -> None:
    """Log in as a web user (the seed's: SANDBOX_WEB_EMAIL); lands on Home."""
    page.goto(base_url + "/login")
    if provider_id:
        page.get_by_label("Provider ID").fill(provider_id)
    page.get_by_label("E-mail", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/home")


def fill_row(
    page,
    n: int,
    *,
    first: str,
    last: str,
    completed: str,
    dob: str,
    learner_id: str,
    credits: str,
    npi: str = "",
    credit_types: tuple[str, ...] = (),
) -> None:
    """Fill manual-entry row n through its labels, as a screen-reader user would find the fields."""
    page.get_by_label(f"First name, row {n}").fill(first)
    page.get_by_label(f"Last name, row {n}").fill(last)
    page.get_by_label(f"Date completed, row {n}").fill(completed)
    page.get_by_label(f"DOB, row {n}").fill(dob)
    page.get_by_label(f"Learner ID #, row {n}").fill(learner_id)
    if npi:
        page.get_by_label(f"NPI (optional), row {n}").fill(npi)
    page.get_by_label(f"Credits/points, row {n}").fill(credits)
    group = page.get_by_role("group", name=f"Credit types, row {n}")
    for box in group.get_by_role("checkbox").all():
        label = box.evaluate("b => b.labels[0].textContent.trim()")
        box.set_checked(label in credit_types)


# The sandbox's ABPATH test learners (learner ID, first, last, DOB) and a file with one bad DOB.
ABPATH_LEARNERS = [
    ("1000106", "Test2", "Account2", "03/01"),
    ("1000107", "Test3", "Account3", "04/01"),
    ("1000108", "Test4", "Account4", "05/01"),
    ("1000109", "Test5", "Account5", "06/01"),
]


def template_b_file(bad_dob: bool = True) -> bytes:
    rows = []
    for i, (learner_id, first, last, dob) in enumerate(ABPATH_LEARNERS):
        if bad_dob and i == len(ABPATH_LEARNERS) - 1:
            dob = "12/31"  # 664: not the registry's DOB
        rows.append(
            [
                TEMPLATE_NAME,
                "ABPATH",
                "200930149",
                "ABPATH",
                learner_id,
                first,
                last,
                dob,
                f"05/{10 + i}/2026",
                "Add",
                "2",
                "ABPath MOC Part II",
            ]
        )
    return write_template_b(rows)


def rems_file() -> bytes:
    """Two REMS participants for the sandbox's REMS activity, the second with a profession v2 does not list."""
    rows = [
        ("200930135", "K1", "05/04/2026", "Physician", "NC", "Individual", "Pain", "No", "6-10 years"),
        ("200930135", "K2", "05/04/2026", "Surgeon", "NC"),
    ]
    return (
        "\t".join(rems_files.HEADER)
        + "\r\n"
        + "".join("\t".join((rems_files.TEMPLATE_NAME, *r)) + "\r\n" for r in rows)
    ).encode()


def no_horizontal_scroll(page) -> bool:
    """The page body does not scroll sideways (tables may, inside their own box)."""
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
