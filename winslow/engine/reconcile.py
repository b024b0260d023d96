"""The reconcile loop: observe the backend and the store, decide, act.

Backend events wake the loop at once, so the next stage starts the moment one ends; a
slow poll is the safety net. Every round is idempotent: a run is created in the store
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
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from winslow import defaults
from winslow.backends.base import TERMINAL_JOB_STATES, Backend, JobState, JobStatus
from winslow.core import commands
from winslow.core.commands import RunOverrides
from winslow.core.models import Project, Run
from winslow.core.placement import Allocation, NoFit, place
from winslow.core.planner import (
    Decision,
    RunSet,
    SkipRun,
    StartRun,
    current_run_sets,
    decide,
)
from winslow.core.resources import NodeInfo
from winslow.core.states import TERMINAL_RUN_STATES, StageRunState
from winslow.engine.retention import apply_retention
from winslow.engine.specs import (
    build_spec,
    job_id_for,
    resource_request,
    run_request,
    run_values,
    workspace_sources,
)
from winslow.engine.transitions import RunUpdate, move_project, update_run
from winslow.engine.usage import UsageSampler
from winslow.errors import BackendUnavailableError, SubmitRejectedError, WinslowError
from winslow.pipeline.model import Pipeline, Stage, combination_key
from winslow.storage.keys import log_key, workspace_prefix
from winslow.store.repo import Store, now, to_project
from winslow.store.tables import ProjectRow, RunRow

log = logging.getLogger(__name__)


class OutputCollector(Protocol):
    """Reads an ended run's results (and keeps its log-parser series); see
    ``engine/outputs.py``. ``started_from`` are the workspaces the run began with;
    ``node_log`` reads the node's copy of the log where it is not archived yet."""

    def __call__(
        self,
        run: Run,
        stage: Stage,
        *,
        started_from: Sequence[str] = (),
        node_log: Callable[[], Iterable[bytes]] | None = None,
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
        prune_workspace: Callable[[str], None] | None = None,
        collect_outputs: OutputCollector | None = None,
        poll_seconds: float = defaults.RECONCILE_POLL_SECONDS,
    ) -> None:
        self.store = store
        self.backend = backend
        self.poll_seconds = poll_seconds
        self.on_project_deleted = on_project_deleted
        self.prune_workspace = prune_workspace
        """Deletes a workspace's manifests (by prefix); without it nothing is pruned."""
        self.collect_outputs = collect_outputs
        """Reads an ended run's results and stores its log-parser series."""
        self.usage = UsageSampler(store, backend)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._nodes: list[NodeInfo] | None = None
        self._watching = False

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Watch the backend and reconcile in a background thread."""
        self.backend.start(self._on_job_event)
        self._watching = True
        self._thread = threading.Thread(target=self._loop, name="winslow-engine", daemon=True)
        self._thread.start()
        self.usage.start()

    def stop(self) -> None:
        self.usage.stop()
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._watching:
            self.backend.stop()
            self._watching = False

    def wake(self) -> None:
        """Ask for a reconcile round now (after a command changed a project)."""
        self._wake.set()

    def _on_job_event(self, job_id: str) -> None:
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

    def reconcile_once(self) -> bool:
        """Do one round; return True if anything changed."""
        with self._lock:
            self._nodes = None
            changed = self._observe_runs()
            for project_id in self.store.advancing_project_ids():
                try:
                    changed |= self._advance(project_id)
                except WinslowError as exc:
                    log.warning("project %s: could not advance: %s", project_id, exc)
            changed |= self._submit_pending()
            return changed

    def _observe_runs(self) -> bool:
        changed = False
        for run in self.store.active_runs():
            if not run.submitted or run.job_id is None:
                continue
            try:
                status = self.backend.status(run.job_id)
            except BackendUnavailableError as exc:
                log.warning("run %s: backend did not answer: %s", run.id, exc)
                continue
            if status is None and run.started_at is not None:
                # It ran, and now the backend has no record of it (purged by hand, or
                # the node's files wiped): submitting again would run it twice.
                update = RunUpdate(
                    StageRunState.LOST,
                    reason=f"the backend no longer knows job {run.job_id}",
                )
                changed |= update_run(self.store, run.id, update) is not None
                continue
            if status is None:
                # Submitted in the store but unknown to the backend: the server stopped
                # between the two. Submitting again is safe; the job ID is the same.
                self._mark_unsubmitted(run.id)
                changed = True
                continue
            if run.cancel_requested and status.state not in TERMINAL_JOB_STATES:
                self.backend.cancel(run.job_id)
            changed |= self._record(run, status)
        return changed

    def _record(self, run: Run, status: JobStatus) -> bool:
        target = _JOB_TO_RUN[status.state]
        if target is run.state:
            # A backend that places runs itself explains a wait (Nomad's blocked evaluation).
            if target is StageRunState.PENDING and status.reason:
                return self._set_pending_reason(run, status.reason)
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
        results = self._results_of(run) if target in TERMINAL_RUN_STATES else None
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
        recorded = update_run(self.store, run.id, update) is not None
        if recorded and target is StageRunState.CANCELLED and run.job_id:
            self._purge_killed(run.job_id)
        if recorded and target in TERMINAL_RUN_STATES:
            self._apply_retention(run.project_id)
        return recorded

    def _results_of(self, run: Run) -> dict[str, Any] | None:
        """Read what an ended run reported, before anything decides on it (``when``)."""
        if self.collect_outputs is None:
            return None
        try:
            project = self.store.get_project(run.project_id)
            pipeline = Pipeline.model_validate(project.pipeline)
            stage = pipeline.stage(run.stage)
        except (WinslowError, KeyError):
            return None  # The project or the stage is gone; nothing will read its results.
        earlier = [r for r in self.store.runs(project.id) if r.id < run.id]
        # A results.json carried over from the workspace it started from is not its own.
        started_from = workspace_sources(pipeline, stage, earlier, run)
        job_id = run.job_id

        def node_log() -> list[bytes]:
            return [self.backend.logs(job_id)] if job_id else []

        try:
            return self.collect_outputs(run, stage, started_from=started_from, node_log=node_log)
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
        remove = getattr(self.backend, "remove", None)
        if not getattr(self.backend, "purges_killed_jobs", False) or remove is None:
            return
        try:
            remove(job_id)
        except WinslowError as exc:
            log.warning("job %s: could not purge it after the kill: %s", job_id, exc.message)

    def _mark_unsubmitted(self, run_id: int) -> None:
        with self.store.transaction() as session:
            row = session.get(RunRow, run_id)
            if row is not None:
                row.submitted = False

    def _advance(self, project_id: str) -> bool:
        project = self.store.get_project(project_id)
        pipeline = Pipeline.model_validate(project.pipeline)
        runs = self.store.runs(project.id)
        decision = decide(project, pipeline, runs)
        if decision.empty:
            return False
        return self._carry_out(project, pipeline, decision, runs)

    def _carry_out(
        self, project: Project, pipeline: Pipeline, decision: Decision, runs: list[Run]
    ) -> bool:
        with self.store.transaction() as session:
            row = self.store.lock_project(session, project.id)
            if row.version != project.version:
                return True  # A command landed meanwhile; decide again on what it left.
            gates = set(row.approved_gates or ())
            pending = {k: dict(v) for k, v in (row.run_overrides or {}).items()}
            used: set[str] = set()
            current = current_run_sets(runs)
            for start in decision.starts:
                overrides = self._overrides_for(start, pending, runs, current)
                if start.stage in pending:
                    used.add(start.stage)
                self._create_run(session, project, pipeline, start, overrides)
                gates.discard(start.stage)
            for skip in decision.skips:
                self._create_skipped_run(session, project, skip)
            row.approved_gates = sorted(gates)
            if used:
                row.run_overrides = {k: v for k, v in pending.items() if k not in used}
            if decision.move is not None:
                move_project(
                    self.store,
                    session,
                    row,
                    decision.move.state,
                    reason=decision.move.reason,
                    actor="engine",
                    waiting_for=dict(decision.move.waiting_for),
                )
            else:
                row.version += 1
        return True

    @staticmethod
    def _overrides_for(
        start: StartRun,
        pending: dict[str, dict[str, Any]],
        runs: list[Run],
        current: dict[str, RunSet],
    ) -> dict[str, Any]:
        """The overrides a new run gets: a retry keeps its run's, a sweep's later
        combinations take their siblings', a first run takes what a person asked for."""
        if start.attempt > 1:
            retried = [
                run
                for run in runs
                if run.stage == start.stage and run.combination == dict(start.combination)
            ]
            return dict(retried[-1].overrides) if retried else {}
        if start.stage in pending:
            return pending[start.stage]
        if start.combination:
            siblings = current.get(start.stage, {})
            with_overrides = [run for run in siblings.values() if run.overrides]
            if with_overrides:
                return dict(max(with_overrides, key=lambda run: run.id).overrides)
        return {}

    def _create_run(
        self,
        session: Session,
        project: Project,
        pipeline: Pipeline,
        start: StartRun,
        overrides: dict[str, Any],
    ) -> None:
        stage = pipeline.stage(start.stage)
        request = resource_request(stage)
        resources = overrides.get("resources", {})
        run_row = RunRow(
            project_id=project.id,
            stage=start.stage,
            attempt=start.attempt,
            state=StageRunState.PENDING.value,
            variables={},
            created_at=now(),
            cpus=float(resources.get("cpus", request.cpus)),
            memory_mb=int(resources.get("memory_mb", request.memory_mb)),
            gpus=int(resources.get("gpus", request.gpu.count)),
            reason=f"waiting to start ({start.reason})",
            combination=dict(start.combination),
            image=overrides.get("image"),
            overrides=overrides,
        )
        session.add(run_row)
        session.flush()
        values = run_values(project, pipeline, start.stage, run_row.id)
        # A sweep's own values win over a person's overrides: they are what the run is for.
        values.update(overrides.get("variables", {}))
        values.update(start.combination)
        run_row.variables = {k: v for k, v in values.items() if not k.startswith("WINSLOW_")}
        run_row.job_id = job_id_for(project, run_row.id)
        run_row.workspace_prefix = workspace_prefix(project.id, run_row.id)
        run_row.log_key = log_key(project.id, run_row.id)
        which = f"run {run_row.id} of '{start.stage}'"
        if start.combination:
            which += f" [{combination_key(dict(start.combination))}]"
        message = f"{which} (attempt {start.attempt}) created: {start.reason}"
        if overrides:
            message += f"; for this run only: {RunOverrides.from_json(overrides).describe()}"
        self.store.add_event(
            session,
            project.id,
            "engine",
            "run",
            message,
            {
                "run": run_row.id,
                "stage": start.stage,
                "attempt": start.attempt,
                "combination": dict(start.combination),
                "overrides": overrides,
            },
        )
        log.info("project %s: %s created", project.name, which)

    def _create_skipped_run(self, session: Session, project: Project, skip: SkipRun) -> None:
        at = now()
        run_row = RunRow(
            project_id=project.id,
            stage=skip.stage,
            attempt=1,
            state=StageRunState.SKIPPED.value,
            variables={},
            created_at=at,
            ended_at=at,
            reason=skip.reason,
        )
        session.add(run_row)
        session.flush()
        self.store.add_event(
            session,
            project.id,
            "engine",
            "run",
            f"run {run_row.id} of '{skip.stage}': skipped: {skip.reason}",
            {"run": run_row.id, "stage": skip.stage, "state": "skipped", **dict(skip.data)},
        )
        log.info("project %s: stage %s skipped: %s", project.name, skip.stage, skip.reason)

    def _cancel_run(self, run_id: int) -> None:
        with self.store.transaction() as session:
            row = session.get(RunRow, run_id)
            if row is None or row.state not in ("pending", "running"):
                return
            submitted, job_id = row.submitted, row.job_id
            if not submitted:
                row.state = StageRunState.CANCELLED.value
                row.ended_at = now()
                row.reason = "killed before it started"
                self.store.add_event(
                    session,
                    row.project_id,
                    "engine",
                    "run",
                    f"run {row.id} of '{row.stage}': cancelled before it started",
                    {"run": row.id, "state": "cancelled"},
                )
        if submitted and job_id:
            self.backend.cancel(job_id)

    # -- submitting ---------------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        if self._nodes is None:
            self._nodes = self.backend.nodes()
        return self._nodes

    def _submit_pending(self) -> bool:
        changed = False
        active = self.store.active_runs()
        allocations = [
            Allocation(run.node, run.cpus, run.memory_mb, run.gpu_indices)
            for run in active
            if run.submitted and run.node
        ]
        for run in active:
            if run.submitted:
                continue
            if run.cancel_requested:
                self._cancel_run(run.id)
                changed = True
                continue
            project = self.store.get_project(run.project_id)
            pipeline = Pipeline.model_validate(project.pipeline)
            if run.stage not in {s.name for s in pipeline.stages}:
                continue
            placement_node: str | None = None
            gpus: tuple[int, ...] = ()
            if self.backend.places_runs:
                request = run_request(pipeline.stage(run.stage), run)
                verdict = place(request, self.nodes(), allocations)
                if isinstance(verdict, NoFit):
                    changed |= self._set_pending_reason(run, verdict.reason)
                    continue
                placement_node, gpus = verdict.node, verdict.gpu_indices
                allocations.append(
                    Allocation(verdict.node, request.cpus, request.memory_mb, verdict.gpu_indices)
                )
            changed |= self._submit(project, pipeline, run, placement_node, gpus)
        return changed

    def _set_pending_reason(self, run: Run, reason: str) -> bool:
        if run.reason == reason:
            return False
        with self.store.transaction() as session:
            row = session.get(RunRow, run.id)
            if row is None:
                return False
            row.reason = reason
            self.store.add_event(
                session,
                run.project_id,
                "engine",
                "pending",
                f"run {run.id} of '{run.stage}' is pending: {reason}",
                {"run": run.id},
            )
        log.info("project %s: run %s pending: %s", run.project_id, run.id, reason)
        return True

    def _submit(
        self,
        project: Project,
        pipeline: Pipeline,
        run: Run,
        node: str | None,
        gpus: tuple[int, ...],
    ) -> bool:
        with self.store.transaction() as session:
            row = session.get(RunRow, run.id)
            if row is None or row.submitted or row.state != StageRunState.PENDING.value:
                return False
            row.submitted = True
            row.node = node
            row.gpu_indices = list(gpus)
            row.reason = None
        placed = Run(**{**run.__dict__, "node": node, "gpu_indices": gpus, "submitted": True})
        spec = build_spec(project, pipeline, placed, self.store.runs(project.id))
        try:
            self.backend.submit(spec)
        except BackendUnavailableError as exc:
            log.warning("run %s: submit failed, will retry: %s", run.id, exc)
            self._mark_unsubmitted(run.id)
            return False
        except SubmitRejectedError as exc:
            update_run(self.store, run.id, RunUpdate(StageRunState.FAILED, reason=exc.message))
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
        with self.store.transaction() as session:
            row = session.scalars(
                select(ProjectRow).where(ProjectRow.id == project.id).with_for_update()
            ).first()
            if row is None:
                return
            latest = self.store.runs(project.id, session)
            if not kill:
                commands.check_deletable(to_project(row), latest, kill_first=False)
            self.store.delete_project_rows(session, project.id)
        log.info("project %s: deleted by %s", project.name, actor)
        if self.on_project_deleted is not None:
            self.on_project_deleted(project.id)
        for run in runs:
            if run.job_id:
                remove = getattr(self.backend, "remove", None)
                if remove is not None:
                    remove(run.job_id)
