"""Full garbage collections for the server, which sets the collector's thresholds high.

With ``serve``'s thresholds a request's short-lived objects rarely meet the collector,
which keeps page loads steady. But reference cycles die unseen: SQLAlchemy builds some
for every statement (a bound parameter's set of its clones holds the parameter), and
CPython collects the oldest generation only once the objects waiting there outnumber a
quarter of the long-lived ones. At 1,000 projects that let serving the console leave
about 10 MB of dead cycles behind (`bench/memory.py`). ``GarbageSweeper`` looks every
``every`` seconds and collects every generation once ``after`` more objects live than at
its last sweep (the collector's own count: allocations less deallocations): every second
or two while the console is served hard, about once a minute while the server idles.

A full collection walks every object the collector tracks, and most of them are the
server's start-up (modules, classes, routes, models: about 230,000 objects, 46 ms a
walk on this project's machine), which live as long as the process. The sweeper moves
those out of its sight once it starts (``gc.freeze``), so a sweep walks only what came
since: under a busy engine, sweeps had taken 8 % of the server's CPU.
"""

from __future__ import annotations

import gc
import logging
import threading

log = logging.getLogger(__name__)

SWEEP_CHECK_SECONDS = 1.0
"""How often the sweeper looks whether a full collection is due, seconds."""

SWEEP_AFTER_OBJECTS = 5_000
"""Objects more than at the last sweep that make a full collection due. One takes about
80 ms with 1,000 projects kept in memory; serving the console keeps about 3,500 more
objects a second until a collection, an idle server about 100."""


def objects_kept() -> int:
    """Objects allocated less objects freed so far, as the collector counts them (only
    those it tracks): what grows between collections, dead cycles included."""
    threshold = gc.get_threshold()[0]
    return int(gc.get_stats()[0]["collections"]) * threshold + gc.get_count()[0]


class GarbageSweeper:
    """A daemon thread that runs ``gc.collect()`` while the process keeps allocating."""

    def __init__(
        self,
        every: float = SWEEP_CHECK_SECONDS,
        after: int = SWEEP_AFTER_OBJECTS,
        *,
        freeze_start_up: bool = True,
    ) -> None:
        self.every = every
        self.after = after
        self.freeze_start_up = freeze_start_up
        """Whether ``start`` freezes what lives then, for a process that has just started."""
        self.sweeps = 0
        """Full collections this sweeper ran."""
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="winslow-gc", daemon=True)

    def start(self) -> None:
        if self.freeze_start_up:
            # What lives now lives as long as the process: frozen objects are never walked
            # again. A cycle among them that dies later stays (a few caches' entries at
            # most); the collection first leaves none of today's garbage frozen.
            gc.collect()
            gc.freeze()
        self._seen = objects_kept()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.every + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            kept = objects_kept()
            # A collection of an older generation, the collector's own, restarts its count:
            # counting from there keeps the next sweep ``after`` objects away, not more.
            self._seen = min(self._seen, kept)
            if kept - self._seen < self.after:
                continue  # too few allocations since the last sweep to leave much behind
            found = gc.collect()
            self.sweeps += 1
            log.debug("gc: a full collection freed %d objects", found)
            self._seen = objects_kept()
