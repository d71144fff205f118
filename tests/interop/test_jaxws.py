"""Interop, Java: JAX-WS RI 2.3 (Debian's jaxws: wsimport) on the JDK. wsimport generates the client
from the live WSDL, javac compiles it with jaxws/Client.java, which saves and reads back a record
and meets a wrong password and a schema-invalid request as SOAPFaultException (code, subcode, text),
over SOAP 1.1 and 1.2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.stacks import (
    CREDENTIALS,
    HERE,
    built,
    check,
    record_for,
    require,
    run,
    wsdl_url,
)

pytestmark = pytest.mark.e2e

JAXWS_RT = Path("/usr/share/java/jaxws-rt.jar")  # Debian's jaxws: its manifest names the rest of the runtime
CODES = {
    False: "{http://schemas.xmlsoap.org/soap/envelope/}Client.",
    True: "{http://www.w3.org/2003/05/soap-envelope}Sender {urn:pars-ws:learner:v1}",
}


def build(work: Path, wsdl: str, soap12: bool) -> None:
    require("wsimport", "javac", "java", install="apt-get install jaxws default-jdk-headless")
    if not JAXWS_RT.is_file():
        pytest.fail(f"{JAXWS_RT} not found: apt-get install jaxws (.ci/run installs it)", pytrace=False)
    (work / "src").mkdir()
    (work / "classes").mkdir()
    # wsimport calls the SOAP 1.2 binding an extension: without -extension it skips the port.
    run(["wsimport", "-quiet", "-keep", *(["-extension"] if soap12 else []), "-s", "src", "-d", "classes", wsdl], work)
    run(["javac", "-nowarn", "-cp", f"classes:{JAXWS_RT}", "-d", "classes", str(HERE / "jaxws" / "Client.java")], work)


@pytest.mark.parametrize("soap12", [False, True], ids=["soap11", "soap12"])
def test_jaxws_client_generated_by_wsimport(server, tmp_path_factory, soap12):
    wsdl = wsdl_url(server, soap12)
    work = built("jaxws", soap12, tmp_path_factory, lambda folder: build(folder, wsdl, soap12))
    record = record_for("jaxws", soap12)
    output = run(
        ["java", "-cp", f"classes:{JAXWS_RT}", "Client", wsdl, *CREDENTIALS, record.credit_id, record.completed],
        work,
        timeout=120,
    )
    check(output, record, "SOAPFaultException", CODES[soap12])
