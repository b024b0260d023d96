"""The graph model the console draws: boxes, needs edges, states, sweeps, skipped routes,
gates and removed stages, from a definition and runs alone."""

from __future__ import annotations

from winslow.core.graph import GraphEdge, pipeline_graph, project_graph
from winslow.core.states import ProjectState, StageRunState
from winslow.pipeline.model import Confirmation

from .factories import pipeline, project, run, stage

S = StageRunState

BRANCHED = pipeline(
    stage("detect", description="find vehicles"),
    stage("count", needs=["detect"], when="results.detect.vehicles > 0"),
    stage("report", needs=["count"]),
    stage("tune", needs=["detect"], sweep={"over": {"LR": ["0.1", "0.01"], "BATCH": [8, 16]}}),
    stage("review", needs=["report", "tune"], gate=True),
    stage("publish"),
)


def by_name(graph):
    return {node.name: node for node in graph.nodes}


def test_a_definition_alone_gives_boxes_in_order_and_edges_from_needs() -> None:
    graph = pipeline_graph(BRANCHED)

    assert [n.name for n in graph.nodes] == [
        "detect",
        "count",
        "report",
        "tune",
        "review",
        "publish",
    ]
    assert graph.edges == [
        GraphEdge("detect", "count", skipped=False, condition="results.detect.vehicles > 0"),
        GraphEdge("count", "report"),
        GraphEdge("detect", "tune"),
        GraphEdge("report", "review"),
        GraphEdge("tune", "review"),
        GraphEdge("review", "publish"),  # the default need: the stage before
    ]
    nodes = by_name(graph)
    assert all(node.state is None and node.runs == [] for node in graph.nodes)
    assert nodes["detect"].description == "find vehicles"
    assert nodes["review"].gate and nodes["review"].confirmation is Confirmation.ALWAYS
    assert not nodes["review"].waiting
    assert not nodes["detect"].gate
    assert nodes["tune"].sweep == ["LR", "BATCH"] and nodes["tune"].combinations == 4
    assert nodes["count"].when == "results.detect.vehicles > 0"
    assert graph.waiting_at is None and graph.project_state is None


def test_a_skipped_route_is_marked_on_its_boxes_and_edges_with_its_reason() -> None:
    runs = [
        run("detect", S.SUCCEEDED, run_id=1, results={"vehicles": 0}),
        run(
            "count", S.SKIPPED, run_id=2, reason="condition `results.detect.vehicles > 0` is false"
        ),
        run("report", S.SKIPPED, run_id=3, reason="every stage it needs was skipped (count)"),
        run("tune", S.RUNNING, run_id=4, combination={"LR": "0.1", "BATCH": "8"}),
    ]
    graph = project_graph(BRANCHED, runs, project(pipe=BRANCHED))
    nodes = by_name(graph)

    assert nodes["detect"].state is S.SUCCEEDED
    assert nodes["count"].skipped and nodes["report"].skipped
    assert nodes["count"].reason == "condition `results.detect.vehicles > 0` is false"
    assert nodes["tune"].state is S.RUNNING
    assert not nodes["tune"].skipped and nodes["review"].state is None
    skipped = {(e.source, e.target) for e in graph.edges if e.skipped}
    assert skipped == {("detect", "count"), ("count", "report")}


def test_a_sweep_is_one_box_with_its_combinations_in_sweep_order() -> None:
    combos = [
        {"LR": "0.1", "BATCH": "8"},
        {"LR": "0.1", "BATCH": "16"},
        {"LR": "0.01", "BATCH": "8"},
        {"LR": "0.01", "BATCH": "16"},
    ]
    runs = [
        run("detect", S.SUCCEEDED, run_id=1),
        run("tune", S.SUCCEEDED, run_id=5, combination=combos[2]),
        run("tune", S.FAILED, run_id=3, combination=combos[1], superseded=True),
        run("tune", S.RUNNING, run_id=4, attempt=2, combination=combos[1]),
        run("tune", S.SUCCEEDED, run_id=2, combination=combos[0]),
    ]
    tune = by_name(project_graph(BRANCHED, runs))["tune"]

    assert [m.combination for m in tune.runs] == [
        "LR=0.1,BATCH=8",
        "LR=0.1,BATCH=16",
        "LR=0.01,BATCH=8",
    ]
    assert [m.state for m in tune.runs] == [S.SUCCEEDED, S.RUNNING, S.SUCCEEDED]
    assert tune.runs[1].attempt == 2
    assert tune.counts == {"succeeded": 2, "running": 1}
    assert tune.state is S.RUNNING  # one still runs: the box is live
    assert tune.runs_total == 4 and tune.latest_run == 5


