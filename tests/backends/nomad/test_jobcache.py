"""``JobCache``: what the Nomad backend keeps of each job, when it goes stale, and the sweep.

Pure: snapshots built by hand in the shapes Nomad answers with, and a clock the test
moves. The backend's use of it against the stand-in is in ``test_load.py``.
"""

from __future__ import annotations

from winslow.backends.nomad.jobcache import CONSISTENT, JobCache, Need, Snapshot, need_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def snapshot(
    job_modify: int = 10, allocs: dict[str, int] | None = None, created: int = 5
) -> Snapshot:
    """A job created at ``created`` and last changed at ``job_modify``, with allocations
    ``{ID: ModifyIndex}`` created after it."""
    stubs = [
        {"ID": alloc_id, "JobID": "winslow-a", "CreateIndex": created + 1, "ModifyIndex": modified}
        for alloc_id, modified in (allocs if allocs is not None else {"a1": 12}).items()
    ]
    job = {"ID": "winslow-a", "CreateIndex": created, "ModifyIndex": job_modify}
    return Snapshot(job=job, allocs=stubs, evals=[], indexes=(job_modify, 12, 11))


def kept(cache: JobCache, job_id: str, snap: Snapshot) -> None:
    cache.store(job_id, snap, cache.begin(job_id))


def test_a_kept_snapshot_answers_until_an_event_touches_its_job():
    cache = JobCache(clock=Clock())
    snap = snapshot()
    assert cache.current("winslow-a") is None  # never read
    kept(cache, "winslow-a", snap)
    assert cache.current("winslow-a") is snap
    cache.invalidate("winslow-b", need_of("Allocation", 20))  # another job's event
    assert cache.current("winslow-a") is snap

    cache.invalidate("winslow-a", need_of("Allocation", 20))
    assert cache.current("winslow-a") is None
    ticket = cache.begin("winslow-a")
    assert ticket.need == Need(job=10, allocs=20, evals=11)  # the event's index, at least
    fresh = snapshot(allocs={"a1": 20})
    cache.store("winslow-a", fresh, ticket)
    assert cache.current("winslow-a") is fresh


def test_an_event_during_a_read_keeps_the_job_stale():
    """The watcher invalidates before it reports; a read begun before the event may hold
    answers from before it, so what it stores must not count as current."""
    cache = JobCache(clock=Clock())
    ticket = cache.begin("winslow-a")
    cache.invalidate("winslow-a", need_of("Job", 30))
    cache.store("winslow-a", snapshot(), ticket)
    assert cache.current("winslow-a") is None
    again = cache.begin("winslow-a")
    assert again.need.job == 30
    cache.store("winslow-a", snapshot(job_modify=30), again)
    assert cache.current("winslow-a") is not None


def test_each_topic_asks_the_read_of_its_own_table_for_the_events_index():
    assert need_of("Job", 7) == Need(job=7)
    assert need_of("Allocation", 8) == Need(allocs=8)
    assert need_of("Evaluation", 9) == Need(evals=9)
    assert need_of("Node", 10) == Need()  # the node's status is the watcher's, not a read's
    both = Need(job=7, allocs=3).merge(Need(allocs=8, consistent=True))
    assert both == Need(job=7, allocs=8, evals=0, consistent=True)


def test_a_change_winslow_made_itself_asks_for_a_consistent_read():
    cache = JobCache(clock=Clock())
    kept(cache, "winslow-a", snapshot())
    cache.invalidate("winslow-a")
    assert cache.begin("winslow-a").need.consistent
    assert CONSISTENT.consistent


def test_a_read_never_accepts_less_than_the_kept_snapshot_had():
    """A node event asks nothing of the reads, yet a follower further behind than the
    server that answered before must not take the job back to an older state."""
    cache = JobCache(clock=Clock())
    kept(cache, "winslow-a", snapshot(job_modify=40))
    cache.invalidate("winslow-a", need_of("Node", 99))
    assert cache.begin("winslow-a").need == Need(job=40, allocs=12, evals=11)


def test_the_sweep_is_due_once_per_quiet_interval():
    clock = Clock()
    cache = JobCache(quiet_seconds=60, clock=clock)
    assert not cache.claim_sweep()  # none right after the start
    clock.now += 59
    assert not cache.claim_sweep()
    clock.now += 1
    assert cache.claim_sweep()
    assert not cache.claim_sweep()  # claimed: one caller sweeps
    clock.now += 60
    assert cache.claim_sweep()


