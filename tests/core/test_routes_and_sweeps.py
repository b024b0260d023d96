"""Conditions, skipped routes, sweeps and "only this stage" in the planner, without servers."""

from __future__ import annotations

import pytest

from winslow.core import commands
from winslow.core.planner import decide
from winslow.core.states import ProjectState, StageRunState
from winslow.errors import ConflictError, ValidationError
from winslow.pipeline.conditions import ConditionError, evaluate, syntax_problem

from .factories import pipeline, project, run, stage

S = StageRunState

ROUTED = pipeline(
    stage("detect"),
    stage("count", needs=["detect"], when='results.detect.vehicles > 0 and QUALITY == "high"'),
    stage("report", needs=["count"]),
    stage("archive", needs=["detect"]),
    stage("summary", needs=["report", "archive"]),
    variables={"QUALITY": {"default": "high"}},
)


def test_false_condition_skips_the_stage_with_the_condition_and_values() -> None:
    detect = run("detect", S.SUCCEEDED, results={"vehicles": 0})
    decision = decide(project(pipe=ROUTED), ROUTED, [detect])
    assert [s.stage for s in decision.starts] == ["archive"]
    [skip] = decision.skips
    assert skip.stage == "count"
    assert skip.reason == (
        'condition `results.detect.vehicles > 0 and QUALITY == "high"` is false '
        "(results.detect.vehicles = 0, QUALITY = 'high')"
    )


def test_true_condition_starts_the_stage() -> None:
    detect = run("detect", S.SUCCEEDED, results={"vehicles": 12})
    decision = decide(project(pipe=ROUTED), ROUTED, [detect])
    assert sorted(s.stage for s in decision.starts) == ["archive", "count"]
    assert decision.skips == ()


def test_a_project_variable_can_turn_the_route_off() -> None:
    detect = run("detect", S.SUCCEEDED, results={"vehicles": 12})
    decision = decide(project(pipe=ROUTED, variables={"QUALITY": "low"}), ROUTED, [detect])
    assert [s.stage for s in decision.skips] == ["count"]


def test_stages_needing_only_skipped_stages_are_skipped_but_a_join_runs() -> None:
    runs = [
        run("detect", S.SUCCEEDED, results={"vehicles": 0}),
        run("count", S.SKIPPED),
        run("archive", S.SUCCEEDED),
    ]
    decision = decide(project(pipe=ROUTED), ROUTED, runs)
    [skip] = decision.skips
    assert skip.stage == "report"
    assert skip.reason == "every stage it needs was skipped (count)"
    runs.append(run("report", S.SKIPPED))
    # summary needs report (skipped) and archive (succeeded): one taken route is enough.
    assert [s.stage for s in decide(project(pipe=ROUTED), ROUTED, runs).starts] == ["summary"]
    runs.append(run("summary", S.SUCCEEDED))
    move = decide(project(pipe=ROUTED), ROUTED, runs).move
    assert move is not None and move.state is ProjectState.SUCCEEDED
    assert move.reason == "every stage succeeded or was skipped (skipped: count, report)"


def test_a_condition_that_cannot_be_evaluated_fails_the_project_instead_of_skipping() -> None:
    detect = run("detect", S.SUCCEEDED, results={"cars": 3})  # no "vehicles"
    move = decide(project(pipe=ROUTED), ROUTED, [detect]).move
    assert move is not None and move.state is ProjectState.FAILED
    assert "stage 'count' cannot decide whether to run" in (move.reason or "")
    assert "has no attribute 'vehicles'" in (move.reason or "")


def test_conditions_run_sandboxed() -> None:
    with pytest.raises(ConditionError, match="not allowed"):
        evaluate("results.__class__.__mro__", {}, {})
    with pytest.raises(ConditionError, match="'QUALTY' is undefined"):
        evaluate('QUALTY == "high"', {}, {"QUALITY": "high"})
    assert syntax_problem("results.detect.vehicles >") is not None
    assert evaluate("N | int > 3", {}, {"N": "5"}).passed
    assert evaluate("results.a is not defined", {}, {}).passed


