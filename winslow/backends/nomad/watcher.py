"""``Watcher``: follows Nomad's event stream for the Nomad backend and reports our jobs.

A watcher thread follows ``/v1/event/stream`` (topics ``Job``, ``Allocation``,
``Evaluation`` and ``Node``; Nomad matches topic keys exactly, so our job-ID prefix is
filtered here) and, for every change to one of our jobs, first marks what the backend
keeps of it stale (``JobCache.invalidate``, with the event's index, see ``jobcache.py``)
and then calls ``on_event(job_id)``. It remembers the index of the last frame and resumes
from it after a break. Nomad starts a resumed stream at the event with that index if its
buffer still holds it, and otherwise silently at the oldest event it holds
(``nomad/stream/event_broker.go`` ``Subscribe``: "as close as possible to the requested
index"); so when the first frame after a resume is not the one we asked for, events may
have been lost and the watcher resyncs: it lists our jobs and reports each. Where the
stream is unavailable (404 before Nomad 1.0, 403, or failing repeatedly) the watcher
falls back to blocking queries on ``/v1/allocations``. ``streaming`` is True only while a
stream is open: then, and only then, the backend answers from what it keeps.

A node going down reaches the engine as a change of every job with an allocation there
(the ``Node`` topic needs ``node:read``; without it, the watcher goes on without).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from winslow.backends.base import JobEventCallback
from winslow.backends.nomad.jobcache import CONSISTENT, Need, need_of
from winslow.backends.nomad.permissions import NomadPermissionError
from winslow.backends.nomad.types import NomadEvent, NomadEventFrame
from winslow.errors import BackendError, BackendUnavailableError

if TYPE_CHECKING:
    from winslow.backends.nomad.backend import NomadBackend

log = logging.getLogger(__name__)

WATCH_TOPICS: dict[str, list[str]] = {
    "Job": ["*"],
    "Allocation": ["*"],
    "Evaluation": ["*"],
    "Node": ["*"],
}
"""Event stream topics the watcher follows. ``Node`` tells of a node going down before
Nomad marks its allocations; it needs ``node:read``, and is left out where that is refused."""

LIVE_CLIENT_STATUSES = frozenset({"pending", "running", "unknown"})
"""Allocation client statuses whose tasks may still run on their node."""

RECONNECT_SCHEDULE_SECONDS: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Pauses before reconnecting after the n-th failure in a row (the last repeats), seconds."""

STREAM_FAILURES_BEFORE_FALLBACK = 3
"""Failures in a row to open the event stream after which the watcher polls instead."""

STREAM_MIN_LIFE_SECONDS = 1.0
"""A stream that ends sooner without a frame counts as a failure (and backs off), seconds."""

STREAM_RETRY_SECONDS = 300.0
"""How long the watcher stays on blocking queries before trying the event stream again."""

BLOCKING_WAIT_SECONDS = 30.0
"""``wait`` of the fallback blocking query; also the longest a fallback watcher takes to
notice ``stop``, seconds."""

STOP_JOIN_SECONDS = 2.0
"""How long ``stop`` waits for the watcher thread to end, seconds."""


