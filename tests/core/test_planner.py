"""What the engine is told to do next, for every situation a project can be in."""

from __future__ import annotations

from winslow.core.planner import decide
from winslow.core.states import ProjectState, StageRunState

from .factories import pipeline, project, run, stage

S = StageRunState


def test_new_running_project_starts_its_first_stage_only() -> None:
    decision = decide(project(), pipeline(stage("detect"), stage("track")), [])
    assert [(s.stage, s.attempt) for s in decision.starts] == [("detect", 1)]
    assert decision.move is None


def test_next_stage_starts_when_previous_succeeded() -> None:
    pipe = pipeline(stage("detect"), stage("track"))
    decision = decide(project(pipe=pipe), pipe, [run("detect", S.SUCCEEDED)])
    assert [s.stage for s in decision.starts] == ["track"]


def test_nothing_new_starts_while_a_stage_runs() -> None:
    pipe = pipeline(stage("detect"), stage("track"))
    assert decide(project(pipe=pipe), pipe, [run("detect", S.RUNNING)]).empty


def test_independent_branches_start_together_and_join_waits_for_both() -> None:
    pipe = pipeline(
        stage("detect"),
        stage("track", needs=["detect"]),
        stage("counts", needs=["detect"]),
        stage("report", needs=["track", "counts"]),
    )
    first = decide(project(pipe=pipe), pipe, [run("detect", S.SUCCEEDED)])
    assert sorted(s.stage for s in first.starts) == ["counts", "track"]
    half = decide(
        project(pipe=pipe),
        pipe,
        [run("detect", S.SUCCEEDED), run("track", S.SUCCEEDED), run("counts", S.RUNNING)],
    )
    assert half.starts == ()
    done = decide(
        project(pipe=pipe),
        pipe,
        [run("detect", S.SUCCEEDED), run("track", S.SUCCEEDED), run("counts", S.SUCCEEDED)],
    )
    assert [s.stage for s in done.starts] == ["report"]


def test_gate_stops_for_a_person_and_names_the_stage() -> None:
    pipe = pipeline(stage("detect"), stage("review", gate=True), stage("track"))
    decision = decide(project(pipe=pipe), pipe, [run("detect", S.SUCCEEDED)])
    assert decision.starts == ()
    assert decision.move is not None
    assert decision.move.state is ProjectState.AWAITING_INPUT
    assert decision.move.waiting_for == {"stage": "review", "gate": "review"}


def test_approved_gate_starts() -> None:
    pipe = pipeline(stage("detect"), stage("review", gate=True))
    proj = project(pipe=pipe, approved_gates=frozenset({"review"}))
    assert [s.stage for s in decide(proj, pipe, [run("detect", S.SUCCEEDED)]).starts] == ["review"]


def test_confirmation_once_asks_only_before_the_first_run_always_before_every_one() -> None:
    once = pipeline(stage("detect"), stage("review", confirmation="once"))
    always = pipeline(stage("detect"), stage("review", confirmation="always"))
    first = [run("detect", S.SUCCEEDED)]
    for pipe in (once, always):
        decision = decide(project(pipe=pipe), pipe, first)
        assert decision.move is not None and decision.move.waiting_for["gate"] == "review"
    # After a resume from 'detect' the earlier runs are superseded; 'review' ran once.
    redo = [
        run("detect", S.SUCCEEDED, superseded=True),
        run("review", S.SUCCEEDED, superseded=True),
        run("detect", S.SUCCEEDED),
    ]
    assert [s.stage for s in decide(project(pipe=once), once, redo).starts] == ["review"]
    asked = decide(project(pipe=always), always, redo)
    assert asked.starts == () and asked.move is not None
    assert asked.move.waiting_for == {"stage": "review", "gate": "review"}
    never = pipeline(stage("detect"), stage("review", confirmation="never"))
    assert [s.stage for s in decide(project(pipe=never), never, first).starts] == ["review"]


def test_a_stage_waits_for_its_own_required_variables_and_names_them() -> None:
    pipe = pipeline(
        stage("detect"),
        stage("track", required_variables=["CAMERA_HEIGHT", "FPS"]),
        variables={"FPS": {"default": "25"}},
    )
    decision = decide(project(pipe=pipe), pipe, [run("detect", S.SUCCEEDED)])
    assert decision.move is not None
    assert decision.move.state is ProjectState.AWAITING_INPUT
    assert decision.move.waiting_for == {"stage": "track", "variables": ["CAMERA_HEIGHT"]}
    given = project(pipe=pipe, variables={"CAMERA_HEIGHT": "80"})
    assert [s.stage for s in decide(given, pipe, [run("detect", S.SUCCEEDED)]).starts] == ["track"]


