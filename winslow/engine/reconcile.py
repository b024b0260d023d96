"""The reconcile loop: observe the backend and the store, decide, act.

Backend events wake the loop at once, so the next stage starts the moment one ends; a
slow poll is the safety net. A round looks only at what changed since the last one: the
projects whose jobs the backend reported and those whose rows were written (every write
bumps a project's version and update time), plus any waiting run that the room freed on
the nodes could now hold. So its cost follows the changes, not the number of projects.
Once a poll the backend's status of every submitted run is read (a status may change
with no event), and a full round over every project, every ``full_round_seconds``,
catches whatever else no event told of. Every round is idempotent: a run is created in the store
(with its deterministic job ID) before it is submitted, and the backend ignores a second
submit of the same job, so a restart at any point never runs a stage twice. On start the
engine simply reconciles: runs the store believes active are looked up in the backend
and adopted, or recorded as ended.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from winslow import defaults, metrics
from winslow.backends.base import TERMINAL_JOB_STATES, Backend, JobState, JobStatus
from winslow.core import commands
from winslow.core.models import Project, Run
from winslow.core.placement import Allocation, NoFit, gpu_fallback, never_fits, place
from winslow.core.planner import decide
from winslow.core.resources import NodeInfo, ResourceRequest
from winslow.core.states import TERMINAL_RUN_STATES, StageRunState
from winslow.engine import transitions
from winslow.engine.retention import apply_retention
from winslow.engine.specs import build_spec, run_request, workspace_sources
from winslow.engine.telemetry import TelemetryCollector
from winslow.engine.transitions import RunUpdate
from winslow.engine.usage import UsageSampler
from winslow.errors import BackendUnavailableError, SubmitRejectedError, WinslowError
from winslow.pipeline.model import Pipeline, Stage
from winslow.store.quota import RoundQuotas
from winslow.store.repo import RunRoom, Store
from winslow.store.rows import now
from winslow.units import format_duration

if TYPE_CHECKING:
    from winslow.node.stagetools import EndRecord

log = logging.getLogger(__name__)


FULL_ROUND_SECONDS = 60.0
"""Time between two full rounds, at least the poll, seconds: the safety net for changes no
backend event or project write told of (a node that came back, a Nomad wait that ran out)."""

CHANGE_MARGIN = timedelta(seconds=5)
"""How far before the previous round a round looks for written projects: a transaction
stamps its project's update time before it commits, so a write may become visible after
a round that began later than its stamp. Versions already seen are not looked at twice."""

NO_NODE_TO_DECIDE = (
    "waiting for a node: the stage runs on a GPU, or on the CPU where no node has one, "
    "and no node is known yet"
)
"""Why a stage that may fall back to the CPU waits while the backend knows no node."""

WAITING_BATCH = 64
"""Waiting runs read per query while submitting."""

LOCAL_LOG_READ_MAX_BYTES = 8 * 1024 * 1024
"""Largest log of an ended run read whole from the node for its results, bytes."""

ARCHIVED_TAIL_BYTES = 64 * 1024
"""How much of the end of an archived log an ``ArchivedEndReader`` reads for the run's tail."""


@dataclass(frozen=True)
class ArchivedEnd:
    """What storage keeps of a run that ended: its end record and its archived log, both
    written by its stage-out after the workspace, so either proves the run ran to its end."""

    archived_at: datetime | None
    """When the log was archived; None without an archived log."""
    log_end: bytes
    """The last ``ARCHIVED_TAIL_BYTES`` (or fewer) of the archived log."""
    record: EndRecord | None
    """How the run ended as stage-out saw it; None for a job older than end records."""


ArchivedEndReader = Callable[[Run], ArchivedEnd | None]
"""Looks for the run's end record and archived log (``run.log_key``); None when storage has
neither. Raises ``WinslowError`` when storage cannot say."""


