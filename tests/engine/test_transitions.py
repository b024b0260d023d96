"""The one writer of state: every change of a project or run goes through the transition
tables, under the project's lock, with its history line; a refused one writes nothing."""

from __future__ import annotations

import logging
from itertools import product

import pytest

from tests.fixtures.postgres import ON_BOTH_DATABASES
from winslow.core import commands
from winslow.core.planner import Decision, MoveProject, SkipRun, StartRun
from winslow.core.states import PROJECT_TRANSITIONS, RUN_TRANSITIONS, ProjectState, StageRunState
from winslow.engine import transitions
from winslow.engine.transitions import RunUpdate
from winslow.errors import ConflictError
from winslow.pipeline.model import Pipeline
from winslow.store.repo import Store

PIPELINE = {
    "name": "p",
    "stages": [{"name": "detect", "command": ["true"]}, {"name": "track", "command": ["true"]}],
}


def create(store: Store, name: str = "ulm", state: ProjectState = ProjectState.IDLE) -> str:
    project = store.create_project(
        name=name, pipeline_name="p", pipeline=PIPELINE, labels=(), variables={}, actor="ana"
    )
    if state is not ProjectState.IDLE:
        with store.project_transaction(project.id) as tx:
            tx.update_project(state=state)
    return project.id


def add_run(store: Store, project: str, state: StageRunState, **fields: object) -> int:
    with store.project_transaction(project) as tx:
        return tx.add_run(stage="detect", attempt=1, state=state, **fields).id


@pytest.mark.parametrize(
    ("current", "target"),
    [pair for pair in product(ProjectState, ProjectState) if pair[0] is not pair[1]],
    ids=lambda state: state.name,
)
def test_project_moves_only_as_the_table_allows(
    store: Store, current: ProjectState, target: ProjectState
) -> None:
    project = create(store, state=current)
    lines = len(store.history(project))
    if target in PROJECT_TRANSITIONS[current]:
        with store.project_transaction(project) as tx:
            transitions.move_project(tx, target, reason="because", actor="ana")
        moved = store.get_project(project)
        assert (moved.state, moved.state_reason) == (target, "because")
        [line] = store.history(project)[lines:]
        assert line.message == f"{current.value} → {target.value}: because"
    else:
        with pytest.raises(ConflictError, match=f"is {current.value}; it cannot become"):  # noqa: SIM117
            with store.project_transaction(project) as tx:
                transitions.move_project(tx, target, reason="because", actor="ana")
        assert store.get_project(project).state is current
        assert len(store.history(project)) == lines


def test_a_kill_after_a_pause_says_the_stage_is_being_killed(store: Store) -> None:
    """Paused and then killed, the project went on saying "pausing after the current
    stage" until the stage was gone."""
    project = create(store, state=ProjectState.RUNNING)
    add_run(store, project, StageRunState.RUNNING)
    paused = transitions.apply_command(
        store, project, lambda p, _pipeline, _runs: commands.pause(p), "ana"
    )
    assert paused.state_reason == "pausing after the current stage"
    killed = transitions.apply_command(
        store, project, lambda p, _pipeline, runs: commands.kill(p, runs), "ana"
    )
    assert (killed.state, killed.state_reason) == (ProjectState.PAUSING, "killing stage detect")
    assert [line.message for line in store.history(project)][-1] == "killed stage detect"


