"""An operator's install: the wheel built from this checkout, installed into a fresh virtual
environment, migrates, serves, and hands out WSDLs that strict zeep loads, run from a folder far from
the checkout (the migrations, schemas and WSDL ship inside the package)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
import zeep
from zeep.settings import Settings as ZeepSettings

from tests.conftest import ROOT, free_port


def _run(*args, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


def test_the_wheel_migrates_serves_and_its_wsdls_load(tmp_path):
    dist, venv, elsewhere = tmp_path / "dist", tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(dist), str(ROOT))
    [wheel] = dist.glob("pars_ws-*.whl")
    _run(sys.executable, "-m", "venv", str(venv))
    _run(str(venv / "bin" / "pip"), "install", "--quiet", str(wheel))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARS_", "PYTHON"))}
    env.update(PARS_DATA_DIR=str(tmp_path / "data"), PARS_LOG_LEVEL="WARNING")
    where = _run(str(venv / "bin" / "python"), "-c", "import pars_ws; print(pars_ws.__file__)", cwd=elsewhere, env=env)
    assert Path(where.stdout.strip()).is_relative_to(venv)  # the installed package, not this checkout
    pars_ws = str(venv / "bin" / "pars-ws")
    assert "is at head" in _run(pars_ws, "db", "upgrade", cwd=elsewhere, env=env).stdout
    port = free_port()
    out = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [pars_ws, "serve", "--bind", f"127.0.0.1:{port}"],
        cwd=elsewhere,
        env=env,
        stdout=open(out, "wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, out.read_text()
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        text = out.read_text()
        user, password = re.search(r"User: +(\S+)", text)[1], re.search(r"Password: +(\S+)", text)[1]
        strict = ZeepSettings(strict=True)
        for path in ("/services/ACCMELearnerService.svc?wsdl", "/services/ACCMELearnerService.svc/soap12?wsdl"):
            client = zeep.Client(base + path, settings=strict)
        activity = client.service.GetActivity(
            ProviderId="1234567", User=user, Password=password, ActivityID="200930149"
        )
        assert activity.ActivityID == "200930149"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
