"""Property-based: schemathesis reads /api/v1/openapi.json from the live server and throws requests
generated from it (conforming, and not conforming) at every operation, signed in. No answer may be
a server error, and every answer must be one the document describes (status, content type, body).

Bounded: EXAMPLES requests per operation and mode, no shrinking, derandomized, about a minute per
database. (schemathesis's own pytest loader reaches into pytest internals that pytest 9 dropped, so
the strategies it builds for each operation are driven with Hypothesis directly.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode, checks

from tests.conftest import SANDBOX_PASSWORD, SANDBOX_USER

pytestmark = pytest.mark.e2e

EXAMPLES = 50
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
OPERATIONS = [
    "POST /learner-activities",
    "GET /learner-activities/status",
    "POST /learner-match",
    "POST /activities",
    "GET /activities/{activityId}",
]


@pytest.fixture(scope="module")
def api_schema(server):
    schema = schemathesis.openapi.from_url(f"{server.base_url}/api/v1/openapi.json")
    schema.config.update(base_url=f"{server.base_url}/api/v1")
    return schema


def test_the_document_lists_the_operations_tested(api_schema):
    found = sorted(f"{op.method.upper()} {op.path}" for op in (r.ok() for r in api_schema.get_all_operations()))
    assert found == sorted(OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_answer_is_one_the_document_describes(api_schema, operation, mode):
    method, path = operation.split(" ")
    strategy = api_schema[path][method].as_strategy(generation_mode=mode)
    sent = []

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def answers(case):
        sent.append(
            case.call_and_validate(auth=(SANDBOX_USER, SANDBOX_PASSWORD), checks=CHECKS, timeout=60).status_code
        )

    answers()
    assert sent, "no request was sent"
