"""Shared bench helpers: databases, a realistic world (activities, registries), records, servers, HTTP.

Everything talks to 127.0.0.1 only. The world: the sandbox provider with ACTIVITIES activities, each
registered for six certifying boards, and LEARNERS_PER_BOARD registry learners per board, inserted
directly. Records are built so that about 98% pass every rule (each record names a distinct
learner + activity pair) and the rest fail with 661 (learner ID not in the registry).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, select, text  # noqa: E402

from pars_ws.adapters import tables as t  # noqa: E402
from pars_ws.adapters.template_b import write_template_b  # noqa: E402
from pars_ws.domain.catalogue import fold  # noqa: E402
from pars_ws.domain.names import name_key  # noqa: E402
from pars_ws.domain.records import ReportedRecord  # noqa: E402
from pars_ws.entrypoints.cli_batches import multipart_form  # noqa: E402
from tests.conftest import (  # noqa: E402
    PROVIDER_ID,
    SANDBOX_PASSWORD,
    SANDBOX_USER,
    Server,
    free_port,
    run_cli,
    service_env,
    start_server,
    stop_server,
)
from tests.support import soap11_save, xml_reports  # noqa: E402

PG_URL = os.environ.get("PARS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
ENV = "sandbox"
BOARDS = ("ABA", "ABIM", "ABO", "ABOHNS", "ABPATH", "ABP")
STANDARD_TYPE = {
    "ABA": "ABA MOCA Part II",
    "ABIM": "ABIM MOC Part II",
    "ABO": "ABO MOC Part II",
    "ABOHNS": "ABOHNS MOC Part II",
    "ABPATH": "ABPath MOC Part II",
    "ABP": "ABP MOC Part 2",
}
ALL_TYPES = {
    "ABA": ("ABA MOCA Part II", "ABA Patient Safety", "ABA MOCA Part IV"),
    "ABIM": ("ABIM MOC Part II", "ABIM Patient Safety", "ABIM MOC Part IV"),
    "ABO": ("ABO MOC Part II", "ABO Patient Safety", "ABO MOC Part IV"),
    "ABOHNS": ("ABOHNS MOC Part II", "ABOHNS Patient Safety", "ABOHNS MOC Part IV"),
    "ABPATH": ("ABPath MOC Part II", "ABPath Patient Safety", "ABPath MOC Part IV"),
    "ABP": ("ABP MOC Part 2", "ABP Patient Safety", "ABP MOC Part 4"),
}
LEARNERS_PER_BOARD = 50_000
ACTIVITIES = 100
FIRST = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Chloé",
    "José",
)
LAST = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodríguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "O'Brien",
    "Lee",
    "Nguyen",
)
FAIL_EVERY = 50  # one record in 50 names a learner the registry does not know (661)
JAN1 = dt.date(2026, 1, 1)  # PARS_TODAY is 2026-06-15: completions Jan 1 .. Jun 14 pass every date rule


# -- command line ----------------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--pg-url", default=PG_URL, help="PostgreSQL server to create a scratch database on")
    return p


def backends(args) -> list[str]:
    return ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]


def run_and_report(args, run_backend) -> int:
    """Run `run_backend(backend, args) -> (report lines, targets missed)` for each backend asked for,
    print the figures, then the targets missed; the exit status is 1 when any was."""
    missed = []
    for backend in backends(args):
        lines, miss = run_backend(backend, args)
        print("\n".join(lines), flush=True)
        missed += miss
    print()
    if missed:
        print("TARGETS MISSED:\n  " + "\n  ".join(missed))
        return 1
    print("all targets met")
    return 0


# -- databases -------------------------------------------------------------------------------------


def statement_label(sql: str) -> str:
    return " ".join(sql.split())[:100]


def time_statements() -> dict:
    """Time every statement this process sends through SQLAlchemy (from the driver call to its
    answer; rows are fetched afterwards) and every COMMIT, for the rest of the process.
    Returns {label: [seconds, ...]}, to be cleared and read by the caller; the label is the
    statement's text (statement_label) or COMMIT."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine, default

    found: dict = {}

    def add(label: str, seconds: float) -> None:
        found.setdefault(label, []).append(seconds)

    commit = default.DefaultDialect.do_commit

    def timed_commit(self, dbapi_connection):
        t0 = time.perf_counter()
        try:
            return commit(self, dbapi_connection)
        finally:
            add("COMMIT", time.perf_counter() - t0)

    default.DefaultDialect.do_commit = timed_commit

    @event.listens_for(Engine, "before_cursor_execute")
    def _started(conn, _cursor, _statement, _parameters, _context, _many):
        conn.info["bench_t0"] = time.perf_counter()

    @event.listens_for(Engine, "after_cursor_execute")
    def _ended(conn, _cursor, statement, _parameters, _context, _many):
        add(statement_label(statement), time.perf_counter() - conn.info.pop("bench_t0"))

    return found