def test_the_sweep_names_the_jobs_that_changed_without_an_event():
    cache = JobCache(clock=Clock())
    for name in ("same", "newer-job", "new-alloc", "newer-alloc", "gone-alloc", "gone", "behind"):
        kept(cache, f"winslow-{name}", snapshot(allocs={f"{name}-1": 12}))
    cache.invalidate("winslow-same", need_of("Job", 50))
    kept(cache, "winslow-same", snapshot(allocs={"same-1": 12}))  # read again since

    def stub(name: str, modified: int = 10) -> dict:
        return {"ID": f"winslow-{name}", "ModifyIndex": modified}

    def alloc(name: str, alloc_id: str, modified: int = 12, created: int = 6) -> dict:
        return {
            "ID": alloc_id,
            "JobID": f"winslow-{name}",
            "CreateIndex": created,
            "ModifyIndex": modified,
        }

    jobs = [stub(n) for n in ("same", "new-alloc", "newer-alloc", "gone-alloc", "behind")]
    jobs.append(stub("newer-job", 20))
    allocs = [
        alloc("same", "same-1"),
        alloc("newer-job", "newer-job-1"),
        alloc("new-alloc", "new-alloc-1"),
        alloc("new-alloc", "new-alloc-2", 30, 30),
        alloc("newer-alloc", "newer-alloc-1", 25),
        alloc("behind", "behind-1", 11),  # a follower that lags: not newer, not a change
        alloc("behind", "old-incarnation", 40, created=2),  # of a purged job with this ID
    ]
    changed = cache.changed(jobs, allocs)
    assert changed == {
        "winslow-newer-job",
        "winslow-new-alloc",
        "winslow-newer-alloc",
        "winslow-gone-alloc",
        "winslow-gone",
    }


def test_a_stale_entry_is_left_to_its_own_read_by_the_sweep():
    cache = JobCache(clock=Clock())
    kept(cache, "winslow-a", snapshot())
    cache.invalidate("winslow-a", need_of("Allocation", 20))
    assert cache.changed([], []) == set()  # already stale; the next call reads it


def test_jobs_nobody_asks_about_are_forgotten_at_a_sweep():
    clock = Clock()
    cache = JobCache(forget_after=600, clock=clock)
    kept(cache, "winslow-old", snapshot())
    kept(cache, "winslow-asked", snapshot())
    clock.now += 500
    assert cache.current("winslow-asked") is not None
    clock.now += 200
    cache.changed([{"ID": "winslow-old", "ModifyIndex": 10}], [])
    assert len(cache) == 1
    assert cache.current("winslow-old") is None
    assert cache.current("winslow-asked") is not None


def test_an_ended_job_is_answered_once_then_only_its_indexes_are_kept():
    """Issue 17: at 15 stages a second the cache held ~9,000 ended jobs whole (about
    600 MB) until nobody had asked for ten minutes. An ended job's snapshot is let go
    once it was handed out; a read after that may still not go back in time."""
    cache = JobCache(clock=Clock())
    ended = snapshot(job_modify=30)
    ended = Snapshot(
        job={**ended.job, "Status": "dead"}, allocs=ended.allocs, evals=[], indexes=(30, 31, 32)
    )
    kept(cache, "winslow-a", ended)
    # The read that found it ended hands it to the engine, which records the end from it.
    assert cache.current("winslow-a") is None  # then Nomad is asked again, if ever
    assert cache._entries["winslow-a"].snapshot is None
    assert cache.begin("winslow-a").need == Need(job=30, allocs=31, evals=32)
    # Invalidated while it was read: what it needs is kept as well as the indexes.
    ticket = cache.begin("winslow-c")
    cache.invalidate("winslow-c", Need(job=40))
    cache.store("winslow-c", ended, ticket)
    assert cache.current("winslow-c") is None
    assert cache.begin("winslow-c").need == Need(job=40, allocs=31, evals=32)

    running = snapshot()
    kept(cache, "winslow-b", running)
    assert cache.current("winslow-b") is running
    assert cache.current("winslow-b") is running  # a live job stays kept
