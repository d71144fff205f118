"""`pars-ws serve`: prepare the database, then run gunicorn and a batch worker and watch over both.

No database connection, file or thread crosses a fork: migrations and seeding run in a child
process of their own; gunicorn's master loads the application (code, contract, no database) and
each web worker opens its own engine right after the fork (post_fork). A batch worker that dies is
started again; both children get SIGTERM when serve is stopped, and (Linux) when serve itself is killed.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import subprocess
import sys
import time

log = logging.getLogger("pars_ws.serve")

GRACEFUL_SECONDS = 20  # how long gunicorn's workers may finish their requests on stop
RESTART_PAUSE_SECONDS = 1.0  # between restarts of a batch worker that keeps dying at once
POLL_SECONDS = 0.1  # how often serve looks at its children
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Run in a child before exec: SIGTERM when its parent (serve) dies, however it dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: a killed serve leaves its children running
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def gunicorn_command(bind: str, workers: int) -> list[str]:
    return _python("pars_ws.entrypoints.serve", bind, str(workers))


def run_gunicorn(bind: str, workers: int) -> None:
    """gunicorn's master (run in a process of its own by run()): sync workers, the app preloaded."""
    from gunicorn.app.base import BaseApplication

    from .. import logs
    from ..settings import Settings
    from .wsgi import create_app

    class _App(BaseApplication):
        def load_config(self):
            options = {
                "bind": bind,
                "workers": workers,
                "preload_app": True,
                "accesslog": None,
                "timeout": 120,
                "graceful_timeout": GRACEFUL_SECONDS,
                "worker_class": "sync",
                "logconfig_dict": logs.gunicorn_config(level),
                "post_fork": lambda _server, _worker: self.application.services.open_database(),
            }
            if "control_socket_disable" in self.cfg.settings:  # gunicorn 27+: a thread in the master
                options["control_socket_disable"] = True
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            self.application = create_app()
            # What the master built lives as long as the workers: kept out of their collections (spyne
            # collects after a call once a second) and off their copy-on-write pages, as the gc docs advise.
            gc.freeze()
            return self.application

    level = Settings.from_env().log_level
    logs.configure(level)
    _App().run()


def prepare(seed: bool) -> int:
    """Migrate and, with seed, seed the sandbox on a database without credentials: in a child process."""
    return subprocess.run(_python("pars_ws.entrypoints.cli", "db", "prepare", *(["--seed"] if seed else []))).returncode


def run(bind: str, workers: int, with_worker: bool) -> int:
    """Run gunicorn (and a batch worker beside it) until gunicorn ends; gunicorn's exit status."""
    return _Supervisor(bind, workers, with_worker).run()


class _Supervisor:
    def __init__(self, bind: str, workers: int, with_worker: bool):
        self.web = subprocess.Popen(gunicorn_command(bind, workers), preexec_fn=_die_with_parent)
        self.worker: subprocess.Popen | None = None
        self.worker_started = 0.0
        self.stopping = False
        self.stop_sent = 0.0
        if with_worker:
            self._start_worker()

    def _start_worker(self) -> None:
        self.worker = subprocess.Popen(_python("pars_ws.entrypoints.cli", "worker"), preexec_fn=_die_with_parent)
        self.worker_started = time.monotonic()

    def _stop(self, _signum=None, _frame=None) -> None:
        self.stopping = True
        self.stop_sent = time.monotonic()
        for child in (self.web, self.worker):
            if child is not None:
                _signal(child, signal.SIGTERM)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, lambda *_: _signal(self.web, signal.SIGHUP))  # new gunicorn workers
        while True:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                # gunicorn keeps at most a few pending signals: under a flood of reloads it may drop
                # the stop, so it is sent again until gunicorn ends.
                if self.stopping and time.monotonic() - self.stop_sent > 1:
                    self._stop()
                time.sleep(POLL_SECONDS)
                continue
            code = os.waitstatus_to_exitcode(status)
            if pid == self.web.pid:
                self.web.returncode = code
                if self.worker is not None:
                    _signal(self.worker, signal.SIGTERM)
                    _reap(self.worker)
                return code
            if self.worker is not None and pid == self.worker.pid:
                self.worker.returncode = code
                if not self.stopping:
                    log.error(
                        "batch worker exited; starting another",
                        extra={"event": "worker_exited", "pid": pid, "status": code},
                    )
                    if time.monotonic() - self.worker_started < RESTART_PAUSE_SECONDS:
                        time.sleep(RESTART_PAUSE_SECONDS)
                    self._start_worker()
                    log.info("batch worker started", extra={"event": "worker_restarted", "pid": self.worker.pid})


def _signal(proc: subprocess.Popen, signum: int) -> None:
    # os.kill, not Popen.send_signal: that polls, and may reap the child before run()'s waitpid sees it.
    if proc.returncode is None:
        try:
            os.kill(proc.pid, signum)
        except ProcessLookupError:
            pass


def _reap(proc: subprocess.Popen) -> None:
    try:
        proc.wait(timeout=GRACEFUL_SECONDS + 5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    run_gunicorn(sys.argv[1], int(sys.argv[2]))
