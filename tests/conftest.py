"""Shared fixtures: a database per test module (SQLite, and PostgreSQL when PARS_TEST_DATABASE_URL is
set), and the service under gunicorn on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("PARS_TEST_DATABASE_URL")
TODAY = "2026-06-15"  # every end-to-end test runs with this fixed "today"
SANDBOX_USER = "sandbox-user"
SANDBOX_PASSWORD = "sandbox-password"
PROVIDER_ID = "1234567"
# The sandbox web user the seed creates (sandbox.json "web_user"): the pages' log-in.
SANDBOX_WEB_EMAIL = "johnny.tester@testprovider.org"
SANDBOX_WEB_PASSWORD = "sandbox-web-password"
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def make_services(database_url: str, **settings):
    """A process's container on a migrated database, its business clock fixed to TODAY."""
    import datetime as dt

    from pars_ws.adapters.migrate import upgrade
    from pars_ws.service.container import Services
    from pars_ws.settings import Settings

    upgrade(database_url)
    return Services(
        Settings(database_url=database_url, today=dt.date.fromisoformat(TODAY), secret_key=b"k", **settings)
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_database(base_url: str):
    """A fresh PostgreSQL database; returns (url, drop)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(base_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"pars_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "pars.db"
        yield f"sqlite:///{path}"
        return
    url, drop = _pg_database(PG_URL)
    yield url
    drop()


def service_env(database_url: str, data_dir: Path, **extra) -> dict:
    env = dict(os.environ)
    env.update(
        PARS_DATABASE_URL=database_url,
        PARS_TODAY=TODAY,
        PARS_DATA_DIR=str(data_dir),
        PARS_LOG_LEVEL="WARNING",
        PARS_SECRET_KEY="test-secret-key",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pars_ws.entrypoints.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


class Server:
    def __init__(self, base_url: str, env: dict, proc: subprocess.Popen, data_dir: Path):
        self.base_url = base_url
        self.env = env
        self.proc = proc
        self.data_dir = data_dir

    @property
    def service_url(self) -> str:
        return f"{self.base_url}/services/ACCMELearnerService.svc"

    @property
    def wsdl_url(self) -> str:
        return f"{self.service_url}?wsdl"


def start_server(database_url: str, data_dir: Path, workers: int | None = 2, **extra) -> Server:
    """`pars-ws serve` on a free loopback port (workers=None: serve's own default for the database)."""
    env = service_env(database_url, data_dir, **extra)
    run_cli(
        env,
        "sandbox",
        "seed",
        "--username",
        SANDBOX_USER,
        "--password",
        SANDBOX_PASSWORD,
        "--web-password",
        SANDBOX_WEB_PASSWORD,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pars_ws.entrypoints.cli",
            "serve",
            "--bind",
            f"127.0.0.1:{port}",
            *(["--workers", str(workers)] if workers is not None else []),
            "--no-seed",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / "server.log", "wb"),
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited:\n" + (data_dir / "server.log").read_text())
        try:
            if requests.get(base + "/healthz", timeout=1).status_code == 200:
                return Server(base, env, proc, data_dir)
        except requests.RequestException:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start:\n" + (data_dir / "server.log").read_text())


def proc_stat(pid) -> tuple[str, list[str]]:
    """(command name, the fields after it) of /proc/<pid>/stat: fields[1] is the parent's pid,
    fields[11] and fields[12] the user and system CPU time in clock ticks."""
    comm, rest = Path(f"/proc/{pid}/stat").read_text().split("(", 1)[1].rsplit(")", 1)
    return comm, rest.split()


def children(pid: int) -> list[tuple[int, list[bytes]]]:
    """(pid, command line) of each process whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            _, fields = proc_stat(entry)
            args = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if int(fields[1]) == pid:
            found.append((int(entry), args))
    return found


def gunicorn_master(serve: int) -> int | None:
    """The gunicorn master `pars-ws serve` runs (beside its batch worker)."""
    return next((pid for pid, args in children(serve) if b"pars_ws.entrypoints.serve" in args), None)


def batch_worker(serve: int) -> int | None:
    """The batch worker `pars-ws serve` runs beside gunicorn."""
    return next((pid for pid, args in children(serve) if args[-2:-1] == [b"worker"]), None)


def gunicorn_workers(serve: int) -> list[int]:
    """The web workers gunicorn forked for `pars-ws serve`."""
    master = gunicorn_master(serve)
    return [] if master is None else sorted(pid for pid, _ in children(master))


def stop_server(server: Server) -> None:
    import signal

    try:
        os.killpg(server.proc.pid, signal.SIGTERM)
        server.proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(server.proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    srv = start_server(database_url, data_dir)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def client(server):
    import zeep

    return zeep.Client(server.wsdl_url)


@pytest.fixture(scope="module")
def credentials():
    return {"ProviderId": PROVIDER_ID, "User": SANDBOX_USER, "Password": SANDBOX_PASSWORD}
