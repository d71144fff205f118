"""Profile batches in one process: the upload (service layer) and the worker's processing of
2,500-record files (--records), on the bench world.

    .venv/bin/python bench/profile_batch.py [--backend sqlite|postgresql] [--type xml|txt] [--rounds 3]
                                            [--records 2500] [--stored N[,N...]] [--statements]
                                            [--profile out.html]

Prints the median upload and processing times next to the floor (bench/common.floor_seconds).
--stored 0,1000000: one database per figure, their rounds interleaved (so the machine's drift
reaches all alike), each printed with its growth against the first: how processing grows with the
records already stored. --statements splits processing into the database's calls (each statement
from the driver call to its last row, the commits) and the rest, per record. --profile writes a
pyinstrument report (`pip install pyinstrument`) of the last round.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

SHOWN = 6  # statements listed by name with --statements; the others are summed


class World:
    """One database and the services on it, with what its rounds measured."""

    def __init__(self, stored: int, url: str, world: dict):
        from pars_ws.service.container import Services

        self.stored, self.url, self.world = stored, url, world
        self.services = Services()  # reads the environment in_process_world has just set
        self.account = self.services.auth.authenticate(common.SANDBOX_USER, common.SANDBOX_PASSWORD)
        self.engine = common.engine_for(url)
        self.uploads, self.processing, self.floors = [], [], []
        self.database: dict[str, float] = {}  # seconds per label, summed over the measured rounds

    def close(self) -> None:
        self.engine.dispose()
        self.services.engine.dispose()


def run_round(w: World, n: int, args, statements: dict | None, profile: bool) -> None:
    from pars_ws.service import batches

    size = args.records
    recs = common.records(n * size, size, f"pb{n}")
    data = common.activity_reports_file(recs) if args.type == "xml" else common.template_b_file(recs)
    floor = common.floor_seconds(
        w.engine, common.activity_reports_file(common.records((n + 500) * size, size, f"fl{n}")), w.world["provider_pk"]
    )
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    t0 = time.perf_counter()
    batches.upload(w.services, w.account, file_name=f"b{n}.{args.type}", data=data, file_type=args.type)
    t1 = time.perf_counter()
    if statements is not None:
        statements.clear()
    while batches.process_next(w.services, "profile"):
        pass
    t2 = time.perf_counter()
    if profiler is not None:
        profiler.stop()
        Path(args.profile).write_text(profiler.output_html())
        print(profiler.output_text(unicode=False, color=False)[:30000])
    if n == 0:  # the first round warms caches and statistics
        common.analyze(w.url)
        return
    w.uploads.append(t1 - t0)
    w.processing.append(t2 - t1)
    w.floors.append(floor)
    for label, times in (statements or {}).items():
        w.database[label] = w.database.get(label, 0.0) + sum(times)


def report(worlds: list[World], args) -> None:
    base = worlds[0]
    for w in worlds:
        floor, up, proc = (common.median(x) for x in (w.floors, w.uploads, w.processing))
        growth = (
            ""
            if w is base
            else f", processing {proc / common.median(base.processing):.2f} x that with {base.stored:,} stored"
        )
        print(
            f"{w.url.split(':')[0]} {args.type}, {args.records:,} records, {w.stored:,} stored: floor "
            f"{floor * 1000:.0f} ms, upload {up * 1000:.0f} ms, processing {proc * 1000:.0f} ms, together "
            f"{(up + proc) / floor:.2f} x floor{growth}"
        )
    if not args.statements:
        return
    # us per record over all measured rounds: the database's calls, the rest of processing.
    per = 1e6 / (args.rounds * args.records)
    shown = sorted(base.database, key=lambda label: -base.database[label])[:SHOWN]
    print(
        f"\nprocessing per record (us, all {args.rounds} rounds), by where it went; growth against "
        f"{base.stored:,} stored"
    )
    print(
        f"{'':<62}" + "".join(f"{f'{w.stored:,} stored':>18}" + ("" if w is base else f"{'growth':>8}") for w in worlds)
    )

    def row(name: str, values: list[float]) -> None:
        first, *others = values
        growths = (f"{v / first:>8.2f}" if first else f"{'-':>8}" for v in others)
        print(
            f"{name[:60]:<62}{first:>18.1f}" + "".join(f"{v:>18.1f}{g}" for v, g in zip(others, growths, strict=True))
        )

    totals = [sum(w.processing) * per for w in worlds]
    db = [sum(w.database.values()) * per for w in worlds]
    row("processing", totals)
    row("  the database's calls", db)
    for label in shown:
        row(f"    {label}", [w.database.get(label, 0.0) * per for w in worlds])
    row("    other statements", [sum(v for k, v in w.database.items() if k not in shown) * per for w in worlds])
    row("  the rest (parse, rules, Python around the calls)", [t - d for t, d in zip(totals, db, strict=True)])


def main() -> int:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--type", choices=("xml", "txt"), default="xml")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--records", type=int, default=2500, help="records per file")
    p.add_argument(
        "--stored",
        default="0",
        help="records stored before the first batch; several, comma-separated: one database each",
    )
    p.add_argument("--statements", action="store_true", help="split processing into the database's calls and the rest")
    p.add_argument("--profile", help="write a pyinstrument HTML report of the last round here")
    args = p.parse_args()
    stored = [int(s) for s in args.stored.split(",")]
    with contextlib.ExitStack() as stack:
        worlds = []
        for n in stored:
            url, world = stack.enter_context(common.in_process_world(args, n))
            worlds.append(World(n, url, world))
            stack.callback(worlds[-1].close)
        statements = common.time_statements() if args.statements else None
        for n in range(args.rounds + 1):
            for w in worlds if n % 2 == 0 else reversed(worlds):
                last = n == args.rounds and w is worlds[-1]
                run_round(w, n, args, statements, bool(args.profile) and last)
        report(worlds, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
