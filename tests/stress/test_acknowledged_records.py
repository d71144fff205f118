"""Nothing acknowledged is lost, whatever crashes or forks next (bounded: about a minute per backend).

Each test starts the README's `pars-ws serve` on a fresh data folder (it migrates, seeds the sandbox
and prints the credential once), saves learner records over SOAP from concurrent clients while
processes are reloaded and killed, stops everything and then counts: every CreditID the service
answered Submitted or Accepted is stored exactly once, and SQLite's integrity check passes.

PARS_STRESS_SECONDS sets how long the churn lasts (default 40).
"""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from lxml import etree
from sqlalchemy import create_engine, func, select

from pars_ws.adapters import tables as t
from tests.conftest import (
    BACKENDS,
    PG_URL,
    ROOT,
    TODAY,
    _pg_database,
    batch_worker,
    free_port,
    gunicorn_master,
    gunicorn_workers,
)
from tests.support import LEARNERS, P, record, soap11_save, template_file

SECONDS = float(os.environ.get("PARS_STRESS_SECONDS", "40"))
STATUS = f"{{{P}}}Status"
CREDIT_ID = f"{{{P}}}CreditID"
ACKNOWLEDGED = {"Submitted", "Accepted"}


class Service:
    """`pars-ws serve` as the README starts it, on a data folder that outlives restarts."""

    def __init__(self, data_dir: Path, database_url: str | None):
        self.data_dir = data_dir
        self.env = dict(
            os.environ,
            PARS_DATA_DIR=str(data_dir),
            PARS_LOG_LEVEL="WARNING",
            PARS_TODAY=TODAY,
            PARS_BATCH_STALE_SECONDS="3",
            PARS_REVIEW_DELAY_SECONDS="1",
        )
        self.env.pop("PARS_DATABASE_URL", None)
        if database_url:
            self.env["PARS_DATABASE_URL"] = database_url
        self.database_url = database_url or f"sqlite:///{data_dir / 'pars.db'}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.credential: dict | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        out = self.data_dir.parent / f"serve-{self.starts}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pars_ws.entrypoints.cli", "serve", "--bind", f"127.0.0.1:{self.port}"],
            env=self.env,
            cwd=ROOT,
            stdout=open(out, "wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, out.read_text()
            try:
                if requests.get(self.base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("serve did not answer:\n" + out.read_text())
        if self.credential is None:  # the first start prints the sandbox credential, once
            text = out.read_text()
            self.credential = {
                "ProviderId": re.search(r"ProviderId: (\S+)", text)[1],
                "User": re.search(r"User: +(\S+)", text)[1],
                "Password": re.search(r"Password: +(\S+)", text)[1],
            }

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)

    def master(self) -> int:
        return gunicorn_master(self.proc.pid)

    def engine(self):
        url = self.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        return create_engine(url, connect_args={"timeout": 60} if url.startswith("sqlite") else {})


@pytest.fixture(params=BACKENDS)
def service(request, tmp_path):
    url, drop = _pg_database(PG_URL) if request.param == "postgresql" else (None, None)
    srv = Service(tmp_path / "data", url)
    try:
        yield srv
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()
        if drop is not None:
            drop()


class Writers:
    """Clients saving one-record requests; a CreditID goes in `acknowledged` only when answered so."""

    def __init__(self, service: Service, clients: int = 4):
        self.service = service
        self.clients = clients
        self.acknowledged: set[str] = set()
        self.answered_otherwise = 0
        self.failed_calls = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(clients)]
        self.day = TODAY

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def _run(self, n: int) -> None:
        session = requests.Session()
        url = self.service.base + "/services/ACCMELearnerService.svc"
        creds = self.service.credential
        i = 0
        while not self.stop.is_set():
            i += 1
            learner_id, first, last, dob = LEARNERS[(n + i) % len(LEARNERS)]
            credit_id = f"ccid:stress.test:{n}-{i}-{random.getrandbits(40):x}"
            body = soap11_save(
                [
                    record(
                        credit_id,
                        board="ABPATH",
                        id_type="ABPATH",
                        learner_id=learner_id,
                        first=first,
                        last=last,
                        dob=f"1900-{dob.replace('/', '-')}",
                        completed=f"{self.day}T00:00:00",
                        points="0.25",
                        credit_types=("ABPath MOC Part II",),
                    )
                ],
                provider=creds["ProviderId"],
                user=creds["User"],
                password=creds["Password"],
            )
            try:
                response = session.post(
                    url,
                    data=body,
                    timeout=30,
                    headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{P}/SaveLearnerActivity"'},
                )
                root = etree.fromstring(response.content)
            except (requests.RequestException, etree.XMLSyntaxError):
                self.failed_calls += 1  # no answer: the outcome is unknown, nothing was promised
                session = requests.Session()
                continue
            statuses = [(el.getparent().findtext(CREDIT_ID), el.text) for el in root.iter(STATUS)]
            if response.status_code == 200 and statuses and statuses[0][1] in ACKNOWLEDGED:
                assert statuses[0][0] == credit_id
                self.acknowledged.add(credit_id)
            else:
                self.answered_otherwise += 1


