"""A pipeline or a project as a graph: stage boxes, ``needs`` edges, and where each stands.

The console draws this model (``ui/static/js/graph.js`` lays it out with dagre); it is
computed here, from the definition and the runs, with the planner's own answers
(``planning/runs.py``) so the picture never disagrees with what Winslow does next. A
sweep is one box carrying its combinations' current runs; a route the project did not
take (a stage skipped by its ``when`` condition, or after skipped needs) is marked so the
console can dim it and show the condition; a gate says whether the project waits there
now; runs of stages the definition no longer has (the project followed a newer
pipeline) become boxes of their own, marked removed, so no run goes unshown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from winslow.core.models import Project, Run
from winslow.core.planning.runs import RunSet, StageStatus, current_run_sets, stage_status
from winslow.core.states import ProjectState, StageRunState
from winslow.pipeline.model import Confirmation, Pipeline, Stage, combination_key

ACTIVE_ORDER = (StageRunState.RUNNING, StageRunState.PENDING)
"""Which state a box shows while some of its runs are active: the livelier one first."""


@dataclass(frozen=True)
class RunMark:
    """One current run of a stage as its box shows it (one per sweep combination)."""

    id: int
    state: StageRunState
    attempt: int
    combination: str = ""
    """The sweep values (``LR=0.1,BATCH=8``); empty unless the stage sweeps."""


@dataclass(frozen=True)
class GraphNode:
    """A stage's box."""

    name: str
    description: str = ""
    needs: list[str] = field(default_factory=list)
    confirmation: Confirmation = Confirmation.NEVER
    """Whether a person must let the stage start: never, the first time, or every time."""
    when: str | None = None
    """The condition that must hold for the stage to run; ``None``: it always runs."""
    sweep: list[str] = field(default_factory=list)
    """The variables the stage sweeps over; empty unless it sweeps."""
    combinations: int = 1
    """How many runs one pass of the stage makes (its sweep's combinations)."""
    state: StageRunState | None = None
    """The state the box is coloured by; ``None``: no current run (not run yet)."""
    runs: list[RunMark] = field(default_factory=list)
    """The stage's current runs, in its sweep's order."""
    counts: dict[str, int] = field(default_factory=dict)
    """Current runs by state."""
    runs_total: int = 0
    """Every run the stage has had, superseded ones included."""
    latest_run: int | None = None
    """The id of the stage's newest run, superseded or not."""
    reason: str | None = None
    """Why the latest current run ended as it did (a skip's condition and values)."""
    waiting: bool = False
    """The project waits at this stage now: its gate, or variables it lacks."""
    removed: bool = False
    """The stage has runs but the definition the project follows no longer has it."""

    @property
    def gate(self) -> bool:
        return self.confirmation is not Confirmation.NEVER

    @property
    def skipped(self) -> bool:
        return self.state is StageRunState.SKIPPED


@dataclass(frozen=True)
class GraphEdge:
    """``source`` must be done before ``target`` starts."""

    source: str
    target: str
    skipped: bool = False
    """The route was not taken: ``target`` was skipped."""
    condition: str | None = None
    """``target``'s ``when`` condition, which decides whether the route is taken."""


@dataclass(frozen=True)
class Graph:
    """Boxes in pipeline order (removed stages last) and the edges between them."""

    pipeline: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    waiting_at: str | None = None
    """The stage the project waits at for a person; ``None`` when it waits for none."""
    project_state: ProjectState | None = None


def pipeline_graph(pipeline: Pipeline) -> Graph:
    """Return the graph of a definition alone: every box without runs."""
    return project_graph(pipeline, ())


def project_graph(pipeline: Pipeline, runs: Iterable[Run], project: Project | None = None) -> Graph:
    """Return the graph of ``pipeline`` coloured by ``runs`` and ``project``'s waiting.

    ``pipeline`` is the definition the project follows now; runs of stages it lacks
    become removed boxes after the others, in the order they first ran.
    """
    runs = sorted(runs, key=lambda run: run.id)
    current = current_run_sets(runs)
    waiting_at = waiting_stage(project)
    nodes = [
        stage_node(pipeline, stage, current.get(stage.name, {}), runs, waiting_at)
        for stage in pipeline.stages
    ]
    defined = {stage.name for stage in pipeline.stages}
    gone = list(dict.fromkeys(run.stage for run in runs if run.stage not in defined))
    nodes += [removed_node(name, current.get(name, {}), runs) for name in gone]
    skipped = {node.name for node in nodes if node.skipped}
    edges = [
        GraphEdge(need, stage.name, stage.name in skipped, stage.when)
        for stage in pipeline.stages
        for need in pipeline.needs_of(stage.name)
    ]
    return Graph(
        pipeline=pipeline.name,
        nodes=nodes,
        edges=edges,
        waiting_at=waiting_at,
        project_state=project.state if project is not None else None,
    )


