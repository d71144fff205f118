"""Mutations of valid SaveLearnerActivity requests and Template B files, and the checks every
answer must pass. Used by the hypothesis test (test_fuzz.py, choices drawn by hypothesis so it can
shrink) and the long run (run_long.py, choices from random.Random).

A SOAP answer passes when it is either a response with one RecordResult per ar:ActivityReport
sent, each Accepted / Submitted / Deleted without codes or Not processed with known codes (never
998, the code for an unexpected failure), or a SOAP Client (or VersionMismatch) fault for the whole
request on the HTTP status its SOAP version prescribes: 500 for SOAP 1.1, 400 for a SOAP 1.2 Sender
fault. Never a Server fault. A Template B file passes when `pars-ws validate`'s reader and rules either refuse it whole
with a message or give every record a status or codes.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from lxml import etree

from pars_ws.domain.errors import MESSAGES
from tests.conftest import SANDBOX_PASSWORD, SANDBOX_USER
from tests.fuzz.wire import SOAP11, abo_record, fault_of, parse_response, results_of, wsse_header
from tests.support import AR, good_row, record, soap11_save

RECORD_STATUSES = {"Accepted", "Submitted", "Deleted"}
UNEXPECTED = 998


class Chooser(Protocol):
    def integer(self, lo: int, hi: int) -> int: ...
    def text(self) -> str: ...
    def raw(self, n: int) -> bytes: ...


def pick(ch: Chooser, seq):
    return seq[ch.integer(0, len(seq) - 1)]


class RandomChooser:
    def __init__(self, rng: random.Random):
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def text(self) -> str:
        if self.rng.random() < 0.6:
            return self.rng.choice(INTERESTING)
        alphabet = self.rng.choice((ASCII, WORLD))
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(0, 40)))

    def raw(self, n: int) -> bytes:
        return self.rng.randbytes(n)


ASCII = [chr(c) for c in range(32, 127)] + ["\t", "\n"]
WORLD = ASCII + list("éÅßøЖж中文ﾃｽﾄ١٢٣߀\u0301\u200b\u202e\ufeff\U0001f600𝟘") + ["\ud7ff", "\ue000", "\ufffd"]
INTERESTING = [
    "",
    " ",
    "  \t ",
    "0",
    "-1",
    "-0",
    "3.5",
    "0.25",
    "0.1",
    "0.125",
    "1e3",
    "NaN",
    "Infinity",
    "+5",
    "5.",
    ".5",
    "1,5",
    "99999999999999999999999999999999",
    "1" * 400,
    "١٢",
    "0x10",
    "2026-01-05",
    "2026-02-30",
    "2026-06-16",
    "2025-12-31",
    "1899-12-31",
    "9999-12-31T23:59:59",
    "2026-01-05T00:00:00+14:00",
    "2026-01-05T25:00:00",
    "01/05/2026",
    "1-Oct",
    "Jun-70",
    "1900-02-29",
    "1900-03-01",
    "03/01",
    "13/45",
    "add",
    "ADD",
    " Add ",
    "delete",
    "DELETE",
    "update",
    "remove",
    "ABIM",
    "ABO",
    "abo",
    "ABS",
    "ME-MD",
    "TN",
    "NPI",
    "XYZ",
    "1000106",
    "98989",
    "0000000",
    "200930149",
    "200900001",
    "200931446",
    "999999999",
    "ABIM MOC Part II",
    "ABO MOC Part II",
    "ABO Patient Safety",
    "ABO MOC Part IV",
    "AMA PRA Category 1",
    "Point",
    "Credit",
    "Completed",
    "Incomplete",
    "ccid:testprovider.org:fuzz-dup",
    "ccid:",
    "x" * 300,
    "Van Gogh",
    "van gogh",
    "VAN GOGH ",
    "O'Keeffe",
    "Test2",
    "Account2",
    "Ünïcödé",
    "<&>\"'",
    "]]>",
    "\u202eevil",
    "\U0001f600",
]

# -- SOAP requests -------------------------------------------------------------------------------

MODULE = f"{{{AR}}}Module"


def base_records(ch: Chooser, serial: str) -> list[dict]:
    """1-4 records that pass every rule as they are, of boards with different paths."""
    kinds = [
        lambda cid, i: abo_record(cid, i),  # Accepted at once
        lambda cid, i: record(cid, completed=f"2026-0{1 + i % 5}-1{i % 9}T00:00:00"),  # ABIM: Submitted
        lambda cid, i: record(
            cid,
            board="ME-MD",
            id_type="License",
            activity_id="200900001",
            learner_id="MD9966",
            first="Traci",
            last="Tester",
            dob="1970-11-10",
            credit_types=("AMA PRA Category 1",),
            points="1",
        ),
        lambda cid, i: abo_record(cid, i, action="delete"),  # 605 unless added earlier in the request
    ]
    n = ch.integer(1, 4)
    return [pick(ch, kinds)(f"ccid:testprovider.org:fuzz-{serial}-{i}", i) for i in range(n)]


def _elements(root) -> list:
    return [el for el in root.iter() if isinstance(el.tag, str)]


def _set_text(ch, el, value: str) -> None:
    try:
        el.text = value
    except ValueError:  # a character XML cannot hold: keep the old text
        pass


VALUE_OPS = ("text", "attribute", "same-credit-id")
STRUCTURE_OPS = ("delete", "duplicate", "reorder", "move", "rename", "namespace", "insert")


def mutate_tree(ch: Chooser, envelope) -> list[str]:
    """Apply 1-4 mutations, mostly inside ar:ActivityReports; returns their names.

    Half the requests get field values only (on leaf elements: what the schema lets through to
    the rules), the others any mix of value and structure changes (mostly refused by the schema).
    """
    reports = envelope.find(f".//{{{AR}}}ActivityReports")
    header = envelope.find(f"{{{SOAP11}}}Header")
    values_only = ch.integer(0, 1) == 0
    done = []
    for _ in range(ch.integer(1, 4)):
        where = ch.integer(0, 9)
        scope = (
            envelope
            if where == 0 or reports is None
            else header
            if where == 1 and header is not None and len(header)
            else reports
        )
        elements = _elements(scope)
        if values_only:
            elements = [e for e in elements if len(e) == 0] or elements
        target = pick(ch, elements)
        parent = target.getparent()
        op = pick(ch, VALUE_OPS + ("text",) * 3 if values_only else VALUE_OPS + STRUCTURE_OPS)
        if op == "text":
            _set_text(ch, target, ch.text())
        elif op == "attribute":
            name = pick(
                ch,
                (
                    "domain",
                    "moduleID",
                    "id",
                    "{http://www.w3.org/2001/XMLSchema-instance}nil",
                    "{http://www.w3.org/2001/XMLSchema-instance}type",
                    "x",
                    f"{{{SOAP11}}}mustUnderstand",
                    f"{{{SOAP11}}}encodingStyle",
                    f"{{{SOAP11}}}actor",
                ),
            )
            try:
                target.set(name, ch.text())
            except ValueError:
                pass
        elif op == "delete" and parent is not None:
            parent.remove(target)
        elif op == "duplicate" and parent is not None:
            target.addnext(copy.deepcopy(target))
        elif op == "reorder" and len(target) > 1:
            children = list(target)
            order = sorted(range(len(children)), key=lambda i: ch.integer(0, 1000))
            target[:] = [children[i] for i in order]
        elif op == "move" and parent is not None:
            new_parent = pick(
                ch,
                [e for e in elements if e is not target and target not in e.iterancestors() and e not in target.iter()]
                or [parent],
            )
            new_parent.insert(ch.integer(0, len(new_parent)), target)
        elif op == "rename":
            target.tag = pick(ch, [e.tag for e in elements])
        elif op == "namespace":
            local = etree.QName(target).localname
            target.tag = pick(ch, (f"{{urn:evil}}{local}", local, f"{{{AR}}}{local}", f"{{{SOAP11}}}{local}"))
        elif op == "insert":
            extra = etree.SubElement(target, pick(ch, (f"{{{AR}}}Extra", "Unqualified", f"{{{AR}}}ActivityReport")))
            _set_text(ch, extra, ch.text())
        elif op == "same-credit-id" and reports is not None:
            ids = reports.findall(f".//{{{AR}}}CreditID")
            if len(ids) > 1:
                _set_text(ch, pick(ch, ids), pick(ch, ids).text or "")
        done.append(op)
    return done


def mutate_bytes(ch: Chooser, data: bytes) -> tuple[bytes, str]:
    op = pick(ch, ("flip", "insert", "delete", "duplicate", "truncate"))
    pos = ch.integer(0, max(0, len(data) - 1))
    if op == "flip":
        data = data[:pos] + ch.raw(1) + data[pos + 1 :]
    elif op == "insert":
        data = data[:pos] + ch.raw(ch.integer(1, 8)) + data[pos:]
    elif op == "delete":
        data = data[:pos] + data[pos + ch.integer(1, 64) :]
    elif op == "duplicate":
        end = min(len(data), pos + ch.integer(1, 200))
        data = data[:end] + data[pos:end] + data[end:]
    else:
        data = data[:pos]
    return data, f"bytes-{op}"


def soap_case(ch: Chooser, serial: str) -> tuple[bytes, list[str]]:
    """A mutated SaveLearnerActivity request (SOAP 1.1 body) and the names of its mutations.
    A quarter of them carry a WS-Security UsernameToken (PasswordText, fresh Nonce and Created)."""
    header = ""
    if ch.integer(0, 3) == 0:
        created = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=ch.integer(-400, 400))
        header = wsse_header(SANDBOX_USER, SANDBOX_PASSWORD, nonce=ch.raw(16), created=created)
    envelope = etree.fromstring(soap11_save(base_records(ch, serial), header=header))
    ops = mutate_tree(ch, envelope)
    data = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    if ch.integer(0, 4) == 0:
        data, op = mutate_bytes(ch, data)
        ops.append(op)
    return data, ops


def records_sent(data: bytes) -> int | None:
    """How many ar:ActivityReport the request holds (None if it is not even well-formed)."""
    try:
        root = parse_response(data)
    except (etree.XMLSyntaxError, ValueError):
        return None
    reports = root.find(f".//{{{AR}}}ActivityReports")
    return None if reports is None else len(reports.findall(f"{{{AR}}}ActivityReport"))


@dataclass
class Tally:
    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)
    codes: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    ops: Counter = field(default_factory=Counter)

    def merge(self, other: Tally) -> None:
        self.cases += other.cases
        for name in ("outcomes", "codes", "statuses", "ops"):
            getattr(self, name).update(getattr(other, name))


def check_soap_answer(data: bytes, response, tally: Tally | None = None) -> None:
    """Raise AssertionError unless the answer to `data` is acceptable (see module docstring)."""
    tally = tally if tally is not None else Tally()
    tally.cases += 1
    if response.status_code == 200:
        results = results_of(response)
        expected = records_sent(data)
        assert expected is not None, "a request that is not well-formed was answered 200"
        assert [r.index for r in results] == list(range(1, expected + 1)), (expected, [r.index for r in results])
        for r in results:
            if r.status in RECORD_STATUSES:
                assert r.codes == [], r
            else:
                assert r.status == "Not processed" and r.codes, r
            assert all(c in MESSAGES for c in r.codes), r
            assert UNEXPECTED not in r.codes, f"998: an unexpected failure while judging a record {r}"
            tally.statuses[r.status] += 1
            tally.codes.update(r.codes)
        tally.outcomes["200 response"] += 1
        return
    fault = fault_of(response)
    assert fault is not None, f"HTTP {response.status_code} without a SOAP fault: {response.text[:500]}"
    assert fault.client or fault.code == "VersionMismatch", f"not a Client fault: {fault}"
    assert response.status_code == (400 if fault.soap12 and fault.client else 500), (response.status_code, fault)
    tally.outcomes[f"{response.status_code} {fault.code}" + (f" ({fault.limit})" if fault.limit else "")] += 1


# -- Template B ------------------------------------------------------------------------------------


def template_rows(ch: Chooser) -> list[list[str]]:
    """1-5 rows that pass every rule as they are (ABPATH, Submitted)."""
    return [good_row(ch.integer(0, 500)) for _ in range(ch.integer(1, 5))]


def mutate_rows(ch: Chooser, rows: list[list[str]]) -> list[str]:
    done = []
    for _ in range(ch.integer(1, 4)):
        row = pick(ch, rows) if rows else None
        op = pick(
            ch,
            (
                "cell",
                "cell",
                "cell",
                "delete-cell",
                "insert-cell",
                "delete-row",
                "duplicate-row",
                "swap-rows",
                "extra-columns",
                "blank-row",
                "error-columns",
            ),
        )
        if row and op == "cell":
            row[ch.integer(0, len(row) - 1)] = ch.text()
        elif row and op == "delete-cell":
            del row[ch.integer(0, len(row) - 1)]
        elif row is not None and op == "insert-cell":
            row.insert(ch.integer(0, len(row)), ch.text())
        elif op == "delete-row" and len(rows) > 1:
            del rows[ch.integer(0, len(rows) - 1)]
        elif op == "duplicate-row" and row is not None:
            rows.insert(ch.integer(0, len(rows)), list(row))
        elif op == "swap-rows" and len(rows) > 1:
            i, j = ch.integer(0, len(rows) - 1), ch.integer(0, len(rows) - 1)
            rows[i], rows[j] = rows[j], rows[i]
        elif op == "extra-columns" and row is not None:
            row.extend(ch.text() for _ in range(ch.integer(1, 30)))
        elif op == "blank-row":
            rows.insert(ch.integer(0, len(rows)), [""] * ch.integer(0, 20))
        elif op == "error-columns" and row is not None:
            row[17:] = ["661", "Learner ID not found"]
        done.append(op)
    return done


def template_case(ch: Chooser) -> tuple[bytes, list[str]]:
    from pars_ws.adapters.template_b import write_template_b

    rows = template_rows(ch)
    ops = mutate_rows(ch, rows)
    header = ch.integer(0, 5) != 0
    encoding = pick(ch, ("utf-8", "utf-8", "utf-8", "utf-16", "cp1252", "utf-8-sig"))
    try:
        data = write_template_b(rows, header=header, encoding=encoding)
    except UnicodeEncodeError:
        data = write_template_b(rows, header=header)
    if ch.integer(0, 3) == 0:
        data = data.replace(b"\r\n", pick(ch, (b"\n", b"\r", b"\r\n\r\n")))
    if ch.integer(0, 4) == 0:
        data, op = mutate_bytes(ch, data)
        ops.append(op)
    return data, ops


def check_template_report(report, tally: Tally | None = None) -> None:
    """A validate report: refused whole with a message, or every record given a status or codes."""
    tally = tally if tally is not None else Tally()
    tally.cases += 1
    if report.refused is not None:
        assert report.refused.strip(), "refused without a message"
        tally.outcomes["file refused"] += 1
        return
    for j in report.judgements:
        if j.ok:
            assert j.status.value in RECORD_STATUSES, j
        else:
            assert j.status.value == "Not processed" and j.codes, j
        assert all(c in MESSAGES for c in j.codes), j.codes
        assert UNEXPECTED not in j.codes, f"998: an unexpected failure while judging {j.record}"
        tally.statuses[j.status.value] += 1
        tally.codes.update(j.codes)
    tally.outcomes["file judged"] += 1
