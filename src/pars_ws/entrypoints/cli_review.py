"""CLI commands for board review, learner search and the activity summary (registered on `main`).

These work on the database directly, as an operator: `--provider-id` and `--environment` choose
whose records (default: the sandbox test provider)."""

from __future__ import annotations

import json
import sys

import click

from .cli import _services, main, operator_account

ENVIRONMENT = click.Choice(["sandbox", "production"])


def _refusing(fn):
    """Call fn; a filter the service refuses becomes a usage error."""
    from ..service.search import SearchRefused

    try:
        return fn()
    except SearchRefused as exc:
        raise click.UsageError(str(exc)) from None


def _write_csv(chunks, path: str) -> None:
    if path == "-":
        for chunk in chunks:
            sys.stdout.buffer.write(chunk.encode("utf-8"))
        sys.stdout.buffer.flush()
        return
    # newline="": the chunks already end their lines with CRLF.
    with open(path, "w", encoding="utf-8", newline="") as out:
        for chunk in chunks:
            out.write(chunk)


def _show(
    listing, params: dict, csv_file: str | None, as_json: bool, provider_id: str | None, environment: str
) -> None:
    """A page of a listing as text or JSON, or all of it as CSV."""
    from ..service.search import csv_cell, page_json, paging

    services = _services()
    account = operator_account(services, provider_id, environment)
    f = _refusing(lambda: listing.read_filter(services, params))
    if csv_file:
        _write_csv(listing.export(services, account, f), csv_file)
        return
    page = listing.page(services, account, f, *_refusing(lambda: paging(params)))
    if as_json:
        click.echo(json.dumps(page_json(listing.columns, page), indent=2))
        return
    click.echo(f"Showing {page.first} - {page.last} of {page.total} {listing.noun}")
    click.echo("\t".join(c.header for c in listing.columns))
    for item in page.items:
        click.echo("\t".join(csv_cell(c.get(item)) for c in listing.columns))


def _listing_options(command):
    """Paging, output and whose records: the same for every listing."""
    for option in reversed(
        (
            click.option("--page", default="1", show_default=True),
            click.option("--per-page", default="20", show_default=True),
            click.option("--csv", "csv_file", help="Write all of it as CSV to this file ('-': standard output)."),
            click.option("--json", "as_json", is_flag=True, help="Print the page as JSON."),
            click.option("--provider-id", help="7-digit ACCME provider ID (default: the sandbox test provider)."),
            click.option("--environment", type=ENVIRONMENT, default="sandbox", show_default=True),
        )
    ):
        command = option(command)
    return command


# -- review ---------------------------------------------------------------------------------------


@main.group()
def review() -> None:
    """Board review of Submitted records."""


@review.command("run")
@click.option("--environment", type=ENVIRONMENT, default="sandbox", show_default=True)
def review_run(environment):
    """Review every Submitted record of the environment now (rejection e-mails go out with the worker)."""
    from ..service.review import run_now

    summary = run_now(_services(), environment)
    click.echo(
        f"{environment}: {summary.reviewed} reviewed, {summary.accepted} accepted, "
        f"{summary.rejected} rejected, {summary.emails} rejection e-mails queued"
    )


# -- search ---------------------------------------------------------------------------------------


@main.command("search")
@click.option("--title", help="Activity title keyword.")
@click.option("--last-name", help="Learner last name (or part of it).")
@click.option("--submitted-from", help="Submitted on or after (MM/DD/YYYY or YYYY-MM-DD, UTC).")
@click.option("--submitted-to", help="Submitted on or before.")
@click.option("--board", help="Board or program code, e.g. ABIM.")
@click.option("--activity-id", help="ACCME activity ID.")
@click.option("--provider-activity-id")
@click.option("--learner-id", help="Learner ID (or NPI).")
@click.option("--id-type", help="Learner ID type.")
@click.option("--status", help="Submitted, Accepted, Rejected or Deleted (default: every live record).")
@click.option("--completed-from", help="Completed on or after.")
@click.option("--completed-to", help="Completed on or before.")
@_listing_options
def search_command(csv_file, as_json, provider_id, environment, **params):
    """Learner search: give at least one of --title, --last-name, --submitted-from/--submitted-to."""
    from ..service.search import LEARNER_SEARCH

    _show(LEARNER_SEARCH, params, csv_file, as_json, provider_id, environment)


@main.command("summary")
@click.option("--year", help="Reporting year (default: this year).")
@click.option("--title", help="Activity title keyword.")
@click.option("--provider-activity-id")
@click.option("--board", help="Board or program code.")
@_listing_options
def summary_command(csv_file, as_json, provider_id, environment, **params):
    """Activity learner summary: per activity, Submitted / Accepted / Rejected records and the last update."""
    from ..service.search import ACTIVITY_SUMMARY

    _show(ACTIVITY_SUMMARY, params, csv_file, as_json, provider_id, environment)
