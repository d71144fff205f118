"""What refusing costs: sign-in failures over the wire, and hostile or huge input in one process.

    .venv/bin/python bench/refusals.py [--tries 20]

Figures (exit status 1 when a target is missed):
- over the wire (`pars-ws serve` on SQLite): the median answer time of a SOAP call with an unknown
  user and with a known user's wrong password, interleaved; a right (cached) password for scale.
  Target: wrong / unknown between 0.75 and 1.33 (the answer time does not tell whether a user exists).
- an announced 100 MiB body with nothing sent: answered without waiting for it. Target: < 5 s.
- in one process: the guard parsing a million child elements, and 20,000 elements at the attribute
  limit; the Template B reader skipping floods of blank lines. Targets: < 5 s, < 5 s, < 2 s each.
"""

from __future__ import annotations

import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from pars_ws.adapters.template_b import TEMPLATE_NAME, read_template_b, write_template_b  # noqa: E402
from pars_ws.adapters.xml_guard import parse_xml  # noqa: E402
from pars_ws.settings import XmlLimits  # noqa: E402
from tests.conftest import PROVIDER_ID, SANDBOX_PASSWORD, SANDBOX_USER  # noqa: E402
from tests.support import record, soap11_save  # noqa: E402

SERVICE = "/services/ACCMELearnerService.svc"


def seconds(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def save_call(server, user: str, password: str, n: int = 0) -> float:
    body = soap11_save(
        [record(f"ccid:bench.org:refusals-{n}-{time.time_ns()}")], provider=PROVIDER_ID, user=user, password=password
    )
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"urn:pars-ws:learner:v1/SaveLearnerActivity"'}
    return seconds(lambda: common.http("POST", server.base_url + SERVICE, body, headers))


def announced_body(server) -> float:
    """A request announcing 100 MiB and sending none of it, until the answer is in."""
    port = int(server.base_url.rsplit(":", 1)[1])

    def ask():
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(
                f"POST {SERVICE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
                "Content-Length: 104857600\r\n\r\n".encode()
            )
            while s.recv(65536):
                pass

    return seconds(ask)


def over_the_wire(tries: int) -> tuple[list[str], list[str]]:
    lines, missed = [], []
    with common.workdir("pars-bench-refusals-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'pars.db'}"
        server, _ = common.start_service(url, Path(tmp), PARS_LOGIN_MAX_FAILURES="0")
        try:
            save_call(server, SANDBOX_USER, SANDBOX_PASSWORD)  # argon2 once: cached from here on
            unknown, wrong, cached = [], [], []
            for i in range(tries):
                unknown.append(save_call(server, f"nobody-{i}", "wrong-password"))
                wrong.append(save_call(server, SANDBOX_USER, "wrong-password"))
                cached.append(save_call(server, SANDBOX_USER, SANDBOX_PASSWORD))
            announced = announced_body(server)
        finally:
            common.stop_service(server, None)
    m_unknown, m_wrong, m_cached = (statistics.median(x) * 1000 for x in (unknown, wrong, cached))
    ratio = m_wrong / m_unknown
    lines += [
        f"sign-in over SOAP, medians of {tries}: unknown user {m_unknown:.1f} ms, wrong password "
        f"{m_wrong:.1f} ms (ratio {ratio:.2f}), right password (cached) {m_cached:.1f} ms",
        f"an announced 100 MiB body, nothing sent: answered in {announced:.2f} s",
    ]
    if not 0.75 < ratio < 1.33:
        missed.append(f"wrong password / unknown user answer time {ratio:.2f} (not within 0.75-1.33)")
    if announced >= 5:
        missed.append(f"announced oversized body answered in {announced:.1f} s (>= 5 s)")
    return lines, missed


def in_process() -> tuple[list[str], list[str]]:
    limits = XmlLimits()
    wide = b"<a " + b" ".join(b'b%d="="' % i for i in range(limits.max_attributes)) + b"/>\n"
    row = write_template_b(
        [
            [
                TEMPLATE_NAME,
                "ABO",
                "200931446",
                "ABO",
                "98989",
                "Vincent",
                "Van Gogh",
                "03/30",
                "2/10/2019",
                "Add",
                "0.25",
                "ABO MOC Part II",
            ]
        ]
    )
    figures = [
        (
            "guard: a million child elements",
            5.0,
            seconds(lambda: parse_xml(b"<r>" + b"<a/>" * 1_000_000 + b"</r>", limits)),
        ),
        (
            "guard: 20,000 elements at the attribute limit",
            5.0,
            seconds(lambda: parse_xml(b"<r>" + wide * 20_000 + b"</r>", limits)),
        ),
    ]
    for name, flood in (
        ("LF", b"\n" * 4_000_000),
        ("CRLF", b"\r\n" * 2_000_000),
        ("empty cells", b"\t\t\t\r\n" * 800_000),
    ):
        figures.append(
            (
                f"Template B: a row between two floods of {name}",
                2.0,
                seconds(lambda flood=flood: read_template_b(flood + row + flood)),
            )
        )
    lines = [f"{name}: {took:.2f} s (target < {target:g} s)" for name, target, took in figures]
    missed = [f"{name}: {took:.2f} s" for name, target, took in figures if took >= target]
    return lines, missed


def main() -> int:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--tries", type=int, default=20)
    args = p.parse_args()
    lines, missed = over_the_wire(args.tries)
    more_lines, more_missed = in_process()
    print("\n".join(lines + more_lines))
    print()
    if missed + more_missed:
        print("TARGETS MISSED:\n  " + "\n  ".join(missed + more_missed))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
