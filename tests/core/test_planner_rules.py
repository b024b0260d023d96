"""Each of the planner's named rules on its own: when it answers, what, and when it does not."""

from __future__ import annotations

import inspect

import pytest

from winslow.core.planning import rules
from winslow.core.planning.decisions import Decision, MoveProject, SkipRun, StartRun
from winslow.core.planning.rules import (
    NOTHING_NOW,
    PROJECT_RULES,
    STAGE_RULES,
    StageAnswer,
    condition_decides,
    finished_project_succeeds,
    gate_waits_for_a_person,
    only_advancing_projects_move,
    only_the_held_stage_may_start,
    only_this_stage_then_pause,
    pausing_project_settles,
    ready_stage_starts,
    ready_stages_start,
    retry_of,
    shared_sweep_starts_one_combination,
    skipped_stage_stays_skipped,
    stage_after_skipped_needs_is_skipped,
    stage_waits_for_its_needs,
    stage_waits_for_variables,
    started_stage_needs_no_new_run,
    stopped_run_ends_the_project,
    stops_the_project,
    stuck_project_pauses,
    undecidable_condition_fails_the_project,
    untaken_routes_are_skipped,
    waiting_stage_asks_a_person,
)
from winslow.core.states import ProjectState, StageRunState

from .factories import pipeline, run, situation, stage

S = StageRunState
P = ProjectState

TWO = pipeline(stage("detect"), stage("track"))
SWEEP = {"over": {"X": [1, 2]}}
SHARED_SWEEP = {"over": {"X": [1, 2, 3]}, "workspace": "shared"}


# --- After a run ended badly ----------------------------------------------------------


def test_failed_run_is_retried_while_its_policy_allows() -> None:
    detect = pipeline(stage("detect", retry={"on_failure": 1})).stage("detect")
    failed = run("detect", S.FAILED, run_id=4, exit_code=3)
    assert retry_of(detect, failed) == StartRun(
        "detect", 2, "retry after: stage 'detect' (run 4) failed: exited with code 3", {}
    )
    assert stops_the_project(detect, failed) is False


def test_failure_past_its_retries_is_not_retried_and_stops_the_project() -> None:
    detect = pipeline(stage("detect", retry={"on_failure": 1})).stage("detect")
    failed = run("detect", S.FAILED, attempt=2)
    assert retry_of(detect, failed) is None
    assert stops_the_project(detect, failed) is True


def test_lost_run_is_retried_by_the_lost_policy_not_the_failure_policy() -> None:
    detect = pipeline(stage("detect", retry={"on_failure": 0, "on_lost": 1})).stage("detect")
    lost = run("detect", S.LOST, run_id=5, reason="node gpu-3 stopped answering")
    retry = retry_of(detect, lost)
    assert retry is not None and retry.attempt == 2
    assert (
        retry.reason == "retry after: stage 'detect' (run 5) was lost: node gpu-3 stopped answering"
    )
    assert retry_of(detect, run("detect", S.FAILED)) is None


def test_killed_run_is_never_retried_and_stops_the_project() -> None:
    detect = pipeline(stage("detect", retry={"on_failure": 3, "on_lost": 3})).stage("detect")
    cancelled = run("detect", S.CANCELLED, cancel_requested=True)
    failed_while_killed = run("detect", S.FAILED, cancel_requested=True)
    for killed in (cancelled, failed_while_killed):
        assert retry_of(detect, killed) is None
        assert stops_the_project(detect, killed) is True


def test_a_run_that_ended_well_or_still_runs_needs_no_retry() -> None:
    detect = pipeline(stage("detect", retry={"on_failure": 3})).stage("detect")
    for state in (S.SUCCEEDED, S.SKIPPED, S.RUNNING, S.PENDING):
        assert retry_of(detect, run("detect", state)) is None
        assert stops_the_project(detect, run("detect", state)) is False


def test_a_retry_keeps_its_sweep_combination() -> None:
    sweep = pipeline(stage("sweep", sweep=SWEEP, retry={"on_failure": 1})).stage("sweep")
    retry = retry_of(sweep, run("sweep", S.FAILED, combination={"X": "2"}))
    assert retry is not None and dict(retry.combination) == {"X": "2"}


