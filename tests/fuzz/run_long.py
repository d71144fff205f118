"""The long fuzz run: 100,000+ mutated SaveLearnerActivity requests against a running service
(gunicorn, two workers, on a fresh SQLite or PostgreSQL database) and mutated Template B files
through `pars-ws validate`'s reader and rules, with the checks of tests/fuzz/mutations.py.

    /work/venv/bin/python tests/fuzz/run_long.py                       # 100,000 + 20,000 cases
    /work/venv/bin/python tests/fuzz/run_long.py --soap 1000 --template 500 --seed 7
    /work/venv/bin/python tests/fuzz/run_long.py --database-url postgresql://postgres@127.0.0.1:5432/test

Prints progress and the counts of every outcome; each failing case is written to --out (the
request or file, and why) and the run exits 1 if there was any.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from tests.conftest import TODAY, _pg_database, start_server, stop_server  # noqa: E402
from tests.fuzz.mutations import (  # noqa: E402
    RandomChooser,
    Tally,
    check_soap_answer,
    check_template_report,
    soap_case,
    template_case,
)


def _record_failure(out: Path, kind: str, n: int, data: bytes, why: str, failures: list) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{kind}-{n:07d}"
    stem.with_suffix(".bin").write_bytes(data)
    stem.with_suffix(".txt").write_text(why)
    failures.append(str(stem))


def run_soap(server, cases: int, threads: int, seed: int, out: Path) -> tuple[Tally, list[str]]:
    tally, failures, lock, stop = Tally(), [], threading.Lock(), threading.Event()
    counter = iter(range(cases))
    started = time.monotonic()

    def worker(k: int) -> None:
        rng = RandomChooser(random.Random(seed * 1000 + k))
        session = requests.Session()
        mine = Tally()
        while not stop.is_set():
            with lock:
                n = next(counter, None)
            if n is None:
                break
            body, ops = soap_case(rng, f"{seed}-{n}")
            mine.ops.update(ops)
            try:
                response = session.post(
                    server.service_url,
                    data=body,
                    timeout=120,
                    headers={
                        "Content-Type": "text/xml; charset=utf-8",
                        "SOAPAction": '"urn:pars-ws:learner:v1/SaveLearnerActivity"',
                    },
                )
                check_soap_answer(body, response, mine)
            except Exception as exc:  # noqa: BLE001 - every failure is kept and counted
                mine.cases += 1
                with lock:
                    _record_failure(out, "soap", n, body, f"{exc!r}\n{traceback.format_exc()}", failures)
            if n and n % 5000 == 0:
                rate = n / (time.monotonic() - started)
                print(f"  soap {n:,}/{cases:,} ({rate:.0f}/s), failures so far: {len(failures)}", flush=True)
        with lock:
            tally.merge(mine)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    try:
        while any(t.is_alive() for t in pool):
            time.sleep(0.5)
    except KeyboardInterrupt:  # stop cleanly: the server is stopped by the caller's finally
        stop.set()
        for t in pool:
            t.join()
        raise
    return tally, failures


def run_template(database_url: str, cases: int, seed: int, out: Path) -> tuple[Tally, list[str]]:
    from pars_ws.service.container import Services
    from pars_ws.service.validate import validate_file
    from pars_ws.settings import Settings

    services = Services(Settings(database_url=database_url, today=dt.date.fromisoformat(TODAY), secret_key=b"k"))
    rng = RandomChooser(random.Random(seed))
    tally, failures = Tally(), []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "batch.txt"
        for n in range(cases):
            data, ops = template_case(rng)
            tally.ops.update(ops)
            path.write_bytes(data)
            try:
                check_template_report(validate_file(path, services.settings), tally)
            except Exception as exc:  # noqa: BLE001
                tally.cases += 1
                _record_failure(out, "template", n, data, f"{exc!r}\n{traceback.format_exc()}", failures)
            if n and n % 5000 == 0:
                print(f"  template {n:,}/{cases:,}, failures so far: {len(failures)}", flush=True)
    services.engine.dispose()
    return tally, failures


def report(name: str, tally: Tally, failures: list[str], seconds: float) -> None:
    print(f"\n{name}: {tally.cases:,} cases in {seconds:.0f} s, {len(failures)} failures")
    for key, count in tally.outcomes.most_common():
        print(f"  {count:8,}  {key}")
    print("  records: " + ", ".join(f"{k} {v:,}" for k, v in tally.statuses.most_common()))
    print("  codes:   " + ", ".join(f"{k} x{v:,}" for k, v in sorted(tally.codes.items())))
    print("  mutations: " + ", ".join(f"{k} {v:,}" for k, v in tally.ops.most_common()))
    for f in failures[:20]:
        print(f"  FAILED: {f}.bin ({f}.txt)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--soap", type=int, default=100_000, help="mutated SOAP requests")
    parser.add_argument("--template", type=int, default=20_000, help="mutated Template B files")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument("--database-url", help="PostgreSQL server to create a fresh database on (default: SQLite)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "pars-fuzz-failures")
    args = parser.parse_args()
    # Stop cleanly (the server too) on Ctrl-C or SIGTERM, even when started in the background.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    work = Path(tempfile.mkdtemp(prefix="pars-fuzz-"))
    drop = None
    if args.database_url:
        url, drop = _pg_database(args.database_url)
    else:
        url = f"sqlite:///{work / 'pars.db'}"
    print(
        f"seed {args.seed}; {args.soap:,} SOAP + {args.template:,} Template B cases; database "
        f"{url.split('@')[-1]}; failures go to {args.out}",
        flush=True,
    )
    server = start_server(url, work, workers=2)
    try:
        started = time.monotonic()
        soap, soap_failures = run_soap(server, args.soap, args.threads, args.seed, args.out)
        soap_seconds = time.monotonic() - started
        alive = requests.get(server.base_url + "/healthz", timeout=10).status_code == 200
        started = time.monotonic()
        template, template_failures = run_template(url, args.template, args.seed, args.out)
        template_seconds = time.monotonic() - started
    finally:
        stop_server(server)
        if drop:
            drop()
    report("SOAP requests", soap, soap_failures, soap_seconds)
    report("Template B files", template, template_failures, template_seconds)
    total = soap.cases + template.cases
    failed = len(soap_failures) + len(template_failures)
    print(f"\ntotal: {total:,} cases, {failed} failures; service healthy afterwards: {alive}")
    return 0 if failed == 0 and alive else 1


if __name__ == "__main__":
    sys.exit(main())
