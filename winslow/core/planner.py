"""Decide what a project needs next: a pure function of its definition, state and runs.

The engine observes (store and backend), calls ``decide`` and carries the decision out.
Pipelines are graphs: a stage starts once every stage it needs has a current successful
run, so independent branches start together and "the current stage" is a set.

A stage's *current* run is its latest run that no resume or redo has superseded. Old
runs stay in the history; only current runs count for what happens next. A stage that
sweeps has one current run per combination of its sweep values; it is done when all of
them are (or, with ``continue_on_failure``, when all ended and one succeeded).

A stage whose ``when`` condition is false gets one run in the state ``skipped`` that says
why; a stage all of whose needs were skipped is skipped too, so a route not taken ends
quietly while a join of a taken and an untaken route still runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from winslow.core.models import Project, Run
from winslow.core.states import (
    ADVANCING_PROJECT_STATES,
    UNSUCCESSFUL_RUN_STATES,
    ProjectState,
    StageRunState,
)
from winslow.pipeline.conditions import ConditionError, evaluate
from winslow.pipeline.interpolate import BUILTIN_VARIABLES, missing_for_stage
from winslow.pipeline.model import (
    Confirmation,
    Pipeline,
    Stage,
    SweepWorkspace,
    combination_key,
)


@dataclass(frozen=True)
class StartRun:
    """Create a run of ``stage`` with this attempt number."""

    stage: str
    attempt: int
    reason: str
    combination: Mapping[str, str] = field(default_factory=dict)
    """The sweep values of this run; empty unless the stage sweeps."""


@dataclass(frozen=True)
class SkipRun:
    """Record that ``stage`` does not run this time, and why."""

    stage: str
    reason: str
    data: Mapping[str, Any] = field(default_factory=dict)


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
    skips: tuple[SkipRun, ...] = ()
    move: MoveProject | None = None

    @property
    def empty(self) -> bool:
        return not self.starts and not self.skips and self.move is None


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
    swept = {name: "" for name in stage.sweep.over} if stage.sweep is not None else {}
    known = {**placeholders, **swept, **values}
    missing = set(missing_for_stage(stage, known))
    missing |= {
        name for name, var in pipeline.variables.items() if var.required and not values.get(name)
    }
    missing |= {
        name for name in stage.required_variables if not values.get(name) and name not in swept
    }
    return sorted(missing)


def needs_confirmation(stage: Stage, runs: Iterable[Run]) -> bool:
    """Whether a person must let ``stage`` start now (its confirmation mode and its past).

    A skipped run never counted as a start; a sweep's later combinations are part of the
    start a person already let happen (the caller asks only when none is current).
    """
    mode = stage.confirm
    if mode is Confirmation.ALWAYS:
        return True
    if mode is Confirmation.ONCE:
        return not any(
            run.stage == stage.name and run.state is not StageRunState.SKIPPED for run in runs
        )
    return False


RunSet = dict[str, Run]
"""One stage's current runs by combination key (``""`` for a stage that does not sweep)."""


def current_run_sets(runs: Iterable[Run]) -> dict[str, RunSet]:
    """Return each stage's current runs: per combination, the latest not superseded."""
    current: dict[str, RunSet] = {}
    for run in sorted(runs, key=lambda r: r.id):
        if not run.superseded:
            current.setdefault(run.stage, {})[run.combination_key] = run
    return current


def current_run_list(runs: Iterable[Run]) -> list[Run]:
    """Every current run of every stage, oldest first."""
    found = [run for run_set in current_run_sets(runs).values() for run in run_set.values()]
    return sorted(found, key=lambda run: run.id)


def current_runs(runs: Iterable[Run]) -> dict[str, Run]:
    """Return each stage's latest current run (for a sweep: its latest combination)."""
    latest: dict[str, Run] = {}
    for run in current_run_list(runs):
        latest[run.stage] = run
    return latest


class StageStatus(str, Enum):
    """Where a stage stands, all its combinations taken together."""

    NOT_DONE = "not_done"
    """No current run yet for some combination, or some still run."""
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"