def test_a_lenient_sweep_tolerates_a_failed_combination_but_not_a_killed_one() -> None:
    lenient = {**SWEEP, "continue_on_failure": True}
    sweep = pipeline(stage("sweep", sweep=lenient)).stage("sweep")
    assert stops_the_project(sweep, run("sweep", S.FAILED, combination={"X": "1"})) is False
    killed = run("sweep", S.FAILED, combination={"X": "1"}, cancel_requested=True)
    assert stops_the_project(sweep, killed) is True


def test_situation_retries_and_stops_only_for_current_runs_of_stages_that_may_start() -> None:
    pipe = pipeline(stage("detect", retry={"on_failure": 1}), stage("track"))
    runs = [
        run("detect", S.FAILED, run_id=1, superseded=True),
        run("detect", S.SUCCEEDED, run_id=2),
        run("track", S.FAILED, run_id=3),
    ]
    seen = situation(pipe, runs)
    assert seen.retries == ()
    assert [r.id for r in seen.stopped] == [3]
    held = situation(pipe, runs, hold_after=frozenset({"detect"}))
    assert held.stopped == ()  # 'track' is not this stage: it does not stop the project


# --- Stage rules ----------------------------------------------------------------------


def test_only_the_held_stage_may_start_after_run_only_this_stage() -> None:
    held = situation(TWO, [run("detect", S.SUCCEEDED)], hold_after=frozenset({"detect"}))
    assert only_the_held_stage_may_start(held, TWO.stage("track")) == NOTHING_NOW
    assert only_the_held_stage_may_start(held, TWO.stage("detect")) is None
    assert only_the_held_stage_may_start(situation(TWO), TWO.stage("track")) is None


def test_skipped_stage_stays_skipped_until_a_resume() -> None:
    track = TWO.stage("track")
    skipped = situation(TWO, [run("detect", S.SUCCEEDED), run("track", S.SKIPPED)])
    assert skipped_stage_stays_skipped(skipped, track) == NOTHING_NOW
    superseded = run("track", S.SKIPPED, superseded=True)
    redone = situation(TWO, [run("detect", S.SUCCEEDED), superseded])
    assert skipped_stage_stays_skipped(redone, track) is None


def test_started_stage_needs_no_new_run_once_every_combination_has_one() -> None:
    pipe = pipeline(stage("sweep", sweep=SWEEP, retry={"on_failure": 1}))
    sweep = pipe.stage("sweep")
    both = [
        run("sweep", S.RUNNING, combination={"X": "1"}),
        run("sweep", S.SUCCEEDED, combination={"X": "2"}),
    ]
    assert started_stage_needs_no_new_run(situation(pipe, both), sweep) == NOTHING_NOW
    one = both[:1]
    assert started_stage_needs_no_new_run(situation(pipe, one), sweep) is None
    retried = [*one, run("sweep", S.FAILED, combination={"X": "2"})]
    assert started_stage_needs_no_new_run(situation(pipe, retried), sweep) == NOTHING_NOW
    assert started_stage_needs_no_new_run(situation(pipe), sweep) is None


def test_stage_waits_for_its_needs_until_they_succeeded_or_were_skipped() -> None:
    track = TWO.stage("track")
    assert stage_waits_for_its_needs(situation(TWO), track) == NOTHING_NOW
    assert (
        stage_waits_for_its_needs(situation(TWO, [run("detect", S.RUNNING)]), track) == NOTHING_NOW
    )
    assert (
        stage_waits_for_its_needs(situation(TWO, [run("detect", S.FAILED)]), track) == NOTHING_NOW
    )
    for done in (S.SUCCEEDED, S.SKIPPED):
        assert stage_waits_for_its_needs(situation(TWO, [run("detect", done)]), track) is None
    assert stage_waits_for_its_needs(situation(TWO), TWO.stage("detect")) is None


def test_stage_after_only_skipped_needs_is_skipped_and_names_them() -> None:
    pipe = pipeline(stage("a"), stage("b", needs=[]), stage("join", needs=["a", "b"]))
    join = pipe.stage("join")
    both_skipped = situation(pipe, [run("a", S.SKIPPED), run("b", S.SKIPPED)])
    assert stage_after_skipped_needs_is_skipped(both_skipped, join) == StageAnswer(
        skip=SkipRun(
            "join", "every stage it needs was skipped (a, b)", {"needs_skipped": ["a", "b"]}
        )
    )


