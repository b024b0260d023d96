"""What a person's command does to a project, decided without touching anything.

Each function takes the project as it is now and returns a ``Change`` (or raises
``ConflictError`` with the reason and the way out). ``engine/transitions.py`` writes the
change and its history line in one transaction, so two racing commands are serialised:
the second one is decided against the state the first one left.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from winslow import defaults
from winslow.core.models import Project, Run
from winslow.core.planner import (
    StageStatus,
    current_run_list,
    current_run_sets,
    decide,
    stage_status,
)
from winslow.core.retention import describe_retention
from winslow.core.states import UNSUCCESSFUL_RUN_STATES, ProjectState, StageRunState
from winslow.errors import ConflictError, ValidationError
from winslow.pipeline.gate import GateAsk, check_answers
from winslow.pipeline.model import (
    NAME_PATTERN,
    VARIABLE_PATTERN,
    Confirmation,
    Pipeline,
    RetentionPolicy,
    Stage,
    reserved_variable_problem,
)
from winslow.units import format_bytes, format_megabytes

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
    run_overrides: dict[str, dict[str, Any]] | None = None
    """Replace the overrides waiting for stages' next runs."""
    hold_after: frozenset[str] | None = None
    """Replace the stages the project pauses after ("run only this stage")."""
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
    # A failing project pauses too: its other branches start nothing more, and it ends
    # failed once they stopped.
    if project.state in (ProjectState.RUNNING, ProjectState.FAILING):
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


@dataclass(frozen=True)
class RunOverrides:
    """What one run of a stage does differently, for that run only.

    Stored with the project until the stage's next run is created, then with that run.
    """

    variables: Mapping[str, str] = field(default_factory=dict)
    """Win over the project's values; a sweep's own values still win over these."""
    image: str | None = None
    cpus: float | None = None
    memory_mb: int | None = None
    gpus: int | None = None
    comment: str = ""
    like_run: int | None = None
    """The earlier run this one is a redo of, as it was (a blueprint)."""

    @property
    def empty(self) -> bool:
        return self == RunOverrides()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunOverrides:
        resources = data.get("resources") or {}
        return cls(
            variables=dict(data.get("variables") or {}),
            image=data.get("image"),
            cpus=resources.get("cpus"),
            memory_mb=resources.get("memory_mb"),
            gpus=resources.get("gpus"),
            comment=data.get("comment") or "",
            like_run=data.get("like_run"),
        )

    def to_json(self) -> dict[str, Any]:
        resources = {
            key: value
            for key, value in (
                ("cpus", self.cpus),
                ("memory_mb", self.memory_mb),
                ("gpus", self.gpus),
            )
            if value is not None
        }
        data: dict[str, Any] = {}
        if self.variables:
            data["variables"] = dict(self.variables)
        if self.image:
            data["image"] = self.image
        if resources:
            data["resources"] = resources
        if self.comment:
            data["comment"] = self.comment
        if self.like_run is not None:
            data["like_run"] = self.like_run
        return data

    def describe(self) -> str:
        words = [f"{k}={v}" for k, v in self.variables.items()]
        if self.image:
            words.append(f"image {self.image}")
        if self.cpus is not None:
            words.append(f"{self.cpus:g} CPUs")
        if self.memory_mb is not None:
            words.append(f"{format_megabytes(self.memory_mb)} memory")
        if self.gpus is not None:
            words.append(f"{self.gpus} GPUs")
        if self.like_run is not None:
            words.insert(0, f"as run {self.like_run} was")
        text = ", ".join(words)
        if self.comment:
            text += (": " if text else "") + repr(self.comment)
        return text


def check_overrides(overrides: RunOverrides) -> RunOverrides:
    """Return ``overrides`` if a person could mean them, else raise ``ValidationError``."""
    for name in overrides.variables:
        _check_variable_name(name, defining=True)
    _check_variable_sizes(overrides.variables, "The run's overrides")
    if overrides.image is not None and not overrides.image.strip():
        raise ValidationError(
            "The image override is empty; leave it out to keep the stage's.", field="image"
        )
    if overrides.cpus is not None and overrides.cpus <= 0:
        raise ValidationError("A run needs more than 0 CPUs.", field="resources.cpus")
    if overrides.memory_mb is not None and overrides.memory_mb <= 0:
        raise ValidationError("A run needs more than 0 MiB of memory.", field="resources.memory")
    if overrides.gpus is not None and overrides.gpus < 0:
        raise ValidationError("A run cannot have fewer than 0 GPUs.", field="resources.gpus")
    if len(overrides.comment) > 2000:
        raise ValidationError(
            "The comment is longer than 2000 characters; shorten it.", field="comment"
        )
    return overrides


