"""SOAP bench: SaveLearnerActivity with 1 and 100 records per call, and with 1 record for learners
who already hold 1,000 records for the activity, at 1, 4 and 16 concurrent clients, next to a trivial
spyne echo served by the same gunicorn configuration, in the same run, and that echo's "floor": the
echo plus one durable INSERT per call through pars-ws's own unit of work.

    .venv/bin/python bench/soap.py [--backend sqlite|postgresql|both] [--seconds 3] [--rounds 3]

The service (`pars-ws serve` with its default gunicorn workers for the database, or --workers, and its
batch worker; the echo gets as many) starts on a database with the bench world and --stored records
already stored (statistics refreshed, as on a database in use). The board review runs as it does in
the sandbox, with no delay: each phase pays for reviewing the records it saved, and the next phase
starts once the review has caught up. Between phases statistics are refreshed and, on PostgreSQL,
the review's dead row versions cleared, as autovacuum would (bench/common.analyze). Closed-loop
clients (threads, one TCP connection per call, as gunicorn's sync workers close them) on 127.0.0.1.
Each phase lasts --seconds and at most the pre-built request bodies; the phases are interleaved
(echo, floor, 1 record, 1 record with history, 100 records) per round so drift in the machine's speed hits
all alike; calls/s is the median over rounds, p50/p99 are over every call of the configuration.
"CPU us" is the CPU time the gunicorn workers spent per call (user + system, /proc), median over
rounds; "db CPU" is, on PostgreSQL, the CPU time its server processes spent per call (the
statements' work, which SQLite does inside the workers), and "busy" the share of the machine's CPUs
in use during the phase (all processes, /proc/stat). The floor (bench/echo_app.py `store`) writes
to a database of its own on SQLite and to a table of the scratch database on PostgreSQL; "of floor"
is a 1-record save's calls/s over it: what the save does beyond committing one row.

Targets (exit status 1 when one is missed): 1-record calls/s >= 40% of echo calls/s on SQLite and
>= 30% on PostgreSQL at every concurrency; 1-record calls for learners with history >= 70% of
1-record calls/s at every concurrency; 1-record p99 < 50 ms at 16 clients; zero errors anywhere.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import echo_app  # noqa: E402

from pars_ws.settings import default_web_workers  # noqa: E402
from tests.conftest import children, gunicorn_workers, proc_stat  # noqa: E402

CONCURRENCY = (1, 4, 16)
RATIO_TARGET = {"sqlite": 0.40, "postgresql": 0.30}  # 1-record calls/s over echo calls/s
HISTORY_TARGET = 0.70  # 1-record calls/s for learners with history over those without
SERVICE_PATH = "/services/ACCMELearnerService.svc"
OPERATIONS = ("echo", "floor", "save1", "history", "save100")
SAVE_ACTION = '"urn:pars-ws:learner:v1/SaveLearnerActivity"'


class Op:
    def __init__(
        self, name: str, port: int, path: str, action: str, bodies: list[bytes], records_per_call: int, ok_marker: bytes
    ):
        self.name, self.port, self.path, self.action = name, port, path, action
        self.bodies, self.records_per_call, self.ok_marker = bodies, records_per_call, ok_marker
        self.next = itertools.count()  # shared across phases: each body is sent once
        self.workers: list[int] = []  # the gunicorn workers serving it, for their CPU time

    def request(self, body: bytes) -> bytes:
        return (
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nConnection: close\r\n"
            f"Content-Type: text/xml; charset=utf-8\r\nSOAPAction: {self.action}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body


def call(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request)
        chunks = []
        while True:
            chunk = s.recv(262144)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far."""
    ticks = 0
    for pid in pids:
        _, fields = proc_stat(pid)
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> dict[int, int]:
    """CPU clock ticks so far of each PostgreSQL server process on this machine (its backends do a
    save's statement work, outside the gunicorn workers; with SQLite that work is inside them)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                comm, fields = proc_stat(entry)
            except (OSError, ValueError):
                continue
            if comm == "postgres":
                found[int(entry)] = int(fields[11]) + int(fields[12])
    return found


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs so far (/proc/stat): how much of the machine a phase used."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def phase(op: Op, clients: int, seconds: float, backend: str = "sqlite") -> dict:
    """Closed loop: every client sends its next call as soon as the previous answer is in."""
    latencies: list[float] = []
    errors: list[str] = []
    stored = [0]
    lock = threading.Lock()
    start_gate = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client():
        mine, bad, ok_records = [], [], 0
        start_gate.wait()
        while time.perf_counter() < stop_at[0]:
            i = next(op.next)
            if i >= len(op.bodies):
                break
            request = op.request(op.bodies[i])
            t0 = time.perf_counter()
            try:
                answer = call(op.port, request)
            except OSError as exc:
                bad.append(repr(exc))
                continue
            mine.append(time.perf_counter() - t0)
            if answer[9:12] != b"200" or op.ok_marker not in answer:
                bad.append(answer[:300].decode("utf-8", "replace"))
            elif op.records_per_call:
                ok_records += answer.count(b":Status>Accepted</") + answer.count(b":Status>Submitted</")
        with lock:
            latencies.extend(mine)
            errors.extend(bad)
            stored[0] += ok_records

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    cpu_before = cpu_seconds(op.workers)
    busy_before = machine_busy()
    db_before = postgres_cpu() if backend == "postgresql" else {}
    stop_at[0] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    start_gate.wait()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds(op.workers) - cpu_before
    busy_after = machine_busy()
    db_after = postgres_cpu() if backend == "postgresql" else {}
    db = sum(v - db_before.get(pid, 0) for pid, v in db_after.items()) / os.sysconf("SC_CLK_TCK")
    busy = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
    calls = len(latencies)

    def per_call(seconds: float) -> float:
        return seconds / calls if calls else float("nan")

    return dict(
        busy=busy,
        calls=calls,
        seconds=elapsed,
        rate=calls / elapsed,
        latencies=latencies,
        errors=errors,
        stored=stored[0],
        cpu_per_call=per_call(cpu),
        machine_per_call=per_call(busy * os.cpu_count() * elapsed),  # every process's CPU time
        db_per_call=per_call(db) if backend == "postgresql" else float("nan"),
    )


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def start_echo(workdir: Path, workers: int, floor_url: str) -> tuple[subprocess.Popen, int]:
    port = common.free_port()
    echo_app.create_table(floor_url)
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("echo_app.py")), f"127.0.0.1:{port}", str(workers), floor_url],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "echo.log", "wb"),
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if call(port, b"GET /?wsdl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[9:12] == b"200":
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("echo server did not start")


def stop(proc: subprocess.Popen) -> None:
    import os
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def db_text(runs: list[dict], name: str) -> str:
    per_call = common.median([r["db_per_call"] for r in runs])
    return "-" if name in ("echo", "floor") or per_call != per_call else f"{per_call * 1e6:.0f}"


def run_backend(backend: str, args) -> tuple[list[str], list[str]]:
    lines, missed = [], []
    with common.workdir("pars-bench-soap-") as tmp:
        tmp = Path(tmp)
        with common.scratch_database(backend, tmp, args.pg_url) as url:
            workers = args.workers or default_web_workers(url)
            server, _ = common.start_service(url, tmp, workers=workers, PARS_REVIEW_DELAY_SECONDS="0")
            floor_url = f"sqlite:///{tmp / 'floor.db'}" if backend == "sqlite" else url
            echo_proc, echo_port = start_echo(tmp, workers, floor_url)
            try:
                world = common.seed_world(url)
                # A database in use: records already stored, and statistics that know it.
                common.prestore(url, args.stored, world["provider_pk"])
                common.prestore_history(url, world["provider_pk"])
                port = int(server.base_url.rsplit(":", 1)[1])
                budget = args.rounds * args.seconds * 1.2  # seconds of load per configuration, with slack
                n1 = int(budget * 2500 * len(args.clients))
                n100 = int(budget * 60 * len(args.clients))
                tag = f"s{int(time.time())}"
                print(f"[{backend}] building {n1} one-record and {n100} 100-record requests ...", flush=True)
                one = [common.save_envelope([common.record(i, tag)]) for i in range(n1)]
                history = [common.save_envelope([common.history_record(i, tag)]) for i in range(n1)]
                hundred = [common.save_envelope(common.records(n1 + k * 100, 100, tag)) for k in range(n100)]
                ops = {
                    "echo": Op(
                        "echo",
                        echo_port,
                        "/",
                        '"echo"',
                        [echo_app.envelope(f"hello {i}") for i in range(n1)],
                        0,
                        b"echoResult",
                    ),
                    "floor": Op(
                        "floor",
                        echo_port,
                        "/",
                        '"store"',
                        [echo_app.envelope(f"hello {i}", "store") for i in range(n1)],
                        0,
                        b"storeResult",
                    ),
                    "save1": Op("save1", port, SERVICE_PATH, SAVE_ACTION, one, 1, b"ResultSummary"),
                    "history": Op("history", port, SERVICE_PATH, SAVE_ACTION, history, 1, b"ResultSummary"),
                    "save100": Op("save100", port, SERVICE_PATH, SAVE_ACTION, hundred, 100, b"ResultSummary"),
                }
                for op in ops.values():  # the echo's process is its gunicorn master; pars-ws's is serve
                    op.workers = (
                        [pid for pid, _ in children(echo_proc.pid)]
                        if op.name in ("echo", "floor")
                        else gunicorn_workers(server.proc.pid)
                    )
                # Warm up: every gunicorn worker verifies the credential once (argon2) and fills its caches.
                for op in ops.values():
                    phase(op, 4, 0.5)
                common.wait_reviewed(url)
                results: dict[tuple[str, int], list[dict]] = {}
                for _ in range(args.rounds):
                    for clients in args.clients:
                        for name in OPERATIONS:
                            results.setdefault((name, clients), []).append(
                                phase(ops[name], clients, args.seconds, backend)
                            )
                            common.wait_reviewed(url)
                            common.analyze(url)
            finally:
                stop(echo_proc)
                common.stop_server(server)
    lines.append(
        f"== SOAP on {backend}: {args.rounds} rounds x {args.seconds:g} s per configuration, "
        f"gunicorn -w {workers} --preload (sync), clients on the same machine; history: learners holding "
        f"{common.HISTORY_RECORDS} records for the activity"
    )
    lines.append(
        f"{'operation':<10}{'clients':>8}{'calls/s':>10}{'records/s':>11}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}{'stored':>9}{'vs echo':>9}{'CPU us':>8}{'db CPU':>8}{'busy':>6}"
    )
    rates: dict[tuple[str, int], float] = {}
    for clients in args.clients:
        for name in OPERATIONS:
            runs = results[(name, clients)]
            rate = rates[(name, clients)] = common.median([r["rate"] for r in runs])
            lat = [x for r in runs for x in r["latencies"]]
            errors = [e for r in runs for e in r["errors"]]
            calls = sum(r["calls"] for r in runs)
            per_call = ops[name].records_per_call
            stored = sum(r["stored"] for r in runs)
            ratio = rate / rates[("echo", clients)]
            stored_text = f"{stored / (calls * per_call):.0%}" if per_call and calls else "-"
            lines.append(
                f"{name:<10}{clients:>8}{rate:>10.0f}{rate * per_call:>11.0f}{pct(lat, 50) * 1000:>9.1f}"
                f"{pct(lat, 99) * 1000:>9.1f}{len(errors):>8}{stored_text:>9}{ratio:>9.2f}"
                f"{common.median([r['cpu_per_call'] for r in runs]) * 1e6:>8.0f}"
                f"{db_text(runs, name):>8}"
                f"{common.median([r['busy'] for r in runs]):>6.0%}"
            )
            if errors:
                missed.append(f"{backend}: {name} at {clients} clients: {len(errors)} errors, e.g. {errors[0][:200]!r}")
            if name == "save1" and ratio < RATIO_TARGET[backend]:
                missed.append(
                    f"{backend}: 1-record calls at {clients} clients are {ratio:.0%} of echo "
                    f"(< {RATIO_TARGET[backend]:.0%})"
                )
            if name == "save1":
                lines[-1] += f"   {rate / rates[('floor', clients)]:.2f} of floor"
            if name == "save1" and clients == 16 and pct(lat, 99) >= 0.050:
                missed.append(f"{backend}: 1-record p99 at 16 clients is {pct(lat, 99) * 1000:.1f} ms (>= 50 ms)")
            if name == "history":
                held = rate / rates[("save1", clients)]
                lines[-1] += f"   {held:.2f} of save1"
                if held < HISTORY_TARGET:
                    missed.append(
                        f"{backend}: 1-record calls with history at {clients} clients are {held:.0%} of "
                        f"those without (< {HISTORY_TARGET:.0%})"
                    )
    return lines, missed


def main() -> int:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--stored", type=int, default=100_000, help="records stored before the first call")
    p.add_argument(
        "--clients",
        type=lambda v: [int(x) for x in v.split(",")],
        default=list(CONCURRENCY),
        help="concurrent clients of each phase, comma-separated (default 1,4,16; the targets are for all three)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="gunicorn workers for pars-ws and the echo alike (default: as `pars-ws serve` on that database)",
    )
    args = p.parse_args()
    return common.run_and_report(args, run_backend)


if __name__ == "__main__":
    sys.exit(main())