def test_a_join_of_a_taken_and_an_untaken_route_is_not_skipped() -> None:
    pipe = pipeline(stage("a"), stage("b", needs=[]), stage("join", needs=["a", "b"]))
    one_taken = situation(pipe, [run("a", S.SKIPPED), run("b", S.SUCCEEDED)])
    assert stage_after_skipped_needs_is_skipped(one_taken, pipe.stage("join")) is None
    assert stage_after_skipped_needs_is_skipped(one_taken, pipe.stage("a")) is None


ROUTE = pipeline(
    stage("detect"),
    stage("count", when='results.detect.vehicles > 0 and QUALITY == "high"'),
    variables={"QUALITY": {"default": "high"}},
)


def test_false_condition_skips_the_stage_naming_the_values_it_saw() -> None:
    seen = situation(ROUTE, [run("detect", S.SUCCEEDED, results={"vehicles": 0})])
    answer = condition_decides(seen, ROUTE.stage("count"))
    assert answer is not None and answer.skip is not None
    assert answer.skip.reason == (
        'condition `results.detect.vehicles > 0 and QUALITY == "high"` is false '
        "(results.detect.vehicles = 0, QUALITY = 'high')"
    )
    assert answer.skip.data["condition"] == ROUTE.stage("count").when
    assert answer.starts == () and answer.fail is None


def test_true_condition_or_none_leaves_the_stage_to_the_next_rules() -> None:
    seen = situation(ROUTE, [run("detect", S.SUCCEEDED, results={"vehicles": 4})])
    assert condition_decides(seen, ROUTE.stage("count")) is None
    assert condition_decides(seen, ROUTE.stage("detect")) is None


def test_condition_is_asked_only_before_the_stages_first_run() -> None:
    runs = [run("detect", S.SUCCEEDED, results={"vehicles": 0}), run("count", S.FAILED)]
    assert condition_decides(situation(ROUTE, runs), ROUTE.stage("count")) is None


def test_condition_that_cannot_be_evaluated_fails_the_project() -> None:
    seen = situation(ROUTE, [run("detect", S.SUCCEEDED, results={"cars": 3})])
    answer = condition_decides(seen, ROUTE.stage("count"))
    assert answer is not None and answer.fail is not None
    assert answer.fail.state is P.FAILED
    assert (answer.fail.reason or "").startswith("stage 'count' cannot decide whether to run: ")
    assert (answer.fail.reason or "").endswith("; fix the condition or the results, then resume")


def test_condition_over_a_missing_variable_waits_for_the_variable_instead_of_failing() -> None:
    pipe = pipeline(
        stage("detect"),
        stage("count", when='QUALITY == "high"'),
        variables={"QUALITY": {"required": True}},
    )
    seen = situation(pipe, [run("detect", S.SUCCEEDED)])
    assert condition_decides(seen, pipe.stage("count")) is None
    answer = stage_waits_for_variables(seen, pipe.stage("count"))
    assert answer is not None and answer.wait is not None


def test_stage_waits_for_its_variables_and_names_them() -> None:
    pipe = pipeline(
        stage("detect", required_variables=["CAMERA_HEIGHT", "FPS"]),
        variables={"FPS": {"default": "25"}},
    )
    answer = stage_waits_for_variables(situation(pipe), pipe.stage("detect"))
    assert answer == StageAnswer(
        wait=MoveProject(
            P.AWAITING_INPUT,
            "stage 'detect' needs the variables CAMERA_HEIGHT; set them, then resume",
            {"stage": "detect", "variables": ["CAMERA_HEIGHT"]},
        )
    )
    given = situation(pipe, variables={"CAMERA_HEIGHT": "80"})
    assert stage_waits_for_variables(given, pipe.stage("detect")) is None


def test_gate_waits_for_a_person_before_first_run() -> None:
    pipe = pipeline(stage("detect"), stage("review", gate=True))
    answer = gate_waits_for_a_person(
        situation(pipe, [run("detect", S.SUCCEEDED)]), pipe.stage("review")
    )
    assert answer == StageAnswer(
        wait=MoveProject(
            P.AWAITING_INPUT,
            "stage 'review' waits for a person; resume to start it",
            {"stage": "review", "gate": "review"},
        )
    )


def test_an_approved_gate_or_a_stage_without_one_does_not_wait() -> None:
    pipe = pipeline(stage("detect"), stage("review", gate=True))
    approved = situation(pipe, [run("detect", S.SUCCEEDED)], approved_gates=frozenset({"review"}))
    assert gate_waits_for_a_person(approved, pipe.stage("review")) is None
    assert gate_waits_for_a_person(approved, pipe.stage("detect")) is None


