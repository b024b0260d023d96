"""Decide what a project needs next: a pure function of its definition, state and runs.

The engine observes (store and backend), calls ``decide`` and carries the decision out.
Pipelines are graphs: a stage starts once every stage it needs has a current successful
run, so independent branches start together and "the current stage" is a set.

A stage's *current* run is its latest run that no resume or redo has superseded. Old
runs stay in the history; only current runs count for what happens next.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from winslow.core.models import Project, Run
from winslow.core.states import (
    ADVANCING_PROJECT_STATES,
    ProjectState,
    StageRunState,
)
from winslow.pipeline.interpolate import BUILTIN_VARIABLES, missing_for_stage
from winslow.pipeline.model import Confirmation, Pipeline, Stage


@dataclass(frozen=True)
class StartRun:
    """Create a run of ``stage`` with this attempt number."""

    stage: str
    attempt: int
    reason: str


@dataclass(frozen=True)
class MoveProject:
    """Put the project into ``state`` and say why."""

    state: ProjectState
    reason: str | None = None
    waiting_for: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """Everything the engine should do for one project now; empty means nothing.

    Killing is not decided here: a kill marks its runs ``cancel_requested``, and the
    engine stops every such run it sees still active.
    """

    starts: tuple[StartRun, ...] = ()
    move: MoveProject | None = None

    @property
    def empty(self) -> bool:
        return not self.starts and self.move is None


def effective_variables(pipeline: Pipeline, project_variables: Mapping[str, str]) -> dict[str, str]:
    """Return the values stages see: pipeline defaults overridden by the project's."""
    values = {
        name: var.default for name, var in pipeline.variables.items() if var.default is not None
    }
    values.update(project_variables)
    return values


def missing_variables(pipeline: Pipeline, stage: Stage, values: Mapping[str, str]) -> list[str]:
    """Return the variables ``stage`` cannot start without, sorted.

    Those are the pipeline's required variables without a value, the stage's own required
    variables without one, and every variable the stage references that has no value.
    """
    placeholders = {name: "" for name in BUILTIN_VARIABLES}
    known = {**placeholders, **values}
    missing = set(missing_for_stage(stage, known))
    missing |= {
        name for name, var in pipeline.variables.items() if var.required and not values.get(name)
    }
    missing |= {name for name in stage.required_variables if not values.get(name)}
    return sorted(missing)


def needs_confirmation(stage: Stage, runs: Iterable[Run]) -> bool:
    """Whether a person must let ``stage`` start now (its confirmation mode and its past)."""
    mode = stage.confirm
    if mode is Confirmation.ALWAYS:
        return True
    if mode is Confirmation.ONCE:
        return not any(run.stage == stage.name for run in runs)
    return False


def current_runs(runs: Iterable[Run]) -> dict[str, Run]:
    """Return each stage's latest run that has not been superseded."""
    current: dict[str, Run] = {}
    for run in sorted(runs, key=lambda r: r.id):
        if not run.superseded:
            current[run.stage] = run
    return current


def _retries_allowed(stage: Stage, run: Run) -> bool:
    limit = stage.retry.on_lost if run.state is StageRunState.LOST else stage.retry.on_failure
    return run.attempt <= limit


def _describe_end(run: Run) -> str:
    if run.state is StageRunState.FAILED:
        what = run.reason or (
            f"exited with code {run.exit_code}" if run.exit_code is not None else "failed"
        )
        return f"stage '{run.stage}' (run {run.id}) failed: {what}"
    if run.state is StageRunState.LOST:
        return f"stage '{run.stage}' (run {run.id}) was lost: {run.reason or 'no reason known'}"
    return f"stage '{run.stage}' (run {run.id}) was killed"


def decide(project: Project, pipeline: Pipeline, runs: list[Run]) -> Decision:
    """Return what ``project`` needs now. Only advancing projects ever need anything."""
    if project.state not in ADVANCING_PROJECT_STATES:
        return Decision()
    current = current_runs(runs)
    active = [run for run in current.values() if run.active]

    # Failures first: a retry is the run's own business, an exhausted one stops the project.
    retries: list[StartRun] = []
    stopped: list[Run] = []
    for stage in pipeline.stages:
        run = current.get(stage.name)
        if run is None or run.state not in (
            StageRunState.FAILED,
            StageRunState.LOST,
            StageRunState.CANCELLED,
        ):
            continue
        if (
            run.state is not StageRunState.CANCELLED
            and not run.cancel_requested
            and (_retries_allowed(stage, run))
        ):
            retries.append(
                StartRun(stage.name, run.attempt + 1, f"retry after: {_describe_end(run)}")
            )
        else:
            stopped.append(run)

    if project.state is ProjectState.PAUSING:
        if active:
            return Decision()
        killed = [r for r in stopped if r.state is StageRunState.CANCELLED]
        failed = [r for r in stopped if r.state is not StageRunState.CANCELLED]
        if failed:
            return Decision(move=MoveProject(ProjectState.FAILED, _describe_end(failed[0])))
        reason = _describe_end(killed[0]) if killed else "paused after the current stage"
        return Decision(move=MoveProject(ProjectState.PAUSED, reason))

    if stopped:
        if active:
            return Decision()
        first = stopped[0]
        if first.state is StageRunState.CANCELLED:
            return Decision(move=MoveProject(ProjectState.PAUSED, _describe_end(first)))
        return Decision(move=MoveProject(ProjectState.FAILED, _describe_end(first)))

    values = effective_variables(pipeline, project.variables)
    starts: list[StartRun] = list(retries)
    retrying = {start.stage for start in retries}
    waiting: MoveProject | None = None
    for stage in pipeline.stages:
        run = current.get(stage.name)
        if stage.name in retrying or run is not None:
            continue
        needs = pipeline.needs_of(stage.name)
        if not all(
            current.get(need) is not None and current[need].state is StageRunState.SUCCEEDED
            for need in needs
        ):
            continue
        missing = missing_variables(pipeline, stage, values)
        if missing:
            waiting = waiting or MoveProject(
                ProjectState.AWAITING_INPUT,
                f"stage '{stage.name}' needs the variables {', '.join(missing)}; "
                "set them, then resume",
                {"stage": stage.name, "variables": missing},
            )
            continue
        if needs_confirmation(stage, runs) and stage.name not in project.approved_gates:
            waiting = waiting or MoveProject(
                ProjectState.AWAITING_INPUT,
                f"stage '{stage.name}' waits for a person; resume to start it",
                {"stage": stage.name, "gate": stage.name},
            )
            continue
        starts.append(StartRun(stage.name, 1, "its needs succeeded" if needs else "first stage"))

    if starts or active:
        return Decision(starts=tuple(starts))
    if waiting is not None:
        return Decision(move=waiting)
    if all(
        current.get(s.name) is not None and current[s.name].state is StageRunState.SUCCEEDED
        for s in pipeline.stages
    ):
        return Decision(move=MoveProject(ProjectState.SUCCEEDED, "every stage succeeded"))
    # Nothing can start and nothing runs, yet stages are left: a definition change removed
    # what they need. Say so rather than spin.
    return Decision(
        move=MoveProject(
            ProjectState.PAUSED,
            "no stage can start: the remaining stages need stages that have not succeeded",
        )
    )
