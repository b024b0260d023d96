"""What the Nomad backend last read about each job, kept until Nomad says it changed.

The idea: Nomad publishes every change to a job, its allocations and its evaluations on
its event stream, so what Winslow read about a job stays true until an event touching
the job arrives. ``JobCache`` keeps Nomad's last answers per job, a ``Snapshot`` (the job,
its allocations and evaluations, and when its node stopped answering), and the backend
computes the job's status from it on every call with the current time. Time-based
decisions therefore need no read: the lost-node grace, the time-limit backstop and the
window in which a poststop task may still start are judged against ``now`` each time,
from the kept answers, exactly as they would be from fresh ones Nomad would give
unchanged. (The backend reads again before it acts on one of them: stopping a job is
done on fresh data only.)

An entry goes stale ("dirty") when

- the watcher saw an event touching the job (``invalidate`` with that event's ``Need``;
  a node that went down or came back touches the jobs with allocations on it),
- Winslow wrote to the job itself (submit, cancel, stopping it), or
- the quiet sweep found it changed without an event (``changed``, below),

and the next call reads it again. Nothing here trusts itself: the backend uses a kept
snapshot only while the watcher's event stream is open, and reads on every call, as it
always did, while the stream is down or the backend runs without a cache.

Reads after an event may be answered by a follower (``stale=true``), which may not have
applied that event yet. Each read returns the raft index of what it reflects (Nomad's
``X-Nomad-Index``: the job's ``ModifyIndex``, the ``allocs`` or ``evals`` table's index),
and an event's index is the raft index of its change; so a read of the table an event
touched whose index is at least the event's proves the follower has it. ``Need`` holds
those indexes; a read that falls short is repeated without ``stale``. Winslow's own
writes, resyncs and the sweep ask for a consistent read instead (``CONSISTENT``).

The quiet sweep is the safety net for an event that never arrived: every
``QUIET_SWEEP_SECONDS`` the backend lists our jobs and the namespace's allocations, two
requests however many jobs there are, and ``changed`` names the jobs whose ``ModifyIndex``
or whose allocations (their IDs and ``ModifyIndex``) moved past the kept snapshot. What
only an evaluation says (why a pending run waits) rides on events alone. Entries nobody
asked about for ``FORGET_AFTER_SECONDS`` are dropped at a sweep.

Pure but for its lock and an injectable clock; the backend does the reading.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from winslow.backends.nomad.types import (
    NomadAllocationStub,
    NomadEvaluation,
    NomadJob,
    NomadJobListStub,
)

QUIET_SWEEP_SECONDS = 60.0
"""How often the backend checks every kept job against two list requests, seconds: the
longest a change whose event was lost goes unseen."""

FORGET_AFTER_SECONDS = 600.0
"""An entry nobody asked about for this long is dropped at the next sweep, seconds."""


@dataclass(frozen=True)
class Need:
    """What a read of a job must reflect before its answer may be kept.

    ``job``, ``allocs``, ``evals``: the least index the job read, the allocation list and
    the evaluation list must each report (0: any answer does); ``consistent``: read
    without ``stale`` at all.
    """

    job: int = 0
    allocs: int = 0
    evals: int = 0
    consistent: bool = False

    def merge(self, other: Need) -> Need:
        """What both ask for."""
        return Need(
            job=max(self.job, other.job),
            allocs=max(self.allocs, other.allocs),
            evals=max(self.evals, other.evals),
            consistent=self.consistent or other.consistent,
        )


CONSISTENT = Need(consistent=True)
"""A read Winslow must see its own write in, or one after events may have been missed."""


def need_of(topic: str, index: int) -> Need:
    """The ``Need`` an event of ``topic`` at raft ``index`` sets: the table it changed must
    have reached ``index``. Other topics (``Node``) need nothing of the job's reads."""
    if topic == "Job":
        return Need(job=index)
    if topic == "Allocation":
        return Need(allocs=index)
    if topic == "Evaluation":
        return Need(evals=index)
    return Need()


@dataclass(frozen=True)
class Snapshot:
    """Nomad's answers about one job, as read together."""

    job: NomadJob
    allocs: list[NomadAllocationStub]
    evals: list[NomadEvaluation]
    unreachable: datetime | None = None
    """When the node of the latest live allocation stopped answering; None while it does."""
    indexes: tuple[int, int, int] = (0, 0, 0)
    """The index each read reported: the job, the allocation list, the evaluation list."""


@dataclass(frozen=True)
class Ticket:
    """Handed out before a read (``JobCache.begin``), handed back with its answer
    (``JobCache.store``): an invalidation in between keeps the entry dirty."""

    generation: int
    need: Need


@dataclass
class _Entry:
    snapshot: Snapshot | None = None
    generation: int = 0
    stored: int = -1
    """The generation ``snapshot`` was read at; equal to ``generation`` while clean."""
    need: Need = field(default_factory=Need)
    used_at: float = 0.0


