"""The server's garbage sweeper: dead reference cycles are freed while it allocates,
and an idle process is left alone."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator

import pytest

from winslow.gcsweep import GarbageSweeper
from winslow.server import GC_THRESHOLDS


class Node:
    """One link of a cycle, as SQLAlchemy's bound parameters form with their clones."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def server_thresholds() -> Iterator[None]:
    """The collector as ``winslow up`` sets it, with no full collection due meanwhile."""
    before = gc.get_threshold()
    gc.collect()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def dead_cycle() -> weakref.ref[Node]:
    """A cycle no one holds any more, aged into the oldest generation as a request's
    objects are when they outlive a few collections of the younger ones."""
    node = Node()
    gc.collect(1)
    gc.collect(1)
    return weakref.ref(node)


def churn() -> None:
    """Allocate enough for the collector to collect its youngest generation a few times."""
    kept = [[] for _ in range(4 * GC_THRESHOLDS[0])]
    del kept


def wait_for(check, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_a_dead_cycle_lives_on_under_the_servers_thresholds_until_the_sweeper_runs(
    server_thresholds,
) -> None:
    cycle = dead_cycle()
    churn()
    assert cycle() is not None  # what the server saw: dead, and still held in memory
    sweeper = GarbageSweeper(every=0.05, after=1_000, freeze_start_up=False)
    sweeper.start()
    try:
        churn()  # the process goes on allocating, as a server serving pages does
        assert wait_for(lambda: cycle() is None), "the sweeper never freed the dead cycle"
    finally:
        sweeper.stop()
    assert sweeper.sweeps >= 1


def test_an_idle_process_gets_no_full_collection(server_thresholds) -> None:
    sweeper = GarbageSweeper(every=0.05, after=1_000, freeze_start_up=False)
    full_before = gc.get_stats()[2]["collections"]
    sweeper.start()
    try:
        time.sleep(0.5)  # ten periods with next to no allocations
    finally:
        sweeper.stop()
    assert sweeper.sweeps == 0
    assert gc.get_stats()[2]["collections"] == full_before


def test_a_count_the_collector_restarted_does_not_put_off_the_next_sweep(monkeypatch) -> None:
    """The collector's own collection of an older generation sets its count back (by up to
    50,000 in the server): the sweeper counts from there, not from its last sweep."""
    counts = iter([100_000, 10_000, 10_500, 16_000] + [16_000] * 1000)
    monkeypatch.setattr("winslow.gcsweep.objects_kept", lambda: next(counts))
    sweeper = GarbageSweeper(every=0.01, after=5_000, freeze_start_up=False)
    sweeper.start()  # seen: 100,000; then the count drops to 10,000 and grows by 6,000
    try:
        assert wait_for(lambda: sweeper.sweeps >= 1), "the sweep waited for 105,000 again"
    finally:
        sweeper.stop()


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Gives back to the collector what a test's sweeper froze (the other tests' objects)."""
    try:
        yield
    finally:
        gc.unfreeze()


def test_a_sweep_walks_only_what_came_after_the_start_up(server_thresholds, unfrozen) -> None:
    """A full collection walked every object the process had (about 230,000 for a
    server, 46 ms a time); once the sweeper has frozen the start-up's, a sweep walks the
    objects made since, and still frees the cycles that die among them."""
    walked_before = len(gc.get_objects())
    sweeper = GarbageSweeper(every=0.05, after=1_000)
    sweeper.start()
    try:
        assert gc.get_freeze_count() >= walked_before // 2
        assert len(gc.get_objects()) < walked_before // 10
        cycle = dead_cycle()
        churn()
        assert wait_for(lambda: cycle() is None), "a cycle made after the start stayed"
    finally:
        sweeper.stop()
    assert sweeper.sweeps >= 1