@contextlib.contextmanager
def scratch_database(backend: str, workdir: Path, pg_url: str = PG_URL):
    """A fresh, empty database URL (a SQLite file, or a PostgreSQL database dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'pars.db'}"
        return
    from sqlalchemy.engine import make_url

    url = make_url(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"pars_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False).replace("+psycopg", "", 1)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def engine_for(url: str):
    from pars_ws.adapters.database import make_engine

    return make_engine(url)


# -- the world -------------------------------------------------------------------------------------


def activity_id(a: int) -> str:
    return f"{300000000 + a:09d}"


def learner_id(board_no: int, n: int) -> str:
    return f"{(board_no + 1) * 10_000_000 + n}"


def learner_name(n: int) -> tuple[str, str]:
    return FIRST[n % len(FIRST)], f"{LAST[(n // len(FIRST)) % len(LAST)]}"


def learner_dob(n: int) -> tuple[int, int]:
    return 1 + n % 12, 1 + (n // 12) % 28


def seed_world(url: str) -> dict:
    """Activities and registry learners for the sandbox provider, by direct bulk insert."""
    engine = engine_for(url)
    started = time.perf_counter()
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        provider_pk = conn.execute(
            select(t.providers.c.id).where(t.providers.c.provider_id == PROVIDER_ID)
        ).scalar_one()
        conn.execute(
            insert(t.activities),
            [
                dict(
                    environment=ENV,
                    provider_pk=provider_pk,
                    activity_id=activity_id(a),
                    provider_activity_id=f"BENCH-{a}",
                    title=f"Bench activity {a}",
                    activity_type="Course",
                    start_date=dt.date(2025, 1, 1),
                    end_date=dt.date(2026, 12, 31),
                    reporting_year=2026,
                    credits=Decimal(1000),
                    updated_at=now,
                )
                for a in range(ACTIVITIES)
            ],
        )
        pks = (
            conn.execute(
                select(t.activities.c.id).where(
                    t.activities.c.environment == ENV, t.activities.c.activity_id >= activity_id(0)
                )
            )
            .scalars()
            .all()
        )
        conn.execute(
            insert(t.registrations),
            [
                dict(activity_pk=pk, board=b, max_points=Decimal(1000), credit_types="\n".join(ALL_TYPES[b]))
                for pk in pks
                for b in BOARDS
            ],
        )
        rows = []
        for bn, board in enumerate(BOARDS):
            for n in range(LEARNERS_PER_BOARD):
                first, last = learner_name(n)
                month, day = learner_dob(n)
                lid = learner_id(bn, n)
                rows.append(
                    dict(
                        environment=ENV,
                        board=board,
                        learner_id=lid,
                        learner_key=fold(lid),
                        npi=None,
                        first_name=first,
                        last_name=last,
                        last_name_key=name_key(last),
                        dob_month=month,
                        dob_day=day,
                        review_reject_code=None,
                    )
                )
        conn.execute(insert(t.registry_learners), rows)
    engine.dispose()
    analyze(url)
    return {
        "provider_pk": provider_pk,
        "seconds": time.perf_counter() - started,
        "learners": len(BOARDS) * LEARNERS_PER_BOARD,
        "activities": ACTIVITIES,
    }


PRESTORED_COLUMNS = (
    "environment",
    "provider_pk",
    "credit_id",
    "activity_id",
    "board",
    "learner_id_type",
    "learner_id",
    "learner_key",
    "first_name",
    "last_name",
    "dob_month",
    "dob_day",
    "completion_date",
    "credits",
    "credit_types",
    "source",
    "status",
    "submitted_at",
    "updated_at",
)


def prestore(url: str, count: int, provider_pk: int, seed: int = 7) -> float:
    """`count` live learner records of the sandbox provider (2025 completions of random registry learners
    and activities), by the fastest bulk path each database has. Returns the seconds it took."""
    import random

    rng = random.Random(seed)
    started = time.perf_counter()

    def rows():
        for k in range(count):
            bn = rng.randrange(len(BOARDS))
            yield _stored_row(
                provider_pk,
                f"ccid:bench.org:pre-{k}",
                bn,
                rng.randrange(LEARNERS_PER_BOARD),
                activity_id(rng.randrange(ACTIVITIES)),
                dt.date(2025, 1, 1) + dt.timedelta(days=k % 365),
                "1.00",
            )

    _bulk_load(url, rows())
    return time.perf_counter() - started


# Learners with history: HISTORY_LEARNERS registry learners per board, each holding HISTORY_RECORDS
# records of HISTORY_ACTIVITY (which the other bench records name for no learner below 100).
HISTORY_LEARNERS = 16
HISTORY_RECORDS = 1000
HISTORY_ACTIVITY = ACTIVITIES - 1


def prestore_history(url: str, provider_pk: int) -> None:
    """The records the learners with history hold (2025 completions, a quarter point each)."""
    _bulk_load(
        url,
        (
            _stored_row(
                provider_pk,
                f"ccid:bench.org:hist-{bn}-{n}-{k}",
                bn,
                n,
                activity_id(HISTORY_ACTIVITY),
                dt.date(2025, 1, 1) + dt.timedelta(days=k % 365),
                "0.25",
            )
            for bn in range(len(BOARDS))
            for n in range(HISTORY_LEARNERS)
            for k in range(HISTORY_RECORDS)
        ),
    )


def history_record(i: int, tag: str) -> dict:
    """Record number i of a run for a learner with history: a new completion day for each of a learner's records."""
    bn = i % len(BOARDS)
    board = BOARDS[bn]
    k = i // len(BOARDS)
    n = k % HISTORY_LEARNERS
    first, last = learner_name(n)
    month, day = learner_dob(n)
    return dict(
        board=board,
        activity_id=activity_id(HISTORY_ACTIVITY),
        id_type=board,
        learner_id=learner_id(bn, n),
        first=first,
        last=last,
        dob=f"1970-{month:02d}-{day:02d}",
        completed=(JAN1 + dt.timedelta(days=(k // HISTORY_LEARNERS) % 165)).isoformat() + "T00:00:00",
        points="0.25",
        credit_types=(STANDARD_TYPE[board],),
        action="add",
        credit_id=f"ccid:bench.org:{tag}-h{i}",
    )


def _stored_row(
    provider_pk: int, credit_id: str, bn: int, n: int, activity: str, completed: dt.date, points: str
) -> tuple:
    """A learner record already stored and accepted, as PRESTORED_COLUMNS."""
    at = dt.datetime(2025, 12, 31, 12, 0, tzinfo=dt.timezone.utc)
    first, last = learner_name(n)
    month, day = learner_dob(n)
    lid = learner_id(bn, n)
    board = BOARDS[bn]
    return (
        ENV,
        provider_pk,
        credit_id,
        activity,
        board,
        board,
        lid,
        lid,
        first,
        last,
        month,
        day,
        completed,
        points,
        STANDARD_TYPE[board],
        "SOAP",
        "Accepted",
        at,
        at,
    )


def _bulk_load(url: str, rows) -> None:
    """Insert learner records (PRESTORED_COLUMNS tuples) by the fastest bulk path each database has."""
    columns = ", ".join(PRESTORED_COLUMNS)
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split("///", 1)[1], timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        with conn:
            conn.executemany(
                f"INSERT INTO learner_records ({columns}) VALUES ({', '.join('?' * len(PRESTORED_COLUMNS))})",
                # SQLAlchemy keeps SQLite datetimes as naive UTC text.
                ((*r[:17], *(v.replace(tzinfo=None).isoformat(sep=" ") for v in r[17:])) for r in rows),
            )
        conn.execute("ANALYZE")
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url) as conn:
            with conn.cursor() as cur, cur.copy(f"COPY learner_records ({columns}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
        # As on a database in use, the rows are vacuumed (hint bits, visibility map): otherwise the
        # first calls after the load pay for that, and autovacuum competes with them.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE learner_records")


def analyze(url: str, *, statistics: bool = True) -> None:
    """What autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite) would have done on a database in use:
    refresh the planner's statistics (without them PostgreSQL plans for the empty tables it last
    saw) and, on PostgreSQL, clear dead row versions (VACUUM): the board review updates most records
    once, the floor's inserts are rolled back, and the PostgreSQL of these machines runs with
    autovacuum off. statistics=False: only the vacuum (nothing to do on SQLite)."""
    postgresql = url.startswith("postgresql")
    if not (statistics or postgresql):
        return
    engine = engine_for(url)
    try:
        if postgresql:  # VACUUM runs outside a transaction
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE" if statistics else "VACUUM")
        else:
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def record(i: int, tag: str) -> dict:
    """Record number i of a run (tests.support record dict). Distinct i: distinct learner + activity."""
    bn = i % len(BOARDS)
    board = BOARDS[bn]
    j = i // len(BOARDS)
    n = j % LEARNERS_PER_BOARD
    a = (j + j // LEARNERS_PER_BOARD) % ACTIVITIES
    first, last = learner_name(n)
    month, day = learner_dob(n)
    lid = learner_id(bn, n) if i % FAIL_EVERY != FAIL_EVERY - 1 else f"9{i:08d}"
    return dict(
        board=board,
        activity_id=activity_id(a),
        id_type=board,
        learner_id=lid,
        first=first,
        last=last,
        dob=f"1970-{month:02d}-{day:02d}",
        completed=(JAN1 + dt.timedelta(days=i % 165)).isoformat() + "T00:00:00",
        points=str(Decimal(1 + i % 20) / 4),
        credit_types=(STANDARD_TYPE[board],),
        action="add",
        credit_id=f"ccid:bench.org:{tag}-{i}",
    )


def records(start: int, count: int, tag: str) -> list[dict]:
    return [record(i, tag) for i in range(start, start + count)]


def activity_reports_file(recs: list[dict]) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + xml_reports(recs)).encode()


def template_b_file(recs: list[dict]) -> bytes:
    """The same records as Template B (no CreditIDs there: the service assigns them)."""
    rows = []
    for r in recs:
        completed = dt.date.fromisoformat(r["completed"][:10])
        rows.append(
            ReportedRecord(
                index=0,
                action=r["action"],
                board=r["board"],
                activity_id=r["activity_id"],
                learner_id_type=r["id_type"],
                learner_id=r["learner_id"],
                first_name=r["first"],
                last_name=r["last"],
                dob=f"{r['dob'][5:7]}/{r['dob'][8:10]}",
                completion_date=completed.strftime("%m/%d/%Y"),
                credits=r["points"],
                credit_types=tuple(r["credit_types"]),
            )
        )
    return write_template_b(rows)


def save_envelope(recs: list[dict]) -> bytes:
    return soap11_save(recs, provider=PROVIDER_ID, user=SANDBOX_USER, password=SANDBOX_PASSWORD)


# -- servers -----------------------------------------------------------------------------------------


def start_service(
    url: str, data_dir: Path, *, batch_worker_poll: float | None = None, workers: int = 2, **env
) -> tuple[Server, subprocess.Popen | None]:
    """The real service under gunicorn (tests.conftest.start_server). With batch_worker_poll, serve runs
    without its own worker and a `pars-ws worker --poll` is started here instead (its pid is known)."""
    if batch_worker_poll is None:
        return start_server(url, data_dir, workers=workers, **env), None
    environment = service_env(url, data_dir, **env)
    run_cli(environment, "sandbox", "seed", "--username", SANDBOX_USER, "--password", SANDBOX_PASSWORD)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pars_ws.entrypoints.cli",
            "serve",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--no-seed",
            "--no-worker",
        ],
        env=environment,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / "server.log", "wb"),
        start_new_session=True,
    )
    server = Server(f"http://127.0.0.1:{port}", environment, proc, data_dir)
    wait_healthy(server)
    worker = subprocess.Popen(
        [sys.executable, "-m", "pars_ws.entrypoints.cli", "worker", "--poll", str(batch_worker_poll)],
        env=environment,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / "worker.log", "wb"),
        start_new_session=True,
    )
    return server, worker