def tolerated(stage: Stage, run: Run) -> bool:
    """Whether a failed run of ``stage`` lets the pipeline go on (a lenient sweep)."""
    return (
        stage.sweep is not None
        and stage.sweep.continue_on_failure
        and run.state in (StageRunState.FAILED, StageRunState.LOST)
        and not run.cancel_requested
    )


def stage_status(stage: Stage, run_set: Mapping[str, Run]) -> StageStatus:
    """Return where ``stage`` stands given its current runs."""
    if any(run.state is StageRunState.SKIPPED for run in run_set.values()):
        return StageStatus.SKIPPED
    runs = [run_set.get(combination_key(combo)) for combo in stage.combinations]
    if any(run is None or run.active for run in runs):
        return StageStatus.NOT_DONE
    ended = [run for run in runs if run is not None]
    if all(run.state is StageRunState.SUCCEEDED for run in ended):
        return StageStatus.SUCCEEDED
    if any(run.state is StageRunState.SUCCEEDED for run in ended) and all(
        run.state is StageRunState.SUCCEEDED or tolerated(stage, run) for run in ended
    ):
        return StageStatus.SUCCEEDED
    return StageStatus.FAILED


def succeeded_in_sweep_order(stage: Stage, run_set: Mapping[str, Run]) -> list[Run]:
    """The stage's current succeeded runs, in the order of its combinations."""
    found = []
    for combo in stage.combinations:
        run = run_set.get(combination_key(combo))
        if run is not None and run.state is StageRunState.SUCCEEDED:
            found.append(run)
    return found


def results_view(pipeline: Pipeline, current: Mapping[str, RunSet]) -> dict[str, Any]:
    """The ``results`` a ``when`` condition sees: each stage's succeeded results.

    A stage that sweeps gives a list, one entry per succeeded combination holding its sweep
    values and its results, in the order of the sweep.
    """
    view: dict[str, Any] = {}
    for stage in pipeline.stages:
        succeeded = succeeded_in_sweep_order(stage, current.get(stage.name, {}))
        if stage.sweep is not None:
            if succeeded:
                view[stage.name] = [{**run.combination, **run.results} for run in succeeded]
        elif succeeded:
            view[stage.name] = dict(succeeded[0].results)
    return view


def _retries_allowed(stage: Stage, run: Run) -> bool:
    limit = stage.retry.on_lost if run.state is StageRunState.LOST else stage.retry.on_failure
    return run.attempt <= limit


def _describe_end(run: Run) -> str:
    which = f"stage '{run.stage}'" + (f" [{run.combination_key}]" if run.combination else "")
    if run.state is StageRunState.FAILED:
        what = run.reason or (
            f"exited with code {run.exit_code}" if run.exit_code is not None else "failed"
        )
        return f"{which} (run {run.id}) failed: {what}"
    if run.state is StageRunState.LOST:
        return f"{which} (run {run.id}) was lost: {run.reason or 'no reason known'}"
    return f"{which} (run {run.id}) was killed"