def blueprint(run: Run) -> RunOverrides:
    """Overrides that make a new run of ``run``'s stage as ``run`` was."""
    return RunOverrides(
        variables={k: v for k, v in run.variables.items() if not k.startswith("WINSLOW_")},
        image=run.image,
        cpus=run.cpus,
        memory_mb=run.memory_mb,
        gpus=run.gpus,
        like_run=run.id,
    )


def _merged(base: RunOverrides, top: RunOverrides) -> RunOverrides:
    return RunOverrides(
        variables={**base.variables, **top.variables},
        image=top.image or base.image,
        cpus=top.cpus if top.cpus is not None else base.cpus,
        memory_mb=top.memory_mb if top.memory_mb is not None else base.memory_mb,
        gpus=top.gpus if top.gpus is not None else base.gpus,
        comment=top.comment or base.comment,
        like_run=base.like_run if base.like_run is not None else top.like_run,
    )


def resume(
    project: Project,
    pipeline: Pipeline,
    runs: list[Run],
    from_stage: str | None = None,
    *,
    only: bool = False,
    like_run: int | None = None,
    overrides: RunOverrides | None = None,
    answers: Mapping[str, Any] | None = None,
) -> Change:
    """Go on, or start again from ``from_stage`` (its earlier runs stay in the history).

    ``overrides`` change that stage's next run only; ``like_run`` redoes an earlier run as
    it was; ``only`` runs that stage and then pauses instead of going on. ``answers`` answer
    the questions of the gate the resume lets pass; they become project variables, and a
    gate with questions does not pass without its required answers (``AnswersError``).
    """
    overrides = check_overrides(overrides or RunOverrides())
    if like_run is not None:
        earlier = _run_to_redo(project, runs, like_run, from_stage)
        from_stage = earlier.stage
        overrides = _merged(blueprint(earlier), overrides)
    if from_stage is None and (only or not overrides.empty):
        raise ValidationError(
            "Overrides and 'only this stage' apply to one stage's next run; "
            "say which stage with from_stage."
        )
    active = _active(runs)
    if project.state is ProjectState.RUNNING:
        hint = " Pause it first to resume from another stage." if from_stage else ""
        if active:
            raise ConflictError(f"{_running_words(project, active)}; nothing to resume.{hint}")
        raise ConflictError(f"Project '{project.name}' is already running; nothing to resume.")
    if from_stage is None:
        if project.state is ProjectState.SUCCEEDED and _nothing_left(project, pipeline, runs):
            names = ", ".join(stage.name for stage in pipeline.stages)
            raise ConflictError(
                f"Project '{project.name}' has run every stage of its pipeline; nothing is "
                f"left to resume. To run stages again, resume from a stage ({names}); the "
                "earlier runs are kept."
            )
        gate = project.waiting_for.get("gate")
        return _answered(project, pipeline, gate, answers, _go_on(project, runs))
    stage = _stage_to_resume_from(pipeline, from_stage)
    _check_resumable_from(project, pipeline, runs, from_stage, active)
    change = _resume_from(pipeline, runs, stage, only=only, overrides=overrides)
    gate = from_stage if from_stage in change.approve_gates else None
    return _answered(project, pipeline, gate, answers, change)


def _answered(
    project: Project,
    pipeline: Pipeline,
    gate: str | None,
    answers: Mapping[str, Any] | None,
    change: Change,
) -> Change:
    """``change``, with the answers to the questions of ``gate`` (the gate it lets pass)
    set as variables and named in its history line."""
    ask = _ask_of(pipeline, gate)
    if ask is None or not ask.inputs:
        if answers:
            where = f"gate '{gate}' asks nothing" if gate else "this resume passes no gate"
            raise ValidationError(
                f"Project '{project.name}': {where}, so there is nothing to answer; "
                "leave out the answers."
            )
        return change
    assert gate is not None
    values = check_answers(gate, ask, answers or {}, previous=project.variables)
    variables = {**project.variables, **values}
    _check_variable_sizes(variables, f"Project '{project.name}'")
    words = ", ".join(f"{name}={value}" for name, value in values.items())
    return replace(
        change,
        message=f"answered gate '{gate}': {words}; {change.message}",
        variables=variables,
        data={**change.data, "gate": gate, "answers": values},
    )


