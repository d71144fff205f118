"""Interop, C++: gSOAP 2.8 (Debian's gsoap and libgsoap-dev). wsdl2h reads the live WSDL (typemap.dat
fixes the prefixes), soapcpp2 generates the proxy, g++ builds it with gsoap/client.cpp, which saves
and reads back a record and meets a wrong password and a schema-invalid request as a SOAP_FAULT
(soap_faultcode, soap_fault_subcode, soap_fault_string), over SOAP 1.1 and 1.2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.stacks import (
    CREDENTIALS,
    HERE,
    built,
    check,
    endpoint,
    record_for,
    require,
    run,
    wsdl_url,
)

pytestmark = pytest.mark.e2e

IMPORTS = Path("/usr/share/gsoap/import")  # soapcpp2's #import path (soap12.h, stlvector.h, ...)
CODES = {False: "SOAP-ENV:Client.", True: "SOAP-ENV:Sender p:"}


def build(work: Path, wsdl: str, soap12: bool) -> None:
    require("wsdl2h", "soapcpp2", "g++", install="apt-get install gsoap libgsoap-dev g++")
    run(["wsdl2h", "-t", str(HERE / "gsoap" / "typemap.dat"), "-o", "pars.h", wsdl], work)
    run(["soapcpp2", "-j", "-C", "-x", f"-I{IMPORTS}", "pars.h"], work)
    binding = "ACCMELearnerServiceSoap12" if soap12 else "ACCMELearnerServiceSoap"  # the WSDL's one binding
    run(
        [
            "g++",
            "-O0",
            "-w",
            f"-DPROXY={binding}Proxy",
            f'-DPROXY_HEADER="soap{binding}Proxy.h"',
            f'-DNSMAP_HEADER="{binding}.nsmap"',
            "-I.",
            "-o",
            "client",
            str(HERE / "gsoap" / "client.cpp"),
            "soapC.cpp",
            f"soap{binding}Proxy.cpp",
            "-lgsoap++",
        ],
        work,
        timeout=300,
    )


@pytest.mark.parametrize("soap12", [False, True], ids=["soap11", "soap12"])
def test_gsoap_proxy_generated_by_wsdl2h_and_soapcpp2(server, tmp_path_factory, soap12):
    wsdl = wsdl_url(server, soap12)
    work = built("gsoap", soap12, tmp_path_factory, lambda folder: build(folder, wsdl, soap12))
    record = record_for("gsoap", soap12)
    output = run(
        ["./client", endpoint(server, soap12), *CREDENTIALS, record.credit_id, record.completed + "Z"], work, timeout=60
    )
    check(output, record, "soap_fault", CODES[soap12])