def decide(project: Project, pipeline: Pipeline, runs: list[Run]) -> Decision:
    """Return what ``project`` needs now. Only advancing projects ever need anything."""
    if project.state not in ADVANCING_PROJECT_STATES:
        return Decision()
    current = current_run_sets(runs)
    active = [run for run_set in current.values() for run in run_set.values() if run.active]
    # "Run only this stage, then pause": nothing else may start, nothing else stops it.
    allowed = project.hold_after or {stage.name for stage in pipeline.stages}

    # Failures first: a retry is the run's own business, an exhausted one stops the project.
    retries: list[StartRun] = []
    stopped: list[Run] = []
    for stage in pipeline.stages:
        if stage.name not in allowed:
            continue
        for run in current.get(stage.name, {}).values():
            if run.state not in UNSUCCESSFUL_RUN_STATES:
                continue
            if (
                run.state is not StageRunState.CANCELLED
                and not run.cancel_requested
                and _retries_allowed(stage, run)
            ):
                retries.append(
                    StartRun(
                        stage.name,
                        run.attempt + 1,
                        f"retry after: {_describe_end(run)}",
                        dict(run.combination),
                    )
                )
            elif not tolerated(stage, run):
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
    results = results_view(pipeline, current)
    starts: list[StartRun] = list(retries)
    skips: list[SkipRun] = []
    retrying = {(start.stage, combination_key(dict(start.combination))) for start in retries}
    waiting: MoveProject | None = None
    status = {
        stage.name: stage_status(stage, current.get(stage.name, {})) for stage in pipeline.stages
    }
    for stage in pipeline.stages:
        if stage.name not in allowed:
            continue
        run_set = current.get(stage.name, {})
        if any(run.state is StageRunState.SKIPPED for run in run_set.values()):
            continue
        missing_combos = [
            combo
            for combo in stage.combinations
            if (key := combination_key(combo)) not in run_set and (stage.name, key) not in retrying
        ]
        if not missing_combos:
            continue
        needs = pipeline.needs_of(stage.name)
        need_status = [status.get(need, StageStatus.NOT_DONE) for need in needs]
        if not all(s in (StageStatus.SUCCEEDED, StageStatus.SKIPPED) for s in need_status):
            continue
        if needs and all(s is StageStatus.SKIPPED for s in need_status):
            skips.append(
                SkipRun(
                    stage.name,
                    f"every stage it needs was skipped ({', '.join(needs)})",
                    {"needs_skipped": needs},
                )
            )
            continue
        missing = missing_variables(pipeline, stage, values)
        if stage.when is not None and not run_set:
            try:
                verdict = evaluate(stage.when, results, values)
            except ConditionError as exc:
                if not missing:
                    return Decision(
                        move=MoveProject(
                            ProjectState.FAILED,
                            f"stage '{stage.name}' cannot decide whether to run: {exc}; "
                            "fix the condition or the results, then resume",
                        )
                    )
            else:
                if not verdict.passed:
                    skips.append(
                        SkipRun(
                            stage.name,
                            verdict.describe(stage.when),
                            {"condition": stage.when, "values": verdict.values},
                        )
                    )
                    continue
        if missing:
            waiting = waiting or MoveProject(
                ProjectState.AWAITING_INPUT,
                f"stage '{stage.name}' needs the variables {', '.join(missing)}; "
                "set them, then resume",
                {"stage": stage.name, "variables": missing},
            )
            continue
        if (
            not run_set
            and needs_confirmation(stage, runs)
            and stage.name not in project.approved_gates
        ):
            waiting = waiting or MoveProject(
                ProjectState.AWAITING_INPUT,
                f"stage '{stage.name}' waits for a person; resume to start it",
                {"stage": stage.name, "gate": stage.name},
            )
            continue
        if stage.sweep is not None and stage.sweep.workspace is SweepWorkspace.SHARED:
            # One workspace: each combination continues where the one before left it.
            if any(run.active for run in run_set.values()) or any(
                start.stage == stage.name for start in starts
            ):
                continue
            missing_combos = missing_combos[:1]
        reason = "its needs succeeded" if needs else "first stage"
        starts.extend(StartRun(stage.name, 1, reason, combo) for combo in missing_combos)

    if starts or active:
        return Decision(starts=tuple(starts), skips=tuple(skips))
    if skips:
        return Decision(skips=tuple(skips))
    if waiting is not None:
        return Decision(move=waiting)
    if project.hold_after:
        held = ", ".join(f"'{name}'" for name in sorted(project.hold_after))
        return Decision(
            move=MoveProject(
                ProjectState.PAUSED,
                f"ran only stage {held} as asked; resume to go on",
            )
        )
    if all(s in (StageStatus.SUCCEEDED, StageStatus.SKIPPED) for s in status.values()):
        skipped = [name for name, s in status.items() if s is StageStatus.SKIPPED]
        reason = "every stage succeeded"
        if skipped:
            reason = f"every stage succeeded or was skipped (skipped: {', '.join(skipped)})"
        return Decision(move=MoveProject(ProjectState.SUCCEEDED, reason))
    # Nothing can start and nothing runs, yet stages are left: a definition change removed
    # what they need. Say so rather than spin.
    return Decision(
        move=MoveProject(
            ProjectState.PAUSED,
            "no stage can start: the remaining stages need stages that have not succeeded",
        )
    )
