"""Two versions of pars-ws side by side in one run: this checkout, or --base, (A) and another source tree (B).

    .venv/bin/python bench/ab.py --other /path/to/checkout [--base /path/to/checkout] [--backend sqlite] [--clients 1,4,16]
                                 [--seconds 3] [--rounds 3] [--stored 100000] [--batch] [--workers N] [--other-workers N]

How a speed mechanism is judged (bench/README.md): B is the same code with the mechanism taken out
(or put in), every figure is measured on both in the same run, phases alternate between A and B
(A first in one round, B first in the next), and the medians are compared. Each service runs on a
scratch database of its own with the same bench world and --stored records; B is started with
PYTHONPATH pointing at its tree's src/, so its own migrations, schemas and code serve it.

Prints 1-record SaveLearnerActivity calls/s and p99 per concurrency (and, with --batch, the end to end
seconds of 250- and 2,500-record Template B and XML files) for A and B, and B's figure over A's.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from soap import SAVE_ACTION, SERVICE_PATH, Op, pct, phase  # noqa: E402

from pars_ws.settings import default_web_workers  # noqa: E402
from tests.conftest import children, gunicorn_workers  # noqa: E402


def start(name: str, tree: Path | None, backend: str, args, tmp: Path, stack, workers: int | None = None):
    """A service of one tree on a scratch database with the bench world; (url, server, worker, world)."""
    workdir = tmp / name
    workdir.mkdir()
    url = stack.enter_context(common.scratch_database(backend, workdir, args.pg_url))
    env = {"PARS_REVIEW_DELAY_SECONDS": "0"}
    if tree is not None:
        env["PYTHONPATH"] = str(tree / "src")
    workers = workers or args.workers or default_web_workers(url)
    server, worker = common.start_service(
        url, workdir, workers=workers, batch_worker_poll=common.BATCH_WORKER_POLL if args.batch else None, **env
    )
    stack.callback(common.stop_service, server, worker)
    world = common.seed_world(url)
    common.prestore(url, args.stored, world["provider_pk"])
    return url, server, world


def soap_rounds(args, sides: dict) -> list[str]:
    n = int(args.rounds * args.seconds * 1.2 * 2500 * len(args.clients))
    ops = {}
    for name, (url, server, _world) in sides.items():
        tag = f"ab{name}{int(time.time())}"
        bodies = [common.save_envelope([common.record(i, tag)]) for i in range(n)]
        port = int(server.base_url.rsplit(":", 1)[1])
        op = Op(name, port, SERVICE_PATH, SAVE_ACTION, bodies, 1, b"ResultSummary")
        # An older serve is gunicorn's master itself; this one runs it as a child.
        op.workers = gunicorn_workers(server.proc.pid) or [pid for pid, _ in children(server.proc.pid)]
        phase(op, 4, 0.5)  # warm up: argon2 once per worker
        common.wait_reviewed(url)
        ops[name] = op
    results: dict[tuple[str, int], list[dict]] = {}
    for r in range(args.rounds):
        for clients in args.clients:
            for name in ("A", "B") if r % 2 == 0 else ("B", "A"):
                results.setdefault((name, clients), []).append(phase(ops[name], clients, args.seconds, args.backend))
                common.wait_reviewed(sides[name][0])
                common.analyze(sides[name][0])
    lines = [
        f"{'clients':>8}{'A calls/s':>11}{'B calls/s':>11}{'B/A':>7}{'A p99 ms':>10}{'B p99 ms':>10}{'B/A':>7}"
        f"{'A CPU us':>10}{'B CPU us':>10}{'errors':>8}"
    ]
    for clients in args.clients:
        a, b = results[("A", clients)], results[("B", clients)]
        rate_a, rate_b = (common.median([x["rate"] for x in runs]) for runs in (a, b))
        p99_a, p99_b = (pct([v for x in runs for v in x["latencies"]], 99) for runs in (a, b))
        cpu_a, cpu_b = (common.median([x["cpu_per_call"] for x in runs]) for runs in (a, b))
        errors = sum(len(x["errors"]) for x in a + b)
        lines.append(
            f"{clients:>8}{rate_a:>11.0f}{rate_b:>11.0f}{rate_b / rate_a:>7.2f}{p99_a * 1000:>10.1f}"
            f"{p99_b * 1000:>10.1f}{p99_b / p99_a:>7.2f}{cpu_a * 1e6:>10.0f}{cpu_b * 1e6:>10.0f}{errors:>8}"
        )
    return lines


def batch_rounds(args, sides: dict) -> list[str]:
    seconds: dict[tuple[str, str, int], list[float]] = {}
    for r in range(args.rounds):
        for size in (250, 2500):
            for kind in ("txt", "xml"):
                for name in ("A", "B") if r % 2 == 0 else ("B", "A"):
                    url, server, _world = sides[name]
                    start = 10_000_000 + r * 20_000 + (10_000 if kind == "xml" else 0) + size
                    recs = common.records(start, size, f"ab{name}{kind}{r}")
                    data = common.template_b_file(recs) if kind == "txt" else common.activity_reports_file(recs)
                    done = common.upload_and_wait(server, f"ab-{r}-{size}.{kind}", data, kind)
                    seconds.setdefault((name, kind, size), []).append(done["seconds"])
    lines = [f"{'file':>12}{'A s':>9}{'B s':>9}{'B/A':>7}"]
    for size in (250, 2500):
        for kind in ("txt", "xml"):
            a = common.median(seconds[("A", kind, size)])
            b = common.median(seconds[("B", kind, size)])
            lines.append(f"{size:>7} {kind:<4}{a:>9.3f}{b:>9.3f}{b / a:>7.2f}")
    return lines


def main() -> int:
    import contextlib

    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--other", required=True, type=Path, help="the source tree of B (a checkout of pars-ws)")
    p.add_argument("--base", type=Path, default=None, help="the source tree of A (default: this checkout)")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--stored", type=int, default=100_000)
    p.add_argument("--clients", type=lambda v: [int(x) for x in v.split(",")], default=[1, 4, 16])
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--other-workers", type=int, default=None, help="B's gunicorn workers (default: as A's)")
    p.add_argument("--batch", action="store_true", help="compare batch files end to end instead of SOAP calls")
    args = p.parse_args()
    args.backend = "sqlite" if args.backend == "both" else args.backend
    with common.workdir("pars-bench-ab-") as tmp, contextlib.ExitStack() as stack:
        base = args.base.resolve() if args.base else None
        sides = {
            "A": start("A", base, args.backend, args, Path(tmp), stack),
            "B": start("B", args.other.resolve(), args.backend, args, Path(tmp), stack, args.other_workers),
        }
        print(f"== A: {base or common.ROOT}   B: {args.other.resolve()}   ({args.backend}, {args.rounds} rounds)")
        lines = batch_rounds(args, sides) if args.batch else soap_rounds(args, sides)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