SWEPT = pipeline(
    stage("prepare"),
    stage(
        "train",
        sweep={"over": {"LR": [0.1, 0.01, 0.001], "BATCH": {"min": 8, "max": 16, "step": 8}}},
    ),
    stage("evaluate", when="results.train | map(attribute='acc') | max > 0.5"),
)


def test_a_3_by_2_sweep_starts_six_runs_and_the_next_stage_waits_for_all() -> None:
    runs = [run("prepare", S.SUCCEEDED)]
    starts = decide(project(pipe=SWEPT), SWEPT, runs).starts
    assert [dict(s.combination) for s in starts] == [
        {"LR": lr, "BATCH": batch} for lr in ("0.1", "0.01", "0.001") for batch in ("8", "16")
    ]
    runs += [
        run("train", S.SUCCEEDED, combination=dict(s.combination), results={"acc": 0.2})
        for s in starts[:5]
    ]
    runs.append(run("train", S.RUNNING, combination=dict(starts[5].combination)))
    assert decide(project(pipe=SWEPT), SWEPT, runs).empty
    runs[-1] = run(
        "train", S.SUCCEEDED, combination=dict(starts[5].combination), results={"acc": 0.9}
    )
    # results.train is one entry per combination: its sweep values and its results.
    assert [s.stage for s in decide(project(pipe=SWEPT), SWEPT, runs).starts] == ["evaluate"]


def test_a_failed_combination_stops_the_project_unless_the_sweep_continues_on_failure() -> None:
    combos = [{"X": "1"}, {"X": "2"}]
    strict = pipeline(stage("sweep", sweep={"over": {"X": [1, 2]}}), stage("next"))
    lenient = pipeline(
        stage("sweep", sweep={"over": {"X": [1, 2]}, "continue_on_failure": True}), stage("next")
    )
    runs = [
        run("sweep", S.SUCCEEDED, combination=combos[0]),
        run("sweep", S.FAILED, combination=combos[1], exit_code=3),
    ]
    move = decide(project(pipe=strict), strict, runs).move
    assert move is not None and move.state is ProjectState.FAILED
    assert "stage 'sweep' [X=2]" in (move.reason or "")
    assert [s.stage for s in decide(project(pipe=lenient), lenient, runs).starts] == ["next"]
    every_one_failed = [run("sweep", S.FAILED, combination=c) for c in combos]
    move = decide(project(pipe=lenient), lenient, every_one_failed).move
    assert move is not None and move.state is not ProjectState.SUCCEEDED


def test_a_retry_keeps_its_combination() -> None:
    pipe = pipeline(stage("sweep", sweep={"over": {"X": [1, 2]}}, retry={"on_failure": 1}))
    runs = [
        run("sweep", S.SUCCEEDED, combination={"X": "1"}),
        run("sweep", S.FAILED, combination={"X": "2"}),
    ]
    [retry] = decide(project(pipe=pipe), pipe, runs).starts
    assert (retry.attempt, dict(retry.combination)) == (2, {"X": "2"})


def test_a_shared_workspace_sweep_runs_its_combinations_one_after_another() -> None:
    pipe = pipeline(stage("sweep", sweep={"over": {"X": [1, 2, 3]}, "workspace": "shared"}))
    first = decide(project(pipe=pipe), pipe, []).starts
    assert [dict(s.combination) for s in first] == [{"X": "1"}]
    runs = [run("sweep", S.RUNNING, combination={"X": "1"})]
    assert decide(project(pipe=pipe), pipe, runs).empty
    runs = [run("sweep", S.SUCCEEDED, combination={"X": "1"})]
    assert [dict(s.combination) for s in decide(project(pipe=pipe), pipe, runs).starts] == [
        {"X": "2"}
    ]


