"""The stand-in's state store: tables, a raft-like index, and the event buffer.

Everything a Nomad server keeps lives here, behind one re-entrant lock: jobs (by
namespace and ID), evaluations, allocations, nodes and variables, all stored as the
JSON the API answers with. Writes happen in transactions (``with state.txn(kind)``)
that take the next index, stamp the tables they touch with it, and publish one event
frame for everything changed, typed by the transaction's kind as Nomad types events by
its raft message type (``nomad/state/events.go`` ``MsgTypeEvents``): a job register
publishes ``JobRegistered`` for the job and its evaluation, a plan apply publishes
``PlanResult`` for the allocations it places or stops, a client update publishes
``AllocationUpdated``.

The event buffer keeps the last ``event_buffer_size`` frames; a subscriber starts at the
first buffered frame with an index at or above the one asked for, or at the oldest one
when that index has left the buffer, silently, as Nomad's ``StartAtClosest`` does.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .shapes import NodeSpec

__all__ = ["EventFrame", "State", "Subscription"]

JsonDict = dict[str, Any]

TERMINAL_CLIENT_STATUSES = frozenset({"complete", "failed", "lost"})


@dataclass(frozen=True)
class EventFrame:
    """One buffered frame: the events of one transaction, in wire shape."""

    seq: int
    index: int
    events: tuple[JsonDict, ...]


@dataclass
class Subscription:
    """A reader's place in the buffer plus what it asked for."""

    next_seq: int
    topics: dict[str, list[str]]
    namespace: str
    generation: int


@dataclass
class _Txn:
    kind: str
    index: int
    tables: set[str] = field(default_factory=set)
    events: list[JsonDict] = field(default_factory=list)


def alloc_terminal(alloc: JsonDict) -> bool:
    """Nomad's ``Allocation.TerminalStatus``: desired stop/evict or client done."""
    return alloc["DesiredStatus"] in ("stop", "evict") or (
        alloc["ClientStatus"] in TERMINAL_CLIENT_STATUSES
    )


