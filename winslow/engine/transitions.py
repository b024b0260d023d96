"""The one place that writes project and run state.

Every write happens in a ``ProjectTransaction``: the project row is locked first
(``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on PostgreSQL), the transition tables of
``core/states.py`` are checked, and the new state is written together with its history
line, all or nothing. A refused transition is a ``ConflictError`` with the reason, never a
half-written project. Three kinds of writer come through here: a person's command
(``apply_command``), the engine's decision for a project (``carry_out``), and what the
backend reports of a run (``record_run`` and the submit bookkeeping).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from winslow import metrics
from winslow.core.commands import Change, Decider, RunOverrides
from winslow.core.models import Project, Run
from winslow.core.planner import Decision, SkipRun, StartRun, current_run_sets
from winslow.core.states import ProjectState, StageRunState, can_move_project, can_move_run
from winslow.engine.specs import new_run_fields, overrides_for, run_identity
from winslow.errors import ConflictError
from winslow.pipeline.model import Pipeline, combination_key
from winslow.store.repo import Store
from winslow.store.rows import now
from winslow.store.transaction import ProjectTransaction

log = logging.getLogger(__name__)


# -- projects ------------------------------------------------------------------------------


def move_project(
    tx: ProjectTransaction,
    target: ProjectState,
    *,
    reason: str | None,
    actor: str,
    waiting_for: dict[str, Any] | None = None,
) -> None:
    """Move the locked project to ``target`` with ``reason``, or raise ``ConflictError``."""
    project = tx.project
    changes: dict[str, Any] = {"state_reason": reason, "waiting_for": dict(waiting_for or {})}
    if project.state is not target:
        if not can_move_project(project.state, target):
            raise ConflictError(
                f"Project '{project.name}' is {project.state.value}; "
                f"it cannot become {target.value}."
            )
        changes.update(state=target, state_changed_at=now())
        tx.add_event(
            actor,
            "state",
            f"{project.state.value} → {target.value}" + (f": {reason}" if reason else ""),
            {"from": project.state.value, "to": target.value, "reason": reason},
        )
        log.info(
            "project %s: %s → %s (%s)", project.name, project.state.value, target.value, reason
        )
    tx.update_project(**changes)


def apply_command(store: Store, ref: str, decide: Decider, actor: str) -> Project:
    """Decide and write one person's command on project ``ref``, atomically.

    ``decide`` sees the project as it is inside the transaction, so of two racing
    commands the second is judged against what the first one did.
    """
    with store.project_transaction(ref) as tx:
        project = tx.project
        change = decide(project, Pipeline.model_validate(project.pipeline), tx.runs())
        if change.name is not None and change.name != project.name and tx.name_taken(change.name):
            raise ConflictError(
                f"A project named '{change.name}' exists already; choose another name."
            )
        tx.update_runs(change.supersede_runs, superseded=True)
        tx.update_runs(change.cancel_runs, cancel_requested=True)
        tx.add_event(actor, change.kind, change.message, change.data)
        tx.update_project(**_project_changes(project, change))
        if change.state is not None:
            move_project(tx, change.state, reason=change.state_reason, actor=actor)
        return tx.project


def _project_changes(project: Project, change: Change) -> dict[str, Any]:
    """The fields of ``project`` that ``change`` writes (state aside)."""
    changes: dict[str, Any] = {}
    if change.name is not None:
        changes["name"] = change.name
    if change.pipeline is not None:
        changes["pipeline"] = change.pipeline
        changes["pipeline_name"] = change.pipeline_name or project.pipeline_name
    if change.variables is not None:
        changes["variables"] = change.variables
    if change.labels is not None:
        changes["labels"] = change.labels
    if change.sets_retention:
        changes["retention"] = change.retention
    if change.run_overrides is not None:
        changes["run_overrides"] = change.run_overrides
    if change.hold_after is not None:
        changes["hold_after"] = change.hold_after
    if change.approve_gates:
        changes["approved_gates"] = project.approved_gates | change.approve_gates
    return changes


def delete_project(
    store: Store, project_id: str, check: Callable[[Project, list[Run]], None]
) -> None:
    """Delete the project's rows once ``check`` (which raises ``ConflictError`` to refuse)
    passes on the project and runs as they are under the lock."""
    with store.project_transaction(project_id) as tx:
        check(tx.project, tx.runs())
        tx.delete_project()


# -- the engine's decisions ----------------------------------------------------------------


def carry_out(store: Store, project: Project, pipeline: Pipeline, decision: Decision) -> bool:
    """Write ``decision``, taken on ``project`` as it was read: create and skip runs, use up
    approvals and overrides, move the project. Return False, writing nothing, when a
    command changed the project since (decide again on what it left)."""
    with store.project_transaction(project.id) as tx:
        if tx.project.version != project.version:
            return False
        runs = tx.runs()
        current = current_run_sets(runs)
        pending = {stage: dict(values) for stage, values in project.run_overrides.items()}
        for start in decision.starts:
            overrides = overrides_for(start, pending, runs, current)
            _create_run(tx, project, pipeline, start, overrides)
        for skip in decision.skips:
            _create_skipped_run(tx, skip)
        started = {start.stage for start in decision.starts}
        changes: dict[str, Any] = {"approved_gates": project.approved_gates - started}
        if started & pending.keys():
            changes["run_overrides"] = {k: v for k, v in pending.items() if k not in started}
        tx.update_project(**changes)
        if decision.move is not None:
            move_project(
                tx,
                decision.move.state,
                reason=decision.move.reason,
                actor="engine",
                waiting_for=dict(decision.move.waiting_for),
            )
    return True


def _create_run(
    tx: ProjectTransaction,
    project: Project,
    pipeline: Pipeline,
    start: StartRun,
    overrides: dict[str, Any],
) -> None:
    run = tx.add_run(**new_run_fields(pipeline, start, overrides))
    run = tx.update_run(run.id, **run_identity(project, pipeline, start, overrides, run.id))
    which = f"run {run.id} of '{start.stage}'"
    if start.combination:
        which += f" [{combination_key(dict(start.combination))}]"
    message = f"{which} (attempt {start.attempt}) created: {start.reason}"
    if overrides:
        message += f"; for this run only: {RunOverrides.from_json(overrides).describe()}"
    tx.add_event(
        "engine",
        "run",
        message,
        {
            "run": run.id,
            "stage": start.stage,
            "attempt": start.attempt,
            "combination": dict(start.combination),
            "overrides": overrides,
        },
    )
    log.info("project %s: %s created", project.name, which)


def _create_skipped_run(tx: ProjectTransaction, skip: SkipRun) -> None:
    at = now()
    run = tx.add_run(
        stage=skip.stage,
        attempt=1,
        state=StageRunState.SKIPPED,
        created_at=at,
        ended_at=at,
        reason=skip.reason,
    )
    tx.add_event(
        "engine",
        "run",
        f"run {run.id} of '{skip.stage}': skipped: {skip.reason}",
        {"run": run.id, "stage": skip.stage, "state": "skipped", **dict(skip.data)},
    )
    log.info("project %s: stage %s skipped: %s", tx.project.name, skip.stage, skip.reason)


def mark_workspaces_pruned(
    store: Store, project_id: str, run_ids: list[int], message: str, data: dict[str, Any]
) -> None:
    """Record that the runs' workspaces were pruned, with one history line."""
    with store.project_transaction(project_id) as tx:
        tx.update_runs(run_ids, workspace_pruned=True)
        tx.add_event("engine", "retention", message, data)