def test_missing_required_variable_waits_and_names_it() -> None:
    pipe = pipeline(
        stage("detect", command=["detect", "${INPUT_VIDEO}"]),
        variables={"INPUT_VIDEO": {"required": True}},
    )
    decision = decide(project(pipe=pipe), pipe, [])
    assert decision.move is not None
    assert decision.move.state is ProjectState.AWAITING_INPUT
    assert decision.move.waiting_for["variables"] == ["INPUT_VIDEO"]
    assert "INPUT_VIDEO" in (decision.move.reason or "")


def test_variable_with_default_is_not_missing() -> None:
    pipe = pipeline(
        stage("detect", command=["detect", "${MIN_AREA}"]),
        variables={"MIN_AREA": {"default": "400"}},
    )
    assert [s.stage for s in decide(project(pipe=pipe), pipe, []).starts] == ["detect"]


def test_all_stages_succeeded_means_succeeded() -> None:
    pipe = pipeline(stage("detect"), stage("track"))
    decision = decide(
        project(pipe=pipe), pipe, [run("detect", S.SUCCEEDED), run("track", S.SUCCEEDED)]
    )
    assert decision.move is not None and decision.move.state is ProjectState.SUCCEEDED


def test_failure_without_retries_fails_the_project_with_exit_code() -> None:
    pipe = pipeline(stage("detect"), stage("track"))
    failed = run("detect", S.FAILED, exit_code=3, reason="exited with code 3")
    decision = decide(project(pipe=pipe), pipe, [failed])
    assert decision.move is not None and decision.move.state is ProjectState.FAILED
    assert "exited with code 3" in (decision.move.reason or "")
    assert decision.starts == ()


def test_failure_with_retry_policy_starts_next_attempt() -> None:
    pipe = pipeline(stage("detect", retry={"on_failure": 2}))
    decision = decide(project(pipe=pipe), pipe, [run("detect", S.FAILED, attempt=2)])
    assert [(s.stage, s.attempt) for s in decision.starts] == [("detect", 3)]
    exhausted = decide(project(pipe=pipe), pipe, [run("detect", S.FAILED, attempt=3)])
    assert exhausted.move is not None and exhausted.move.state is ProjectState.FAILED


def test_lost_run_uses_the_lost_retry_policy() -> None:
    pipe = pipeline(stage("detect", retry={"on_failure": 0, "on_lost": 1}))
    decision = decide(project(pipe=pipe), pipe, [run("detect", S.LOST, reason="node gone")])
    assert [(s.stage, s.attempt) for s in decision.starts] == [("detect", 2)]


def test_pausing_waits_for_active_runs_then_pauses() -> None:
    pipe = pipeline(stage("detect"), stage("track"))
    proj = project(ProjectState.PAUSING, pipe)
    assert decide(proj, pipe, [run("detect", S.RUNNING)]).empty
    decision = decide(proj, pipe, [run("detect", S.SUCCEEDED)])
    assert decision.starts == ()
    assert decision.move is not None and decision.move.state is ProjectState.PAUSED


def test_killed_run_is_waited_for_then_project_pauses() -> None:
    pipe = pipeline(stage("detect"))
    proj = project(ProjectState.PAUSING, pipe)
    active = run("detect", S.RUNNING, run_id=7, cancel_requested=True)
    assert decide(proj, pipe, [active]).empty
    ended = run("detect", S.CANCELLED, run_id=7, cancel_requested=True)
    decision = decide(proj, pipe, [ended])
    assert decision.move is not None and decision.move.state is ProjectState.PAUSED
    assert "killed" in (decision.move.reason or "")


def test_superseded_runs_do_not_count() -> None:
    pipe = pipeline(stage("detect"), stage("track"))
    runs = [run("detect", S.SUCCEEDED), run("track", S.SUCCEEDED, superseded=True)]
    assert [s.stage for s in decide(project(pipe=pipe), pipe, runs).starts] == ["track"]


def test_settled_projects_need_nothing() -> None:
    pipe = pipeline(stage("detect"))
    for state in (
        ProjectState.IDLE,
        ProjectState.PAUSED,
        ProjectState.FAILED,
        ProjectState.SUCCEEDED,
        ProjectState.AWAITING_INPUT,
    ):
        assert decide(project(state, pipe), pipe, []).empty
