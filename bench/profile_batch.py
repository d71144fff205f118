"""Profile a 2,500-record batch in one process: the upload (service layer) and the worker's
processing of it, on the bench world.

    .venv/bin/python bench/profile_batch.py [--backend sqlite|postgresql] [--type xml|txt] [--rounds 3]
                                            [--profile out.html]

Prints the median upload and processing times next to the floor (bench/common.floor_seconds); with
--profile, writes a pyinstrument report (`pip install pyinstrument`) of the last round.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

RECORDS = 2500


def main() -> int:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--type", choices=("xml", "txt"), default="xml")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--stored", type=int, default=0, help="records stored before the first batch")
    p.add_argument("--profile", help="write a pyinstrument HTML report here")
    args = p.parse_args()
    with common.in_process_world(args, args.stored) as (url, world):
        from pars_ws.service import batches
        from pars_ws.service.container import Services

        services = Services()
        account = services.auth.authenticate(common.SANDBOX_USER, common.SANDBOX_PASSWORD)
        engine = common.engine_for(url)
        uploads, processing, floors = [], [], []
        for n in range(args.rounds + 1):  # the first round warms caches and statistics
            recs = common.records(n * RECORDS, RECORDS, f"pb{n}")
            data = (common.activity_reports_file(recs) if args.type == "xml" else common.template_b_file(recs))
            floors.append(common.floor_seconds(engine, common.activity_reports_file(
                common.records((n + 50) * RECORDS, RECORDS, f"fl{n}")), world["provider_pk"]))
            profiler = None
            if args.profile and n == args.rounds:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0005)
                profiler.start()
            t0 = time.perf_counter()
            batches.upload(services, account, file_name=f"b{n}.{args.type}", data=data, file_type=args.type)
            t1 = time.perf_counter()
            while batches.process_next(services, "profile"):
                pass
            t2 = time.perf_counter()
            if profiler is not None:
                profiler.stop()
                Path(args.profile).write_text(profiler.output_html())
                print(profiler.output_text(unicode=False, color=False)[:30000])
            if n == 0:
                common.analyze(url)
                continue
            uploads.append(t1 - t0)
            processing.append(t2 - t1)
        floor = common.median(floors[1:])
        up, proc = common.median(uploads), common.median(processing)
        print(f"{url.split(':')[0]} {args.type}: floor {floor * 1000:.0f} ms, upload {up * 1000:.0f} ms, "
              f"processing {proc * 1000:.0f} ms, together {(up + proc) / floor:.2f} x floor")
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