def _stored(service: Service, credit_ids: set[str]) -> dict[str, int]:
    """How many live records hold each of these CreditIDs."""
    lr = t.learner_records
    engine = service.engine()
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(lr.c.credit_id, func.count()).where(lr.c.deleted_at.is_(None)).group_by(lr.c.credit_id)
            ).all()
    finally:
        engine.dispose()
    counts = dict(rows)
    return {cid: counts.get(cid, 0) for cid in credit_ids}


def _check_database(service: Service) -> None:
    """SQLite's own check, and no CreditID or batch row live twice (either database)."""
    if service.database_url.startswith("sqlite"):
        conn = sqlite3.connect(service.data_dir / "pars.db")
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            conn.close()
    lr = t.learner_records
    engine = service.engine()
    try:
        with engine.connect() as conn:
            twice = conn.execute(
                select(lr.c.credit_id)
                .where(lr.c.deleted_at.is_(None))
                .group_by(lr.c.environment, lr.c.provider_pk, lr.c.credit_id)
                .having(func.count() > 1)
            ).all()
            rows_twice = conn.execute(
                select(lr.c.batch_pk, lr.c.batch_row)
                .where(lr.c.batch_pk.is_not(None))
                .group_by(lr.c.batch_pk, lr.c.batch_row)
                .having(func.count() > 1)
            ).all()
    finally:
        engine.dispose()
    assert twice == [] and rows_twice == []


def _holds_no_database(pid: int, service: Service) -> None:
    """A process that forks: one thread, and no descriptor of the SQLite files."""
    assert len(os.listdir(f"/proc/{pid}/task")) == 1
    database = str(service.data_dir / "pars.db")
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        assert not target.startswith(database), target


def _kill(pid: int) -> bool:
    """SIGKILL, unless the process has ended by itself meanwhile (a reload's old worker, a child of a
    killed parent)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def test_acknowledged_saves_survive_reloads_and_killed_workers(service):
    service.start()
    master = service.master()
    killed = reloads = 0
    with Writers(service) as writers:
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline:
            _holds_no_database(master, service)
            _holds_no_database(service.proc.pid, service)
            before = set(gunicorn_workers(service.proc.pid))
            os.kill(master, signal.SIGHUP)  # new workers, the old ones stopped gracefully
            reloads += 1
            # gunicorn queues every signal: wait for the reload to start new workers (at most a second),
            # so that reloads do not pile up faster than it can carry them out.
            _wait(lambda before=before: set(gunicorn_workers(service.proc.pid)) - before, 1.0, None)
            time.sleep(0.15)
            workers = gunicorn_workers(service.proc.pid)
            if workers and _kill(random.choice(workers)):  # a worker crashes, mid-request or not
                killed += 1
            time.sleep(0.15)
        time.sleep(1)  # calls still under way are answered
    service.stop()
    print(
        f"{len(writers.acknowledged)} saves acknowledged, {writers.answered_otherwise} refused, "
        f"{writers.failed_calls} unanswered; {reloads} reloads, {killed} workers killed"
    )
    assert reloads >= 20 and killed >= 20
    assert len(writers.acknowledged) >= 50, (writers.acknowledged, writers.failed_calls)
    stored = _stored(service, writers.acknowledged)
    assert {cid for cid, n in stored.items() if n != 1} == set()
    _check_database(service)


def _api(service: Service):
    session = requests.Session()
    session.auth = (service.credential["User"], service.credential["Password"])
    return session


def _upload(service: Service, name: str, start: int) -> int:
    response = _api(service).post(
        service.base + "/api/batches",
        data={"file_type": "txt", "force": "true"},
        files={"file": (name, template_file(2500, {}, start=start))},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _batch(service: Service, batch_id: int) -> dict:
    return _api(service).get(f"{service.base}/api/batches/{batch_id}", timeout=30).json()


def _gone(pids) -> bool:
    """Whether none of these processes runs (a zombie waiting for its parent does not)."""
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                return False
        except OSError:
            pass
    return True


def _wait(condition, seconds: float = 120, what: str | None = "") -> None:
    """Until condition() holds; past `seconds`, fail saying `what` (None: give up quietly)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            assert what is None, what
            return
        time.sleep(0.02)


