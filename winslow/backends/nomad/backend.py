"""``NomadBackend``: every stage run is one Nomad batch job, placed and run by Nomad.

Nothing about a job lives only in this object: the job ID is the run's deterministic ID,
its state is whatever Nomad says (``status.py`` translates), so a new ``NomadBackend``
after a restart finds every job again through ``list_jobs``. ``submit`` registers with
check-and-set index 0, so a second submit of the same job finds it exists and does
nothing; the stage never runs twice.

Changes reach the engine through Nomad's event stream: a watcher thread follows
``/v1/event/stream`` (topics ``Job``, ``Allocation`` and ``Evaluation``; Nomad matches
topic keys exactly, so our job-ID prefix is filtered here) and calls ``on_event`` with
the job ID of every change to one of our jobs. It remembers the index of the last frame
and resumes from it after a break. Nomad starts a resumed stream at the event with that
index if its buffer still holds it, and otherwise silently at the oldest event it holds
(``nomad/stream/event_broker.go`` ``Subscribe``: "as close as possible to the requested
index"); so when the first frame after a resume is not the one we asked for, events may
have been lost and the watcher resyncs: it lists our jobs and reports each. Where the
stream is unavailable (404 before Nomad 1.0, 403, or failing repeatedly) the watcher
falls back to blocking queries on ``/v1/allocations``.

A node that stops answering. Stage jobs set ``disconnect { replace = false }``, so Nomad
neither loses nor replaces the allocation of a node that misses its heartbeats: it marks
the node ``down`` and the allocation ``unknown`` and keeps it so until the node returns
(scheduler/reconcile_util.go ``filterByTainted``; scheduler/reconcile.go
``appendUnknownDisconnectingUpdates``). Nomad's own bound, ``disconnect.lost_after``, cannot
end such a run safely: in 1.10.5 an allocation past it is "expiring" and, with
``replace = false``, goes back to the untainted ones (reconcile.go ``computeGroup``: ``if
!tg.Replace() { untainted = untainted.union(expiring) }``), so it stays ``unknown`` for ever;
in 1.8.0 and 1.9.0 that branch tests only the deprecated ``PreventRescheduleOnLost``, so the
expired allocation is lost and ``computePlacements`` places a replacement in the same job,
which would run the same run's stage a second time; ``replace = true`` does so at once
(nomad/structs/structs.go ``RescheduleTimeOnDisconnect``). So the bound is ours: ``status``
counts from when Nomad marked the allocation ``unknown`` (its ``AllocStates``, as
``Allocation.LastUnknown``) or the node left ``ready`` (``StatusUpdatedAt``), and once
``config.lost_after_seconds`` passed it stops the job (deregister, no purge) and only then
reports LOST. The engine's ``retry.on_lost`` starts a new run, a new job, which Nomad
places only on a ready node (scheduler/util.go ``readyNodesInDCsAndPool``). When the node
returns, its client hears that the allocation is to stop and kills it
(client/allocrunner/alloc_runner.go ``handleAllocUpdate``); its poststop ``stage-out``
archives that run's own log and workspace under that run's keys, never the retry's. The
watcher follows the ``Node`` topic too (``node:read``; without it, it goes on without),
so a node going down reaches the engine as a change of every job with an allocation there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from winslow.backends.base import (
    TERMINAL_JOB_STATES,
    JobEventCallback,
    JobState,
    JobStatus,
    RunSpec,
    UsageSample,
)
from winslow.backends.nomad.client import NomadClient
from winslow.backends.nomad.config import NomadConfig
from winslow.backends.nomad.jobschema import RenderedJobInvalidError
from winslow.backends.nomad.jobspec import MAIN_TASK, WINSLOW_LOG, render_jobspec
from winslow.backends.nomad.nodes import node_info
from winslow.backends.nomad.permissions import NomadPermissionError
from winslow.backends.nomad.status import (
    job_status,
    latest_allocation,
    main_started_at,
    timeout_of,
    unreachable_since,
    usage_of,
)
from winslow.backends.nomad.types import (
    NomadAllocationStub,
    NomadEvent,
    NomadEventFrame,
    NomadJob,
    NomadJobListStub,
)
from winslow.core.resources import NodeInfo
from winslow.errors import (
    BackendError,
    BackendUnavailableError,
    ConflictError,
    SubmitRejectedError,
)

log = logging.getLogger(__name__)

MANAGED_META_KEY = "winslow_managed"
"""Job meta key every job Winslow renders carries; ``list_jobs`` adopts only those."""

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

NODE_CACHE_SECONDS = 60.0
"""How long ``nodes`` reuses a node read while its ``ModifyIndex`` stays the same, seconds."""

LOG_PATH = WINSLOW_LOG.replace("${NOMAD_ALLOC_DIR}", "alloc")
"""The run's combined log as the allocation file API names it."""