def test_a_gated_sweep_asks_once_for_all_its_combinations() -> None:
    pipe = pipeline(stage("sweep", gate=True, sweep={"over": {"X": [1, 2]}, "workspace": "shared"}))
    move = decide(project(pipe=pipe), pipe, []).move
    assert move is not None and move.state is ProjectState.AWAITING_INPUT
    runs = [run("sweep", S.SUCCEEDED, combination={"X": "1"})]
    assert [dict(s.combination) for s in decide(project(pipe=pipe), pipe, runs).starts] == [
        {"X": "2"}
    ]


def test_only_this_stage_runs_it_then_pauses() -> None:
    pipe = pipeline(stage("detect"), stage("track"), stage("report"))
    runs = [run("detect", S.SUCCEEDED, run_id=1), run("track", S.SUCCEEDED, run_id=2)]
    change = commands.resume(
        project(ProjectState.SUCCEEDED, pipe=pipe), pipe, runs, "track", only=True
    )
    assert change.hold_after == frozenset({"track"})
    assert change.supersede_runs == (2,)
    held = project(pipe=pipe, hold_after=frozenset({"track"}))
    runs = [
        run("detect", S.SUCCEEDED, run_id=1),
        run("track", S.SUCCEEDED, run_id=2, superseded=True),
    ]
    assert [s.stage for s in decide(held, pipe, runs).starts] == ["track"]
    runs.append(run("track", S.SUCCEEDED, run_id=3))
    move = decide(held, pipe, runs).move
    assert move is not None and move.state is ProjectState.PAUSED
    assert move.reason == "ran only stage 'track' as asked; resume to go on"
    plain = commands.resume(project(ProjectState.PAUSED, pipe=pipe), pipe, runs)
    assert plain.hold_after == frozenset()


def test_resume_with_overrides_and_blueprint() -> None:
    pipe = pipeline(stage("detect"), stage("track"))
    earlier = run(
        "track",
        S.SUCCEEDED,
        run_id=7,
        variables={"MODEL": "yolo-s", "WINSLOW_RUN": "7"},
        image="detector:1.2",
        cpus=4.0,
        memory_mb=8192,
        gpus=1,
    )
    runs = [run("detect", S.SUCCEEDED, run_id=6), earlier]
    paused = project(ProjectState.SUCCEEDED, pipe=pipe)
    change = commands.resume(
        paused,
        pipe,
        runs,
        "track",
        overrides=commands.RunOverrides(variables={"MODEL": "yolo-x"}, comment="bigger model"),
    )
    assert change.run_overrides == {
        "track": {"variables": {"MODEL": "yolo-x"}, "comment": "bigger model"}
    }
    assert change.message == "resumed from stage 'track' with MODEL=yolo-x: 'bigger model'"
    like = commands.resume(paused, pipe, runs, like_run=7)
    assert like.run_overrides == {
        "track": {
            "variables": {"MODEL": "yolo-s"},
            "image": "detector:1.2",
            "resources": {"cpus": 4.0, "memory_mb": 8192, "gpus": 1},
            "like_run": 7,
        }
    }
    with pytest.raises(ValidationError, match="say which stage"):
        commands.resume(paused, pipe, runs, overrides=commands.RunOverrides(image="x:1"))
    skipped = run("track", S.SKIPPED, run_id=8)
    with pytest.raises(ValidationError, match="Run 8 was skipped"):
        commands.resume(paused, pipe, [*runs, skipped], like_run=8)
    with pytest.raises(ValidationError, match="no run 99"):
        commands.resume(paused, pipe, runs, like_run=99)
    with pytest.raises(ValidationError, match="not 'detect'"):
        commands.resume(paused, pipe, runs, "detect", like_run=7)
    with pytest.raises(ValidationError, match="more than 0 CPUs"):
        commands.resume(paused, pipe, runs, "track", overrides=commands.RunOverrides(cpus=0))
    with pytest.raises(ConflictError):
        commands.resume(project(pipe=pipe), pipe, [run("track", S.RUNNING)], "track")
