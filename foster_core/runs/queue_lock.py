"""The machine-wide "one job at a time" lock of the background jobs (runs/jobs.py): an exclusive flock under
the runs dir, and a file saying which job holds it, so that waiting jobs can say whom they wait for."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.atomic import atomic_write_json
from .run_store import utc_timestamp

if TYPE_CHECKING:  # the job module imports this one
    from .jobs import Job

LOCK_FILE = ".queue.lock"
HOLDER_FILE = ".queue_holder.json"


class Cancelled(Exception):
    """A stop was asked for before or while the job waited for the lock."""


class QueueLock:
    """The machine-wide 'one job at a time' lock: an exclusive flock under the runs dir."""

    def __init__(self, root: Path, job: "Job"):
        self.root, self.job = root, job

    def __enter__(self) -> "QueueLock":
        self.root.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.root / LOCK_FILE, "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.job.update(status="queued", message="waiting for the running job to finish")
            while True:
                if self.job.stop_requested():
                    raise Cancelled()
                try:
                    fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    time.sleep(0.5)
        atomic_write_json(self.root / HOLDER_FILE, {"job": self.job.id, "pid": os.getpid(), "since": utc_timestamp()})
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            (self.root / HOLDER_FILE).unlink(missing_ok=True)
        finally:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


