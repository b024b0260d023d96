"""Sample every node's telemetry every few seconds, and keep its history rolled up.

``TelemetryCollector`` is a thread beside the reconcile loop, like ``usage.UsageSampler``:
each round it asks the backend what every node uses (``Backend.node_stats``) and stores
the samples (``store/telemetry.py``); once a minute it rolls the raw samples up into the
coarser tiers and deletes what no view needs any more (``core/telemetry.py`` has the
tiers). It writes only ``node_telemetry``, so it never races the engine. A failed round
is logged and the next one comes as planned.
"""

from __future__ import annotations

import logging
import threading
import time

from winslow import defaults
from winslow.backends.base import Backend
from winslow.engine.worker import PeriodicWorker
from winslow.store.repo import Store
from winslow.store.rows import now
from winslow.store.telemetry import add_samples, prune, roll_up

log = logging.getLogger(__name__)


class TelemetryCollector:
    """Samples every node each ``interval_seconds`` (0: never) in a background thread.

    Usage::

        collector = TelemetryCollector(store, backend)
        collector.start()
        collector.sample_once()     # a round now, as the thread does (tests)
        collector.maintain()        # roll up and prune now
        collector.stop()
    """

    def __init__(
        self,
        store: Store,
        backend: Backend,
        interval_seconds: float = defaults.TELEMETRY_SAMPLE_SECONDS,
        rollup_seconds: float = defaults.TELEMETRY_ROLLUP_SECONDS,
    ) -> None:
        self.store = store
        self.backend = backend
        self.interval_seconds = interval_seconds
        self.rollup_seconds = rollup_seconds
        self._thread: PeriodicWorker | None = None
        self._round_lock = threading.Lock()
        self._failing: str | None = None
        """The last error a round gave, so a lasting failure is logged once."""
        self._next_maintenance = 0.0
        """When (monotonic seconds) the thread rolls up and prunes next."""

    def start(self) -> None:
        """Begin sampling in a background thread; does nothing when the interval is 0 or
        the thread runs already."""
        if self._thread is not None or self.interval_seconds <= 0:
            return
        self._next_maintenance = time.monotonic() + self.rollup_seconds
        self._thread = PeriodicWorker("winslow-telemetry", self.interval_seconds, self._round)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling; waits briefly for a round under way."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop()

    def sample_once(self) -> int:
        """Sample every node once and store it; return how many samples were stored."""
        with self._round_lock:
            return add_samples(self.store, self.backend.node_stats(now()))

    def maintain(self) -> tuple[int, int]:
        """Roll up what ended and prune what expired; return (rows written, rows deleted)."""
        with self._round_lock:
            at = now()
            return roll_up(self.store, at), prune(self.store, at)

    def _round(self) -> None:
        try:
            self.sample_once()
            if time.monotonic() >= self._next_maintenance:
                self._next_maintenance = time.monotonic() + self.rollup_seconds
                self.maintain()
        except Exception as exc:  # one bad round must not end sampling for good
            message = f"{type(exc).__name__}: {exc}"
            if message != self._failing:
                log.warning(
                    "telemetry: a round failed (%s); trying again every %g s",
                    message,
                    self.interval_seconds,
                )
            self._failing = message
        else:
            if self._failing is not None:
                log.info("telemetry: nodes can be sampled again")
            self._failing = None
