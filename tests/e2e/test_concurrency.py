"""Concurrency and crashes (SPEC 5): the database decides races, one transaction per call.

1. Two gunicorn processes and 16 concurrent zeep clients race the same 1,000 CreditIDs: each is
   stored exactly once, every other attempt is answered 603, no 500 and no database-locked error.
2. The gunicorn worker handling a 2,500-record SaveLearnerActivity is killed with SIGKILL while
   its transaction is open (found through /proc: the worker holding our TCP connection, and the
   SQLite write lock in /proc/locks or its PostgreSQL backend in pg_stat_activity): the call is
   stored whole or not at all, and the service carries on.
"""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import zeep
from sqlalchemy import func, select, text

from pars_ws.adapters import tables as t
from pars_ws.adapters.database import make_engine
from tests.conftest import start_server, stop_server
from tests.fuzz.wire import (
    SAVE_ACTION,
    abo_record,
    post,
    results_of,
    save_body,
    unique_id,
    wait_for_workers,
)
from tests.support import zeep_reports

pytestmark = pytest.mark.e2e

CLIENTS = 16
CREDIT_IDS = 1000
CHUNK = 100


def stored(database_url: str, prefix: str) -> tuple[int, int, int]:
    """(rows, live rows, distinct CreditIDs) whose CreditID starts with prefix."""
    lr = t.learner_records
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            like = lr.c.credit_id.like(prefix + "%")
            return (
                conn.execute(select(func.count()).where(like)).scalar_one(),
                conn.execute(select(func.count()).where(like, lr.c.deleted_at.is_(None))).scalar_one(),
                conn.execute(select(func.count(func.distinct(lr.c.credit_id))).where(like)).scalar_one(),
            )
    finally:
        engine.dispose()


def raw_request_count(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(t.raw_requests)).scalar_one()
    finally:
        engine.dispose()


def server_log(server) -> str:
    return (server.data_dir / "server.log").read_text(errors="replace")


# -- the race ------------------------------------------------------------------------------------------


def test_sixteen_clients_race_the_same_thousand_credit_ids(server, credentials, database_url):
    prefix = unique_id("race")
    ids = [f"{prefix}-{i:04d}" for i in range(CREDIT_IDS)]
    records = {cid: abo_record(cid, i) for i, cid in enumerate(ids)}
    chunks = [ids[i : i + CHUNK] for i in range(0, CREDIT_IDS, CHUNK)]
    clients = [zeep.Client(server.wsdl_url) for _ in range(CLIENTS)]
    answers: dict[str, list[tuple[str, list[int]]]] = defaultdict(list)
    failures: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS)

    def run(n: int) -> None:
        # Four groups of four clients send the same chunk at the same moment, two of them in
        # reverse order: the unique index, not a read-then-write check, has to decide, and
        # opposite insertion orders make PostgreSQL deadlocks (retried by the service) likely.
        shift = (n % 4) * len(chunks) // 4
        order = chunks[shift:] + chunks[:shift]
        barrier.wait()
        for chunk in order:
            mine = chunk if (n // 4) % 2 else chunk[::-1]
            try:
                response = clients[n].service.SaveLearnerActivity(
                    **credentials, ActivityReports=zeep_reports([records[c] for c in mine])
                )
            except Exception as exc:  # noqa: BLE001 - every failure is reported, none may happen
                with lock:
                    failures.append(f"client {n}: {type(exc).__name__}: {exc}")
                continue
            with lock:
                for result in response.Results.RecordResult:
                    errors = [int(e.Code) for e in (result.Errors.Error if result.Errors else [])]
                    answers[result.CreditID].append((result.Status, errors))

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(run, range(CLIENTS)))
    seconds = time.monotonic() - started

    assert failures == []
    assert set(answers) == set(ids)
    for cid in ids:
        got = sorted(answers[cid])
        assert len(got) == CLIENTS
        assert got.count(("Accepted", [])) == 1, (cid, got)
        assert got.count(("Not processed", [603])) == CLIENTS - 1, (cid, got)
    assert stored(database_url, prefix) == (CREDIT_IDS, CREDIT_IDS, CREDIT_IDS)
    log = server_log(server)
    assert "database is locked" not in log and "Internal error" not in log, log[-3000:]
    retried = log.count("transient database conflict")
    print(
        f"\n{CLIENTS} clients x {CREDIT_IDS} CreditIDs = {CLIENTS * CREDIT_IDS} attempts in {seconds:.1f} s: "
        f"{CREDIT_IDS} stored once each, {CREDIT_IDS * (CLIENTS - 1)} answered 603, lost: 0 "
        f"({retried} calls run again after a deadlock)"
    )


