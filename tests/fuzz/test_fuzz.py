"""Property-based fuzzing (SPEC 5): mutated ActivityReports requests sent to the running service and
mutated Template B files read and judged by `pars-ws validate`'s code. Never a Server fault; every
record gets a status or error codes, or the whole request or file is refused with a Client fault
(see mutations.py for the checks).

Bounded for CI (well under a minute per backend); tests/fuzz/run_long.py runs 100,000+ cases.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pars_ws.service.container import Services
from pars_ws.service.validate import validate_file
from pars_ws.settings import Settings
from tests.conftest import TODAY
from tests.fuzz.mutations import INTERESTING, Tally, check_soap_answer, check_template_report, soap_case, template_case
from tests.fuzz.wire import post

pytestmark = pytest.mark.e2e

SOAP_EXAMPLES = 1500
TEMPLATE_EXAMPLES = 1000


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, database=None, print_blob=True, suppress_health_check=list(HealthCheck)
    )


TALLY = {"soap": Tally(), "template": Tally()}

VALUES = st.one_of(st.sampled_from(INTERESTING), st.text(st.characters(exclude_categories=("Cs",)), max_size=40))


class DrawChooser:
    """Every choice a mutation makes, drawn from hypothesis (so failures shrink)."""

    def __init__(self, data):
        self.data = data

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def text(self) -> str:
        return self.data.draw(VALUES)

    def raw(self, n: int) -> bytes:
        return self.data.draw(st.binary(min_size=n, max_size=n))


@pytest.fixture(scope="module")
def services(server, database_url):
    svc = Services(Settings(database_url=database_url, today=dt.date.fromisoformat(TODAY), secret_key=b"k"))
    yield svc
    svc.engine.dispose()


def test_mutated_soap_requests(server):
    @fuzz_settings(SOAP_EXAMPLES)
    @given(data=st.data(), serial=st.integers(0, 10**9))
    def run(data, serial):
        body, ops = soap_case(DrawChooser(data), str(serial))
        TALLY["soap"].ops.update(ops)
        response = post(server.service_url, body, timeout=60)
        check_soap_answer(body, response, TALLY["soap"])

    run()


def test_mutated_template_b_files(services, tmp_path):
    path = tmp_path / "batch.txt"

    @fuzz_settings(TEMPLATE_EXAMPLES)
    @given(data=st.data())
    def run(data):
        content, ops = template_case(DrawChooser(data))
        TALLY["template"].ops.update(ops)
        path.write_bytes(content)
        check_template_report(validate_file(path, services.settings), TALLY["template"])

    run()


def test_fuzz_counts(server):
    soap, template = TALLY["soap"], TALLY["template"]
    print(
        f"\nfuzz: {soap.cases} SOAP requests {dict(soap.outcomes)}; records {dict(soap.statuses)}; "
        f"{template.cases} Template B files {dict(template.outcomes)}; records {dict(template.statuses)}"
    )
    if soap.cases < SOAP_EXAMPLES or template.cases < TEMPLATE_EXAMPLES:
        pytest.skip("only part of the module ran (a -k selection)")
    # The mutations reach every outcome: records stored, records refused with codes, whole-request faults.
    assert soap.outcomes["200 response"] and soap.codes and any(k.startswith("500 Client") for k in soap.outcomes)
    assert template.outcomes["file judged"] and template.outcomes["file refused"]
