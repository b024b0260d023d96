"""What a person's command does to a project, decided without touching anything.

Each function takes the project as it is now and returns a ``Change`` (or raises
``ConflictError`` with the reason and the way out). ``engine/transitions.py`` writes the
change and its history line in one transaction, so two racing commands are serialised:
the second one is decided against the state the first one left.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from winslow.core.models import Project, Run
from winslow.core.planner import current_runs
from winslow.core.retention import describe_retention
from winslow.core.states import TERMINAL_RUN_STATES, ProjectState, StageRunState
from winslow.errors import ConflictError, ValidationError
from winslow.pipeline.model import (
    NAME_PATTERN,
    VARIABLE_PATTERN,
    Confirmation,
    Pipeline,
    RetentionPolicy,
)

LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:=/-]{0,62}$"


@dataclass(frozen=True)
class Change:
    """What a command changes; fields left ``None`` stay as they are."""

    kind: str
    message: str
    state: ProjectState | None = None
    state_reason: str | None = None
    approve_gates: frozenset[str] = frozenset()
    supersede_runs: tuple[int, ...] = ()
    cancel_runs: tuple[int, ...] = ()
    variables: dict[str, str] | None = None
    labels: tuple[str, ...] | None = None
    name: str | None = None
    pipeline_name: str | None = None
    pipeline: dict[str, Any] | None = None
    sets_retention: bool = False
    """Write ``retention`` as the project's own (``None`` clears it)."""
    retention: RetentionPolicy | None = None
    data: dict[str, Any] = field(default_factory=dict)


Decider = Callable[[Project, Pipeline, list[Run]], Change]
"""A command: the project, its definition and runs as they are now → the change."""


def _active(runs: Iterable[Run]) -> list[Run]:
    return [run for run in runs if run.active]


def _running_words(project: Project, active: list[Run]) -> str:
    stages = ", ".join(sorted({f"'{run.stage}'" for run in active}))
    return f"Project '{project.name}' is running stage {stages}"


def start(project: Project) -> Change:
    """Start an idle project from its first stages."""
    if project.state is not ProjectState.IDLE:
        raise ConflictError(
            f"Project '{project.name}' was started before and is {project.state.value}; "
            "use resume to go on."
        )
    return Change("start", "started", state=ProjectState.RUNNING, state_reason="started")


def pause(project: Project) -> Change:
    """Ask the project to stop after the stages that run now."""
    if project.state is ProjectState.RUNNING:
        return Change(
            "pause",
            "asked to pause after the current stage",
            state=ProjectState.PAUSING,
            state_reason="pausing after the current stage",
        )
    if project.state is ProjectState.AWAITING_INPUT:
        return Change("pause", "paused", state=ProjectState.PAUSED, state_reason="paused")
    if project.state is ProjectState.PAUSING:
        raise ConflictError(f"Project '{project.name}' is already pausing after its current stage.")
    raise ConflictError(
        f"Project '{project.name}' is {project.state.value}; only a running project can pause."
    )


def resume(
    project: Project, pipeline: Pipeline, runs: list[Run], from_stage: str | None = None
) -> Change:
    """Go on, or start again from ``from_stage`` (its earlier runs stay in the history)."""
    active = _active(runs)
    current = current_runs(runs)
    if project.state is ProjectState.RUNNING:
        hint = " Pause it first to resume from another stage." if from_stage else ""
        if active:
            raise ConflictError(f"{_running_words(project, active)}; nothing to resume.{hint}")
        raise ConflictError(f"Project '{project.name}' is already running; nothing to resume.")
    if from_stage is None:
        if project.state is ProjectState.PAUSING:
            return Change(
                "resume",
                "pause cancelled; goes on",
                state=ProjectState.RUNNING,
                state_reason="resumed",
            )
        gate = project.waiting_for.get("gate")
        unsuccessful = tuple(
            run.id
            for run in current.values()
            if run.state in TERMINAL_RUN_STATES and run.state is not StageRunState.SUCCEEDED
        )
        redone = sorted({r.stage for r in current.values() if r.id in unsuccessful})
        message = "resumed"
        if redone:
            message += f"; runs stage {', '.join(redone)} again"
        if gate:
            message += f"; let gated stage '{gate}' start"
        return Change(
            "resume",
            message,
            state=ProjectState.RUNNING,
            state_reason="resumed",
            approve_gates=frozenset({gate}) if gate else frozenset(),
            supersede_runs=unsuccessful,
            data={"from_stage": None},
        )
    try:
        stage = pipeline.stage(from_stage)
    except KeyError:
        names = ", ".join(s.name for s in pipeline.stages)
        raise ValidationError(
            f"Pipeline '{pipeline.name}' has no stage '{from_stage}'; its stages are: {names}."
        ) from None
    if active:
        raise ConflictError(
            f"{_running_words(project, active)}; wait for it to end or kill it before "
            f"resuming from '{from_stage}'."
        )
    for need in pipeline.needs_of(from_stage):
        run = current.get(need)
        if run is None or run.state is not StageRunState.SUCCEEDED:
            raise ConflictError(
                f"Stage '{from_stage}' needs stage '{need}', which has no successful run yet; "
                f"resume from '{need}' instead."
            )
    redo = pipeline.downstream_of(from_stage)
    superseded = tuple(current[name].id for name in redo if name in current)
    return Change(
        "resume",
        f"resumed from stage '{from_stage}'",
        state=ProjectState.RUNNING,
        state_reason=f"resumed from stage '{from_stage}'",
        # Choosing the stage to go on from is the confirmation it may ask for.
        approve_gates=frozenset({from_stage})
        if stage.confirm is not Confirmation.NEVER
        else frozenset(),
        supersede_runs=superseded,
        data={"from_stage": from_stage, "superseded_runs": list(superseded)},
    )


