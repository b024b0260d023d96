"""The ``on_event`` callback the backend tests hand to ``Backend.start``.

It remembers every job ID it is called with and wakes whoever waits, so a test waits
for a job's state by checking on each event, with a slow re-check as the safety net.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from winslow.backends.base import Backend, JobState, JobStatus


class Events:
    """Call it with job IDs; wait on it for job states or any condition."""

    def __init__(self, within: float = 60.0, recheck: float = 1.0) -> None:
        self.seen: list[str] = []
        self.within = within
        self.recheck = recheck
        """Seconds between re-checks when no event comes; long means events must work."""
        self._cond = threading.Condition()

    def __call__(self, job_id: str) -> None:
        with self._cond:
            self.seen.append(job_id)
            self._cond.notify_all()

    def count(self, job_id: str) -> int:
        with self._cond:
            return self.seen.count(job_id)

    def wait_for(
        self, backend: Backend, job_id: str, *states: JobState, within: float | None = None
    ) -> JobStatus:
        """Return the job's status once it is in one of ``states``."""
        deadline = time.monotonic() + (within or self.within)
        with self._cond:
            while True:
                status = backend.status(job_id)
                if status is not None and status.state in states:
                    return status
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"job {job_id} never reached {states}; it is {status}")
                self._cond.wait(min(remaining, self.recheck))

    def wait_until(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.within
        with self._cond:
            while not check():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"timed out waiting for {what}")
                self._cond.wait(min(remaining, 0.2))