def forgotten_end(archived: ArchivedEnd, where: str) -> RunUpdate:
    """The end of a run that ended unwatched and that the backend (``where``) forgot.

    The end record decides where it knows: the stage's exit status (from ``stage-exec``)
    and what stage-out could not do, as ``backends/nomad/status.py`` reads the tasks.
    Without a record, or for a container stage (no other task sees its exit status), how
    the stage ended is unknown: the run is lost.
    """
    base = f"ended while Winslow was not watching; its job is gone from {where}"
    record = archived.record
    ended_at = (record.written_at if record is not None else None) or archived.archived_at
    tail = tail_lines(archived.log_end)
    state, exit_code, reason = StageRunState.LOST, None, base
    if record is not None and not record.stage_started:
        state, reason = StageRunState.FAILED, f"the stage never started (see its log); {base}"
    elif record is not None and record.exit_code is not None:
        exit_code = record.exit_code
        if exit_code == 0 and not record.problems:
            state = StageRunState.SUCCEEDED
        elif exit_code == 0:
            # As backends/nomad/status.py: storage failed the run, not the stage.
            state, reason = StageRunState.LOST, f"stage-out failed: {record.problems[0]}; {base}"
        else:
            how = record.exit_message or f"exited with code {exit_code}"
            state, reason = StageRunState.FAILED, f"{how}; {base}"
    return RunUpdate(state, ended_at=ended_at, exit_code=exit_code, reason=reason, log_tail=tail)


class OutputCollector(Protocol):
    """Reads an ended run's results (and keeps its log-parser series); see
    ``engine/outputs.py``. ``started_from`` are the workspaces the run began with;
    ``node_log`` reads the node's copy of the log where it is not archived yet;
    ``read_file`` False: the run left no ``results.json``, so none is looked for."""

    def __call__(
        self,
        run: Run,
        stage: Stage,
        *,
        started_from: Sequence[str] = (),
        log_chunks: Iterable[bytes] | None = None,
        node_log: Callable[[], Iterable[bytes]] | None = None,
        read_file: bool = True,
    ) -> dict[str, Any]: ...


_JOB_TO_RUN = {
    JobState.PENDING: StageRunState.PENDING,
    JobState.RUNNING: StageRunState.RUNNING,
    JobState.SUCCEEDED: StageRunState.SUCCEEDED,
    JobState.FAILED: StageRunState.FAILED,
    JobState.LOST: StageRunState.LOST,
    JobState.CANCELLED: StageRunState.CANCELLED,
}


def tail_lines(log_bytes: bytes, count: int = defaults.LOG_TAIL_LINES) -> tuple[str, ...]:
    """Return the last ``count`` lines of a log."""
    lines = log_bytes.decode("utf-8", errors="replace").splitlines()
    return tuple(lines[-count:])


def room_on(nodes: Sequence[NodeInfo], allocations: Sequence[Allocation]) -> RunRoom:
    """The most any ready node has free of CPUs, memory and GPUs: a run asking for more
    of any of them cannot be placed now (``place`` would say why)."""
    cpus, memory, gpus = 0.0, 0, 0
    for node in nodes:
        if node.status != "ready":
            continue
        mine = [a for a in allocations if a.node == node.name]
        taken = {index for a in mine for index in a.gpu_indices}
        cpus = max(cpus, node.cpus - sum(a.cpus for a in mine))
        memory = max(memory, node.memory_mb - sum(a.memory_mb for a in mine))
        gpus = max(gpus, sum(1 for g in node.gpus if g.healthy and g.index not in taken))
    return RunRoom(cpus=cpus, memory_mb=memory, gpus=gpus)


def _fits(run: Run, room: RunRoom) -> bool:
    return (
        (run.cpus <= room.cpus + 1e-9 or run.cpus == 0)
        and (run.memory_mb <= room.memory_mb or run.memory_mb == 0)
        and run.gpus <= room.gpus
    )


def _moving(run: Run) -> bool:
    """Whether a run is expected to change by itself: it was handed to the backend and
    does not wait with a stated reason (such as Nomad finding no node for it)."""
    return run.submitted and (run.state is StageRunState.RUNNING or run.reason is None)