def test_a_gate_asked_once_does_not_ask_again_after_a_redo() -> None:
    pipe = pipeline(stage("detect"), stage("review", confirmation="once"))
    redo = [
        run("detect", S.SUCCEEDED, superseded=True),
        run("review", S.SUCCEEDED, superseded=True),
        run("detect", S.SUCCEEDED),
    ]
    assert gate_waits_for_a_person(situation(pipe, redo), pipe.stage("review")) is None


def test_a_gated_sweep_asks_only_before_its_first_combination() -> None:
    pipe = pipeline(stage("sweep", gate=True, sweep=SHARED_SWEEP))
    started = situation(pipe, [run("sweep", S.SUCCEEDED, combination={"X": "1"})])
    assert gate_waits_for_a_person(started, pipe.stage("sweep")) is None


def test_shared_workspace_sweep_starts_its_first_open_combination_only() -> None:
    pipe = pipeline(stage("sweep", sweep=SHARED_SWEEP))
    sweep = pipe.stage("sweep")
    answer = shared_sweep_starts_one_combination(situation(pipe), sweep)
    assert answer == StageAnswer(starts=(StartRun("sweep", 1, "first stage", {"X": "1"}),))
    after_one = situation(pipe, [run("sweep", S.SUCCEEDED, combination={"X": "1"})])
    answer = shared_sweep_starts_one_combination(after_one, sweep)
    assert answer is not None and [dict(s.combination) for s in answer.starts] == [{"X": "2"}]


def test_shared_workspace_sweep_starts_nothing_while_a_combination_runs_or_retries() -> None:
    pipe = pipeline(stage("sweep", sweep=SHARED_SWEEP, retry={"on_failure": 1}))
    sweep = pipe.stage("sweep")
    running = situation(pipe, [run("sweep", S.RUNNING, combination={"X": "1"})])
    assert shared_sweep_starts_one_combination(running, sweep) == NOTHING_NOW
    retrying = situation(pipe, [run("sweep", S.FAILED, combination={"X": "1"})])
    assert shared_sweep_starts_one_combination(retrying, sweep) == NOTHING_NOW


def test_a_sweep_with_own_workspaces_or_no_sweep_is_not_one_at_a_time() -> None:
    own = pipeline(stage("sweep", sweep=SWEEP))
    assert shared_sweep_starts_one_combination(situation(own), own.stage("sweep")) is None
    assert shared_sweep_starts_one_combination(situation(TWO), TWO.stage("detect")) is None


def test_ready_stage_starts_every_open_combination_and_says_why() -> None:
    pipe = pipeline(stage("prepare"), stage("sweep", sweep=SWEEP))
    first = ready_stage_starts(situation(pipe), pipe.stage("prepare"))
    assert first == StageAnswer(starts=(StartRun("prepare", 1, "first stage", {}),))
    seen = situation(
        pipe, [run("prepare", S.SUCCEEDED), run("sweep", S.RUNNING, combination={"X": "1"})]
    )
    answer = ready_stage_starts(seen, pipe.stage("sweep"))
    assert answer == StageAnswer(starts=(StartRun("sweep", 1, "its needs succeeded", {"X": "2"}),))


def test_plan_puts_retries_first_and_names_the_first_stage_that_waits() -> None:
    pipe = pipeline(
        stage("a", retry={"on_failure": 1}),
        stage("b", needs=[], required_variables=["B"]),
        stage("c", needs=[], gate=True),
        stage("d", needs=[]),
    )
    plan = situation(pipe, [run("a", S.FAILED)]).plan
    assert [(s.stage, s.attempt) for s in plan.starts] == [("a", 2), ("d", 1)]
    assert plan.waiting is not None and plan.waiting.waiting_for["stage"] == "b"
    assert plan.failure is None


def test_plan_ends_at_the_first_stage_that_fails_the_project() -> None:
    pipe = pipeline(stage("a"), stage("b", needs=[], when="results.a.x > 0"), stage("c", needs=[]))
    plan = situation(pipe, [run("a", S.SUCCEEDED)]).plan
    assert plan.failure is not None and "stage 'b'" in (plan.failure.reason or "")
    assert plan.starts == () and plan.skips == ()


# --- Project rules --------------------------------------------------------------------