def _check_batch(service: Service, batch_id: int) -> None:
    """Every row has exactly one outcome, and every row that was stored, one record."""
    info = _batch(service, batch_id)
    assert info["status"] == "done", info
    engine = service.engine()
    try:
        with engine.connect() as conn:
            results = conn.execute(select(func.count()).where(t.batch_results.c.batch_pk == batch_id)).scalar()
            stored = conn.execute(select(func.count()).where(t.learner_records.c.batch_pk == batch_id)).scalar()
            ok = conn.execute(
                select(func.count()).where(t.batch_results.c.batch_pk == batch_id, t.batch_results.c.codes == "")
            ).scalar()
    finally:
        engine.dispose()
    assert results == 2500 and stored == ok == info["processed"] and info["processed"] + info["not_processed"] == 2500


def test_batches_and_saves_survive_killed_workers_and_a_killed_serve(service):
    service.start()
    with Writers(service, clients=2) as writers:
        # The batch worker is killed mid-file: serve starts another, which resumes the file.
        first = _upload(service, "first.txt", 0)
        _wait(lambda: _batch(service, first)["rows_done"] >= 250, what="the first file never got going")
        worker = batch_worker(service.proc.pid)
        assert _kill(worker)
        _wait(lambda: batch_worker(service.proc.pid) not in (None, worker), what="no new batch worker")
        _wait(lambda: _batch(service, first)["status"] == "done", what="the first file was not finished")
        _check_batch(service, first)

        # serve itself is killed mid-file: its children stop with it; the next start finishes the file.
        second = _upload(service, "second.txt", 2500)
        _wait(lambda: _batch(service, second)["rows_done"] >= 250, what="the second file never got going")
        children = [gunicorn_master(service.proc.pid), batch_worker(service.proc.pid)]
        service.proc.kill()
        service.proc.wait()
        _wait(lambda: _gone(children), 60, "children outlived serve")
        service.start()
        _wait(lambda: _batch(service, second)["status"] == "done", what="the second file was not finished")
        _check_batch(service, second)

        # Everything is killed at once, mid-file (a crash of the machine's processes): the file is
        # taken over once its worker's heartbeat is stale.
        third = _upload(service, "third.txt", 5000)
        _wait(lambda: _batch(service, third)["rows_done"] >= 250, what="the third file never got going")
        everyone = [
            service.proc.pid,
            *(p for p in (gunicorn_master(service.proc.pid), batch_worker(service.proc.pid)) if p),
        ]
        everyone += gunicorn_workers(service.proc.pid)
        for pid in everyone:
            _kill(pid)
        service.proc.wait()
        _wait(lambda: _gone(everyone), 60, "a process survived")
        service.start()
        _wait(lambda: _batch(service, third)["status"] == "done", what="the third file was not finished")
        _check_batch(service, third)
    service.stop()
    assert len(writers.acknowledged) >= 20, (writers.acknowledged, writers.failed_calls)
    stored = _stored(service, writers.acknowledged)
    assert {cid for cid, n in stored.items() if n != 1} == set()
    _check_database(service)