def test_a_sweep_box_shows_failed_unless_the_sweep_tolerates_it() -> None:
    over = {"over": {"LR": ["1", "2"]}}
    strict = pipeline(stage("tune", sweep=over))
    lenient = pipeline(stage("tune", sweep={**over, "continue_on_failure": True}))
    runs = [
        run("tune", S.SUCCEEDED, run_id=1, combination={"LR": "1"}),
        run("tune", S.FAILED, run_id=2, combination={"LR": "2"}),
    ]
    assert project_graph(strict, runs).nodes[0].state is S.FAILED
    assert project_graph(lenient, runs).nodes[0].state is S.SUCCEEDED


def test_the_gate_the_project_waits_at_is_marked() -> None:
    runs = [
        run(name, S.SUCCEEDED, run_id=i) for i, name in enumerate(["detect", "count", "report"])
    ]
    runs += [
        run("tune", S.SUCCEEDED, run_id=10 + i, combination=c)
        for i, c in enumerate(BRANCHED.stage("tune").combinations)
    ]
    waiting = project(
        ProjectState.AWAITING_INPUT,
        pipe=BRANCHED,
        waiting_for={"stage": "review", "gate": "review"},
    )
    graph = project_graph(BRANCHED, runs, waiting)

    assert graph.waiting_at == "review" and graph.project_state is ProjectState.AWAITING_INPUT
    assert [n.name for n in graph.nodes if n.waiting] == ["review"]
    # Once it runs again, nobody waits there.
    running = project(ProjectState.RUNNING, pipe=BRANCHED, waiting_for={"gate": "review"})
    assert project_graph(BRANCHED, runs, running).waiting_at is None


def test_a_redo_colours_the_box_by_the_current_run_and_counts_every_run() -> None:
    pipe = pipeline(stage("detect"), stage("track"))
    runs = [
        run("detect", S.SUCCEEDED, run_id=1),
        run("track", S.FAILED, run_id=2, superseded=True, reason="exited with code 3"),
        run("track", S.PENDING, run_id=3),
    ]
    track = by_name(project_graph(pipe, runs))["track"]
    assert track.state is S.PENDING
    assert track.runs_total == 2 and track.latest_run == 3
    assert track.reason is None  # the superseded run's reason is history, not the box's


def test_runs_of_stages_the_definition_no_longer_has_become_removed_boxes() -> None:
    pipe = pipeline(stage("detect"), stage("report"))
    runs = [
        run("detect", S.SUCCEEDED, run_id=1),
        run("track", S.SUCCEEDED, run_id=2, superseded=True),
        run("track", S.FAILED, run_id=3, reason="exited with code 1"),
        run("legacy", S.CANCELLED, run_id=4),
    ]
    graph = project_graph(pipe, runs)

    assert [(n.name, n.removed) for n in graph.nodes] == [
        ("detect", False),
        ("report", False),
        ("track", True),
        ("legacy", True),
    ]
    track = by_name(graph)["track"]
    assert track.state is S.FAILED and track.runs_total == 2 and track.needs == []
    assert track.reason == "exited with code 1"
    assert {(e.source, e.target) for e in graph.edges} == {("detect", "report")}


def test_a_sweep_stopped_half_way_shows_its_latest_run() -> None:
    pipe = pipeline(stage("tune", sweep={"over": {"LR": ["1", "2", "3"]}, "workspace": "shared"}))
    runs = [
        run("tune", S.SUCCEEDED, run_id=1, combination={"LR": "1"}),
        run("tune", S.CANCELLED, run_id=2, combination={"LR": "2"}),
    ]
    node = project_graph(pipe, runs).nodes[0]
    assert node.state is S.CANCELLED and node.counts == {"succeeded": 1, "cancelled": 1}