class Engine:
    """Moves every project along; the only writer of run state."""

    def __init__(
        self,
        store: Store,
        backend: Backend,
        *,
        on_project_deleted: Callable[[str], None] | None = None,
        prune_workspace: Callable[[str], object] | None = None,
        collect_outputs: OutputCollector | None = None,
        archived_end: ArchivedEndReader | None = None,
        poll_seconds: float = defaults.RECONCILE_POLL_SECONDS,
        telemetry_seconds: float = defaults.TELEMETRY_SAMPLE_SECONDS,
        placement_timeout: float = defaults.PLACEMENT_TIMEOUT_SECONDS,
        full_round_seconds: float = FULL_ROUND_SECONDS,
    ) -> None:
        self.store = store
        self.backend = backend
        self.poll_seconds = poll_seconds
        self.full_round_seconds = max(full_round_seconds, poll_seconds)
        self.placement_timeout = placement_timeout
        """Seconds a run the backend has not placed waits before it fails, when no node the
        backend knows could ever hold it (backends that place runs themselves)."""
        self.on_project_deleted = on_project_deleted
        self.prune_workspace = prune_workspace
        """Deletes a workspace's manifests (by prefix); without it nothing is pruned."""
        self.collect_outputs = collect_outputs
        """Reads an ended run's results and stores its log-parser series."""
        self.archived_end = archived_end
        """Finds a run's end record and archived log; without it a run whose job the backend
        forgot before the run was seen to start is submitted again."""
        self.usage = UsageSampler(store, backend)
        self.telemetry = TelemetryCollector(store, backend, telemetry_seconds)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._nodes: list[NodeInfo] | None = None
        self._watching = False
        self._woken_lock = threading.Lock()
        self._woken_jobs: set[str] = set()
        self._last_full: float | None = None
        self._last_sweep = 0.0
        self._seen_since: datetime | None = None
        self._seen_versions: dict[str, int] = {}

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Watch the backend and reconcile in a background thread."""
        self.backend.start(self._on_job_event)
        self._watching = True
        self._thread = threading.Thread(target=self._loop, name="winslow-engine", daemon=True)
        self._thread.start()
        self.usage.start()
        self.telemetry.start()

    def stop(self) -> None:
        self.usage.stop()
        self.telemetry.stop()
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._watching:
            self.backend.stop()
            self._watching = False

    def wake(self) -> None:
        """Ask for a reconcile round now (after a command changed a project)."""
        metrics.note_wake()
        self._wake.set()

    def _on_job_event(self, job_id: str) -> None:
        metrics.note_wake()
        with self._woken_lock:
            self._woken_jobs.add(job_id)
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            # Cleared before the round, so a wake-up during it starts the next one at once.
            self._wake.clear()
            try:
                busy = self.reconcile_once()
            except Exception:
                log.exception(
                    "engine: reconcile round failed; next round in %ss", self.poll_seconds
                )
                busy = False
            if not busy:
                self._wake.wait(self.poll_seconds)

    def run_until_idle(self, timeout: float = 60.0) -> None:
        """Reconcile until nothing changes and no submitted stage is still running.

        For tests and scripts, instead of ``start``: it begins watching the backend if
        nothing does yet. No background thread may run at the same time.
        """
        if not self._watching:
            self.backend.start(self._on_job_event)
            self._watching = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._wake.clear()
            if self.reconcile_once():
                continue
            if not any(_moving(run) for run in self.store.active_runs()):
                return
            self._wake.wait(min(0.5, max(deadline - time.monotonic(), 0)))
        raise TimeoutError(f"engine still busy after {timeout} s")

    # -- one round ----------------------------------------------------------------------

    def reconcile_once(self, *, full: bool | None = None) -> bool:
        """Do one round; return True if anything changed.

        A full round looks at every project and active run; the others only at what
        changed since the previous round. ``full`` None: full when one is due.
        """
        with self._lock, metrics.reconcile_round():
            self._nodes = None
            woken = self._take_woken()
            due = self._last_full is None or (
                time.monotonic() - self._last_full >= self.full_round_seconds
            )
            scope: set[str] | None = woken
            if full or (full is None and due):
                self._last_full = time.monotonic()
                scope = None
            # A backend may change a status with no event (Nomad's grace for a node
            # that stopped answering runs out): every submitted run is read each poll.
            sweep = scope is None or time.monotonic() - self._last_sweep >= self.poll_seconds
            if sweep:
                self._last_sweep = time.monotonic()
            try:
                with self.store.kept_reads():
                    return self._round(scope, sweep)
            except BaseException:
                self._last_full = None  # what this round was told of is not lost
                raise

    def _round(self, scope: set[str] | None, sweep: bool) -> bool:
        changed, touched = self._observe_runs(None if sweep else scope)
        if scope is not None:
            scope |= touched
        for project_id in self.store.advancing_project_ids(scope):
            try:
                changed |= self._advance(project_id)
            except WinslowError as exc:
                log.warning("project %s: could not advance: %s", project_id, exc)
        return self._submit_pending(scope) | changed

    def _take_woken(self) -> set[str]:
        """Ids of the projects that changed since the last round: those whose jobs the
        backend reported, and those written since (versions seen before left out)."""
        with self._woken_lock:
            jobs, self._woken_jobs = self._woken_jobs, set()
        started = now()
        since = (self._seen_since or started) - CHANGE_MARGIN
        versions = self.store.changed_projects(since)
        woken = {
            pid for pid, version in versions.items() if self._seen_versions.get(pid) != version
        }
        self._seen_versions, self._seen_since = versions, started
        return woken | self.store.job_project_ids(jobs)

    def _observe_runs(self, scope: set[str] | None) -> tuple[bool, set[str]]:
        """Read the backend's status of the submitted active runs (of the projects in
        ``scope``; all without); return whether any changed, and their projects."""
        changed = False
        touched: set[str] = set()
        for run in self.store.active_runs(scope, submitted=True):
            if run.job_id is None:
                continue
            if self._observe_run(run):
                changed = True
                touched.add(run.project_id)
        return changed, touched

    def _observe_run(self, run: Run) -> bool:
        job_id = run.job_id or ""
        try:
            status = self.backend.status(job_id)
        except BackendUnavailableError as exc:
            log.warning("run %s: backend did not answer: %s", run.id, exc)
            return False
        if status is None and run.started_at is not None:
            # It ran, and now the backend has no record of it (purged by hand, or
            # the node's files wiped): submitting again would run it twice.
            update = RunUpdate(
                StageRunState.LOST,
                reason=f"the backend no longer knows job {job_id}",
            )
            return transitions.record_run(self.store, run.id, update) is not None
        if status is None:
            # Submitted in the store but unknown to the backend: either the server
            # stopped between the two, or the job ran to its end unseen and the backend
            # has since forgotten it (Nomad collects dead jobs after 4 h).
            return self._forgotten(run)
        if run.cancel_requested and status.state not in TERMINAL_JOB_STATES:
            self.backend.cancel(job_id)
        return self._record(run, status)

    def _forgotten(self, run: Run) -> bool:
        """A submitted run that never recorded a start and whose job the backend does not
        know: recorded as ended (``forgotten_end``) when its end record or archived log
        proves it ran, else marked unsubmitted to be submitted again under the same job
        ID. Nothing is decided while storage cannot answer."""
        try:
            archived = self.archived_end(run) if self.archived_end is not None else None
        except WinslowError as exc:
            log.warning("run %s: cannot look for its archived log: %s", run.id, exc.message)
            return False
        if archived is None:
            transitions.mark_unsubmitted(self.store, run.id)
            return True
        where = "Nomad" if self.backend.name == "nomad" else f"the {self.backend.name} backend"
        update = replace(forgotten_end(archived, where), results=self._results_of(run))
        log.warning(
            "run %s: job %s ended unwatched and is gone; recording its end from its archived log",
            run.id,
            run.job_id,
        )
        recorded = transitions.record_run(self.store, run.id, update) is not None
        if recorded:
            self._apply_retention(run.project_id)
        return recorded

    def _record(self, run: Run, status: JobStatus) -> bool:
        target = _JOB_TO_RUN[status.state]
        if target is run.state:
            # A backend that places runs itself explains a wait (Nomad's blocked evaluation).
            if target is StageRunState.PENDING and status.reason:
                never = self._never_placed(run, status)
                if never is not None:
                    return self._fail_unplaceable(run, never)
                return transitions.note_pending(self.store, run, status.reason)
            return False
        tail: tuple[str, ...] = ()
        if target in (StageRunState.FAILED, StageRunState.LOST, StageRunState.CANCELLED):
            try:
                tail = tail_lines(self.backend.logs(run.job_id or ""))
            except WinslowError:
                tail = ()
        reason = status.reason
        if run.cancel_requested and target is StageRunState.CANCELLED:
            reason = reason or "killed on request"
        ended = target in TERMINAL_RUN_STATES
        results = self._results_of(run, status.results_left) if ended else None
        update = RunUpdate(
            state=target,
            node=status.node,
            started_at=status.started_at,
            ended_at=status.ended_at,
            exit_code=status.exit_code,
            reason=reason,
            log_tail=tail,
            results=results,
        )
        recorded = (
            transitions.record_run(self.store, run.id, update, project_id=run.project_id)
            is not None
        )
        if recorded and target is StageRunState.CANCELLED and run.job_id:
            self._purge_killed(run.job_id)
        if recorded and target in TERMINAL_RUN_STATES:
            self._apply_retention(run.project_id)
        return recorded

    def _never_placed(self, run: Run, status: JobStatus) -> str | None:
        """Why a run the backend could not place will never run, once it has waited
        ``placement_timeout``: no node the backend knows could hold it even idle. None while
        it may still run (a node may join, or one that fits is only busy)."""
        if self.backend.places_runs or status.node is not None:
            return None
        if (now() - run.created_at).total_seconds() < self.placement_timeout:
            return None
        try:
            project = self.store.get_project(run.project_id)
            stage = Pipeline.model_validate(project.pipeline).stage(run.stage)
        except (WinslowError, KeyError):
            return None
        never = never_fits(run_request(stage, run), self.nodes())
        if never is None:
            return None
        waited = format_duration(self.placement_timeout)
        says = f"{self.backend.name.capitalize()}: {status.reason}"
        return (
            f"no node could ever run it: {never} (waited {waited}; {says}); "
            "add such a node, or change the stage's requirements and resume"
        )

    def _fail_unplaceable(self, run: Run, reason: str) -> bool:
        """Fail a run no node can ever hold; a submitted one's job is stopped first, so
        the backend does not place it later behind the project's back."""
        if run.submitted and run.job_id:
            try:
                self.backend.cancel(run.job_id)
            except WinslowError as exc:
                log.warning("run %s: could not stop its job: %s", run.id, exc.message)
                return False
        update = RunUpdate(StageRunState.FAILED, reason=reason)
        return transitions.record_run(self.store, run.id, update) is not None

    def _results_of(self, run: Run, results_left: bool | None = None) -> dict[str, Any] | None:
        """Read what an ended run reported, before anything decides on it (``when``).
        ``results_left``: whether its runner saw a ``results.json`` (None: not known)."""
        if self.collect_outputs is None:
            return None
        try:
            project = self.store.get_project(run.project_id)
            pipeline = Pipeline.model_validate(project.pipeline)
            stage = pipeline.stage(run.stage)
        except (WinslowError, KeyError):
            return None  # The project or the stage is gone; nothing will read its results.
        # Its runner saw none: no request to storage for one (a listing and a manifest).
        read_file = results_left is not False
        started_from: tuple[str, ...] = ()
        if read_file:
            earlier = [r for r in self.store.runs(project.id) if r.id < run.id]
            # A results.json carried over from the workspace it started from is not its own.
            started_from = workspace_sources(pipeline, stage, earlier, run)
        job_id = run.job_id

        def node_log() -> list[bytes]:
            return [self.backend.logs(job_id)] if job_id else []

        # The node's copy, where it is on this machine: complete once the end is recorded,
        # and a file read instead of a request to storage on every stage's end. A big log
        # is streamed from storage in chunks instead of read into memory whole.
        local = b""
        if job_id and self.backend.logs_on_this_machine:
            size = self.backend.log_size(job_id)
            if size is not None and size <= LOCAL_LOG_READ_MAX_BYTES:
                local = self.backend.logs(job_id)
        try:
            if local:
                return self.collect_outputs(
                    run, stage, started_from=started_from, log_chunks=[local], read_file=read_file
                )
            return self.collect_outputs(
                run, stage, started_from=started_from, node_log=node_log, read_file=read_file
            )
        except WinslowError as exc:
            log.warning("run %s: could not read its results: %s", run.id, exc.message)
            return None

    def _apply_retention(self, project_id: str) -> None:
        if self.prune_workspace is None:
            return
        try:
            apply_retention(self.store, project_id, self.prune_workspace)
        except WinslowError as exc:
            # Nothing was marked; the next run end of the project tries again.
            log.warning("project %s: could not prune workspaces: %s", project_id, exc.message)

    def _purge_killed(self, job_id: str) -> None:
        """Purge a killed run's job where the backend wants that (Nomad); its log is
        archived by then, because the backend reports the end only after stage-out."""
        if not self.backend.purges_killed_jobs:
            return
        try:
            self.backend.remove(job_id)
        except WinslowError as exc:
            log.warning("job %s: could not purge it after the kill: %s", job_id, exc.message)

    def _advance(self, project_id: str) -> bool:
        project = self.store.get_project(project_id)
        pipeline = Pipeline.model_validate(project.pipeline)
        decision = decide(project, pipeline, self.store.runs(project.id))
        if decision.empty:
            return False
        # Not carried out means a command landed meanwhile: the next round decides again.
        transitions.carry_out(self.store, project, pipeline, decision)
        return True

    def _cancel_unsubmitted(self, run_id: int) -> None:
        run = transitions.cancel_unsubmitted(self.store, run_id)
        if run is not None and run.active and run.submitted and run.job_id:
            self.backend.cancel(run.job_id)

    # -- submitting ---------------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        if self._nodes is None:
            self._nodes = self.backend.nodes()
        return self._nodes

    def _submit_pending(self, scope: set[str] | None) -> bool:
        """Submit the waiting runs that can run now, oldest first: every one in a full
        round (``scope`` None); else those of the projects in ``scope`` and, where the
        engine places runs, only those the nodes' free room could hold."""
        changed = False
        allocations = [
            Allocation(run.node, run.cpus, run.memory_mb, run.gpu_indices)
            for run in self.store.active_runs(submitted=True)
            if run.node
        ]
        among = scope if scope is not None else set()
        after = 0
        quotas = RoundQuotas(self.store)
        while True:
            room = None
            if scope is not None and self.backend.places_runs:
                room = room_on(self.nodes(), allocations)
            batch = self.store.waiting_runs(among, room, after=after, limit=WAITING_BATCH)
            for run in batch:
                after = run.id
                if room is not None and run.project_id not in among and not run.cancel_requested:
                    # The batch was read before this round's placements took room.
                    room = room_on(self.nodes(), allocations)
                    if not _fits(run, room):
                        continue
                changed |= self._submit_waiting(run, allocations, quotas)
            if len(batch) < WAITING_BATCH:
                return changed

    def _submit_waiting(self, run: Run, allocations: list[Allocation], quotas: RoundQuotas) -> bool:
        """Place (where the engine places) and submit one waiting run that its quotas
        allow; a placed run's allocation is added to ``allocations``, its amounts to the
        round's ``quotas``."""
        if run.cancel_requested:
            self._cancel_unsubmitted(run.id)
            return True
        project = self.store.get_project(run.project_id)
        pipeline = Pipeline.model_validate(project.pipeline)
        if run.stage not in {s.name for s in pipeline.stages}:
            return False
        stage = pipeline.stage(run.stage)
        request = run_request(stage, run)
        if request.gpu.cpu_fallback and request.gpu.count > 0:
            fallen = self._fall_back(run, request)
            if fallen is None:
                return False
            run, request = fallen, run_request(stage, fallen)
        over_quota = quotas.refusal(project, request)
        if over_quota is not None:
            return transitions.note_pending(self.store, run, over_quota)
        placement_node: str | None = None
        gpus: tuple[int, ...] = ()
        if self.backend.places_runs:
            verdict = place(request, self.nodes(), allocations)
            never = never_fits(request, self.nodes()) if isinstance(verdict, NoFit) else None
            if never is not None:
                # The engine knows every node here: waiting would be for ever.
                reason = f"no node could ever run it: {never}; change the stage's "
                return self._fail_unplaceable(run, reason + "requirements and resume")
            if isinstance(verdict, NoFit):
                return transitions.note_pending(self.store, run, verdict.reason)
            placement_node, gpus = verdict.node, verdict.gpu_indices
            allocations.append(
                Allocation(verdict.node, request.cpus, request.memory_mb, verdict.gpu_indices)
            )
        quotas.take(project, request)
        return self._submit(project, pipeline, run, placement_node, gpus)

    def _fall_back(self, run: Run, request: ResourceRequest) -> Run | None:
        """``run``, without GPUs where no node has them (``gpu_fallback``; its stage allows
        it); None when the nodes cannot be read or the run changed meanwhile."""
        try:
            nodes = self.nodes()
        except BackendUnavailableError as exc:
            log.warning("run %s: cannot list the nodes to place it, will retry: %s", run.id, exc)
            return None
        if not nodes:
            # Whether it gets a GPU depends on the nodes: submitted now, it would ask for
            # one for ever, however the cluster turns out.
            transitions.note_pending(self.store, run, NO_NODE_TO_DECIDE)
            return None
        reason = gpu_fallback(request, nodes)
        if reason is None:
            return run
        return transitions.fall_back_to_cpu(self.store, run, reason)

    def _submit(
        self,
        project: Project,
        pipeline: Pipeline,
        run: Run,
        node: str | None,
        gpus: tuple[int, ...],
    ) -> bool:
        placed = transitions.mark_submitted(
            self.store, run.id, node, gpus, project_id=run.project_id
        )
        if placed is None:
            return False
        spec = build_spec(project, pipeline, placed, self.store.runs(project.id))
        try:
            self.backend.submit(spec)
        except BackendUnavailableError as exc:
            log.warning("run %s: submit failed, will retry: %s", run.id, exc)
            transitions.mark_unsubmitted(self.store, run.id)
            return False
        except SubmitRejectedError as exc:
            update = RunUpdate(StageRunState.FAILED, reason=exc.message)
            transitions.record_run(self.store, run.id, update)
            return True
        log.info(
            "project %s: run %s of %s submitted as %s", project.name, run.id, run.stage, spec.job_id
        )
        return True

    # -- commands that need the backend -------------------------------------------------

    def delete_project(self, ref: str, *, kill: bool, actor: str) -> None:
        """Delete a project, its runs and history; with ``kill``, stop its stages first."""
        project = self.store.get_project(ref)
        runs = self.store.runs(project.id)
        commands.check_deletable(project, runs, kill_first=kill)
        active = [run for run in runs if run.active and run.submitted and run.job_id]
        for run in active:
            self.backend.cancel(run.job_id or "")
        deadline = time.monotonic() + defaults.KILL_GRACE_SECONDS + 5
        for run in active:
            while time.monotonic() < deadline:
                status = self.backend.status(run.job_id or "")
                if status is None or status.state in TERMINAL_JOB_STATES:
                    break
                time.sleep(0.1)

        def still_deletable(latest: Project, latest_runs: list[Run]) -> None:
            if not kill:
                commands.check_deletable(latest, latest_runs, kill_first=False)

        transitions.delete_project(self.store, project.id, still_deletable)
        log.info("project %s: deleted by %s", project.name, actor)
        if self.on_project_deleted is not None:
            self.on_project_deleted(project.id)
        for run in runs:
            if run.job_id:
                self.backend.remove(run.job_id)
