"""Logs are JSON lines, each naming the correlation ID of the request or batch it belongs to: the ID a
fault shows the client is the one on the server's lines about that call."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests

from tests.conftest import SANDBOX_PASSWORD, SANDBOX_USER, start_server, stop_server
from tests.support import P, record, soap11_save, template_file


@pytest.fixture(scope="module")
def logged(database_url, tmp_path_factory):
    srv = start_server(database_url, tmp_path_factory.mktemp("data"), PARS_LOG_LEVEL="INFO")
    yield srv
    stop_server(srv)


def _lines(server, wanted, seconds: float = 30) -> list[dict]:
    """Every line of the server's log, parsed (each must be JSON), once one is `wanted`."""
    deadline = time.monotonic() + seconds
    while True:
        text = (server.data_dir / "server.log").read_text(encoding="utf-8")
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        if any(wanted(line) for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def _post(server, body: bytes) -> requests.Response:
    return requests.post(
        server.service_url,
        data=body,
        timeout=60,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{P}/SaveLearnerActivity"'},
    )


def test_a_faults_correlation_id_names_the_calls_log_line(logged):
    response = _post(logged, soap11_save([record("ccid:logs.test:1")], password="wrong"))
    assert response.status_code == 500
    cid = re.search(r"<\w+:CorrelationID>([0-9a-f]{32})<", response.text)[1]
    lines = _lines(logged, lambda line: line.get("correlation_id") == cid)
    [call] = [line for line in lines if line.get("correlation_id") == cid and line.get("event") == "soap_call"]
    assert call["operation"] == "SaveLearnerActivity" and call["level"] == "INFO"
    assert call["fault"].endswith("Authentication")


def test_a_saved_calls_line_names_the_provider_and_its_records(logged):
    response = _post(logged, soap11_save([record("ccid:logs.test:2")]))
    assert response.status_code == 200
    lines = _lines(logged, lambda line: line.get("records_ok") == 1)
    [call] = [line for line in lines if line.get("event") == "soap_call" and line.get("records_ok") == 1]
    assert (call["provider_id"], call["environment"], call["records"]) == ("1234567", "sandbox", 1)
    assert re.fullmatch(r"[0-9a-f]{32}", call["correlation_id"])


def test_the_workers_lines_about_a_batch_name_it(logged):
    response = requests.post(
        logged.base_url + "/api/batches",
        auth=(SANDBOX_USER, SANDBOX_PASSWORD),
        timeout=60,
        data={"file_type": "txt"},
        files={"file": ("logs.txt", template_file(3, {}))},
    )
    assert response.status_code == 202, response.text
    batch = response.json()["id"]
    lines = _lines(logged, lambda line: line.get("event") == "batch_claimed" and line.get("batch") == batch)
    [claimed] = [line for line in lines if line.get("event") == "batch_claimed" and line.get("batch") == batch]
    assert claimed["correlation_id"] == f"batch-{batch}"
