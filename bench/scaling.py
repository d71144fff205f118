"""Scaling bench: time per record for 250, 2,500 and 25,000 records (the last as ten 2,500-record
files), on a database holding only the bench's own records, then again with 1,000,000 records
already stored.

    .venv/bin/python bench/scaling.py [--backend sqlite|postgresql|both] [--stored 1000000]

Every file goes through the batch path end to end (bench/batch.py: POST /api/batches until the
batch is done, the service under gunicorn with one `pars-ws worker --poll 0.05`), as ActivityReports
XML. Time per record = sum of the files' end-to-end times / records; "processing" is the worker's
part alone (claim to done, the service's own timestamps), which no fixed per-upload cost dilutes.
Two services run side by side, one per database, and every repetition of every size runs on both
in turn, so the machine's drift reaches both alike. The 1,000,000 records are the same provider's,
of the same registry learners and activities (bench/common.prestore: a direct bulk insert, COPY on
PostgreSQL); statistics are refreshed after loading, as autovacuum would.

Next to them, the floor's growth: before each upload, the same file parsed, validated, extracted
and inserted with one executemany into the same table at the same index positions (the file's
environment and keys; rolled back), bench/common.floor_seconds. Where processing grows with the
records stored, this says how much of that growth the database's own inserts show.

Target (exit status 1 when missed): no figure, end to end or processing, more than 10% above the
250-record figure on the database without the 1,000,000 records.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

# records, repetitions (median), files per run. 25,000 records run three times too: one run of ten
# files moved with the machine by as much as the target allows (its floor by up to 1.42x).
SIZES = ((250, 9, 1), (2500, 5, 1), (25000, 3, 10))
MAX_GROWTH = 1.10


def run_file(server, engine, provider_pk: int, size: int, start: int, tag: str) -> tuple[float, float, float]:
    """One file of `size` records numbered from `start`: (end-to-end s, processing s, floor s)."""
    data = common.activity_reports_file(common.records(start, size, tag))
    common.wait_reviewed(server.env["PARS_DATABASE_URL"])  # the floor too has the database to itself
    floor = common.floor_seconds(engine, data, provider_pk, in_place=True)
    batch = common.upload_and_wait(server, f"scale{start}.xml", data, "xml")
    if batch["processed"] + batch["not_processed"] != size:
        raise RuntimeError(f"batch {batch['id']} incomplete: {batch}")
    return batch["seconds"], batch["processing_seconds"], floor


def run_interleaved(services: list) -> list[dict]:
    """For each service (server, tag, url, provider_pk): {records: (end-to-end, processing, floor) s/record},
    medians.

    Repetition by repetition, each size runs on every service in turn (the order alternating), so
    a drift in the machine's speed reaches both databases alike. Statistics are refreshed before
    each repetition, as autovacuum does on a table that grows: the database without the stored
    records grows from almost nothing to about 90,000 records in a few minutes."""
    times = [{total: ([], [], []) for total, _, _ in SIZES} for _ in services]
    starts = [0] * len(services)
    engines = [common.engine_for(url) for _, _, url, _ in services]
    try:
        for rep in range(max(reps for _, reps, _ in SIZES)):
            for _, _, url, _ in services:
                common.analyze(url)
            for total, reps, files in SIZES:
                if rep >= reps:
                    continue
                order = range(len(services)) if rep % 2 == 0 else reversed(range(len(services)))
                for i in order:
                    server, tag, _, provider_pk = services[i]
                    sums = [0.0, 0.0, 0.0]
                    for _ in range(files):
                        figures = run_file(server, engines[i], provider_pk, total // files, starts[i], tag)
                        starts[i] += total // files
                        sums = [a + b for a, b in zip(sums, figures, strict=True)]
                    for kept, value in zip(times[i][total], sums, strict=True):
                        kept.append(value / total)
    finally:
        for engine in engines:
            engine.dispose()
    return [{total: tuple(common.median(v) for v in kept) for total, kept in t.items()} for t in times]


def run_backend(backend: str, args) -> tuple[list[str], list[str]]:
    lines, missed = [], []
    # Two services side by side, one database with the bench's records only, one with --stored more.
    with (
        common.batch_service(backend, args, "s") as (url, server, _w, world, tag),
        common.batch_service(backend, args, "m") as (url_m, server_m, _w2, world_m, tag_m),
    ):
        loaded_in = common.prestore(url_m, args.stored, world_m["provider_pk"])
        empty, stored = run_interleaved(
            [(server, tag, url, world["provider_pk"]), (server_m, tag_m, url_m, world_m["provider_pk"])]
        )
    base_e2e, base_proc, base_floor = empty[250]
    lines.append(
        f"== scaling on {backend} (ActivityReports files; medians; {args.stored:,} records bulk-loaded "
        f"in {loaded_in:.0f} s)"
    )
    lines.append(
        f"{'records':>8} {'already stored':>15} {'ms/record end to end':>21} {'growth':>7} "
        f"{'ms/record processing':>21} {'growth':>7} {'floor ms/record':>16} {'growth':>7}"
    )
    for label, figures in (("bench only", empty), (f"{args.stored:,}", stored)):
        for total, (e2e, proc, floor) in figures.items():
            g_e2e, g_proc = e2e / base_e2e, proc / base_proc
            lines.append(
                f"{total:>8,} {label:>15} {e2e * 1000:>21.3f} {g_e2e:>7.2f} {proc * 1000:>21.3f} {g_proc:>7.2f}"
                f" {floor * 1000:>16.3f} {floor / base_floor:>7.2f}"
            )
            for what, growth in (("end to end", g_e2e), ("processing", g_proc)):
                if growth > MAX_GROWTH:
                    missed.append(
                        f"{backend}: {total:,} records with {label} stored: {what} time per record is "
                        f"{growth:.2f} x the 250-record figure (> {MAX_GROWTH})"
                    )
    return lines, missed


def main() -> int:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--stored", type=int, default=1_000_000, help="records already stored for the second series")
    args = p.parse_args()
    return common.run_and_report(args, run_backend)


if __name__ == "__main__":
    sys.exit(main())
