"""Interop, Node: node-soap 1.x (npm's soap, pinned by node/package-lock.json). node/client.js builds
its client from the live WSDL without naming a port, saves and reads back a record and meets a wrong
password and a schema-invalid request as node-soap's fault body (error.root.Envelope.Body.Fault),
over SOAP 1.1 and 1.2 (forceSoap12Headers)."""

from __future__ import annotations

import pytest

from tests.interop.stacks import (
    CREDENTIALS,
    HERE,
    check,
    record_for,
    require,
    run,
    wsdl_url,
)

pytestmark = pytest.mark.e2e

NODE = HERE / "node"
CODES = {False: "soap11env:Client.", True: "soap12env:Sender tns:"}


@pytest.fixture(scope="session")
def node_soap():
    require("node", "npm", install="install Node.js 20 and npm (apt-get install nodejs npm)")
    if not (NODE / "node_modules" / "soap").is_dir():
        run(["npm", "ci", "--no-audit", "--no-fund"], NODE, timeout=300)
    return NODE


@pytest.mark.parametrize("soap12", [False, True], ids=["soap11", "soap12"])
def test_node_soap_client_from_the_wsdl(server, node_soap, soap12):
    record = record_for("node-soap", soap12)
    output = run(
        [
            "node",
            "client.js",
            wsdl_url(server, soap12),
            *CREDENTIALS,
            record.credit_id,
            record.completed,
            *(["soap12"] if soap12 else []),
        ],
        node_soap,
        timeout=60,
    )
    found = check(output, record, "fault body", CODES[soap12])
    for step in ("wrong-password", "schema-invalid"):
        assert found[step][3] == f"HTTP {400 if soap12 else 500}", found[step]