def _ask_of(pipeline: Pipeline, gate: str | None) -> GateAsk | None:
    if gate is None:
        return None
    try:
        return pipeline.stage(gate).ask
    except KeyError:
        return None


def _run_to_redo(project: Project, runs: list[Run], like_run: int, from_stage: str | None) -> Run:
    """The earlier run ``like_run`` names, if it can be redone as it was from ``from_stage``."""
    earlier = next((run for run in runs if run.id == like_run), None)
    if earlier is None:
        raise ValidationError(f"Project '{project.name}' has no run {like_run}.")
    if earlier.state is StageRunState.SKIPPED:
        raise ValidationError(
            f"Run {like_run} was skipped, so there is nothing to redo as it was; "
            f"resume from stage '{earlier.stage}' instead."
        )
    if from_stage is not None and from_stage != earlier.stage:
        raise ValidationError(
            f"Run {like_run} is a run of stage '{earlier.stage}', not '{from_stage}'; "
            "leave out the stage or name that one."
        )
    return earlier


def _nothing_left(project: Project, pipeline: Pipeline, runs: list[Run]) -> bool:
    """Whether a resume would find nothing to do: the planner, asked as if the project
    ran again, would start and skip nothing and call it succeeded at once. A pipeline
    that gained a stage since has something left."""
    going = replace(project, state=ProjectState.RUNNING, hold_after=frozenset())
    decision = decide(going, pipeline, runs)
    move = decision.move
    return not (decision.starts or decision.skips) and (
        move is not None and move.state is ProjectState.SUCCEEDED
    )


def _go_on(project: Project, runs: list[Run]) -> Change:
    """Resume without a stage: cancel a pause, or run again what ended badly and go on."""
    if project.state is ProjectState.PAUSING:
        return Change(
            "resume",
            "pause cancelled; goes on",
            state=ProjectState.RUNNING,
            state_reason="resumed",
        )
    gate = project.waiting_for.get("gate")
    unsuccessful = tuple(
        run.id for run in current_run_list(runs) if run.state in UNSUCCESSFUL_RUN_STATES
    )
    redone = sorted({r.stage for r in current_run_list(runs) if r.id in unsuccessful})
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
        hold_after=frozenset(),
        data={"from_stage": None},
    )


def _stage_to_resume_from(pipeline: Pipeline, from_stage: str) -> Stage:
    try:
        return pipeline.stage(from_stage)
    except KeyError:
        names = ", ".join(s.name for s in pipeline.stages)
        raise ValidationError(
            f"Pipeline '{pipeline.name}' has no stage '{from_stage}'; its stages are: {names}."
        ) from None


def _check_resumable_from(
    project: Project, pipeline: Pipeline, runs: list[Run], from_stage: str, active: list[Run]
) -> None:
    """Raise ``ConflictError`` unless nothing runs and every need of ``from_stage`` is done."""
    if active:
        raise ConflictError(
            f"{_running_words(project, active)}; wait for it to end or kill it before "
            f"resuming from '{from_stage}'."
        )
    sets = current_run_sets(runs)
    for need in pipeline.needs_of(from_stage):
        done = stage_status(pipeline.stage(need), sets.get(need, {}))
        if done not in (StageStatus.SUCCEEDED, StageStatus.SKIPPED):
            raise ConflictError(
                f"Stage '{from_stage}' needs stage '{need}', which has no successful run yet; "
                f"resume from '{need}' instead."
            )