def wait_reviewed(url: str, timeout: float = 120) -> None:
    """Until the service's board review has left no record Submitted."""
    engine = engine_for(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if (
                    conn.execute(
                        text("SELECT 1 FROM learner_records WHERE status = 'Submitted' AND deleted_at IS NULL LIMIT 1")
                    ).first()
                    is None
                ):
                    return
            time.sleep(0.05)
        raise RuntimeError("the board review did not catch up")
    finally:
        engine.dispose()


def wait_healthy(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError("server exited:\n" + (server.data_dir / "server.log").read_text())
        try:
            status, _ = http("GET", server.base_url + "/healthz", timeout=1)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not start:\n" + (server.data_dir / "server.log").read_text())


def stop_service(server: Server, worker: subprocess.Popen | None) -> None:
    if worker is not None:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
    stop_server(server)


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


# -- HTTP on loopback, no client library in the way ------------------------------------------------


def http(
    method: str, url: str, body: bytes = b"", headers: dict | None = None, timeout: float = 120
) -> tuple[int, bytes]:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    assert u.hostname == "127.0.0.1", "bench load goes to 127.0.0.1 only"
    path = u.path + (f"?{u.query}" if u.query else "")
    head = [f"{method} {path} HTTP/1.1", f"Host: {u.netloc}", "Connection: close", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    with socket.create_connection((u.hostname, u.port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head_end = raw.find(b"\r\n\r\n")
    status = int(raw[9:12])
    payload = raw[head_end + 4 :]
    if b"transfer-encoding: chunked" in raw[:head_end].lower():
        payload = _unchunk(payload)
    return status, payload


def _unchunk(data: bytes) -> bytes:
    out, pos = [], 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(data[end + 2 : end + 2 + size])
        pos = end + 2 + size + 2


def basic_auth() -> dict:
    token = base64.b64encode(f"{SANDBOX_USER}:{SANDBOX_PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def upload_and_wait(
    server: Server, file_name: str, data: bytes, file_type: str, timeout: float = 600, poll: float = 0.1
) -> dict:
    """POST /api/batches, then poll GET /api/batches/<id> until done.

    `seconds` runs from just before the upload to the batch's finished_at (the service's clock, the
    same machine's), so the polling interval neither adds to it nor needs to be short (polls cost
    the service CPU). The upload waits until the board review of earlier batches has caught up (a
    batch is measured with the worker to itself) and, on PostgreSQL, until the dead row versions
    the review left are cleared, as autovacuum would (analyze)."""
    wait_reviewed(server.env["PARS_DATABASE_URL"])
    analyze(server.env["PARS_DATABASE_URL"], statistics=False)
    body, ctype = multipart_form({"file_type": file_type}, file_name, data)
    started_wall, started = time.time(), time.perf_counter()
    status, payload = http("POST", server.base_url + "/api/batches", body, {**basic_auth(), "Content-Type": ctype})
    uploaded = time.perf_counter()
    if status != 202:
        raise RuntimeError(f"upload refused: {status} {payload[:500]!r}")
    batch_id = json.loads(payload)["id"]
    deadline = started + timeout
    while True:
        time.sleep(poll)
        status, payload = http("GET", f"{server.base_url}/api/batches/{batch_id}", headers=basic_auth())
        info = json.loads(payload)
        if info["status"] in ("done", "failed"):
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"batch {batch_id} not done after {timeout} s: {info}")
    if info["status"] != "done":
        raise RuntimeError(f"batch {batch_id} failed: {info}")
    started_at = dt.datetime.fromisoformat(info["started_at"])
    finished_at = dt.datetime.fromisoformat(info["finished_at"])
    return dict(
        id=batch_id,
        seconds=finished_at.timestamp() - started_wall,
        upload_seconds=uploaded - started,
        processing_seconds=(finished_at - started_at).total_seconds(),
        processed=info["processed"],
        not_processed=info["not_processed"],
        records=info["records"],
    )


BATCH_WORKER_POLL = 0.05


@contextlib.contextmanager
def batch_service(backend: str, args, tag_prefix: str):
    """For the batch benches: the service (`serve --no-worker`, one `worker --poll BATCH_WORKER_POLL`) on a
    scratch database with the bench world, warmed up by one small batch, statistics refreshed. The
    board review runs with no delay (upload_and_wait lets it catch up between batches).
    Yields (url, server, worker process, world, tag for CreditIDs)."""
    with workdir(f"pars-bench-{tag_prefix}-") as tmp, scratch_database(backend, Path(tmp), args.pg_url) as url:
        server, worker = start_service(
            url, Path(tmp), batch_worker_poll=BATCH_WORKER_POLL, PARS_REVIEW_DELAY_SECONDS="0"
        )
        try:
            world = seed_world(url)
            tag = f"{tag_prefix}{int(time.time())}"
            # The first batch of a worker compiles statements and the schema.
            upload_and_wait(server, "warmup.xml", activity_reports_file(records(9_000_000, 50, tag)), "xml")
            analyze(url)
            yield url, server, worker, world, tag
        finally:
            stop_service(server, worker)


@contextlib.contextmanager
def in_process_world(args, stored: int = 0):
    """For the in-process profiles: a scratch database of --backend (SQLite for "both") with the sandbox
    seeded, the bench world and `stored` records; this process's environment points pars-ws at it.
    Yields (url, world)."""
    backend = "sqlite" if args.backend == "both" else args.backend
    with workdir("pars-profile-") as tmp, scratch_database(backend, Path(tmp), args.pg_url) as url:
        env = service_env(url, Path(tmp))
        run_cli(env, "sandbox", "seed", "--username", SANDBOX_USER, "--password", SANDBOX_PASSWORD)
        world = seed_world(url)
        if stored:
            prestore(url, stored, world["provider_pk"])
            analyze(url)  # as on a database in use: PostgreSQL would plan for the empty table otherwise
        os.environ.update(env)
        yield url, world


def median(values) -> float:
    return statistics.median(values)


def workdir(prefix: str) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=prefix)


# -- the floor: what the stack itself costs for the same file --------------------------------------


def floor_seconds(engine, data: bytes, provider_pk: int, *, in_place: bool = False) -> float:
    """lxml parse + validation with the project's XSD + field extraction + one executemany insert of the
    same rows into learner_records of the same database (environment "floor", deleted afterwards).

    in_place: the rows go where the file's own records will (its environment and keys, so the same
    index pages as the batch writes) and the transaction is rolled back; run it before the upload."""
    from lxml import etree

    from pars_ws.adapters.activity_report import AR, HX, M, N, activity_report_schema

    schema = activity_report_schema()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    p_uid = f"{{{AR}}}Member/{{{M}}}UniqueID"
    p_first = f"{{{AR}}}Member/{{{M}}}Name/{{{N}}}GivenName"
    p_last = f"{{{AR}}}Member/{{{M}}}Name/{{{N}}}FamilyName"
    p_dob = f"{{{AR}}}Member/{{{M}}}PersonalInfo/{{{M}}}BirthDate"
    p_module = f"{{{AR}}}Activity/{{{AR}}}Module"
    p_cert = f"{{{AR}}}CreditCertificate"
    p_board = f"{{{AR}}}CreditReceived/{{{HX}}}accreditingBody"
    p_type = f"{{{AR}}}CreditReceived/{{{HX}}}activityCertification"
    p_points = f"{{{AR}}}CreditReceived/{{{HX}}}numberOfCredits"
    now = dt.datetime.now(dt.timezone.utc)
    started = time.perf_counter()
    root = etree.fromstring(data, parser)
    if not schema.validate(root):
        raise RuntimeError(f"floor file does not validate: {schema.error_log.last_error}")
    rows = []
    for report in root.iterchildren(f"{{{AR}}}ActivityReport"):
        uid = report.find(p_uid)
        module = report.find(p_module)
        certs = module.findall(p_cert)
        dob = report.findtext(p_dob)
        rows.append(
            dict(
                environment=ENV if in_place else "floor",
                provider_pk=provider_pk,
                credit_id=certs[0].findtext(f"{{{AR}}}CreditID"),
                activity_id=module.find(f"{{{AR}}}ModuleName").get("moduleID"),
                board=certs[0].findtext(p_board),
                learner_id_type=uid.get("domain"),
                learner_id=uid.text,
                learner_key=fold(uid.text),
                first_name=report.findtext(p_first),
                last_name=report.findtext(p_last),
                dob_month=int(dob[5:7]),
                dob_day=int(dob[8:10]),
                completion_date=dt.date.fromisoformat(module.findtext(f"{{{AR}}}CompletedDateTime")[:10]),
                credits=Decimal(certs[0].findtext(p_points)),
                credit_types="\n".join(c.findtext(p_type) for c in certs),
                source="XML batch",
                status="Accepted",
                submitted_at=now,
                updated_at=now,
            )
        )
    if in_place:
        with engine.connect() as conn:
            transaction = conn.begin()
            conn.execute(insert(t.learner_records), rows)
            elapsed = time.perf_counter() - started
            transaction.rollback()
        return elapsed
    with engine.begin() as conn:
        conn.execute(insert(t.learner_records), rows)
    elapsed = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(t.learner_records.delete().where(t.learner_records.c.environment == "floor"))
    return elapsed