# -- runs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunUpdate:
    """What the backend told us of a run."""

    state: StageRunState
    node: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    log_tail: tuple[str, ...] = ()
    results: dict[str, Any] | None = None
    """What the run reported, read once it ended."""


def _run_transaction(
    store: Store, run_id: int, project_id: str | None = None
) -> AbstractContextManager[ProjectTransaction] | None:
    """The transaction of the project that run ``run_id`` belongs to (``None`` if none);
    ``project_id``, where the caller has it, saves looking it up."""
    project_id = project_id or store.run_project_id(run_id)
    if project_id is None:
        return None
    return store.project_transaction(project_id)


def record_run(
    store: Store, run_id: int, update: RunUpdate, *, project_id: str | None = None
) -> Run | None:
    """Record a run's new state; return the run, or ``None`` if nothing changed.
    ``project_id``: the run's project, where the caller knows it (one query less)."""
    transaction = _run_transaction(store, run_id, project_id)
    if transaction is None:
        return None
    with transaction as tx:
        run = tx.run(run_id)
        if run is None:
            return None
        if run.state is update.state:
            if update.node and not run.node:
                tx.update_run(run_id, node=update.node)
            return None
        if not can_move_run(run.state, update.state):
            log.warning(
                "run %s: backend reports %s after %s; ignored",
                run_id,
                update.state.value,
                run.state.value,
            )
            return None
        words = f"run {run.id} of '{run.stage}' (attempt {run.attempt}): {update.state.value}"
        if update.state is not StageRunState.RUNNING and update.reason:
            words += f": {update.reason}"
        recorded = tx.update_run(run_id, **_run_changes(run, update))
        tx.add_event(
            "engine",
            "run",
            words,
            {
                "run": run.id,
                "stage": run.stage,
                "state": update.state.value,
                "exit_code": recorded.exit_code,
            },
        )
        log.info("project %s: %s", tx.project.name, words)
        _observe(run, recorded)
        return recorded