class Watcher:
    """One watcher thread and its place in Nomad's event stream, from one ``start``.

    A fresh one per ``start``, so a watcher that outlives its ``stop`` (blocked in a
    fallback query) can never report to, or share an index with, a later one.
    """

    def __init__(self, backend: NomadBackend, on_event: JobEventCallback) -> None:
        self.backend = backend
        self._on_event = on_event
        self._lock = threading.Lock()
        self.stopped = threading.Event()
        self._close_stream: Callable[[], None] | None = None
        self.frame_index = 0
        """Index of the last event frame handled; a resumed stream must start with it."""
        self.sync_index = 0
        """Index of the last resync; a stream with no frame yet starts after it."""
        self.topics = dict(WATCH_TOPICS)
        """The topics followed; ``Node`` goes where the token may not read nodes."""
        self.streaming = False
        """True while an event stream is open, so that no change goes unreported."""
        self.polled: dict[str, int] = {}
        """Allocation ID → ``ModifyIndex`` last seen by the blocking-query fallback; only
        allocations of ours that Nomad still lists (it collects ended ones)."""
        self.thread = threading.Thread(target=self.run, name="winslow-nomad-events", daemon=True)

    def stop(self) -> None:
        """End the watcher: close its stream (waking its thread) and wait briefly."""
        with self._lock:
            self.stopped.set()
            close = self._close_stream
        if close is not None:
            close()
        if self.thread is not threading.current_thread():
            self.thread.join(timeout=STOP_JOIN_SECONDS)

    def run(self) -> None:
        failures = 0  # failures in a row, of any kind: they set the reconnect pause
        stream_failures = 0  # failures in a row to open the stream
        fallback_until = 0.0
        resync = True
        alloc_index = 0
        while not self.stopped.is_set():
            try:
                if resync:
                    self._resync()
                    resync = False
                if time.monotonic() < fallback_until:
                    alloc_index = self._poll_allocations(alloc_index)
                    failures = 0
                    continue
                try:
                    frames = self._open_stream()
                except BackendError as exc:
                    if self._without_node_topic(exc):
                        continue
                    stream_failures += 1
                    permanent = not isinstance(exc, BackendUnavailableError)
                    if not permanent and stream_failures < STREAM_FAILURES_BEFORE_FALLBACK:
                        raise
                    log.warning(
                        "nomad backend: the event stream is unavailable (%s); following "
                        "allocations with blocking queries for %.0f s",
                        exc.message,
                        STREAM_RETRY_SECONDS,
                    )
                    fallback_until = time.monotonic() + STREAM_RETRY_SECONDS
                    stream_failures = 0
                    continue
                stream_failures = 0
                self.streaming = True
                opened = time.monotonic()
                got_frame = False
                for frame in frames:
                    got_frame = True
                    failures = 0
                    if not self._handle_frame(frame):
                        resync = True
                        break
                brief = time.monotonic() - opened < STREAM_MIN_LIFE_SECONDS
                if brief and not got_frame and not resync and not self.stopped.is_set():
                    # Reopening at once would spin against an agent that ends every stream.
                    raise BackendUnavailableError("Nomad ended the event stream at once")
            except BackendError as exc:
                if self.stopped.is_set():
                    break
                delay = RECONNECT_SCHEDULE_SECONDS[
                    min(failures, len(RECONNECT_SCHEDULE_SECONDS) - 1)
                ]
                failures += 1
                log.warning(
                    "nomad backend: %s; reconnecting in %.1f s from index %d",
                    exc.message,
                    delay,
                    self.frame_index or self.sync_index,
                )
                self.stopped.wait(delay)
            except Exception:  # the watcher must outlive a surprise; the engine polls too
                log.exception("nomad backend: the event watcher failed; restarting it")
                self.stopped.wait(RECONNECT_SCHEDULE_SECONDS[-1])
            finally:
                self.streaming = False
                with self._lock:
                    self._close_stream = None
        log.debug("nomad backend: event watcher stopped")

    def _open_stream(self) -> _Frames:
        """Open the event stream where the last one left off."""
        if self.frame_index:
            # Ask for the last frame again: getting exactly it back proves nothing is lost.
            index, check = self.frame_index, True
        else:
            index, check = (self.sync_index + 1 if self.sync_index else 0), False
        stream = self.backend.client.events.stream(self.topics, index=index)
        with self._lock:
            if self.stopped.is_set():
                stream.close()
                return _Frames(iter(()), index, check)
            self._close_stream = stream.close
        return _Frames(stream, index, check)

    def _handle_frame(self, frame: _Frame) -> bool:
        """Report the jobs a frame touched; False when the stream skipped events."""
        index = frame.frame.get("Index", 0)
        if frame.first and frame.check:
            if index == frame.requested:
                return True  # the frame we handled before the break
            log.warning(
                "nomad backend: Nomad no longer holds event index %d (the stream resumed at "
                "%d); listing every job so no change is missed",
                frame.requested,
                index,
            )
            self.frame_index = 0
            return False
        events = frame.frame.get("Events") or []
        needs: dict[str, Need] = {}
        for event in events:
            job_id = _job_id(event)
            if job_id is not None and job_id.startswith(self.backend.config.job_prefix):
                need = need_of(event.get("Topic", ""), event.get("Index") or index)
                needs[job_id] = needs.get(job_id, Need()).merge(need)
        moved = [
            node_id
            for event in events
            if event.get("Topic") == "Node" and (node_id := self._node_moved(event)) is not None
        ]
        if moved:
            for job_id in self._jobs_on(set(moved)):
                needs.setdefault(job_id, Need())
        for job_id in sorted(needs):
            self._emit(job_id, needs[job_id])
        self.frame_index = max(self.frame_index, index)
        return True

    def _resync(self) -> None:
        """Report every job of ours, and remember the index the list was taken at."""
        # A follower's list may lag; the stream then starts earlier and repeats events.
        first: int | None = None
        managed: list[str] = []
        pages = self.backend.client.jobs.pages(
            self.backend.config.job_prefix, stale=self.backend.stale_reads
        )
        for page, index in pages:
            first = index if first is None else first
            managed.extend(stub["ID"] for stub in page if self.backend.is_managed(stub))
        if "Node" in self.topics:
            try:
                nodes, _ = self.backend.client.nodes.list(stale=self.backend.stale_reads)
            except BackendUnavailableError:
                raise
            except BackendError as exc:
                log.debug("nomad backend: nodes not listed: %s", exc.message)
                nodes = []
            for node in nodes:
                self.backend._node_status[node.get("ID", "")] = node.get("Status", "")
        self.backend.resyncs += 1
        self.sync_index = first or 0
        self.frame_index = 0
        for job_id in managed:
            self._emit(job_id)

    def _node_moved(self, event: NomadEvent) -> str | None:
        """Note a node's status from a Node event; its ID when that status changed (a node
        first heard of counts as having been ``ready``)."""
        node = (event.get("Payload") or {}).get("Node") or {}
        node_id, status = str(node.get("ID") or event.get("Key") or ""), node.get("Status")
        if not node_id or not isinstance(status, str):
            return None
        before = self.backend._node_status.get(node_id, "ready")
        self.backend._node_status[node_id] = status
        return node_id if status != before else None

    def _jobs_on(self, node_ids: set[str]) -> set[str]:
        """Our jobs with an allocation that may still run on one of ``node_ids``."""
        pages = self.backend.client.allocations.pages(
            task_states=False, stale=self.backend.stale_reads
        )
        return {
            alloc.get("JobID", "")
            for page, _ in pages
            for alloc in page
            if alloc.get("NodeID") in node_ids
            and alloc.get("ClientStatus") in LIVE_CLIENT_STATUSES
            and alloc.get("JobID", "").startswith(self.backend.config.job_prefix)
        }

    def _without_node_topic(self, exc: BackendError) -> bool:
        """Follow the stream without the Node topic when Nomad refused it for want of
        ``node:read``; True when the watcher should open the stream again at once."""
        if not isinstance(exc, NomadPermissionError) or "Node" not in self.topics:
            return False
        del self.topics["Node"]
        log.warning(
            "nomad backend: the event stream with the Node topic was refused (%s); "
            "following it without: a node that stops answering shows once Nomad marks its "
            "allocations unknown. Give the token node:read to see it at once",
            exc.message,
        )
        return True

    def _poll_allocations(self, index: int) -> int:
        """One blocking query on the namespace's allocations; report our jobs that changed."""
        pages = self.backend.client.allocations.pages(
            index=index or None, wait=BLOCKING_WAIT_SECONDS, task_states=False
        )
        changed: set[str] = set()
        listed: dict[str, int] = {}
        last: int | None = None  # the first page's: a change while paging is seen again
        for page, page_index in pages:
            last = page_index if last is None else last
            for alloc in page:
                job_id = alloc.get("JobID", "")
                if not job_id.startswith(self.backend.config.job_prefix):
                    continue
                alloc_id, modified = alloc.get("ID", ""), alloc.get("ModifyIndex", 0)
                listed[alloc_id] = modified
                if self.polled.get(alloc_id) != modified:
                    changed.add(job_id)
        # Only what this listing holds: one Nomad has collected never comes back, and
        # keeping it would grow with every stage for as long as the fallback lasts.
        self.polled = listed
        for job_id in sorted(changed):
            self._emit(job_id)
        # Nomad's advice: an index that goes backwards (a restored snapshot) starts over.
        last = last or 0
        return last if last >= index else 0

    def _emit(self, job_id: str, need: Need = CONSISTENT) -> None:
        """Mark what the backend keeps of ``job_id`` stale, then report it: a status read
        on ``on_event`` must never get an answer from before the change."""
        self.backend.cache.invalidate(job_id, need)
        with self._lock:
            if self.stopped.is_set():
                return
            # Under the lock: once ``stop`` returns, no call is under way or follows.
            try:
                self._on_event(job_id)
            except Exception:
                log.exception("job %s: the on_event callback failed", job_id)


@dataclass(frozen=True)
class _Frame:
    """One frame read from a stream, with what is needed to check a resume."""

    frame: NomadEventFrame
    requested: int
    first: bool
    check: bool


class _Frames:
    """The frames of one opened stream, marking the first so a resume can be checked."""

    def __init__(self, frames: Iterator[NomadEventFrame], requested: int, check: bool) -> None:
        self._frames = frames
        self._requested = requested
        self._check = check
        self._first = True

    def __iter__(self) -> _Frames:
        return self

    def __next__(self) -> _Frame:
        frame = next(self._frames)
        first, self._first = self._first, False
        return _Frame(frame, self._requested, first, self._check)


def _job_id(event: NomadEvent) -> str | None:
    """The ID of the job an event is about."""
    topic = event.get("Topic")
    payload = event.get("Payload") or {}
    if topic == "Job":
        return event.get("Key") or (payload.get("Job") or {}).get("ID")
    for key in ("Allocation", "Evaluation", "Deployment"):
        if topic == key:
            job_id = (payload.get(key) or {}).get("JobID")
            if job_id:
                return str(job_id)
            keys = event.get("FilterKeys") or []
            return keys[0] if keys else None
    return None
