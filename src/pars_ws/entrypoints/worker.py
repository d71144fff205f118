"""The worker: processes uploaded batches, runs the board review, delivers queued mail.

Any number of workers may run, on any host: every job claims its work in the database.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading

from ..service.outbox import deliver_pending

log = logging.getLogger("pars_ws.worker")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


OUTBOX_CHUNK = 100  # mail sent per pass


def run_once(services, name: str, stop: threading.Event | None = None) -> bool:
    """One pass over every job; True when work is left waiting (look again at once).

    A pass that found less than a full chunk of records to review (or of mail to send) has caught
    up: records that fall due meanwhile wait for the next poll, instead of each pass taking the
    few that fell due during the last one (a busy loop beside a steady stream of saves)."""
    from ..service import batches, review

    more = False
    for job in (
        lambda: batches.process_next(services, name, stop) > 0,
        lambda: review.run_due(services) >= review.CHUNK,
        lambda: deliver_pending(services.store, services.mailer, services.clock, limit=OUTBOX_CHUNK) >= OUTBOX_CHUNK,
    ):
        try:
            more = job() or more
        except Exception:  # noqa: BLE001 - one failing job must not stop the others
            log.exception("worker job failed")
    return more


# Idle polls are reads (no write lock is taken when there is nothing to do).
POLL_SECONDS = 0.25


def run_forever(services, poll_seconds: float = POLL_SECONDS, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    name = worker_name()

    def _stop(*_):
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    log.info("worker started", extra={"event": "worker_started", "worker": name})
    while not stop.is_set():
        if not run_once(services, name, stop):
            stop.wait(poll_seconds)