LOG_READ_CHUNK_BYTES = 4 * 1024 * 1024
"""Bytes asked of ``/v1/client/fs/readat`` at a time."""

LOG_READ_MAX_BYTES = 64 * 1024 * 1024
"""Most bytes one ``logs`` call returns; the caller goes on from where it ends."""

TIMEOUT_BACKSTOP_SECONDS = 60.0
"""How long past its limit a host stage may run before the backend stops it; stage-exec
should have ended it by then, seconds."""

STOP_JOIN_SECONDS = 2.0
"""How long ``stop`` waits for the watcher thread to end, seconds."""


class NomadBackend:
    """Runs stages as Nomad batch jobs; Nomad places them (``places_runs`` is False).

    Usage::

        backend = NomadBackend(NomadConfig(address="https://nomad:4646", token=...))
        backend.start(on_event=engine.wake)
        backend.submit(spec)              # registers the job; Nomad places and runs it
        backend.status(spec.job_id)       # JobStatus(state=RUNNING, node="gpu-3", ...)
        backend.stop()                    # the jobs keep running in Nomad

    ``lost_retries(spec)`` is how often the stage may run again after its node was lost;
    the jobspec records it in the job's meta, while Nomad itself never places a lost run
    again (the engine starts a new run instead). Default 0.
    """

    name = "nomad"
    places_runs = False
    purges_killed_jobs = True
    """A killed run's job is purged once its log is archived; ended jobs are left to
    Nomad's garbage collector, so a person can still look at them in the Nomad UI."""

    def __init__(
        self,
        config: NomadConfig,
        client: NomadClient | None = None,
        lost_retries: Callable[[RunSpec], int] | None = None,
    ) -> None:
        self.config = config
        self.client = client or NomadClient(config)
        self._lost_retries = lost_retries or (lambda spec: 0)
        self._lock = threading.Lock()
        self._watcher: _Watcher | None = None
        self._node_cache: dict[str, tuple[int, float, NodeInfo]] = {}
        self.resyncs = 0
        """How many times the watcher listed every job (at start and after lost events)."""
        self._node_status: dict[str, str] = {}
        """Node ID → its ``Status`` as the watcher last heard it (Node events, resyncs)."""
        self._warned_log_permission = False

    # Watching ----------------------------------------------------------------------------

    def start(self, on_event: JobEventCallback) -> None:
        """Begin following Nomad's events; ``on_event(job_id)`` for each change of our jobs.

        The watcher first reports every job of ours (the engine adopts them), then every
        change. Raises ``RuntimeError`` if already started.
        """
        with self._lock:
            if self._watcher is not None:
                raise RuntimeError("NomadBackend.start called twice without stop")
            self._watcher = _Watcher(self, on_event)
            self._watcher.thread.start()
        log.info(
            "nomad backend: watching jobs %s* in namespace %s at %s",
            self.config.job_prefix,
            self.config.namespace,
            self.client.address,
        )

    def stop(self) -> None:
        """Stop watching; no ``on_event`` call follows. Jobs keep running in Nomad."""
        with self._lock:
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    # Submitting --------------------------------------------------------------------------

    def submit(self, spec: RunSpec) -> None:
        """Register the run's job with Nomad unless a job with its ID exists already.

        Prefers the node the stages it needs ran on (``spec.preferred_node``, an
        affinity). Raises ``SubmitRejectedError`` with Nomad's message when Nomad refuses
        the job, ``BackendUnavailableError`` when Nomad does not answer.
        """
        try:
            job = render_jobspec(
                spec,
                self.config,
                lost_retries=self._lost_retries(spec),
                affinity_node=spec.preferred_node,
            )
        except RenderedJobInvalidError as exc:
            # A bug of ours, not of the stage; failing the run beats submitting it forever.
            log.error("job %s: %s", spec.job_id, exc)
            raise SubmitRejectedError(
                f"Winslow rendered a Nomad job Nomad would not accept ({exc}); this is a bug "
                "in Winslow, please report it with the stage's definition."
            ) from exc
        try:
            response = self.client.jobs.register(job, enforce_index=0)
        except ConflictError:
            log.debug("job %s: already registered with Nomad; not submitting it again", spec.job_id)
            return
        log.info(
            "job %s: registered with Nomad at %s (evaluation %s)",
            spec.job_id,
            self.client.address,
            response.get("EvalID") or "none",
        )

    # Reading -----------------------------------------------------------------------------

    def status(self, job_id: str) -> JobStatus | None:
        """Return the job's status from its allocations and evaluations, or None when
        Nomad does not know the job (never submitted, or purged)."""
        job, _ = self.client.jobs.read(job_id)
        if job is None:
            return None
        allocs, _ = self.client.jobs.allocations(job_id)
        evals, _ = self.client.jobs.evaluations(job_id)
        now = datetime.now(UTC)
        latest = latest_allocation(allocs)
        away = self._unreachable(latest)
        status = job_status(
            job_id,
            allocs,
            evals,
            now,
            job=job,
            unreachable=away,
            lost_after=self.config.lost_after_seconds,
        )
        if away is None and status.state is JobState.RUNNING and not job.get("Stop"):
            self._enforce_timeout(job, latest, now)
        if away is not None and status.state is JobState.LOST and not job.get("Stop"):
            return self._stop_lost(job_id, status)
        return status

    def _unreachable(self, alloc: NomadAllocationStub | None) -> datetime | None:
        """When ``alloc``'s node stopped answering (``status.unreachable_since``); None
        while it answers. Reads the node, and an ``unknown`` allocation in full (for its
        ``AllocStates``), only when Nomad or the watcher says the node is away."""
        if alloc is None or alloc.get("ClientStatus") not in LIVE_CLIENT_STATUSES:
            return None
        node_id = alloc.get("NodeID", "")
        unknown = alloc.get("ClientStatus") == "unknown"
        if not unknown and self._node_status.get(node_id, "ready") == "ready":
            return None
        try:
            node, _ = self.client.nodes.read(node_id)
        except BackendUnavailableError:
            raise
        except BackendError as exc:  # no node:read: go by what the watcher heard
            log.debug("node %s: not readable: %s", node_id, exc.message)
            node = {"ID": node_id, "Status": self._node_status.get(node_id, "")}
        detail: NomadAllocationStub | None = alloc
        if unknown:
            detail, _ = self.client.allocations.read(alloc.get("ID", ""))
        return unreachable_since(detail or alloc, node)

    def _stop_lost(self, job_id: str, status: JobStatus) -> JobStatus:
        """Stop the job of a run whose node stayed away past the grace; return ``status``
        (LOST) once Nomad took the stop. Until then the run still reads RUNNING: a retry
        must not start while the node, were it to return, would be told to go on."""
        try:
            self.client.jobs.deregister(job_id, purge=False)
        except BackendError as exc:
            log.warning("job %s: could not stop it in Nomad: %s", job_id, exc.message)
            reason = f"{status.reason}; stopping its job in Nomad failed, trying again"
            return replace(status, state=JobState.RUNNING, ended_at=None, reason=reason)
        log.warning(
            "job %s: %s; stopped it in Nomad so that its stage cannot also finish there "
            "when the node returns",
            job_id,
            status.reason,
        )
        return status

    def _enforce_timeout(
        self, job: NomadJob, alloc: NomadAllocationStub | None, now: datetime
    ) -> None:
        """Stop a run past its time limit, which Nomad itself cannot enforce.

        ``stage-exec`` ends a host stage at its limit itself; this is the backstop for
        it and the only limit a container stage has. The stopped run then reads as
        FAILED "timed out after N s" (``status.job_status``), after a restart too.
        """
        timeout = timeout_of(job)
        started = main_started_at(alloc)
        if timeout is None or started is None:
            return
        grace = 0.0 if _main_driver(job) == "docker" else TIMEOUT_BACKSTOP_SECONDS
        if (now - started).total_seconds() < timeout + grace:
            return
        log.warning(
            "job %s: ran past its time limit of %d s; stopping it in Nomad", job.get("ID"), timeout
        )
        self.client.jobs.deregister(job.get("ID", ""), purge=False)

    def list_jobs(self) -> list[JobStatus]:
        """Return the status of every job of ours Nomad still has, in job ID order."""
        stubs, _ = self.client.jobs.list(self.config.job_prefix)
        statuses: list[JobStatus] = []
        for stub in sorted(stubs, key=lambda s: s.get("ID", "")):
            if not self.is_managed(stub):
                continue
            status = self.status(stub["ID"])
            if status is not None:
                statuses.append(status)
        return statuses

    def logs(self, job_id: str, offset: int = 0) -> bytes:
        """Return the run's log from byte ``offset``, as far as it is written now.

        The log is the allocation's ``alloc/logs/winslow.log``: the timestamped lines
        ``stage-in`` and ``winslow stage-exec`` (the stage's stdout and stderr) write, the
        very file ``stage-out`` archives, so an offset stays valid when the caller goes
        on in the archive. (A container stage's own output joins it only at stage-out;
        the task's raw stdout, ``client_fs.logs``, would not line up with the archive.)
        Read with ``/v1/client/fs/readat``, in chunks, up to ``LOG_READ_MAX_BYTES``.
        Returns ``b""`` before the allocation exists and once it is gone (collected, or
        its node down): the archive has the log then. Raises ``NomadPermissionError`` when
        the token lacks ``read-fs`` (logged once at WARNING).
        """
        allocs, _ = self.client.jobs.allocations(job_id)
        alloc = latest_allocation(allocs)
        if alloc is None or not any(
            state.get("State", "pending") != "pending"
            for state in (alloc.get("TaskStates") or {}).values()
        ):
            return b""
        chunks: list[bytes] = []
        position = max(offset, 0)
        try:
            while position - offset < LOG_READ_MAX_BYTES:
                data = self.client.client_fs.read_at(
                    alloc["ID"], LOG_PATH, position, LOG_READ_CHUNK_BYTES
                )
                chunks.append(data)
                position += len(data)
                if len(data) < LOG_READ_CHUNK_BYTES:
                    break
        except NomadPermissionError as exc:
            # Not "no log yet": the token cannot read logs at all. Say so once, then let
            # every caller (the API's log routes) show the person why.
            if not self._warned_log_permission:
                self._warned_log_permission = True
                log.warning("job %s: cannot read its log: %s", job_id, exc.message)
            raise
        except BackendError as exc:
            log.debug("job %s: log not readable from its node: %s", job_id, exc.message)
        return b"".join(chunks)

    def usage(self, job_id: str) -> UsageSample | None:
        """Return what the run's ``main`` task uses now, as its node measures it
        (``/v1/client/allocation/:id/stats``, see ``status.usage_of``); None unless the
        latest allocation runs its ``main`` task."""
        allocs, _ = self.client.jobs.allocations(job_id)
        alloc = latest_allocation(allocs)
        if alloc is None or alloc.get("ClientStatus") != "running":
            return None
        main = (alloc.get("TaskStates") or {}).get(MAIN_TASK) or {}
        if main.get("State") != "running":
            return None
        stats = self.client.allocations.stats(alloc["ID"])
        return None if stats is None else usage_of(stats, MAIN_TASK)

    def nodes(self) -> list[NodeInfo]:
        """Return Nomad's client nodes with their capacity and GPUs, in name order.

        A node is read again only when its ``ModifyIndex`` changed or its cached read is
        older than ``NODE_CACHE_SECONDS``.
        """
        stubs, _ = self.client.nodes.list()
        now = time.monotonic()
        infos: list[NodeInfo] = []
        live: set[str] = set()
        for stub in stubs:
            node_id = stub.get("ID", "")
            live.add(node_id)
            modified = stub.get("ModifyIndex", 0)
            cached = self._node_cache.get(node_id)
            if (
                cached is not None
                and cached[0] == modified
                and now - cached[1] < NODE_CACHE_SECONDS
            ):
                infos.append(cached[2])
                continue
            node, _ = self.client.nodes.read(node_id)
            if node is None:
                continue  # deregistered between the list and the read
            info = node_info(node)
            self._node_cache[node_id] = (modified, now, info)
            infos.append(info)
        for gone in set(self._node_cache) - live:
            del self._node_cache[gone]
        return sorted(infos, key=lambda n: n.name)

    def log_size(self, job_id: str) -> int | None:
        """Nomad tells a log's size only by reading it; a reader of its end reads it all."""
        return None

    # Stopping ----------------------------------------------------------------------------

    def cancel(self, job_id: str) -> None:
        """Stop the job in Nomad (deregister without purge): its tasks are killed, the
        poststop ``stage-out`` still archives the log, and the status turns CANCELLED.
        Cancelling an unknown or ended job does nothing harmful."""
        response = self.client.jobs.deregister(job_id, purge=False)
        if response is not None:
            log.info("job %s: stopped in Nomad (evaluation %s)", job_id, response.get("EvalID"))

    def remove(self, job_id: str) -> None:
        """Purge the ended job from Nomad (its project is being deleted).

        Raises ``ConflictError`` while the job is pending or running: cancel it first.
        """
        status = self.status(job_id)
        if status is None:
            return
        if status.state not in TERMINAL_JOB_STATES:
            raise ConflictError(
                f"Job {job_id} is {status.state.value} in Nomad; cancel it and wait for it to "
                "stop before removing it."
            )
        self.client.jobs.deregister(job_id, purge=True)
        log.info("job %s: purged from Nomad", job_id)

    # Helpers -----------------------------------------------------------------------------

    def is_managed(self, stub: NomadJobListStub) -> bool:
        """True for jobs Winslow rendered; older agents list no meta, so read the job."""
        if not stub.get("ID", "").startswith(self.config.job_prefix):
            return False
        if "Meta" in stub:
            meta = stub.get("Meta") or {}
        else:
            job, _ = self.client.jobs.read(stub.get("ID", ""))
            meta = (job or {}).get("Meta") or {}
        return meta.get(MANAGED_META_KEY, "").lower() in ("true", "1", "yes")


