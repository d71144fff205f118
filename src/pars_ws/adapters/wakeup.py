"""Waking an idle worker when a batch is queued: a named pipe (FIFO) beside the database, on the same
host. A worker elsewhere, or where no FIFO can be made, finds the batch at its next poll, as before."""
from __future__ import annotations

import os
import select
import stat
import threading
import time
from pathlib import Path

from .database import sqlite_file

# How often a waiting worker looks at its stop event (a signal or another thread may set it).
STOP_CHECK_SECONDS = 0.05


def wake_path(database_url: str, data_dir: Path) -> Path:
    """Beside an SQLite file (like its write lock); in the data folder otherwise."""
    path = sqlite_file(database_url)
    return Path(path + ".wake") if path is not None else data_dir / "worker.wake"


class Wakeup:
    def __init__(self, path: Path | None):
        self.path = path
        self._fd: int | None = None
        self._pid = 0

    def notify(self) -> None:
        """Wake one waiting worker, if one waits. Never blocks and never fails the caller."""
        if self.path is None:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no FIFO yet, or no worker has it open (ENXIO)
            return
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.write(fd, b"\0")
        except OSError:  # full: wakes are pending already
            pass
        finally:
            os.close(fd)

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """Until notified, stopped or `seconds` have passed."""
        fd = self._reader()
        if fd is None:
            stop.wait(seconds)
            return
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            readable, _, _ = select.select([fd], [], [], min(remaining, STOP_CHECK_SECONDS))
            if readable:
                try:
                    os.read(fd, 4096)  # every wake pending: one pass serves them all
                except BlockingIOError:  # another worker on this FIFO took them
                    pass
                return

    def _reader(self) -> int | None:
        if self.path is None or not hasattr(os, "mkfifo"):
            return None
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.mkfifo(self.path, 0o600)
            except FileExistsError:
                pass
            # Read and write: with no writer left, a FIFO reads as end of file, which select()
            # reports as readable for ever.
            fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):  # something else has the name: poll
            os.close(fd)
            return None
        self._fd, self._pid = fd, os.getpid()
        return fd