def test_a_projects_move_is_logged_in_the_words_of_its_history(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The server's log said ``idle → ProjectState.RUNNING (started)``."""
    project = create(store)
    with (
        caplog.at_level(logging.INFO, logger="winslow.engine.transitions"),
        store.project_transaction(project) as tx,
    ):
        transitions.move_project(tx, ProjectState.RUNNING, reason="started", actor="ana")
    assert "project ulm: idle → running (started)" in caplog.messages


@pytest.mark.parametrize(
    ("current", "target"),
    [
        pair
        for pair in product(StageRunState, StageRunState)
        if pair[0] is not pair[1] and pair[0] is not StageRunState.SKIPPED
    ],
    ids=lambda state: state.name,
)
def test_backend_reports_are_recorded_only_as_the_table_allows(
    store: Store, current: StageRunState, target: StageRunState
) -> None:
    project = create(store, state=ProjectState.RUNNING)
    run = add_run(store, project, current)
    lines = len(store.history(project))
    recorded = transitions.record_run(store, run, RunUpdate(target, node="gpu-3", exit_code=3))
    if target in RUN_TRANSITIONS[current]:
        assert recorded is not None and recorded.state is target
        assert store.get_run(project, run).node == "gpu-3"
        assert len(store.history(project)) == lines + 1
    else:
        assert recorded is None  # a late or out-of-order report is ignored, not applied
        assert store.get_run(project, run).state is current
        assert len(store.history(project)) == lines


@ON_BOTH_DATABASES
def test_an_ended_run_gets_its_end_time_and_tail(store: Store) -> None:
    project = create(store, state=ProjectState.RUNNING)
    run = add_run(store, project, StageRunState.RUNNING)
    update = RunUpdate(StageRunState.FAILED, exit_code=2, reason="exited with 2", log_tail=("x",))
    ended = transitions.record_run(store, run, update)
    assert ended is not None
    assert (ended.exit_code, ended.reason, ended.log_tail) == (2, "exited with 2", ("x",))
    assert ended.ended_at is not None and ended.started_at == ended.ended_at
    assert "(attempt 1): failed: exited with 2" in store.history(project)[-1].message
    assert transitions.record_run(store, run, update) is None  # the same report twice
    assert transitions.record_run(store, 10_000, update) is None  # a run deleted meanwhile


@ON_BOTH_DATABASES
def test_a_command_into_a_taken_name_writes_nothing(store: Store) -> None:
    create(store, "berlin")
    ulm = create(store, "ulm")
    before = store.get_project(ulm)
    with pytest.raises(ConflictError, match="A project named 'berlin' exists already"):
        transitions.apply_command(
            store, "ulm", lambda project, _p, _r: commands.rename(project, "berlin"), "ana"
        )
    assert store.get_project(ulm) == before
    assert len(store.history(ulm)) == 1


@ON_BOTH_DATABASES
def test_a_decision_on_a_stale_project_is_not_carried_out(store: Store) -> None:
    project_id = create(store, state=ProjectState.RUNNING)
    read = store.get_project(project_id)
    transitions.apply_command(
        store, project_id, lambda project, _p, _r: commands.relabel(project, ["x"]), "ana"
    )
    decision = Decision(starts=(StartRun("detect", 1, "first stage"),))
    pipeline = Pipeline.model_validate(PIPELINE)
    assert transitions.carry_out(store, read, pipeline, decision) is False
    assert store.runs(project_id) == []
    assert transitions.carry_out(store, store.get_project(project_id), pipeline, decision)
    [run] = store.runs(project_id)
    assert (run.stage, run.state, run.job_id) == (
        "detect",
        StageRunState.PENDING,
        f"winslow-ulm-{project_id}-run-{run.id}",
    )


@ON_BOTH_DATABASES
def test_a_decision_skips_and_moves_in_one_transaction(store: Store) -> None:
    project_id = create(store, state=ProjectState.RUNNING)
    decision = Decision(
        skips=(SkipRun("track", "its condition was false"),),
        move=MoveProject(ProjectState.SUCCEEDED, "every stage succeeded or was skipped"),
    )
    pipeline = Pipeline.model_validate(PIPELINE)
    assert transitions.carry_out(store, store.get_project(project_id), pipeline, decision)
    [skipped] = store.runs(project_id)
    assert (skipped.state, skipped.reason) == (StageRunState.SKIPPED, "its condition was false")
    assert store.get_project(project_id).state is ProjectState.SUCCEEDED
    assert [e.kind for e in store.history(project_id)] == ["create", "run", "state"]


@ON_BOTH_DATABASES
def test_submit_bookkeeping_happens_once_per_run(store: Store) -> None:
    project = create(store, state=ProjectState.RUNNING)
    run = add_run(store, project, StageRunState.PENDING, reason="waiting to start")
    assert transitions.note_pending(store, store.get_run(project, run), "no GPU free")
    assert not transitions.note_pending(store, store.get_run(project, run), "no GPU free")
    assert [e.kind for e in store.history(project)].count("pending") == 1
    placed = transitions.mark_submitted(store, run, "gpu-3", (0, 1))
    assert placed is not None
    assert (placed.submitted, placed.node, placed.gpu_indices, placed.reason) == (
        True,
        "gpu-3",
        (0, 1),
        None,
    )
    assert transitions.mark_submitted(store, run, "gpu-4", ()) is None  # never twice
    # Named by the engine, which has the run's project at hand: the same rule.
    assert transitions.mark_submitted(store, run, "gpu-4", (), project_id=project) is None
    transitions.mark_unsubmitted(store, run)
    assert not store.get_run(project, run).submitted


@ON_BOTH_DATABASES
def test_cancelling_an_unsubmitted_run_ends_it_a_submitted_one_is_left_to_the_backend(
    store: Store,
) -> None:
    project = create(store, state=ProjectState.RUNNING)
    waiting = add_run(store, project, StageRunState.PENDING)
    handed = add_run(store, project, StageRunState.RUNNING, submitted=True)
    cancelled = transitions.cancel_unsubmitted(store, waiting)
    assert cancelled is not None and cancelled.state is StageRunState.CANCELLED
    assert cancelled.reason == "killed before it started" and cancelled.ended_at is not None
    left = transitions.cancel_unsubmitted(store, handed)
    assert left is not None and left.state is StageRunState.RUNNING
    assert store.get_run(project, handed).state is StageRunState.RUNNING


@ON_BOTH_DATABASES
def test_a_run_recorded_with_its_project_named_is_recorded_the_same(store: Store) -> None:
    """The engine names the run's project it has at hand, sparing a query per report."""
    project = create(store, state=ProjectState.RUNNING)
    run = add_run(store, project, StageRunState.RUNNING)
    update = RunUpdate(StageRunState.SUCCEEDED, exit_code=0)
    ended = transitions.record_run(store, run, update, project_id=project)
    assert ended is not None and ended.state is StageRunState.SUCCEEDED
    assert store.get_run(project, run).state is StageRunState.SUCCEEDED
    assert "(attempt 1): succeeded" in store.history(project)[-1].message
