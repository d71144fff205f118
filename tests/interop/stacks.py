"""What every interop test shares: the record each stack saves, running a stack's tools (a missing
tool fails the test, saying what to install: CI installs them all), and the checks of the
tab-separated lines each client prints (step, then its fields)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PROVIDER_ID, SANDBOX_PASSWORD, SANDBOX_USER

HERE = Path(__file__).resolve().parent
CREDENTIALS = (PROVIDER_ID, SANDBOX_USER, SANDBOX_PASSWORD)
FAULT_TEXTS = {
    "wrong-password": "Authentication failed. (correlation ID ",
    "schema-invalid": "The request does not conform to the PARS schema: ",
}
# ABIM takes one completion of an activity per learner a day (717): each stack and SOAP version
# saves the sandbox learner's completion on a day of its own, within TODAY's year.
DAYS = {"zeep": 2, "suds": 4, "node-soap": 6, "jaxws": 8, "gsoap": 10}


@dataclass(frozen=True)
class Record:
    credit_id: str
    completed: str  # xs:dateTime


def record_for(stack: str, soap12: bool) -> Record:
    """ABIM learner 1000106 (Test2 Account2, DOB 03/01), activity 200930149, 1 point of ABIM MOC Part II."""
    day = DAYS[stack] + soap12
    return Record(f"ccid:testprovider.org:interop-{stack}-{'12' if soap12 else '11'}", f"2026-02-{day:02d}T00:00:00")


_BUILT: dict[tuple[str, bool], Path] = {}


def built(stack: str, soap12: bool, tmp_path_factory, build) -> Path:
    """The folder where `build(folder)` made a stack's client, once a test session per stack and SOAP
    version (from the first server's WSDL; the address is given when the client runs)."""
    if (stack, soap12) not in _BUILT:
        folder = tmp_path_factory.mktemp(stack)
        build(folder)
        _BUILT[stack, soap12] = folder
    return _BUILT[stack, soap12]


def require(*tools: str, install: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: {install} (.ci/run installs it)", pytrace=False)


def run(args: list[str], cwd: Path, timeout: float = 180) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}",
            pytrace=False,
        )
    return done.stdout


def check(output: str, record: Record, kind: str, code_prefix: str) -> dict[str, list[str]]:
    """A client's tab-separated lines (a step, then its fields): the record was saved and read back by
    its CreditID, and a wrong password and a schema-invalid request each raised (or returned) the
    stack's own fault object, `kind`, with the fault code (`code_prefix` + the kind of fault) and text."""
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        step, *fields = line.split("\t")
        found.setdefault(step, fields)
    assert found.get("saved", [])[:3] == ["Success", record.credit_id, "Submitted"], found
    status = found.get("status")
    assert status and status[0] == record.credit_id and status[1] in ("Submitted", "Accepted"), found
    for step, code in (("wrong-password", "Authentication"), ("schema-invalid", "InvalidRequest")):
        got = found.get(step)
        assert got is not None and got[:2] == [kind, code_prefix + code], (step, found)
        assert got[2].startswith(FAULT_TEXTS[step]), got
    return found


def wsdl_url(server, soap12: bool) -> str:
    return endpoint(server, soap12) + "?wsdl"


def endpoint(server, soap12: bool) -> str:
    return server.service_url + ("/soap12" if soap12 else "")