def _resume_from(
    pipeline: Pipeline, runs: list[Run], stage: Stage, *, only: bool, overrides: RunOverrides
) -> Change:
    """Supersede ``stage``'s current runs and those after it, and go on from it."""
    from_stage = stage.name
    redo = set(pipeline.downstream_of(from_stage))
    superseded = tuple(run.id for run in current_run_list(runs) if run.stage in redo)
    message = f"resumed from stage '{from_stage}'"
    if not overrides.empty:
        message += f" with {overrides.describe()}"
    if only:
        message += "; only this stage, then pause"
    return Change(
        "resume",
        message,
        state=ProjectState.RUNNING,
        state_reason=f"resumed from stage '{from_stage}'" + (" only" if only else ""),
        # Choosing the stage to go on from is the confirmation it may ask for.
        approve_gates=frozenset({from_stage})
        if stage.confirm is not Confirmation.NEVER
        else frozenset(),
        supersede_runs=superseded,
        run_overrides={from_stage: overrides.to_json()} if not overrides.empty else {},
        hold_after=frozenset({from_stage}) if only else frozenset(),
        data={
            "from_stage": from_stage,
            "superseded_runs": list(superseded),
            "overrides": overrides.to_json(),
            "only": only,
        },
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
        # A pausing project stays pausing, but its reason must say the stage is being
        # killed: it went on saying "pausing after the current stage".
        state=ProjectState.PAUSING
        if project.state in (ProjectState.RUNNING, ProjectState.FAILING, ProjectState.PAUSING)
        else None,
        state_reason=f"killing stage {stages}",
        cancel_runs=tuple(run.id for run in active),
    )


def check_variables(values: Mapping[str, str]) -> dict[str, str]:
    """Return ``values`` if every name is one a project may define and they stay within the
    limits of ``defaults`` (count, size of each, size of all), else raise ``ValidationError``."""
    for name in values:
        _check_variable_name(name, defining=True)
    result = {name: str(value) for name, value in values.items()}
    _check_variable_sizes(result, "The project")
    return result


def _check_variable_name(name: str, *, defining: bool) -> None:
    if not re.fullmatch(VARIABLE_PATTERN, name):
        raise ValidationError(
            f"{name!r} is not a valid variable name; use at most 128 letters, digits and "
            "'_', not starting with a digit.",
            field=f"variables.{name}",
        )
    reserved = reserved_variable_problem(name) if defining else None
    if reserved is not None:
        raise ValidationError(reserved[:1].upper() + reserved[1:] + ".", field=f"variables.{name}")


def _check_variable_sizes(values: Mapping[str, str], owner: str) -> None:
    """Refuse what would make every project listing and every stage's environment huge."""
    if len(values) > defaults.MAX_VARIABLES:
        raise ValidationError(
            f"{owner} would have {len(values)} variables; at most {defaults.MAX_VARIABLES} are "
            "allowed. Keep large settings in a file in the resource pool and pass its path."
        )
    total = 0
    for name, value in values.items():
        if "\0" in value:
            raise ValidationError(
                f"Variable '{name}' contains a NUL character, which no environment variable "
                "can hold; remove it.",
                field=f"variables.{name}",
            )
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > defaults.MAX_VARIABLE_BYTES:
            raise ValidationError(
                f"Variable '{name}' is {format_bytes(size)} long; a value may have at most "
                f"{format_bytes(defaults.MAX_VARIABLE_BYTES)}. Put large values in a file in "
                "the resource pool and pass its path.",
                field=f"variables.{name}",
            )
        total += len(name) + size
    if total > defaults.MAX_VARIABLES_BYTES:
        raise ValidationError(
            f"{owner}'s variables would hold {format_bytes(total)} together; at most "
            f"{format_bytes(defaults.MAX_VARIABLES_BYTES)} are allowed. Keep large settings "
            "in a file in the resource pool and pass its path."
        )


def set_variables(project: Project, assign: Mapping[str, str], unset: Iterable[str] = ()) -> Change:
    """Set and unset variables; stages started afterwards see the new values."""
    unset = list(unset)
    for name in assign:
        _check_variable_name(name, defining=True)
    for name in unset:
        # A variable stored before WINSLOW_* was refused can still be unset.
        _check_variable_name(name, defining=False)
    variables = dict(project.variables)
    variables.update({k: str(v) for k, v in assign.items()})
    for name in unset:
        variables.pop(name, None)
    if assign:
        _check_variable_sizes(variables, f"Project '{project.name}'")
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
    _check_label_count(len(result))
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
    if add:
        _check_label_count(len(labels))
    return Change("labels", f"labels: {', '.join(labels) or '(none)'}", labels=labels)


def _check_label_count(count: int) -> None:
    if count > defaults.MAX_LABELS:
        raise ValidationError(
            f"A project may carry at most {defaults.MAX_LABELS} labels, not {count}; remove some."
        )


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
