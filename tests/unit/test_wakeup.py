"""Waking an idle worker on an upload (adapters/wakeup.py): a FIFO on the same host, and polling as
before wherever there is none."""
from __future__ import annotations

import os
import threading
import time

from pars_ws.adapters.wakeup import Wakeup, wake_path


def _waited(wakeup: Wakeup, seconds: float, stop: threading.Event | None = None) -> float:
    t0 = time.monotonic()
    wakeup.wait(seconds, stop or threading.Event())
    return time.monotonic() - t0


def test_a_notify_wakes_a_waiting_worker_at_once(tmp_path):
    worker, uploader = Wakeup(tmp_path / "w.wake"), Wakeup(tmp_path / "w.wake")
    assert 0.25 <= _waited(worker, 0.3) < 2  # nothing: the whole poll
    threading.Timer(0.2, uploader.notify).start()
    assert _waited(worker, 30) < 5
    uploader.notify()  # pending before the worker looks: the next wait returns at once
    uploader.notify()
    assert _waited(worker, 30) < 1
    assert 0.25 <= _waited(worker, 0.3) < 2  # both wakes were taken by that one wait


def test_a_stop_ends_the_wait(tmp_path):
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    assert _waited(Wakeup(tmp_path / "w.wake"), 30, stop) < 5


def test_notify_without_a_waiting_worker_neither_blocks_nor_fails(tmp_path):
    Wakeup(tmp_path / "none" / "w.wake").notify()  # no folder
    Wakeup(None).notify()
    Wakeup(tmp_path / "w.wake").notify()  # no FIFO yet
    worker = Wakeup(tmp_path / "w.wake")
    fd = worker._reader()  # a FIFO whose reader nobody empties
    written = 0
    while True:  # fill the pipe to the brim
        try:
            written += os.write(fd, b"\0" * 4096)
        except BlockingIOError:
            break
    assert written >= 4096
    t0 = time.monotonic()
    for _ in range(10):
        Wakeup(tmp_path / "w.wake").notify()  # full: nothing written, nothing raised, no wait
    assert time.monotonic() - t0 < 1
    assert _waited(worker, 30) < 1  # the pending wakes still wake it


def test_something_else_at_the_path_means_polling_not_a_busy_loop(tmp_path):
    path = tmp_path / "w.wake"
    path.write_bytes(b"")  # a regular file reads as always ready
    assert 0.25 <= _waited(Wakeup(path), 0.3) < 2
    Wakeup(path).notify()
    assert path.read_bytes() == b""  # not written to


def test_a_forked_worker_opens_its_own_end(tmp_path):
    wakeup = Wakeup(tmp_path / "w.wake")
    parent_fd = wakeup._reader()
    pid = os.fork()
    if pid == 0:  # the child: its own descriptor, not the parent's
        os._exit(0 if wakeup._reader() not in (None, parent_fd) else 1)
    assert os.waitpid(pid, 0)[1] == 0


def test_where_the_fifo_lives(tmp_path):
    assert str(wake_path("sqlite:////srv/pars/pars.db", tmp_path)) == "/srv/pars/pars.db.wake"
    assert wake_path("sqlite://", tmp_path) == tmp_path / "worker.wake"
    assert wake_path("postgresql://u@h/db", tmp_path) == tmp_path / "worker.wake"
