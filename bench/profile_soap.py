"""Profile SaveLearnerActivity in one process: the WSGI app pars-ws serves, called directly (no TCP,
no gunicorn), next to the spyne echo called the same way, on the bench world.

    .venv/bin/python bench/profile_soap.py [--backend sqlite|postgresql] [--calls 2000] [--records 1]
                                           [--history] [--profile out.html] [--cprofile [--sort cumulative] [--only psycopg]]
                                           [--statements]

Prints the median per-call time of each and their ratio; with --profile, writes a pyinstrument
report (`pip install pyinstrument`) of the SaveLearnerActivity calls; with --cprofile, prints
cProfile's top functions (e.g. `--backend postgresql --cprofile` shows psycopg's round-trip wait);
with --statements, the time each SQL statement of a call took from the driver's call to its answer
(on PostgreSQL: the round trip and the server's work), next to the round trip of `SELECT 1`.
"""

from __future__ import annotations

import gc
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import echo_app  # noqa: E402


def caller(app, path: str, action: str):
    def call(body: bytes) -> bytes:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1",
            "wsgi.url_scheme": "http",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_TYPE": "text/xml; charset=utf-8",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_SOAPACTION": action,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "REMOTE_ADDR": "127.0.0.1",
        }
        status = []
        out = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
        if not status[0].startswith("200"):
            raise RuntimeError(out[:400])
        return out

    return call


def timed(call, bodies: list[bytes], cpu: list[float] | None = None) -> list[float]:
    """Each call's wall time; its CPU time (this process's) goes in `cpu`."""
    times = []
    for body in bodies:
        t0, c0 = time.perf_counter(), time.process_time()
        call(body)
        times.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.process_time() - c0)
    return times


def main() -> int:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--records", type=int, default=1, help="records per SaveLearnerActivity call")
    p.add_argument("--stored", type=int, default=100_000, help="records stored before the first call (as soap.py)")
    p.add_argument(
        "--history",
        action="store_true",
        help="one record per call, for learners holding 1,000 records (soap.py's history)",
    )
    p.add_argument("--profile", help="write a pyinstrument HTML report here")
    p.add_argument("--cprofile", action="store_true", help="print cProfile's top 45 functions")
    p.add_argument("--sort", default="tottime", help="cProfile order: tottime (own time) or cumulative")
    p.add_argument("--only", default="", help="cProfile: only functions whose file matches this (e.g. psycopg)")
    p.add_argument("--statements", action="store_true", help="print the time of each SQL statement per call")
    args = p.parse_args()
    with common.in_process_world(args, args.stored) as (url, world):
        if args.history:
            common.prestore_history(url, world["provider_pk"])
            common.analyze(url)
        from pars_ws.entrypoints.wsgi import create_app

        app = create_app()
        gc.freeze()  # as `pars-ws serve` does after preloading: spyne's once-a-second gc.collect() stays cheap
        statements = common.time_statements() if args.statements else None
        save = caller(app, "/services/ACCMELearnerService.svc", '"urn:pars-ws:learner:v1/SaveLearnerActivity"')
        echo = caller(echo_app.application, "/", '"echo"')
        n, k = args.calls, 1 if args.history else args.records
        if args.history:
            bodies = [common.save_envelope([common.history_record(i, "prof")]) for i in range(2 * n + 20)]
        else:
            bodies = [common.save_envelope(common.records(i * k, k, "prof")) for i in range(2 * n + 20)]
        echoes = [echo_app.envelope(f"hello {i}") for i in range(2 * n)]
        timed(save, bodies[:20])  # warm: argon2 once, caches
        timed(echo, echoes[:20])
        halves, slow, cpu = [], [], []
        for part in range(2):  # interleaved, so drift hits both alike
            e = timed(echo, echoes[part * n : (part + 1) * n])
            if args.profile and part == 1:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0002)
                profiler.start()
            if args.cprofile and part == 1:
                import cProfile

                cprof = cProfile.Profile()
                cprof.enable()
            if statements is not None:
                statements.clear()
            s = timed(save, bodies[20 + part * n : 20 + (part + 1) * n], cpu)
            if args.cprofile and part == 1:
                import pstats

                cprof.disable()
                pstats.Stats(cprof).sort_stats(args.sort).print_stats(args.only, 45)
            if args.profile and part == 1:
                profiler.stop()
                Path(args.profile).write_text(profiler.output_html())
                print(profiler.output_text(unicode=False, color=False, show_all=False)[:20000])
            halves.append((common.median(e), common.median(s)))
            slow += s
        for e, s in halves:
            print(f"echo {e * 1e6:8.0f} us   save({k}) {s * 1e6:8.0f} us   echo/save {e / s:5.2f}")
        print(f"save({k}) CPU time: {common.median(cpu) * 1e6:.0f} us median")
        print("slowest save calls (ms):", " ".join(f"{x * 1000:.1f}" for x in sorted(slow)[-12:]))
        if statements is not None:
            print_statements(statements, n, url)
    return 0


def print_statements(found: dict, calls: int, url: str) -> None:
    from sqlalchemy import text

    found = dict(found)  # the SELECT 1s below are timed too
    engine = common.engine_for(url)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        trips = []
        for _ in range(500):
            t0 = time.perf_counter()
            conn.execute(text("SELECT 1")).all()
            trips.append(time.perf_counter() - t0)
    engine.dispose()
    print(
        f"per SaveLearnerActivity call ({calls} calls); SELECT 1 through SQLAlchemy: "
        f"{common.median(trips) * 1e6:.0f} us median"
    )
    total = 0.0
    for sql, times in sorted(found.items(), key=lambda item: -sum(item[1])):
        total += sum(times)
        print(
            f"{sum(times) / calls * 1e6:8.0f} us/call {len(times) / calls:5.1f}x  median {common.median(times) * 1e6:6.0f} us  {sql}"
        )
    print(f"{total / calls * 1e6:8.0f} us/call in all")


if __name__ == "__main__":
    sys.exit(main())
