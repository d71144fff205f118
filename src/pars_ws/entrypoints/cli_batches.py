"""CLI commands for batches (registered on `main` when cli.py is imported): `pars-ws upload` and
`pars-ws uploads`, clients of the HTTP API (/api/batches) of a running service."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import secrets
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import click

from .cli import main

_POLL_SECONDS = 0.5
_FINAL = ("done", "failed")


class _Api:
    """The batch API of one service, as one provider's credential."""

    def __init__(self, url: str, user: str, password: str):
        self.url = url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}

    def call(self, path: str, *, body: bytes | None = None, content_type: str | None = None) -> tuple[int, bytes]:
        headers = dict(self.headers, **({"Content-Type": content_type} if content_type else {}))
        req = urllib.request.Request(
            self.url + path, data=body, headers=headers, method="POST" if body is not None else "GET"
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except urllib.error.URLError as exc:
            raise click.ClickException(f"cannot reach {self.url}: {exc.reason}") from None

    def json(self, path: str, **kwargs) -> tuple[int, dict]:
        status, body = self.call(path, **kwargs)
        try:
            return status, json.loads(body)
        except ValueError:
            raise click.ClickException(f"{self.url}{path} answered {status} without JSON") from None

    def get(self, path: str) -> dict:
        status, data = self.json(path)
        if status != 200:
            raise click.ClickException(f"{path}: {status} {data.get('error', '')}")
        return data


def _connection(command):
    """--url, --user, --password (or PARS_URL, PARS_USER, PARS_PASSWORD), passed on as `api`."""

    @click.option(
        "--url",
        envvar="PARS_URL",
        default="http://127.0.0.1:8000",
        show_default=True,
        help="The service (env PARS_URL).",
    )
    @click.option("--user", envvar="PARS_USER", required=True, help="Web-service credential user (env PARS_USER).")
    @click.option(
        "--password",
        envvar="PARS_PASSWORD",
        required=True,
        prompt=True,
        hide_input=True,
        help="Its password (env PARS_PASSWORD; prompted when missing).",
    )
    @functools.wraps(command)
    def wrapped(url, user, password, **kwargs):
        return command(api=_Api(url, user, password), **kwargs)

    return wrapped


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "")


def multipart_form(fields: dict[str, str], file_name: str, data: bytes) -> tuple[bytes, str]:
    """(body, Content-Type) of a multipart/form-data POST with text fields and one "file"."""
    boundary = secrets.token_hex(16)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{_quoted(file_name)}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _when(iso: str | None) -> str:
    return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC") if iso else "-"


@main.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--type",
    "file_type",
    type=click.Choice(["txt", "xml", "xlsx"]),
    help="Tab-delimited Template B, XML or the Excel learner template (default: by the file's "
    "extension, .xml and .xlsx, else txt).",
)
@click.option(
    "--submission-type",
    type=click.Choice(["boards", "rems"]),
    default="boards",
    show_default=True,
    help="Learners for a Licensing or Specialty Board, or Opioid Analgesic REMS participants (a REMS "
    "participant template .txt or an Activity Report v2 .xml).",
)
@click.option("--force", is_flag=True, help="Process it even if the same file was uploaded in the last 30 days.")
@click.option("--no-wait", is_flag=True, help="Return once the file is queued.")
@click.option(
    "--errors-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the error report (rows not processed) to this file (.xlsx: as a workbook, for Excel uploads).",
)
@_connection
def upload(api: _Api, file: Path, file_type, submission_type, force, no_wait, errors_out):
    """Upload a batch FILE of learner records and wait for it to be processed.

    Exits 1 when the file is refused, fails, or has rows that were not processed.
    """
    file_type = file_type or {".xml": "xml", ".xlsx": "xlsx"}.get(file.suffix.lower(), "txt")
    body, content_type = multipart_form(
        {"file_type": file_type, "force": "true" if force else "false", "submission_type": submission_type},
        file.name,
        file.read_bytes(),
    )
    status, batch = api.json("/api/batches", body=body, content_type=content_type)
    if status != 202:
        click.echo(f"{file.name}: refused: {batch.get('error', status)}", err=True)
        sys.exit(1)
    click.echo(f"{file.name}: queued as batch {batch['id']} ({batch['records']} records)")
    if no_wait:
        return
    with click.progressbar(length=batch["records"], label=f"batch {batch['id']}", file=sys.stderr) as bar:
        shown = 0
        while batch["status"] not in _FINAL:
            time.sleep(_POLL_SECONDS)
            batch = api.get(batch["links"]["self"])
            bar.update(batch["rows_done"] - shown)
            shown = batch["rows_done"]
    click.echo(
        f"batch {batch['id']}: {batch['status']}. {batch['records']} records: "
        f"{batch['processed']} processed, {batch['not_processed']} not processed."
    )
    if batch["message"] and batch["status"] == "failed":
        click.echo(batch["message"], err=True)
    links = batch["links"]
    if "records" in links:
        click.echo(f"processed records: {api.url}{links['records']}")
    if "errors" in links:
        click.echo(f"error report: {api.url}{links['errors']}")
        if errors_out:
            as_workbook = errors_out.suffix.lower() == ".xlsx" and "errors_xlsx" in links
            status, report = api.call(links["errors_xlsx" if as_workbook else "errors"])
            if status != 200:
                raise click.ClickException(f"error report: {status}")
            errors_out.write_bytes(report)
            click.echo(f"error report saved to {errors_out}")
    sys.exit(0 if batch["status"] == "done" and not batch["not_processed"] else 1)


@main.command("uploads")
@_connection
def uploads(api: _Api):
    """List the batch uploads of the last 30 days, newest first."""
    rows = api.get("/api/batches")["batches"]
    if not rows:
        click.echo("no uploads in the last 30 days")
        return
    click.echo("batch\tuploaded\tstatus\trecords\tprocessed\tnot processed\tfile")
    for b in rows:
        click.echo(
            f"{b['id']}\t{_when(b['uploaded_at'])}\t{b['status']}\t{b['records']}\t{b['processed']}\t"
            f"{b['not_processed']}\t{b['file_name']}"
        )
