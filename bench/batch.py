"""Batch bench: a 2,500-record ActivityReports file and the same records as Template B, end to end,
against the floor measured in the same run.

    .venv/bin/python bench/batch.py [--backend sqlite|postgresql|both] [--rounds 3]

End to end = POST /api/batches (multipart, HTTP Basic) until GET /api/batches/<id> says done, i.e.
every record is stored with its outcome (checked afterwards in the database). The service runs
under gunicorn (`pars-ws serve --no-worker`) with one `pars-ws worker --poll 0.05` beside it.
Floor = lxml parse + XSD validation (the project's schema) + field extraction + one executemany
insert of the same rows into learner_records of the same database (bench/common.floor_seconds).
Each round measures the floor, the XML file and the Template B file (Template B carries the same
fields but records of other learners, so that no record is a duplicate of an earlier one).

Targets (exit status 1 when one is missed): median end-to-end time <= 3 x median floor for each
file type on each database; peak RSS (VmHWM) of the worker process < 200 MB.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

RECORDS = 2500
MAX_RATIO = 3.0
MAX_RSS_MB = 200


def check_stored(engine, batch: dict) -> str | None:
    """Every row has its outcome, and every processed add is a stored record of the batch."""
    from sqlalchemy import func, select

    from pars_ws.adapters import tables as t

    with engine.connect() as conn:
        results = conn.execute(select(func.count()).where(t.batch_results.c.batch_pk == batch["id"])).scalar()
        stored = conn.execute(select(func.count()).where(t.learner_records.c.batch_pk == batch["id"])).scalar()
    if results != RECORDS or stored != batch["processed"] or batch["processed"] + batch["not_processed"] != RECORDS:
        return f"batch {batch['id']}: {results} results, {stored} stored, reported {batch}"
    return None


def run_backend(backend: str, args) -> tuple[list[str], list[str]]:
    lines, missed = [], []
    with common.batch_service(backend, args, "b") as (url, server, worker, world, tag):
        engine = common.engine_for(url)
        try:
            floors, runs, problems = [], {"xml": [], "txt": []}, []
            for k in range(args.rounds):
                start = 2 * k * RECORDS
                xml_records = common.records(start, RECORDS, tag)
                txt_records = common.records(start + RECORDS, RECORDS, tag)
                xml = common.activity_reports_file(xml_records)
                floors.append(common.floor_seconds(engine, xml, world["provider_pk"]))
                for kind, data in (("xml", xml), ("txt", common.template_b_file(txt_records))):
                    batch = common.upload_and_wait(server, f"round{k}.{kind}", data, kind)
                    runs[kind].append(batch)
                    if (problem := check_stored(engine, batch)) is not None:
                        problems.append(problem)
            rss_mb = common.vm_hwm_kib(worker.pid) / 1024
        finally:
            engine.dispose()
    floor = common.median(floors)
    size = len(xml) / 1e6
    lines.append(f"== batch on {backend}: {RECORDS} records ({size:.1f} MB as XML), {args.rounds} rounds, medians")
    lines.append(f"floor (parse + XSD + extract + one executemany): {floor * 1000:7.0f} ms")
    for kind, batches in runs.items():
        e2e = common.median([b["seconds"] for b in batches])
        upload = common.median([b["upload_seconds"] for b in batches])
        processing = common.median([b["processing_seconds"] for b in batches])
        ok = batches[-1]["processed"]
        ratio = e2e / floor
        lines.append(
            f"{kind}: end to end {e2e * 1000:7.0f} ms = {ratio:4.2f} x floor (upload {upload * 1000:.0f} ms, "
            f"worker claim to done {processing * 1000:.0f} ms); {ok} of {RECORDS} records stored"
        )
        if ratio > MAX_RATIO:
            missed.append(f"{backend}: {kind} end to end is {ratio:.2f} x the floor (> {MAX_RATIO})")
    lines.append(f"worker peak RSS (VmHWM): {rss_mb:.0f} MB")
    if rss_mb >= MAX_RSS_MB:
        missed.append(f"{backend}: worker peak RSS {rss_mb:.0f} MB (>= {MAX_RSS_MB} MB)")
    missed += [f"{backend}: {p}" for p in problems]
    return lines, missed


def main() -> int:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    return common.run_and_report(args, run_backend)


if __name__ == "__main__":
    sys.exit(main())
