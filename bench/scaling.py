"""Scaling bench: time per record for 250, 2,500 and 25,000 records (the last as ten 2,500-record
files), on a database holding only the bench's own records, then again with 1,000,000 records
already stored.

    .venv/bin/python bench/scaling.py [--backend sqlite|postgresql|both] [--stored 1000000]

Every file goes through the batch path end to end (bench/batch.py: POST /api/batches until the
batch is done, the service under gunicorn with one `pars-ws worker --poll 0.05`), as ActivityReports
XML. Time per record = sum of the files' end-to-end times / records; "processing" is the worker's
part alone (claim to done, the service's own timestamps), which no fixed per-upload cost dilutes.
The 1,000,000 records are the same provider's, of the same registry learners and activities
(bench/common.prestore: a direct bulk insert, COPY on PostgreSQL); statistics are refreshed after
loading, as autovacuum would.

Target (exit status 1 when missed): no figure, end to end or processing, more than 10% above the
250-record figure on the database without the 1,000,000 records.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

SIZES = ((250, 9, 1), (2500, 5, 1), (25000, 1, 10))  # records, repetitions (median), files per run
MAX_GROWTH = 1.10


def run_series(server, tag: str, start: int) -> tuple[dict, int]:
    """{records: (end-to-end s/record, processing s/record)} and the next free record number."""
    figures = {}
    for total, repetitions, files in SIZES:
        size = total // files
        e2e, processing = [], []
        for _ in range(repetitions):
            seconds = worker = 0.0
            for k in range(files):
                data = common.activity_reports_file(common.records(start, size, tag))
                start += size
                batch = common.upload_and_wait(server, f"scale{start}.xml", data, "xml")
                if batch["processed"] + batch["not_processed"] != size:
                    raise RuntimeError(f"batch {batch['id']} incomplete: {batch}")
                seconds += batch["seconds"]
                worker += batch["processing_seconds"]
            e2e.append(seconds / total)
            processing.append(worker / total)
        figures[total] = (common.median(e2e), common.median(processing))
    return figures, start


def run_backend(backend: str, args) -> tuple[list[str], list[str]]:
    lines, missed = [], []
    with common.batch_service(backend, args, "s") as (url, server, _, world, tag):
        empty, start = run_series(server, tag, 0)
        loaded_in = common.prestore(url, args.stored, world["provider_pk"])
        stored, _ = run_series(server, tag, start)
    base_e2e, base_proc = empty[250]
    lines.append(f"== scaling on {backend} (ActivityReports files; medians; {args.stored:,} records bulk-loaded "
                 f"in {loaded_in:.0f} s)")
    lines.append(f"{'records':>8} {'already stored':>15} {'ms/record end to end':>21} {'growth':>7} "
                 f"{'ms/record processing':>21} {'growth':>7}")
    for label, figures in (("bench only", empty), (f"{args.stored:,}", stored)):
        for total, (e2e, proc) in figures.items():
            g_e2e, g_proc = e2e / base_e2e, proc / base_proc
            lines.append(f"{total:>8,} {label:>15} {e2e * 1000:>21.3f} {g_e2e:>7.2f} {proc * 1000:>21.3f} {g_proc:>7.2f}")
            for what, growth in (("end to end", g_e2e), ("processing", g_proc)):
                if growth > MAX_GROWTH:
                    missed.append(f"{backend}: {total:,} records with {label} stored: {what} time per record is "
                                  f"{growth:.2f} x the 250-record figure (> {MAX_GROWTH})")
    return lines, missed


def main() -> int:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--stored", type=int, default=1_000_000, help="records already stored for the second series")
    args = p.parse_args()
    return common.run_and_report(args, run_backend)


if __name__ == "__main__":
    sys.exit(main())