def test_the_same_records_in_opposite_orders_at_once(server, database_url):
    """Two calls inserting the same CreditIDs in opposite orders at the same moment: on PostgreSQL
    each waits for a row the other inserted (a deadlock the database breaks by failing one); the
    failed call's transaction is rolled back whole and run again, never answered 500."""
    for _ in range(12):
        prefix = unique_id("order")
        records = [abo_record(f"{prefix}-{i:03d}", i, points="0") for i in range(200)]
        bodies = [save_body(records), save_body(records[::-1])]
        barrier = threading.Barrier(2)

        def send(body, barrier=barrier):
            barrier.wait()
            return post(server.service_url, body, timeout=120)

        with ThreadPoolExecutor(2) as pool:
            responses = list(pool.map(send, bodies))
        assert [r.status_code for r in responses] == [200, 200], [r.text[:300] for r in responses]
        # Each record stored once: one call got all of them, the other only duplicates, or the
        # two interleaved (SQLite serialises whole calls, so there it is always all-or-nothing).
        assert stored(database_url, prefix) == (200, 200, 200)
        per_id: dict[str, list] = defaultdict(list)
        for x in responses:
            for r in results_of(x):
                per_id[r.credit_id].append((r.status, r.codes))
        assert all(sorted(v) == [("Accepted", []), ("Not processed", [603])] for v in per_id.values())
    print(f"\n{server_log(server).count('transient database conflict')} calls run again after a deadlock")


# -- a crash in the middle of a call -------------------------------------------------------------------