@pytest.mark.parametrize("state", [P.IDLE, P.PAUSED, P.AWAITING_INPUT, P.FAILED, P.SUCCEEDED])
def test_settled_projects_need_nothing(state: ProjectState) -> None:
    assert only_advancing_projects_move(situation(TWO, state=state)) == Decision()


@pytest.mark.parametrize("state", [P.RUNNING, P.PAUSING])
def test_running_and_pausing_projects_are_left_to_the_next_rules(state: ProjectState) -> None:
    assert only_advancing_projects_move(situation(TWO, state=state)) is None


def test_pausing_project_waits_for_its_active_runs() -> None:
    seen = situation(TWO, [run("detect", S.RUNNING)], state=P.PAUSING)
    assert pausing_project_settles(seen) == Decision()


def test_pausing_project_pauses_once_nothing_runs_and_starts_nothing() -> None:
    seen = situation(TWO, [run("detect", S.SUCCEEDED)], state=P.PAUSING)
    assert pausing_project_settles(seen) == Decision(
        move=MoveProject(P.PAUSED, "paused after the current stage")
    )


def test_pausing_project_names_the_kill_it_paused_for() -> None:
    killed = run("detect", S.CANCELLED, run_id=7, cancel_requested=True)
    seen = situation(TWO, [killed], state=P.PAUSING)
    assert pausing_project_settles(seen) == Decision(
        move=MoveProject(P.PAUSED, "stage 'detect' (run 7) was killed")
    )


def test_pausing_project_with_a_failure_fails() -> None:
    pipe = pipeline(stage("a"), stage("b", needs=[]))
    runs = [
        run("a", S.CANCELLED, run_id=1, cancel_requested=True),
        run("b", S.FAILED, run_id=2, reason="out of memory"),
    ]
    decision = pausing_project_settles(situation(pipe, runs, state=P.PAUSING))
    assert decision == Decision(
        move=MoveProject(P.FAILED, "stage 'b' (run 2) failed: out of memory")
    )


def test_pausing_project_does_not_start_a_retry_that_is_due() -> None:
    pipe = pipeline(stage("detect", retry={"on_failure": 1}))
    decision = pausing_project_settles(situation(pipe, [run("detect", S.FAILED)], state=P.PAUSING))
    assert decision is not None and decision.starts == ()
    assert decision.move is not None and decision.move.state is P.PAUSED


def test_a_running_project_is_not_settled_by_the_pausing_rule() -> None:
    assert pausing_project_settles(situation(TWO, [run("detect", S.SUCCEEDED)])) is None


def test_stopped_run_fails_the_project_once_the_others_ended() -> None:
    pipe = pipeline(stage("a"), stage("b", needs=[]))
    failed = run("a", S.FAILED, run_id=1, exit_code=3)
    assert (
        stopped_run_ends_the_project(situation(pipe, [failed, run("b", S.RUNNING)])) == Decision()
    )
    decision = stopped_run_ends_the_project(situation(pipe, [failed, run("b", S.SUCCEEDED)]))
    assert decision == Decision(
        move=MoveProject(P.FAILED, "stage 'a' (run 1) failed: exited with code 3")
    )


def test_killed_run_pauses_a_running_project() -> None:
    killed = run("detect", S.CANCELLED, run_id=3, cancel_requested=True)
    assert stopped_run_ends_the_project(situation(TWO, [killed])) == Decision(
        move=MoveProject(P.PAUSED, "stage 'detect' (run 3) was killed")
    )


def test_a_run_with_a_retry_left_does_not_end_the_project() -> None:
    pipe = pipeline(stage("detect", retry={"on_failure": 1}))
    assert stopped_run_ends_the_project(situation(pipe, [run("detect", S.FAILED)])) is None


def test_undecidable_condition_fails_the_project_even_while_others_run() -> None:
    pipe = pipeline(
        stage("a"), stage("b", needs=["a"], when="results.a.x > 0"), stage("c", needs=[])
    )
    seen = situation(pipe, [run("a", S.SUCCEEDED), run("c", S.RUNNING)])
    decision = undecidable_condition_fails_the_project(seen)
    assert decision is not None and decision.move is not None
    assert decision.move.state is P.FAILED
    assert undecidable_condition_fails_the_project(situation(TWO)) is None