def waiting_stage(project: Project | None) -> str | None:
    """The stage a project awaiting input waits at (a gate, or variables a stage lacks)."""
    if project is None or project.state is not ProjectState.AWAITING_INPUT:
        return None
    stage = project.waiting_for.get("gate") or project.waiting_for.get("stage")
    return str(stage) if stage else None


def stage_node(
    pipeline: Pipeline, stage: Stage, run_set: RunSet, runs: list[Run], waiting_at: str | None
) -> GraphNode:
    """The box of a stage the definition has."""
    marks = ordered_marks(stage, run_set)
    mine = [run for run in runs if run.stage == stage.name]
    return GraphNode(
        name=stage.name,
        description=stage.description,
        needs=pipeline.needs_of(stage.name),
        confirmation=stage.confirm,
        when=stage.when,
        sweep=list(stage.sweep.over) if stage.sweep is not None else [],
        combinations=len(stage.combinations),
        state=box_state(stage, run_set),
        runs=marks,
        counts=dict(Counter(mark.state.value for mark in marks)),
        runs_total=len(mine),
        latest_run=mine[-1].id if mine else None,
        reason=latest_reason(run_set),
        waiting=waiting_at == stage.name,
    )


def removed_node(name: str, run_set: RunSet, runs: list[Run]) -> GraphNode:
    """The box of a stage that has runs but is no longer in the definition."""
    mine = [run for run in runs if run.stage == name]
    marks = [mark_of(run) for run in sorted(run_set.values(), key=lambda run: run.id)]
    latest = marks[-1].state if marks else mine[-1].state
    return GraphNode(
        name=name,
        needs=[],
        state=latest,
        runs=marks,
        counts=dict(Counter(mark.state.value for mark in marks)),
        runs_total=len(mine),
        latest_run=mine[-1].id,
        reason=latest_reason(run_set),
        removed=True,
    )


def mark_of(run: Run) -> RunMark:
    return RunMark(run.id, run.state, run.attempt, run.combination_key)


def ordered_marks(stage: Stage, run_set: Mapping[str, Run]) -> list[RunMark]:
    """The current runs in the order of the stage's combinations, then any other (a run
    of a combination the sweep no longer has)."""
    keys = [combination_key(combo) for combo in stage.combinations]
    ordered = [run_set[key] for key in keys if key in run_set]
    ordered += sorted((r for k, r in run_set.items() if k not in keys), key=lambda r: r.id)
    return [mark_of(run) for run in ordered]


def box_state(stage: Stage, run_set: RunSet) -> StageRunState | None:
    """The state a stage's box shows, all its combinations taken together.

    Skipped wins (one skipped run stands for the whole stage); while any run is active,
    the liveliest active state; once all ended, succeeded if the stage counts as
    succeeded (a lenient sweep tolerates failures), else how its latest bad run ended;
    a sweep stopped half-way shows its latest run.
    """
    if not run_set:
        return None
    status = stage_status(stage, run_set)
    if status is StageStatus.SKIPPED:
        return StageRunState.SKIPPED
    states = {run.state for run in run_set.values()}
    for state in ACTIVE_ORDER:
        if state in states:
            return state
    if status is StageStatus.SUCCEEDED:
        return StageRunState.SUCCEEDED
    ended = sorted(run_set.values(), key=lambda run: run.id)
    if status is StageStatus.FAILED:
        ended = [run for run in ended if run.state is not StageRunState.SUCCEEDED]
    # Not done and nothing active: the project stopped between combinations.
    return ended[-1].state


def latest_reason(run_set: RunSet) -> str | None:
    """The reason of the newest current run that has one."""
    for run in sorted(run_set.values(), key=lambda run: run.id, reverse=True):
        if run.reason:
            return run.reason
    return None