def _tcp_sockets() -> list[tuple[int, int, int]]:
    """(local port, remote port, socket inode) of every TCP socket on the machine."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            out.append((int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16), int(f[9])))
    return out


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def _handling_worker(workers: list[int], server_port: int, client_port: int) -> int | None:
    """The worker whose accepted socket is our connection."""
    wanted = {inode for local, remote, inode in _tcp_sockets() if (local, remote) == (server_port, client_port)}
    for pid in workers:
        if wanted & _socket_inodes(pid):
            return pid
    return None


class TransactionProbe:
    """Is a given process inside its write transaction right now?"""

    def __init__(self, database_url: str):
        self.url = database_url
        self.sqlite = database_url.startswith("sqlite")
        self.backends: set[int] = set()  # PostgreSQL: the server processes of the last write transaction seen
        if self.sqlite:
            self.db = Path(database_url.split("///", 1)[1])
            self.engine = None
        else:
            self.engine = make_engine(database_url)

    def holds_write_transaction(self, pid: int) -> bool:
        if self.sqlite:
            # WAL mode: a writer holds the WAL_WRITE_LOCK byte (120) of the -shm file until it
            # commits or rolls back.
            shm = os.stat(str(self.db) + "-shm").st_ino
            for line in Path("/proc/locks").read_text().splitlines():
                f = line.split()
                if (
                    "->" not in f
                    and f[-4:-3] == [str(pid)]
                    and f[-3].endswith(f":{shm}")
                    and f[-2] == "120"
                    and "WRITE" in f
                ):
                    return True
            return False
        # PostgreSQL: one of this process's connections has a transaction that has written
        # (backend_xid is assigned at the first write) and is not over.
        ports = {local for local, remote, inode in _tcp_sockets() if remote == 5432 and inode in _socket_inodes(pid)}
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database() "
                    "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
                )
            ).all()
        self.backends = {r.pid for r in rows if r.client_port in ports}
        return bool(self.backends)

    def wait_until_over(self, timeout: float = 30) -> None:
        """After a kill: PostgreSQL ends the killed client's transaction on its own time (a COMMIT
        already sent still commits), so wait until its server process has gone. SQLite: at once."""
        if self.sqlite:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                alive = conn.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE pid = ANY(:pids)"), {"pids": list(self.backends)}
                ).all()
            if not alive:
                return
            time.sleep(0.01)
        raise AssertionError(f"server processes {self.backends} of the killed worker did not end")

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


@pytest.fixture(scope="module")
def crash_server(database_url, tmp_path_factory):
    srv = start_server(database_url, tmp_path_factory.mktemp("crash"), workers=2)
    yield srv
    stop_server(srv)


def _send_in_background(server, body: bytes):
    host, port = server.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    conn.connect()
    outcome: dict = {}

    def send():
        try:
            conn.request(
                "POST",
                "/services/ACCMELearnerService.svc",
                body=body,
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": SAVE_ACTION},
            )
            response = conn.getresponse()
            outcome["status"] = response.status
            outcome["body"] = response.read()
        except (OSError, http.client.HTTPException) as exc:
            outcome["error"] = exc
        finally:
            conn.close()

    thread = threading.Thread(target=send)
    thread.start()
    return thread, int(port), conn.sock.getsockname()[1], outcome


def test_killing_the_worker_mid_call_stores_all_of_it_or_nothing(crash_server, database_url):
    server = crash_server
    probe = TransactionProbe(database_url)
    killed_mid_transaction = 0
    try:
        for delay in (0.0, 0.05, 0.15):
            workers = wait_for_workers(server.proc.pid, 2)
            prefix = unique_id("crash")
            body = save_body([abo_record(f"{prefix}-{i:04d}", i, points="0") for i in range(2500)])
            raw_before = raw_request_count(database_url)
            thread, server_port, client_port, outcome = _send_in_background(server, body)
            victim, killed = None, False
            deadline = time.monotonic() + 90
            while thread.is_alive() and time.monotonic() < deadline:
                victim = victim or _handling_worker(workers, server_port, client_port)
                if victim and probe.holds_write_transaction(victim):
                    time.sleep(delay)  # somewhere later in the same transaction
                    if probe.holds_write_transaction(victim):
                        os.kill(victim, signal.SIGKILL)
                        killed = True
                        probe.wait_until_over()
                        break
                time.sleep(0.001)
            thread.join(120)
            rows, live, distinct = stored(database_url, prefix)
            raw_after = raw_request_count(database_url)
            assert (rows, live, distinct) in ((0, 0, 0), (2500, 2500, 2500)), (delay, rows)
            assert raw_after - raw_before == (1 if rows else 0)  # the audit copy goes with its records
            if killed:
                assert "status" not in outcome, outcome.get("status")  # the client got no answer
                killed_mid_transaction += rows == 0  # (2500: the commit won the race with the kill)
                # gunicorn replaces the worker; the others were never disturbed.
                after = wait_for_workers(server.proc.pid, 2)
                assert victim not in after and set(workers) - {victim} <= set(after)
            # The same call again: stored now, or refused as duplicates if it was stored before.
            response = post(server.service_url, body, timeout=120)
            assert response.status_code == 200, response.text[:500]
            results = results_of(response)
            expected = ("Not processed", [603]) if rows else ("Accepted", [])
            assert {(r.status, tuple(r.codes)) for r in results} == {(expected[0], tuple(expected[1]))}
            assert len(results) == 2500
            assert stored(database_url, prefix) == (2500, 2500, 2500)
    finally:
        probe.close()
    print(f"\n{killed_mid_transaction} of 3 calls killed inside their transaction: nothing of them stored")
    assert killed_mid_transaction >= 1, "no kill landed inside the transaction"
    assert "database is locked" not in server_log(server)


def test_calls_after_postgresql_closed_every_connection_are_answered(server, database_url):
    """A connection the server closed (a restart, a failover) is found dead when it is checked out
    of the pool and replaced: the calls after it are answered, none with a fault."""
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL connections only")
    for _ in range(4):  # every gunicorn worker has a pooled connection
        assert post(server.service_url, save_body([abo_record(unique_id("warm"), 1, points="0")])).status_code == 200
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            closed = conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t"
                )
            ).scalar()
    finally:
        engine.dispose()
    assert closed >= 1
    for i in range(8):
        prefix = unique_id("reconnect")
        response = post(server.service_url, save_body([abo_record(f"{prefix}-{i}", i, points="0")]))
        assert response.status_code == 200, response.text[:500]
        assert [r.status for r in results_of(response)] == ["Accepted"]