def test_ready_stages_start_with_the_skips_of_the_same_look() -> None:
    seen = situation(ROUTE, [run("detect", S.SUCCEEDED, results={"vehicles": 0})])
    assert ready_stages_start(seen) is None  # only a skip: the next rule records it
    pipe = pipeline(
        stage("a"), stage("b", needs=["a"], when="results.a.x > 0"), stage("c", needs=["a"])
    )
    seen = situation(pipe, [run("a", S.SUCCEEDED, results={"x": 0})])
    decision = ready_stages_start(seen)
    assert decision is not None
    assert [s.stage for s in decision.starts] == ["c"]
    assert [s.stage for s in decision.skips] == ["b"]
    assert decision.move is None


def test_while_a_run_is_active_the_project_does_not_move() -> None:
    pipe = pipeline(stage("a"), stage("b", needs=[], gate=True))
    decision = ready_stages_start(situation(pipe, [run("a", S.RUNNING)]))
    assert decision == Decision()
    assert ready_stages_start(situation(pipe, [run("a", S.SUCCEEDED)])) is None


def test_untaken_routes_are_skipped_when_nothing_else_happens() -> None:
    seen = situation(ROUTE, [run("detect", S.SUCCEEDED, results={"vehicles": 0})])
    decision = untaken_routes_are_skipped(seen)
    assert decision is not None and [s.stage for s in decision.skips] == ["count"]
    assert decision.starts == () and decision.move is None
    assert untaken_routes_are_skipped(situation(TWO, [run("detect", S.SUCCEEDED)])) is None


def test_waiting_stage_asks_a_person_once_nothing_runs() -> None:
    pipe = pipeline(stage("detect"), stage("review", gate=True))
    decision = waiting_stage_asks_a_person(situation(pipe, [run("detect", S.SUCCEEDED)]))
    assert decision is not None and decision.move is not None
    assert decision.move.state is P.AWAITING_INPUT
    assert decision.move.waiting_for == {"stage": "review", "gate": "review"}
    assert waiting_stage_asks_a_person(situation(TWO, [run("detect", S.SUCCEEDED)])) is None


def test_only_this_stage_pauses_the_project_and_says_how_to_go_on() -> None:
    held = situation(TWO, [run("detect", S.SUCCEEDED)], hold_after=frozenset({"detect"}))
    assert only_this_stage_then_pause(held) == Decision(
        move=MoveProject(P.PAUSED, "ran only stage 'detect' as asked; resume to go on")
    )
    assert only_this_stage_then_pause(situation(TWO, [run("detect", S.SUCCEEDED)])) is None


def test_finished_project_succeeds_and_names_skipped_stages() -> None:
    done = situation(TWO, [run("detect", S.SUCCEEDED), run("track", S.SUCCEEDED)])
    assert finished_project_succeeds(done) == Decision(
        move=MoveProject(P.SUCCEEDED, "every stage succeeded")
    )
    skipped = situation(TWO, [run("detect", S.SUCCEEDED), run("track", S.SKIPPED)])
    decision = finished_project_succeeds(skipped)
    assert decision is not None and decision.move is not None
    assert decision.move.reason == "every stage succeeded or was skipped (skipped: track)"


def test_a_project_with_a_stage_left_has_not_succeeded() -> None:
    assert finished_project_succeeds(situation(TWO, [run("detect", S.SUCCEEDED)])) is None


def test_stuck_project_pauses_and_says_why() -> None:
    assert stuck_project_pauses(situation(TWO)) == Decision(
        move=MoveProject(
            P.PAUSED,
            "no stage can start: the remaining stages need stages that have not succeeded",
        )
    )


# --- The policies ---------------------------------------------------------------------


def _rules_returning(annotation: str) -> set[str]:
    return {
        name
        for name, value in vars(rules).items()
        if inspect.isfunction(value)
        and value.__module__ == rules.__name__
        and not name.startswith("_")
        and inspect.get_annotations(value).get("return") == annotation
    }


def test_every_rule_is_in_its_policy_once() -> None:
    assert sorted(r.__name__ for r in PROJECT_RULES) == sorted(_rules_returning("Decision | None"))
    assert sorted(r.__name__ for r in STAGE_RULES) == sorted(_rules_returning("StageAnswer | None"))


def test_each_policy_ends_with_a_rule_that_always_answers() -> None:
    assert PROJECT_RULES[-1] is stuck_project_pauses
    assert STAGE_RULES[-1] is ready_stage_starts
