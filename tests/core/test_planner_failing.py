"""A failed branch shows at once: the project is ``failing`` while the branches that do not
need the failed stage go on, then ``failed``. Pure: hand-built projects and runs."""

from __future__ import annotations

from winslow.core import commands
from winslow.core.planner import decide
from winslow.core.planning.decisions import Decision, MoveProject
from winslow.core.planning.rules import failed_branch_lets_the_others_go_on
from winslow.core.states import ADVANCING_PROJECT_STATES, NEEDS_PERSON_STATES, ProjectState
from winslow.core.states import StageRunState as S

from .factories import pipeline, project, run, situation, stage

P = ProjectState

# prepare -> report, and prepare -> infer -> publish: two branches after one stage.
BRANCHES = pipeline(
    stage("prepare"),
    stage("report", needs=["prepare"]),
    stage("infer", needs=["prepare"]),
    stage("publish", needs=["infer"]),
)


def _report_failed() -> list:
    return [
        run("prepare", S.SUCCEEDED, run_id=1),
        run("report", S.FAILED, run_id=2, exit_code=2, reason="exited with code 2"),
    ]


def test_failure_while_another_branch_runs_makes_the_project_failing_at_once() -> None:
    runs = [*_report_failed(), run("infer", S.RUNNING, run_id=3)]
    decision = decide(project(pipe=BRANCHES), BRANCHES, runs)
    assert decision.starts == ()
    assert decision.move == MoveProject(
        P.FAILING,
        "stage 'report' (run 2) failed: exited with code 2; "
        "the project ends failed once stage 'infer' has ended",
    )


def test_failing_project_starts_the_stages_of_the_other_branch() -> None:
    runs = [*_report_failed(), run("infer", S.SUCCEEDED, run_id=3)]
    decision = decide(project(P.FAILING, BRANCHES), BRANCHES, runs)
    assert [start.stage for start in decision.starts] == ["publish"]
    assert decision.move is None  # already failing: the reason stays the first failure's


def test_a_stage_that_needs_the_failed_one_never_starts() -> None:
    pipe = pipeline(
        stage("prepare"),
        stage("report", needs=["prepare"]),
        stage("infer", needs=["prepare"]),
        stage("summary", needs=["report"]),
    )
    runs = [*_report_failed(), run("infer", S.RUNNING, run_id=3)]
    decision = decide(project(P.FAILING, pipe), pipe, runs)
    assert decision == Decision()


def test_failing_project_fails_once_nothing_else_can_run() -> None:
    runs = [*_report_failed(), run("infer", S.SUCCEEDED, run_id=3), run("publish", S.SUCCEEDED)]
    decision = decide(project(P.FAILING, BRANCHES), BRANCHES, runs)
    assert decision.move == MoveProject(
        P.FAILED, "stage 'report' (run 2) failed: exited with code 2"
    )
    assert decision.starts == ()


def test_failure_in_the_other_branch_too_still_ends_by_the_first() -> None:
    runs = [*_report_failed(), run("infer", S.FAILED, run_id=3, exit_code=1)]
    decision = decide(project(P.FAILING, BRANCHES), BRANCHES, runs)
    assert decision.move is not None and decision.move.state is P.FAILED
    assert (decision.move.reason or "").startswith("stage 'report' (run 2) failed")


def test_a_failure_with_nothing_else_to_do_fails_at_once_as_before() -> None:
    pipe = pipeline(stage("detect"), stage("track"))
    decision = decide(project(pipe=pipe), pipe, [run("detect", S.FAILED, exit_code=3)])
    assert decision.move is not None and decision.move.state is P.FAILED


def test_a_retry_left_keeps_the_project_running() -> None:
    pipe = pipeline(stage("a", retry={"on_failure": 1}), stage("b", needs=[]))
    runs = [run("a", S.FAILED, run_id=1), run("b", S.RUNNING, run_id=2)]
    decision = decide(project(pipe=pipe), pipe, runs)
    assert decision.move is None
    assert [(start.stage, start.attempt) for start in decision.starts] == [("a", 2)]


def test_a_kill_is_left_to_the_pausing_rules() -> None:
    killed = run("report", S.CANCELLED, run_id=2, cancel_requested=True)
    seen = situation(BRANCHES, [run("prepare", S.SUCCEEDED), killed, run("infer", S.RUNNING)])
    assert failed_branch_lets_the_others_go_on(seen) is None


def test_a_pausing_project_with_a_failure_waits_and_fails_without_starting() -> None:
    runs = [*_report_failed(), run("infer", S.SUCCEEDED, run_id=3)]
    decision = decide(project(P.PAUSING, BRANCHES), BRANCHES, runs)
    assert decision.starts == ()
    assert decision.move is not None and decision.move.state is P.FAILED


def test_failing_advances_and_needs_a_person() -> None:
    assert P.FAILING in ADVANCING_PROJECT_STATES
    assert P.FAILING in NEEDS_PERSON_STATES
    assert P.FAILING.value == "failing"


def test_pause_and_kill_of_a_failing_project_stop_the_other_branches() -> None:
    failing = project(P.FAILING, BRANCHES)
    assert commands.pause(failing).state is P.PAUSING
    active = run("infer", S.RUNNING, run_id=3)
    assert commands.kill(failing, [*_report_failed(), active]).state is P.PAUSING


def test_resume_of_a_failing_project_runs_the_failed_stage_again() -> None:
    runs = [*_report_failed(), run("infer", S.RUNNING, run_id=3)]
    change = commands.resume(project(P.FAILING, BRANCHES), BRANCHES, runs)
    assert change.state is P.RUNNING
    assert change.supersede_runs == (2,)


def test_failed_combination_of_a_sweep_shows_while_the_others_run() -> None:
    pipe = pipeline(stage("train", sweep={"over": {"X": [1, 2]}}), stage("report"))
    runs = [
        run("train", S.FAILED, run_id=1, exit_code=1, combination={"X": "1"}),
        run("train", S.RUNNING, run_id=2, combination={"X": "2"}),
    ]
    decision = decide(project(pipe=pipe), pipe, runs)
    assert decision.starts == ()
    assert decision.move is not None and decision.move.state is P.FAILING
    assert decision.move.reason == (
        "stage 'train' [X=1] (run 1) failed: exited with code 1; "
        "the project ends failed once stage 'train' has ended"
    )
