"""``NomadBackend``: every stage run is one Nomad batch job, placed and run by Nomad.

Nothing about a job lives only in this object: the job ID is the run's deterministic ID,
its state is whatever Nomad says (``status.py`` translates), so a new ``NomadBackend``
after a restart finds every job again through ``list_jobs``. ``submit`` registers with
check-and-set index 0, so a second submit of the same job finds it exists and does
nothing; the stage never runs twice.

Changes reach the engine through Nomad's event stream: a watcher thread
(``watcher.py``) follows ``/v1/event/stream`` and calls ``on_event`` with the job ID of
every change to one of our jobs, resuming after a break and resyncing when events may
have been lost. The engine asks for the status of every active run on each event and
every few seconds, and for the usage of every running one; asking Nomad each time would
cost about one request per second per running run, all to the leader. So the backend
keeps Nomad's last answers about each job (``jobcache.py``) and reads a job again only
when an event touched it, when Winslow itself changed it, or when a sweep every minute
(two list requests for all jobs) finds it changed without an event; while the stream is
down it reads on every call, as before. Reads after an event go to any server
(``stale=true``) and are repeated at the leader when their index shows the server has
not applied that event yet. The engine samples usage as ``usage_interval_seconds`` and
``usage_requests_per_second`` say: every 15 s per run, at most 5 requests a second in
all, so the load stays flat however many stages run.

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
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

from winslow import defaults
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
from winslow.backends.nomad.jobcache import CONSISTENT, JobCache, Snapshot, Ticket
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
from winslow.backends.nomad.telemetry import NomadHostStats, host_sample
from winslow.backends.nomad.types import NomadAllocationStub, NomadJob, NomadJobListStub
from winslow.backends.nomad.watcher import LIVE_CLIENT_STATUSES, Watcher
from winslow.core.resources import NodeInfo
from winslow.core.telemetry import NodeSample
from winslow.errors import (
    BackendError,
    BackendUnavailableError,
    ConflictError,
    SubmitRejectedError,
    WinslowError,
)

log = logging.getLogger(__name__)

MANAGED_META_KEY = "winslow_managed"
"""Job meta key every job Winslow renders carries; ``list_jobs`` adopts only those."""

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

USAGE_INTERVAL_SECONDS = 15.0
"""Least time between two usage samples of one run the engine takes from Nomad, seconds.
Each sample is a request a server forwards to the run's node; a point every 15 s still
draws an hours-long stage in detail (the local backend samples every 5 s: no request)."""

USAGE_REQUESTS_PER_SECOND = 5.0
"""Most usage samples per second the engine takes from Nomad for all runs together: past
75 running runs each run's interval stretches (200 runs: 40 s; 1,000: 200 s), so the
load stays flat."""


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

    ``cached=False`` reads Nomad on every ``status`` and ``usage`` call, never ``stale``,
    and has the engine sample usage every 5 s: how Winslow used Nomad before it kept
    answers (``bench/nomad_load.py`` measures both).
    """

    name = "nomad"
    places_runs = False
    purges_killed_jobs = True
    logs_on_this_machine = False
    """A killed run's job is purged once its log is archived; ended jobs are left to
    Nomad's garbage collector, so a person can still look at them in the Nomad UI."""

    def __init__(
        self,
        config: NomadConfig,
        client: NomadClient | None = None,
        lost_retries: Callable[[RunSpec], int] | None = None,
        *,
        cached: bool = True,
    ) -> None:
        self.config = config
        self.client = client or NomadClient(config)
        self._lost_retries = lost_retries or (lambda spec: 0)
        self._lock = threading.Lock()
        self._watcher: Watcher | None = None
        self.cached = cached
        """Answer from what the event stream keeps current (``jobcache.py``)."""
        self.stale_reads = cached
        """Let any server answer reads that may lag (``?stale=true``)."""
        self.cache = JobCache()
        self.usage_interval_seconds: float | None = (
            USAGE_INTERVAL_SECONDS if cached else defaults.USAGE_SAMPLE_SECONDS
        )
        """Least seconds between two usage samples of one run (the engine's sampler)."""
        self.usage_requests_per_second: float | None = USAGE_REQUESTS_PER_SECOND if cached else None
        """Most usage samples per second for all runs together; None: no bound."""
        self.sweeps = 0
        """How many quiet sweeps checked the kept jobs against Nomad's lists."""
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
            self._watcher = Watcher(self, on_event)
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
        self.cache.invalidate(spec.job_id)  # the next read must see the job: the leader's
        log.info(
            "job %s: registered with Nomad at %s (evaluation %s)",
            spec.job_id,
            self.client.address,
            response.get("EvalID") or "none",
        )

    # Reading -----------------------------------------------------------------------------

    def status(self, job_id: str) -> JobStatus | None:
        """Return the job's status from its allocations and evaluations, or None when
        Nomad does not know the job (never submitted, or purged).

        Judged with the current time from what the backend keeps of the job while no
        change was heard of since (see the module docstring), else from a fresh read.
        A run lost past the grace, or past its time limit, has its job stopped here, and
        only after a fresh read says so too.
        """
        now = datetime.now(UTC)
        kept = self._kept(job_id)
        if kept is not None:
            status, act = self._judge(job_id, kept, now)
            if not act:
                return status
            self.cache.invalidate(job_id)  # before stopping a job, ask the leader
        snapshot = self._read(job_id)
        if snapshot is None:
            return None
        status, act = self._judge(job_id, snapshot, now)
        if not act:
            return status
        if snapshot.unreachable is not None:
            return self._stop_lost(job_id, status)
        self._stop_timed_out(snapshot.job)
        return status

    def _streaming(self) -> bool:
        watcher = self._watcher
        return watcher is not None and watcher.streaming

    def _kept(self, job_id: str) -> Snapshot | None:
        """What is kept of ``job_id`` where it may answer: with the cache on, the event
        stream open and no change heard of since it was read. Sweeps when one is due."""
        if not self.cached or not self._streaming():
            return None
        self._sweep()
        return self.cache.current(job_id)

    def _read(self, job_id: str) -> Snapshot | None:
        """Read the job, its allocations and evaluations (and keep them); None when Nomad
        does not know the job.

        A stale read (any server) whose index falls short of what the change that made
        the job stale needs (``jobcache.Need``) is repeated at the leader, and so is a
        stale "no such job": a follower may not have a new job yet.
        """
        ticket = self.cache.begin(job_id) if self.cached else Ticket(0, CONSISTENT)
        need = ticket.need
        stale = self.stale_reads and self._streaming() and not need.consistent
        job, job_index = self.client.jobs.read(job_id, stale=stale)
        if stale and (job is None or job_index < need.job):
            job, job_index = self.client.jobs.read(job_id)
        if job is None:
            self.cache.forget(job_id)
            return None
        allocs, allocs_index = self.client.jobs.allocations(job_id, stale=stale)
        if stale and allocs_index < need.allocs:
            allocs, allocs_index = self.client.jobs.allocations(job_id)
        evals, evals_index = self.client.jobs.evaluations(job_id, stale=stale)
        if stale and evals_index < need.evals:
            evals, evals_index = self.client.jobs.evaluations(job_id)
        away = self._unreachable(latest_allocation(allocs))
        snapshot = Snapshot(job, allocs, evals, away, (job_index, allocs_index, evals_index))
        if self.cached:
            self.cache.store(job_id, snapshot, ticket)
        return snapshot

    def _judge(self, job_id: str, snapshot: Snapshot, now: datetime) -> tuple[JobStatus, bool]:
        """The job's status at ``now`` by what ``snapshot`` holds, and whether its job is
        to be stopped: lost past the grace, or past its time limit."""
        status = job_status(
            job_id,
            snapshot.allocs,
            snapshot.evals,
            now,
            job=snapshot.job,
            unreachable=snapshot.unreachable,
            lost_after=self.config.lost_after_seconds,
        )
        if snapshot.job.get("Stop"):
            return status, False
        if snapshot.unreachable is not None:
            return status, status.state is JobState.LOST
        latest = latest_allocation(snapshot.allocs)
        timed_out = status.state is JobState.RUNNING and _past_limit(snapshot.job, latest, now)
        return status, timed_out

    def _sweep(self) -> None:
        """Once every ``jobcache.QUIET_SWEEP_SECONDS``, list our jobs and the namespace's
        allocations (two requests, any server) and read again every kept job they show
        changed without an event reaching us (``JobCache.changed``)."""
        if not self.cache.claim_sweep():
            return
        jobs = self.client.jobs.pages(self.config.job_prefix, stale=True)
        allocs = self.client.allocations.pages(task_states=False, stale=True)
        try:
            changed = self.cache.changed(
                (stub for page, _ in jobs for stub in page),
                (alloc for page, _ in allocs for alloc in page),
            )
        except BackendError as exc:
            log.debug("nomad backend: quiet sweep skipped: %s", exc.message)
            return
        self.sweeps += 1
        for job_id in changed:
            self.cache.invalidate(job_id)
        if changed:
            log.debug(
                "nomad backend: %d jobs changed without an event; reading them again", len(changed)
            )

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
            self.cache.invalidate(job_id)
            reason = f"{status.reason}; stopping its job in Nomad failed, trying again"
            return replace(status, state=JobState.RUNNING, ended_at=None, reason=reason)
        self.cache.invalidate(job_id)
        log.warning(
            "job %s: %s; stopped it in Nomad so that its stage cannot also finish there "
            "when the node returns",
            job_id,
            status.reason,
        )
        return status

    def _stop_timed_out(self, job: NomadJob) -> None:
        """Stop a run past its time limit (``_past_limit``), which Nomad itself cannot
        enforce. The stopped run then reads as FAILED "timed out after N s"
        (``status.job_status``), after a restart too."""
        job_id = job.get("ID", "")
        log.warning(
            "job %s: ran past its time limit of %d s; stopping it in Nomad",
            job_id,
            timeout_of(job),
        )
        self.client.jobs.deregister(job_id, purge=False)
        self.cache.invalidate(job_id)

    def list_jobs(self) -> list[JobStatus]:
        """Return the status of every job of ours Nomad still has, in job ID order."""
        statuses: list[JobStatus] = []
        for page, _ in self.client.jobs.pages(self.config.job_prefix, stale=self.stale_reads):
            for stub in page:  # Nomad lists jobs in ID order
                if self.is_managed(stub) and (status := self.status(stub["ID"])) is not None:
                    statuses.append(status)
        return statuses

    def logs(self, job_id: str, offset: int = 0, limit: int | None = None) -> bytes:
        """Return the run's log from byte ``offset``, as far as it is written now.

        The log is the allocation's ``alloc/logs/winslow.log``: the timestamped lines
        ``stage-in`` writes, then the stage's stdout and stderr as they come, from
        ``winslow stage-exec`` around a host stage or, for a container stage, from the
        ``stage-follow`` sidecar that reads them from Nomad's own log files of the task
        (``node/follow.py``). It is the very file ``stage-out`` archives, after adding
        what the sidecar had not copied yet, so an offset stays valid when the caller
        goes on in the archive. (The task's raw stdout, ``client_fs.logs``, would not
        line up with the archive.) Read with ``/v1/client/fs/readat``, in chunks, up to
        ``LOG_READ_MAX_BYTES``. Returns ``b""`` before the allocation exists and once it
        is gone (collected, or its node down): the archive has the log then. Raises
        ``NomadPermissionError`` when the token lacks ``read-fs`` (logged once at WARNING).
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
        most = LOG_READ_MAX_BYTES if limit is None else min(limit, LOG_READ_MAX_BYTES)
        try:
            while position - offset < most:
                size = min(LOG_READ_CHUNK_BYTES, most - (position - offset))
                data = self.client.client_fs.read_at(alloc["ID"], LOG_PATH, position, size)
                chunks.append(data)
                position += len(data)
                if len(data) < size:
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
        latest allocation runs its ``main`` task. The allocation is the kept one while
        nothing changed (then the stats are the only request)."""
        kept = self._kept(job_id)
        if kept is not None:
            allocs = kept.allocs
        else:
            allocs, _ = self.client.jobs.allocations(job_id, stale=self.stale_reads)
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
        stubs, _ = self.client.nodes.list(stale=self.stale_reads)
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
            node, _ = self.client.nodes.read(node_id, stale=self.stale_reads)
            if node is None:
                continue  # deregistered between the list and the read
            info = node_info(node)
            self._node_cache[node_id] = (modified, now, info)
            infos.append(info)
        for gone in set(self._node_cache) - live:
            del self._node_cache[gone]
        return sorted(infos, key=lambda n: n.name)

    def node_stats(self, at: datetime) -> list[NodeSample]:
        """Each ready node's ``HostStats`` (``GET /v1/client/stats``, one request a node,
        see ``telemetry``); a node that does not answer is left out of this round."""
        self.nodes()  # fills _node_cache: the IDs, and the GPUs' order
        samples = []
        for node_id, (_, _, info) in list(self._node_cache.items()):
            if info.status == "down":
                continue  # no client answers for it; draining and ineligible ones do
            try:
                stats = self.client.nodes.stats(node_id)
            except WinslowError as exc:
                log.debug("telemetry: node %s did not answer (%s)", info.name, exc)
                continue
            if stats is not None:
                order = {g.uuid: g.index for g in info.gpus if g.uuid}
                samples.append(host_sample(info.name, cast(NomadHostStats, stats), at, order))
        return samples

    def log_size(self, job_id: str) -> int | None:
        """Nomad tells a log's size only by reading it; a reader of its end reads it all."""
        return None

    # Stopping ----------------------------------------------------------------------------

    def cancel(self, job_id: str) -> None:
        """Stop the job in Nomad (deregister without purge): its tasks are killed, the
        poststop ``stage-out`` still archives the log, and the status turns CANCELLED.
        Cancelling an unknown or ended job does nothing harmful."""
        response = self.client.jobs.deregister(job_id, purge=False)
        self.cache.invalidate(job_id)
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
        self.cache.forget(job_id)
        log.info("job %s: purged from Nomad", job_id)

    # Helpers -----------------------------------------------------------------------------

    def is_managed(self, stub: NomadJobListStub) -> bool:
        """True for jobs Winslow rendered; older agents list no meta, so read the job."""
        if not stub.get("ID", "").startswith(self.config.job_prefix):
            return False
        if "Meta" in stub:
            meta = stub.get("Meta") or {}
        else:
            job, _ = self.client.jobs.read(stub.get("ID", ""), stale=self.stale_reads)
            meta = (job or {}).get("Meta") or {}
        return meta.get(MANAGED_META_KEY, "").lower() in ("true", "1", "yes")


def _past_limit(job: NomadJob, alloc: NomadAllocationStub | None, now: datetime) -> bool:
    """Whether the run's ``main`` task has run past its time limit by ``now``: at once for
    a container stage, whose only limit this is; ``TIMEOUT_BACKSTOP_SECONDS`` later for a
    host stage, which ``stage-exec`` should have ended at its limit itself."""
    timeout = timeout_of(job)
    started = main_started_at(alloc)
    if timeout is None or started is None:
        return False
    grace = 0.0 if _main_driver(job) == "docker" else TIMEOUT_BACKSTOP_SECONDS
    return (now - started).total_seconds() >= timeout + grace


def _main_driver(job: NomadJob) -> str | None:
    for group in job.get("TaskGroups") or []:
        for task in group.get("Tasks") or []:
            if task.get("Name") == MAIN_TASK:
                return str(task.get("Driver"))
    return None