class State:
    """All server state, guarded by ``lock``; mutate only inside ``txn``."""

    def __init__(self, event_buffer_size: int = 100) -> None:
        self.lock = threading.RLock()
        self.index = 1  # a fresh Nomad server has written a few raft entries already
        self.table_index: dict[str, int] = {}
        self.jobs: dict[tuple[str, str], JsonDict] = {}
        self.evals: dict[str, JsonDict] = {}
        self.allocs: dict[str, JsonDict] = {}
        self.nodes: dict[str, NodeSpec] = {}
        self.variables: dict[tuple[str, str], JsonDict] = {}
        self.namespaces: set[str] = {"default"}
        self.node_pools: set[str] = {"all", "default"}
        """The built-in pools, those nodes registered in, and those created by name."""
        self.deployments: dict[str, JsonDict] = {}
        self.services: dict[str, JsonDict] = {}
        """Nomad service registrations by ID (``services``)."""
        # By (namespace, job ID), as Nomad's state store indexes them ("job" indexes of
        # the allocs and evals tables): a job's allocations are read on every change of
        # one, and scanning them all made the stand-in quadratic in the jobs it held.
        self._allocs_of: dict[tuple[str, str], dict[str, JsonDict]] = defaultdict(dict)
        self._evals_of: dict[tuple[str, str], dict[str, JsonDict]] = defaultdict(dict)
        self._frames: deque[EventFrame] = deque(maxlen=event_buffer_size)
        self._next_seq = 0
        self._txn: _Txn | None = None
        self.stream_generation = 0
        # Bumped on every commit; blocking queries and streams poll it cheaply.
        self.version = 0

    # --- transactions -----------------------------------------------------------------

    @contextmanager
    def txn(self, kind: str) -> Iterator[int]:
        """Open a write transaction of ``kind`` (an event type); yield its raft index."""
        with self.lock:
            if self._txn is not None:
                # Nested writes join the open transaction, as one raft apply would.
                yield self._txn.index
                return
            self.index += 1
            self._txn = _Txn(kind, self.index)
            try:
                yield self.index
            finally:
                txn, self._txn = self._txn, None
                for table in txn.tables:
                    self.table_index[table] = txn.index
                if txn.events:
                    self._frames.append(EventFrame(self._next_seq, txn.index, tuple(txn.events)))
                    self._next_seq += 1
                self.version += 1

    def touch(
        self,
        table: str,
        topic: str | None = None,
        key: str = "",
        payload: Any = None,
        *,
        namespace: str = "",
        filter_keys: list[str] | None = None,
    ) -> int:
        """Record a change to ``table`` in the open transaction; return its index."""
        txn = self._txn
        assert txn is not None, "state writes must happen inside State.txn()"
        txn.tables.add(table)
        if topic is not None:
            txn.events.append(
                {
                    "Topic": topic,
                    "Type": txn.kind,
                    "Key": key,
                    "Namespace": namespace,
                    "FilterKeys": filter_keys,
                    "Index": txn.index,
                    "Payload": {topic: copy.deepcopy(payload)},
                }
            )
        return txn.index

    def set_payload(self, topic: str, key: str, obj: JsonDict) -> None:
        """Make the open transaction's event for (``topic``, ``key``) carry ``obj`` as final."""
        txn = self._txn
        assert txn is not None, "state writes must happen inside State.txn()"
        for event in reversed(txn.events):
            if event["Topic"] == topic and event["Key"] == key:
                event["Payload"] = {topic: copy.deepcopy(obj)}
                return

    def current_index(self, table: str) -> int:
        """The index of the last write to ``table`` (at least 1, as Nomad answers)."""
        with self.lock:
            return max(self.table_index.get(table, 1), 1)

    # --- event buffer -------------------------------------------------------------------

    def set_event_buffer(self, size: int) -> None:
        """Keep only the newest ``size`` frames from now on."""
        with self.lock:
            self._frames = deque(self._frames, maxlen=max(size, 1))

    def subscribe(self, index: int, topics: dict[str, list[str]], namespace: str) -> Subscription:
        """Start a reader at ``index`` the way Nomad's event broker does.

        Index 0 replays the whole buffer; an index older than the buffer starts at the
        oldest frame; an index past the newest frame starts at the newest frame.
        """
        with self.lock:
            frames = list(self._frames)
            start = frames[0].seq if frames else self._next_seq
            if index and frames:
                start = frames[-1].seq
                for frame in frames:
                    if frame.index >= index:
                        start = frame.seq
                        break
            return Subscription(start, topics, namespace, self.stream_generation)

    def read_frames(self, sub: Subscription) -> list[tuple[int, list[JsonDict]]] | None:
        """Frames for ``sub`` since its last read, filtered; None once it must end.

        A subscriber the buffer has overtaken ends, as Nomad closes a stream whose next
        frame was dropped ("event dropped from buffer").
        """
        with self.lock:
            if sub.generation != self.stream_generation:
                return None
            frames = list(self._frames)
            if frames and sub.next_seq < frames[0].seq:
                return None
            out = []
            for frame in frames:
                if frame.seq < sub.next_seq:
                    continue
                sub.next_seq = frame.seq + 1
                events = [event for event in frame.events if _matches(event, sub)]
                if events:
                    out.append((frame.index, events))
            return out

    def drop_event_streams(self) -> None:
        """Make every open event stream end, as a server restart or proxy cut would."""
        with self.lock:
            self.stream_generation += 1
            self.version += 1

    # --- reads ------------------------------------------------------------------------

    def job(self, namespace: str, job_id: str) -> JsonDict | None:
        return self.jobs.get((namespace, job_id))

    def put_alloc(self, alloc: JsonDict) -> None:
        """Keep ``alloc``, new or changed (its job never changes)."""
        self.allocs[alloc["ID"]] = alloc
        self._allocs_of[(alloc["Namespace"], alloc["JobID"])][alloc["ID"]] = alloc

    def put_eval(self, ev: JsonDict) -> None:
        """Keep ``ev``, new or changed (its job never changes)."""
        self.evals[ev["ID"]] = ev
        self._evals_of[(ev["Namespace"], ev["JobID"])][ev["ID"]] = ev

    def drop_alloc(self, alloc: JsonDict) -> None:
        """Forget ``alloc`` in the open transaction (garbage collection; no event)."""
        self.touch("allocs")
        self.allocs.pop(alloc["ID"], None)
        self._allocs_of[(alloc["Namespace"], alloc["JobID"])].pop(alloc["ID"], None)

    def drop_eval(self, ev: JsonDict) -> None:
        """Forget ``ev`` in the open transaction (garbage collection; no event)."""
        self.touch("evals")
        self.evals.pop(ev["ID"], None)
        self._evals_of[(ev["Namespace"], ev["JobID"])].pop(ev["ID"], None)

    def job_allocs(self, namespace: str, job_id: str) -> list[JsonDict]:
        found = self._allocs_of.get((namespace, job_id), {})
        return sorted(found.values(), key=lambda a: a["CreateIndex"])

    def job_evals(self, namespace: str, job_id: str) -> list[JsonDict]:
        found = self._evals_of.get((namespace, job_id), {})
        return sorted(found.values(), key=lambda e: e["CreateIndex"])

    def node_by_name(self, name: str) -> NodeSpec:
        for node in self.nodes.values():
            if node.name == name:
                return node
        raise KeyError(f"no node named {name!r}; add_node() creates one")


def _matches(event: JsonDict, sub: Subscription) -> bool:
    """Nomad's subscription filter: namespace, then topic and key (or filter key)."""
    if sub.namespace != "*" and event["Namespace"] and event["Namespace"] != sub.namespace:
        return False
    keys = list(sub.topics.get("*", [])) + list(sub.topics.get(event["Topic"], []))
    if not keys:
        return False
    if "*" in keys:
        return True
    candidates = {event["Key"], *(event.get("FilterKeys") or [])}
    return any(key in candidates for key in keys)


def now_ns() -> int:
    """Wall-clock time in Unix nanoseconds, as Nomad stamps events and indexes."""
    return time.time_ns()