def _observe(before: Run, after: Run) -> None:
    """Feed a run's queue time (once it started) and run time (once it ended) to
    ``/metrics``; ``_run_changes`` gives an ended run a start, so both come once."""
    if before.started_at is None and after.started_at is not None:
        queued = (after.started_at - before.created_at).total_seconds()
        metrics.observe_run_start(after.stage, queued)
    if before.ended_at is None and after.ended_at is not None and after.started_at is not None:
        ran = (after.ended_at - after.started_at).total_seconds()
        metrics.observe_run_end(after.stage, after.state.value, ran)


def _run_changes(run: Run, update: RunUpdate) -> dict[str, Any]:
    """The fields of ``run`` that ``update`` writes; a reported value wins over a known one."""
    changes: dict[str, Any] = {
        "state": update.state,
        "node": update.node or run.node,
        "started_at": update.started_at or run.started_at,
        "exit_code": update.exit_code if update.exit_code is not None else run.exit_code,
        "reason": update.reason or run.reason,
    }
    if update.state is not StageRunState.RUNNING:
        changes["ended_at"] = update.ended_at or now()
        changes["started_at"] = changes["started_at"] or changes["ended_at"]
    if update.log_tail:
        changes["log_tail"] = update.log_tail
    if update.results is not None:
        changes["results"] = update.results
    return changes


def cancel_unsubmitted(store: Store, run_id: int) -> Run | None:
    """Cancel a run that was never handed to the backend; return it as it is now.

    A run that was submitted meanwhile is returned unchanged: the backend stops that one.
    """
    transaction = _run_transaction(store, run_id)
    if transaction is None:
        return None
    with transaction as tx:
        run = tx.run(run_id)
        if run is None or not run.active or run.submitted:
            return run
        if not can_move_run(run.state, StageRunState.CANCELLED):
            return run
        tx.add_event(
            "engine",
            "run",
            f"run {run.id} of '{run.stage}': cancelled before it started",
            {"run": run.id, "state": "cancelled"},
        )
        return tx.update_run(
            run_id,
            state=StageRunState.CANCELLED,
            ended_at=now(),
            reason="killed before it started",
        )


def mark_submitted(
    store: Store,
    run_id: int,
    node: str | None,
    gpus: tuple[int, ...],
    *,
    project_id: str | None = None,
) -> Run | None:
    """Mark a pending run as handed to the backend (on ``node`` with ``gpus`` where the
    engine placed it); ``None`` if it is no longer a pending, unsubmitted run.
    ``project_id``: the run's project, where the caller knows it (one query less)."""
    transaction = _run_transaction(store, run_id, project_id)
    if transaction is None:
        return None
    with transaction as tx:
        run = tx.run(run_id)
        if run is None or run.submitted or run.state is not StageRunState.PENDING:
            return None
        return tx.update_run(run_id, submitted=True, node=node, gpu_indices=gpus, reason=None)


def mark_unsubmitted(store: Store, run_id: int) -> None:
    """Forget that a run was handed to the backend (it never got there); it is submitted
    again under the same job ID."""
    transaction = _run_transaction(store, run_id)
    if transaction is None:
        return
    with transaction as tx:
        if tx.run(run_id) is not None:
            tx.update_run(run_id, submitted=False)


def note_pending(store: Store, run: Run, reason: str) -> bool:
    """Say why a pending run waits (no node fits, Nomad has no room); return whether that
    is news. Each new reason lands in the history once."""
    if run.reason == reason:
        return False
    transaction = _run_transaction(store, run.id)
    if transaction is None:
        return False
    with transaction as tx:
        current = tx.run(run.id)
        if current is None or current.state is not StageRunState.PENDING:
            return False
        tx.update_run(run.id, reason=reason)
        tx.add_event(
            "engine",
            "pending",
            f"run {run.id} of '{run.stage}' is pending: {reason}",
            {"run": run.id},
        )
    log.info("project %s: run %s pending: %s", run.project_id, run.id, reason)
    return True


def fall_back_to_cpu(store: Store, run: Run, reason: str) -> Run | None:
    """Let a pending, unsubmitted run go without the GPUs no node has (its stage allows
    it), saying why on the run and in the history; the changed run, or ``None`` if it is
    no longer such a run."""
    transaction = _run_transaction(store, run.id)
    if transaction is None:
        return None
    with transaction as tx:
        current = tx.run(run.id)
        if current is None or current.submitted or current.state is not StageRunState.PENDING:
            return None
        changed = tx.update_run(run.id, gpus=0, gpu_indices=(), reason=reason)
        tx.add_event(
            "engine",
            "gpu-fallback",
            f"run {run.id} of '{run.stage}' asked for {current.gpus} GPU"
            f"{'s' if current.gpus != 1 else ''}: {reason}",
            {"run": run.id, "gpus": current.gpus},
        )
    log.info("project %s: run %s falls back to the CPU: %s", run.project_id, run.id, reason)
    return changed
