"""The one place that writes project and run state.

Every write locks the project row first (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE``
on PostgreSQL), checks the transition tables of ``core/states.py``, and writes the new
state together with its history line in the same transaction. A refused transition is
a ``ConflictError`` with the reason, never a half-written project.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from winslow.core.commands import Decider
from winslow.core.models import Project, Run
from winslow.core.states import ProjectState, StageRunState, can_move_project, can_move_run
from winslow.errors import ConflictError
from winslow.pipeline.model import Pipeline
from winslow.store.repo import Store, now, to_project, to_run
from winslow.store.tables import ProjectRow, RunRow

log = logging.getLogger(__name__)


def move_project(
    store: Store,
    session: Session,
    row: ProjectRow,
    target: ProjectState,
    *,
    reason: str | None,
    actor: str,
    waiting_for: dict[str, Any] | None = None,
) -> None:
    """Move the locked project ``row`` to ``target``, or raise ``ConflictError``."""
    current = ProjectState(row.state)
    if current is not target:
        if not can_move_project(current, target):
            raise ConflictError(
                f"Project '{row.name}' is {current.value}; it cannot become {target.value}."
            )
        row.state = target.value
        row.state_changed_at = now()
        store.add_event(
            session,
            row.id,
            actor,
            "state",
            f"{current.value} → {target.value}" + (f": {reason}" if reason else ""),
            {"from": current.value, "to": target.value, "reason": reason},
        )
        log.info("project %s: %s → %s (%s)", row.name, current.value, target.value, reason)
    row.state_reason = reason
    row.waiting_for = dict(waiting_for or {})
    row.version += 1
    row.updated_at = now()


def apply_command(store: Store, ref: str, decide: Decider, actor: str) -> Project:
    """Decide and write one person's command on project ``ref``, atomically.

    ``decide`` sees the project as it is inside the transaction, so of two racing
    commands the second is judged against what the first one did.
    """
    with store.transaction() as session:
        row = store.lock_project(session, ref)
        project = to_project(row)
        runs = store.runs(project.id, session)
        change = decide(project, Pipeline.model_validate(project.pipeline), runs)
        if change.name is not None and change.name != row.name:
            taken = session.scalars(
                select(ProjectRow.id).where(ProjectRow.name == change.name)
            ).first()
            if taken:
                raise ConflictError(
                    f"A project named '{change.name}' exists already; choose another name."
                )
            row.name = change.name
        if change.pipeline is not None:
            row.pipeline = change.pipeline
            row.pipeline_name = change.pipeline_name or row.pipeline_name
        if change.variables is not None:
            row.variables = change.variables
        if change.labels is not None:
            row.labels = list(change.labels)
        if change.sets_retention:
            row.retention = (
                change.retention.model_dump(mode="json") if change.retention is not None else None
            )
        if change.run_overrides is not None:
            row.run_overrides = change.run_overrides
        if change.hold_after is not None:
            row.hold_after = sorted(change.hold_after)
        if change.approve_gates:
            row.approved_gates = sorted(set(row.approved_gates or ()) | change.approve_gates)
        if change.supersede_runs or change.cancel_runs:
            for run_row in session.scalars(
                select(RunRow).where(RunRow.id.in_([*change.supersede_runs, *change.cancel_runs]))
            ):
                if run_row.id in change.supersede_runs:
                    run_row.superseded = True
                if run_row.id in change.cancel_runs:
                    run_row.cancel_requested = True
        store.add_event(session, row.id, actor, change.kind, change.message, change.data)
        if change.state is not None:
            move_project(store, session, row, change.state, reason=change.state_reason, actor=actor)
        else:
            row.version += 1
            row.updated_at = now()
        session.flush()
        return to_project(row)


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


def update_run(store: Store, run_id: int, update: RunUpdate) -> Run | None:
    """Record a run's new state; return the run, or ``None`` if nothing changed."""
    with store.transaction() as session:
        row = session.get(RunRow, run_id)
        if row is None:
            return None
        project = store.lock_project(session, row.project_id)
        current = StageRunState(row.state)
        if current is update.state:
            if update.node and not row.node:
                row.node = update.node
            return None
        if not can_move_run(current, update.state):
            log.warning(
                "run %s: backend reports %s after %s; ignored",
                run_id,
                update.state.value,
                current.value,
            )
            return None
        row.state = update.state.value
        row.node = update.node or row.node
        row.started_at = update.started_at or row.started_at
        if update.state is not StageRunState.RUNNING:
            row.ended_at = update.ended_at or now()
            row.started_at = row.started_at or row.ended_at
        row.exit_code = update.exit_code if update.exit_code is not None else row.exit_code
        row.reason = update.reason or row.reason
        if update.log_tail:
            row.log_tail = list(update.log_tail)
        if update.results is not None:
            row.results = update.results
        words = f"run {row.id} of '{row.stage}' (attempt {row.attempt}): {update.state.value}"
        if update.state is not StageRunState.RUNNING and update.reason:
            words += f": {update.reason}"
        store.add_event(
            session,
            row.project_id,
            "engine",
            "run",
            words,
            {
                "run": row.id,
                "stage": row.stage,
                "state": update.state.value,
                "exit_code": row.exit_code,
            },
        )
        log.info("project %s: %s", project.name, words)
        return to_run(row)
