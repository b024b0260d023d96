"""Commands a person gives: what each changes, and the words when one is refused."""

from __future__ import annotations

import pytest

from winslow.core import commands
from winslow.core.states import ProjectState, StageRunState
from winslow.errors import ConflictError, ValidationError

from .factories import pipeline, project, run, stage

S = StageRunState
PIPE = pipeline(stage("detect"), stage("review", gate=True), stage("track"), stage("analyze"))


def test_start_only_from_idle() -> None:
    assert commands.start(project(ProjectState.IDLE, PIPE)).state is ProjectState.RUNNING
    with pytest.raises(ConflictError, match="use resume"):
        commands.start(project(ProjectState.PAUSED, PIPE))


def test_pause_running_project_becomes_pausing() -> None:
    assert commands.pause(project(ProjectState.RUNNING, PIPE)).state is ProjectState.PAUSING


@pytest.mark.parametrize(
    "state", [ProjectState.PAUSED, ProjectState.FAILED, ProjectState.SUCCEEDED, ProjectState.IDLE]
)
def test_pause_refused_when_nothing_runs(state: ProjectState) -> None:
    with pytest.raises(ConflictError, match="only a running project can pause"):
        commands.pause(project(state, PIPE))


def test_resume_running_project_is_a_conflict_naming_the_stage() -> None:
    with pytest.raises(ConflictError, match="is running stage 'track'"):
        commands.resume(project(ProjectState.RUNNING, PIPE), PIPE, [run("track", S.RUNNING)])


def test_resume_at_gate_approves_the_gate() -> None:
    proj = project(
        ProjectState.AWAITING_INPUT, PIPE, waiting_for={"stage": "review", "gate": "review"}
    )
    change = commands.resume(proj, PIPE, [run("detect", S.SUCCEEDED)])
    assert change.state is ProjectState.RUNNING
    assert change.approve_gates == frozenset({"review"})


def test_resume_from_earlier_stage_supersedes_it_and_all_after_it() -> None:
    runs = [
        run("detect", S.SUCCEEDED, run_id=1),
        run("review", S.SUCCEEDED, run_id=2),
        run("track", S.SUCCEEDED, run_id=3),
        run("analyze", S.SUCCEEDED, run_id=4),
    ]
    change = commands.resume(project(ProjectState.SUCCEEDED, PIPE), PIPE, runs, "track")
    assert change.supersede_runs == (3, 4)
    assert change.state is ProjectState.RUNNING


def test_resume_from_gated_stage_needs_no_second_approval() -> None:
    runs = [run("detect", S.SUCCEEDED, run_id=1), run("review", S.SUCCEEDED, run_id=2)]
    change = commands.resume(project(ProjectState.PAUSED, PIPE), PIPE, runs, "review")
    assert change.approve_gates == frozenset({"review"})


def test_resume_from_unknown_stage_names_the_stages() -> None:
    with pytest.raises(ValidationError, match="has no stage 'trak'; its stages are: detect"):
        commands.resume(project(ProjectState.PAUSED, PIPE), PIPE, [], "trak")


def test_resume_from_stage_whose_needs_never_succeeded_is_refused() -> None:
    with pytest.raises(ConflictError, match="resume from 'review' instead"):
        commands.resume(
            project(ProjectState.PAUSED, PIPE), PIPE, [run("detect", S.SUCCEEDED)], "track"
        )


def test_resume_after_failure_redoes_the_failed_stage() -> None:
    runs = [run("detect", S.SUCCEEDED, run_id=1), run("review", S.FAILED, run_id=2)]
    change = commands.resume(project(ProjectState.FAILED, PIPE), PIPE, runs)
    assert change.supersede_runs == (2,)


def test_kill_cancels_active_runs_and_pauses() -> None:
    change = commands.kill(
        project(ProjectState.RUNNING, PIPE), [run("detect", S.RUNNING, run_id=5)]
    )
    assert change.cancel_runs == (5,)
    assert change.state is ProjectState.PAUSING


def test_kill_with_nothing_running_is_a_conflict() -> None:
    with pytest.raises(ConflictError, match="nothing to kill"):
        commands.kill(project(ProjectState.PAUSED, PIPE), [run("detect", S.SUCCEEDED)])


def test_set_and_unset_variables() -> None:
    proj = project(variables={"A": "1", "B": "2"})
    change = commands.set_variables(proj, {"A": "3", "C": "x"}, ["B"])
    assert change.variables == {"A": "3", "C": "x"}


def test_bad_variable_name_refused() -> None:
    with pytest.raises(ValidationError, match="not a valid variable name"):
        commands.set_variables(project(), {"1BAD": "x"})


def test_delete_while_running_refused_unless_kill() -> None:
    runs = [run("detect", S.RUNNING)]
    with pytest.raises(ConflictError, match="delete with --kill"):
        commands.check_deletable(project(), runs, kill_first=False)
    commands.check_deletable(project(), runs, kill_first=True)


def test_rename_and_labels_are_validated() -> None:
    with pytest.raises(ValidationError):
        commands.rename(project(), "no spaces allowed")
    assert commands.relabel(project(labels=("a",)), add=["b"], remove=["a"]).labels == ("b",)
