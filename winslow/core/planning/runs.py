"""Where a project's runs leave it: which runs count, where each stage stands, what stages see.

A stage's *current* run is its latest run that no resume or redo has superseded. Old
runs stay in the history; only current runs count for what happens next. A stage that
sweeps has one current run per combination of its sweep values; it is done when all of
them are (or, with ``continue_on_failure``, when all ended and one succeeded).

Plain functions of runs and the definition; the rules (``rules.py``), the commands and the
engine read the same answers from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from winslow.core.models import Run
from winslow.core.states import StageRunState
from winslow.pipeline.interpolate import BUILTIN_VARIABLES, missing_for_stage
from winslow.pipeline.model import Confirmation, Pipeline, Stage, combination_key


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
