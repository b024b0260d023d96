"""Sample what every running run uses, every few seconds, and keep it with the run.

``UsageSampler`` is a thread beside the reconcile loop: each round it asks the backend
what the stage of each submitted, running run uses (``Backend.usage``) and stores the
answers in one transaction (``store/usage.py``, which also keeps each run's samples
bounded). It only reads the backend and only writes ``run_usage``, so it never races
the engine over run state. A backend that fails for one run costs that run its sample
of the round, nothing more: the thread logs and goes on.

A backend for which a sample costs a request to a shared service says how often it
wants them: ``usage_interval_seconds``, the least time between two samples of one run,
and ``usage_requests_per_second``, the most samples per second for all runs together
(the Nomad backend: 15 s and 5). Each round then samples the runs that are due, the
longest-waiting first, and a run's interval stretches to ``runs / requests per second``,
so the load stays flat however many runs there are. A backend that gives None for both
(local) is sampled every round, as often as the sampler runs.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from winslow import defaults
from winslow.backends.base import Backend
from winslow.core.models import Run
from winslow.core.states import StageRunState
from winslow.engine.worker import PeriodicWorker
from winslow.store.repo import Store
from winslow.store.rows import now
from winslow.store.usage import UsagePoint, add_samples

log = logging.getLogger(__name__)


class UsageSampler:
    """Samples every running run's usage each ``interval_seconds`` in a background thread.

    Usage::

        sampler = UsageSampler(store, backend)
        sampler.start()
        written = sampler.sample_once()   # a round now, as the thread does (tests)
        sampler.stop()
    """

    def __init__(
        self,
        store: Store,
        backend: Backend,
        interval_seconds: float = defaults.USAGE_SAMPLE_SECONDS,
    ) -> None:
        self.store = store
        self.backend = backend
        self.interval_seconds = interval_seconds
        self._thread: PeriodicWorker | None = None
        self._round_lock = threading.Lock()
        self._failing: dict[int, str] = {}
        """Run → the last error sampling it gave, so a lasting failure is logged once."""
        self._sampled: dict[int, float] = {}
        """Run → when (monotonic seconds) it was last sampled."""

    def start(self) -> None:
        """Begin sampling in a background thread; a second call does nothing."""
        if self._thread is not None:
            return
        self._thread = PeriodicWorker("winslow-usage", self.interval_seconds, self._round)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling; waits briefly for a round under way."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop()

    def sample_once(self, *, due_only: bool = False) -> int:
        """Sample every submitted, running run once, or with ``due_only`` those the
        backend's schedule says are due (the thread's rounds); return how many samples
        were stored."""
        with self._round_lock:
            running = [
                (run, run.job_id)
                for run in self.store.active_runs()
                if run.submitted and run.job_id and run.state is StageRunState.RUNNING
            ]
            runs = self._due(running) if due_only else running
            points: list[UsagePoint] = []
            for run, job_id in runs:
                self._sampled[run.id] = time.monotonic()
                try:
                    sample = self.backend.usage(job_id)
                except Exception as exc:  # one backend failure costs this run this round only
                    self._report_failure(run.id, job_id, exc)
                    continue
                if self._failing.pop(run.id, None) is not None:
                    log.info("run %d: usage can be sampled again", run.id)
                if sample is None:
                    continue
                points.append(
                    UsagePoint(
                        run_id=run.id,
                        at=now(),
                        cpu_percent=sample.cpu_percent,
                        memory_mb=sample.memory_mb,
                        gpu_percent=sample.gpu_percent,
                        gpu_memory_mb=sample.gpu_memory_mb,
                    )
                )
            ids = {run.id for run, _ in running}
            for gone in set(self._failing) - ids:
                del self._failing[gone]
            for gone in set(self._sampled) - ids:
                del self._sampled[gone]
            return add_samples(self.store, points)

    def _due(self, runs: list[tuple[Run, str]]) -> list[tuple[Run, str]]:
        """The runs to sample this round by the backend's ``usage_interval_seconds`` and
        ``usage_requests_per_second`` (see the module docstring), longest-waiting first."""
        interval = self.backend.usage_interval_seconds
        if interval is None:
            interval = self.interval_seconds
        budget = self.backend.usage_requests_per_second
        limit = len(runs)
        if budget:
            interval = max(interval, len(runs) / budget)
            limit = max(1, round(budget * self.interval_seconds))
        # Rounds come every interval_seconds: a run due a moment after one waits for the next.
        ready = time.monotonic() - interval + self.interval_seconds / 2
        due = [(self._sampled.get(run.id, -math.inf), run, job) for run, job in runs]
        due = [entry for entry in due if entry[0] <= ready]
        due.sort(key=lambda entry: entry[0])
        return [(run, job) for _, run, job in due[:limit]]

    def _report_failure(self, run_id: int, job_id: str, exc: Exception) -> None:
        message = str(getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}")
        if self._failing.get(run_id) == message:
            log.debug("run %d: usage of job %s still not readable: %s", run_id, job_id, message)
            return
        self._failing[run_id] = message
        log.warning(
            "run %d: could not sample the usage of job %s (%s); trying again every %g s",
            run_id,
            job_id,
            message,
            self.interval_seconds,
        )

    def _round(self) -> None:
        try:
            self.sample_once(due_only=True)
        except Exception:  # a store hiccup must not end sampling for good
            log.exception(
                "usage sampler: a round failed; the next one comes in %g s",
                self.interval_seconds,
            )