class JobCache:
    """Per job, the last ``Snapshot`` and whether an event has made it stale since.

    Thread-safe: the watcher invalidates, the engine and the usage sampler read.

    Usage::

        cache = JobCache()
        snapshot = cache.current(job_id)       # None: read Nomad
        ticket = cache.begin(job_id)           # what the read must reflect: ticket.need
        cache.store(job_id, read_snapshot, ticket)
        cache.invalidate(job_id, need_of("Allocation", 812))   # from the watcher
    """

    def __init__(
        self,
        quiet_seconds: float = QUIET_SWEEP_SECONDS,
        forget_after: float = FORGET_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quiet_seconds = quiet_seconds
        self.forget_after = forget_after
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._last_sweep = clock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def current(self, job_id: str) -> Snapshot | None:
        """The kept snapshot while no change has been heard of since it was read; else None.
        An ended job never has one (``store`` keeps only its indexes)."""
        with self._lock:
            entry = self._entries.get(job_id)
            if entry is None:
                return None
            entry.used_at = self._clock()
            return entry.snapshot if entry.stored == entry.generation else None

    def begin(self, job_id: str) -> Ticket:
        """Start a read of ``job_id``; the ticket says what its answers must reflect: the
        changes heard of, and never less than the kept snapshot, so that an answer from
        a follower further behind can never take the job back in time."""
        with self._lock:
            entry = self._entries.setdefault(job_id, _Entry())
            entry.used_at = self._clock()
            need = entry.need
            if entry.snapshot is not None:
                need = need.merge(Need(*entry.snapshot.indexes))
            return Ticket(entry.generation, need)

    def store(self, job_id: str, snapshot: Snapshot, ticket: Ticket) -> None:
        """Keep what a read begun with ``ticket`` found; clean unless invalidated since.

        Of an ended job (Nomad's ``dead``) only the indexes are kept, so a later read
        still may not go back in time: the reader has the snapshot in hand, records the
        end from it, and asks no more. Kept whole, every ended job stayed in memory until
        ``forget_after``: 156 to 644 MB over 10,000 stages.
        """
        with self._lock:
            entry = self._entries.setdefault(job_id, _Entry())
            clean = entry.generation == ticket.generation
            if snapshot.job.get("Status") == "dead":
                entry.snapshot, entry.stored = None, -1
                entry.need = (Need() if clean else entry.need).merge(Need(*snapshot.indexes))
                return
            entry.snapshot = snapshot
            if clean:
                entry.stored = entry.generation
                entry.need = Need()

    def invalidate(self, job_id: str, need: Need = CONSISTENT) -> None:
        """Note that ``job_id`` changed; its next read must meet ``need`` too."""
        with self._lock:
            entry = self._entries.setdefault(job_id, _Entry(used_at=self._clock()))
            entry.generation += 1
            entry.need = entry.need.merge(need)

    def forget(self, job_id: str) -> None:
        """Drop what is kept of ``job_id`` (Nomad no longer knows it)."""
        with self._lock:
            self._entries.pop(job_id, None)

    def claim_sweep(self) -> bool:
        """True, once per ``quiet_seconds``, for the caller that is to sweep now."""
        with self._lock:
            now = self._clock()
            if now - self._last_sweep < self.quiet_seconds:
                return False
            self._last_sweep = now
            return True

    def changed(
        self, jobs: Iterable[NomadJobListStub], allocs: Iterable[NomadAllocationStub]
    ) -> set[str]:
        """The clean entries that ``jobs`` (``GET /v1/jobs``) and ``allocs`` (``GET
        /v1/allocations``) show changed since their snapshot: the job is gone or has a
        newer ``ModifyIndex``; an allocation of it is new, newer, or gone. Also drops
        entries nobody asked about for ``forget_after`` seconds.

        Only a newer index counts: a follower that lags (these lists are stale reads)
        must not make every job look changed. Allocations created before the job (a
        purged job of the same ID) are not the job's.
        """
        with self._lock:
            now = self._clock()
            idle = [j for j, e in self._entries.items() if now - e.used_at > self.forget_after]
            for job_id in idle:
                del self._entries[job_id]
            clean = {
                job_id: entry.snapshot
                for job_id, entry in self._entries.items()
                if entry.snapshot is not None and entry.stored == entry.generation
            }
        # Only what the clean entries need is kept while the lists go by, page by page.
        listed = {
            stub.get("ID", ""): stub.get("ModifyIndex", 0)
            for stub in jobs
            if stub.get("ID", "") in clean
        }
        marks: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
        for alloc in allocs:
            if (job_id := alloc.get("JobID", "")) in clean:
                key = (alloc.get("CreateIndex", 0), alloc.get("ModifyIndex", 0))
                marks[job_id][alloc.get("ID", "")] = key
        return {
            job_id
            for job_id, snapshot in clean.items()
            if _moved(snapshot, listed.get(job_id), marks.get(job_id, {}))
        }


def _moved(snapshot: Snapshot, listed: int | None, marks: Mapping[str, tuple[int, int]]) -> bool:
    if listed is None or listed > snapshot.job.get("ModifyIndex", 0):
        return True
    born = snapshot.job.get("CreateIndex", 0)
    kept = {alloc.get("ID", ""): alloc.get("ModifyIndex", 0) for alloc in snapshot.allocs}
    now = {alloc_id: modified for alloc_id, (created, modified) in marks.items() if created >= born}
    if set(kept) - set(now):
        return True
    return any(modified > kept.get(alloc_id, -1) for alloc_id, modified in now.items())