class _Watcher:
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
        seen: dict[str, int] = {}
        while not self.stopped.is_set():
            try:
                if resync:
                    self._resync()
                    resync = False
                if time.monotonic() < fallback_until:
                    alloc_index = self._poll_allocations(alloc_index, seen)
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
        job_ids = {
            job_id
            for event in events
            if (job_id := _job_id(event)) is not None
            and job_id.startswith(self.backend.config.job_prefix)
        }
        moved = [
            node_id
            for event in events
            if event.get("Topic") == "Node" and (node_id := self._node_moved(event)) is not None
        ]
        if moved:
            job_ids |= self._jobs_on(set(moved))
        for job_id in sorted(job_ids):
            self._emit(job_id)
        self.frame_index = max(self.frame_index, index)
        return True

    def _resync(self) -> None:
        """Report every job of ours, and remember the index the list was taken at."""
        jobs, index = self.backend.client.jobs.list(self.backend.config.job_prefix)
        if "Node" in self.topics:
            try:
                nodes, _ = self.backend.client.nodes.list()
            except BackendUnavailableError:
                raise
            except BackendError as exc:
                log.debug("nomad backend: nodes not listed: %s", exc.message)
                nodes = []
            for node in nodes:
                self.backend._node_status[node.get("ID", "")] = node.get("Status", "")
        self.backend.resyncs += 1
        self.sync_index = index
        self.frame_index = 0
        for stub in jobs:
            if self.backend.is_managed(stub):
                self._emit(stub["ID"])

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
        allocs, _ = self.backend.client.allocations.list(task_states=False)
        return {
            alloc.get("JobID", "")
            for alloc in allocs
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

    def _poll_allocations(self, index: int, seen: dict[str, int]) -> int:
        """One blocking query on the namespace's allocations; report our jobs that changed."""
        allocs, last = self.backend.client.allocations.list(
            index=index or None, wait=BLOCKING_WAIT_SECONDS, task_states=False
        )
        changed: set[str] = set()
        for alloc in allocs:
            job_id = alloc.get("JobID", "")
            if not job_id.startswith(self.backend.config.job_prefix):
                continue
            modified = alloc.get("ModifyIndex", 0)
            if seen.get(alloc.get("ID", "")) != modified:
                seen[alloc.get("ID", "")] = modified
                changed.add(job_id)
        for job_id in sorted(changed):
            self._emit(job_id)
        # Nomad's advice: an index that goes backwards (a restored snapshot) starts over.
        return last if last >= index else 0

    def _emit(self, job_id: str) -> None:
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


def _main_driver(job: NomadJob) -> str | None:
    for group in job.get("TaskGroups") or []:
        for task in group.get("Tasks") or []:
            if task.get("Name") == MAIN_TASK:
                return str(task.get("Driver"))
    return None