def kill(project: Project, runs: list[Run]) -> Change:
    """Stop the stages that run now; the project pauses once they have stopped."""
    active = _active(runs)
    if not active:
        raise ConflictError(f"Project '{project.name}' runs no stage now; nothing to kill.")
    stages = ", ".join(sorted({run.stage for run in active}))
    return Change(
        "kill",
        f"killed stage {stages}",
        state=ProjectState.PAUSING if project.state is ProjectState.RUNNING else None,
        state_reason=f"killing stage {stages}",
        cancel_runs=tuple(run.id for run in active),
    )


def check_variables(values: Mapping[str, str]) -> dict[str, str]:
    """Return ``values`` if every name is a valid variable name, else raise."""
    for name in values:
        _check_variable_name(name)
    return {name: str(value) for name, value in values.items()}


def _check_variable_name(name: str) -> None:
    if not re.fullmatch(VARIABLE_PATTERN, name):
        raise ValidationError(
            f"{name!r} is not a valid variable name; use letters, digits and '_', "
            "not starting with a digit."
        )


def set_variables(project: Project, assign: Mapping[str, str], unset: Iterable[str] = ()) -> Change:
    """Set and unset variables; stages started afterwards see the new values."""
    unset = list(unset)
    for name in [*assign, *unset]:
        _check_variable_name(name)
    variables = dict(project.variables)
    variables.update({k: str(v) for k, v in assign.items()})
    for name in unset:
        variables.pop(name, None)
    words = [f"{k}={v}" for k, v in assign.items()] + [f"unset {n}" for n in unset]
    return Change(
        "variables",
        "variables: " + (", ".join(words) or "no change"),
        variables=variables,
        data={"set": dict(assign), "unset": unset},
    )


def check_name(name: str) -> str:
    """Return ``name`` if it can name a project, else raise ``ValidationError``."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise ValidationError(
            f"{name!r} cannot name a project: use 1 to 63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return name


def rename(project: Project, new_name: str) -> Change:
    """Give the project a new name; its id stays."""
    check_name(new_name)
    return Change("rename", f"renamed from '{project.name}' to '{new_name}'", name=new_name)


def check_labels(labels: Iterable[str]) -> tuple[str, ...]:
    """Return the labels sorted without repeats, or raise ``ValidationError``."""
    result = sorted(set(labels))
    for label in result:
        if not re.fullmatch(LABEL_PATTERN, label):
            raise ValidationError(
                f"{label!r} is not a valid label: use up to 63 letters, digits and . _ : = / -"
            )
    return tuple(result)


def relabel(project: Project, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Change:
    """Add and remove labels."""
    add = check_labels(add)
    labels = tuple(sorted((set(project.labels) | set(add)) - set(remove)))
    return Change("labels", f"labels: {', '.join(labels) or '(none)'}", labels=labels)


def check_deletable(project: Project, runs: list[Run], kill_first: bool) -> None:
    """Raise ``ConflictError`` if deleting would abandon a running stage."""
    active = _active(runs)
    if active and not kill_first:
        raise ConflictError(
            f"{_running_words(project, active)}. Pause it and wait, or delete with --kill."
        )


def change_pipeline(project: Project, pipeline: Pipeline) -> Change:
    """Follow ``pipeline`` from now on; runs so far stay, the remaining stages follow it."""
    return Change(
        "pipeline",
        f"follows pipeline '{pipeline.name}' ({len(pipeline.stages)} stages) from now on",
        pipeline_name=pipeline.name,
        pipeline=pipeline.model_dump(mode="json"),
    )


def set_retention(project: Project, policy: RetentionPolicy | None) -> Change:
    """Give the project its own retention (``None``: follow the pipeline's again).

    It applies from the next run end on; workspaces pruned before stay pruned.
    """
    if policy is None:
        message = "retention: the pipeline's from now on"
    else:
        message = f"retention: {describe_retention(policy)} (wins over the pipeline's)"
    return Change(
        "retention",
        message,
        sets_retention=True,
        retention=policy,
        data={
            "retention": policy.model_dump(mode="json") if policy is not None else None,
            "before": project.retention.model_dump(mode="json")
            if project.retention is not None
            else None,
        },
    )
