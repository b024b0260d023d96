"""A named daemon thread that calls one function every few seconds until it is stopped.

The engine's samplers (``usage.UsageSampler``, ``telemetry.TelemetryCollector``) each run
such a thread beside the reconcile loop. Being a daemon, it never keeps the server from
exiting; ``stop`` wakes it from its wait at once and waits a bounded time for a round
under way, so a slow round (``nvidia-smi``, docker, Nomad) cannot hang a shutdown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

STOP_JOIN_SECONDS = 10.0
"""How long ``stop`` waits for a round under way (``nvidia-smi``, docker or Nomad may be slow)."""


class PeriodicWorker(threading.Thread):
    """Calls ``tick`` every ``interval_seconds``, the first time one interval after
    ``start``, until ``stop``. ``tick`` handles its own errors: one that escapes ends the
    thread. A thread starts once; to run again, make a new one.

    Usage::

        worker = PeriodicWorker("winslow-usage", 5.0, sampler.sample_round)
        worker.start()
        worker.stop()    # returns once the round under way ended, or after 10 s
    """

    def __init__(
        self,
        name: str,
        interval_seconds: float,
        tick: Callable[[], object],
        join_seconds: float = STOP_JOIN_SECONDS,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.interval_seconds = interval_seconds
        self.join_seconds = join_seconds
        self._tick = tick
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(self.interval_seconds):
            self._tick()

    def stop(self) -> None:
        """Ask the thread to end, and wait up to ``join_seconds`` for a round under way."""
        self._stopping.set()
        if self.is_alive():
            self.join(timeout=self.join_seconds)
