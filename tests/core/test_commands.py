"""Commands a person gives: what each changes, and the words when one is refused."""

from __future__ import annotations

import re

import pytest

from winslow import defaults
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


def test_resume_of_a_project_with_every_stage_done_is_refused_saying_what_would_run() -> None:
    """Found by trying it: it said "running (resumed)", and the engine set the project
    back to succeeded at once, leaving two history lines for nothing."""
    runs = [
        run("detect", S.SUCCEEDED, run_id=1),
        run("review", S.SUCCEEDED, run_id=2),
        run("track", S.SUCCEEDED, run_id=3),
        run("analyze", S.SUCCEEDED, run_id=4),
    ]
    with pytest.raises(ConflictError) as refused:
        commands.resume(project(ProjectState.SUCCEEDED, PIPE), PIPE, runs)
    assert str(refused.value) == (
        "Project 'ulm-0603' has run every stage of its pipeline; nothing is left to resume. "
        "To run stages again, resume from a stage (detect, review, track, analyze); "
        "the earlier runs are kept."
    )


def test_resume_of_a_succeeded_project_runs_a_stage_its_pipeline_gained() -> None:
    runs = [run("detect", S.SUCCEEDED, run_id=1), run("review", S.SUCCEEDED, run_id=2)]
    longer = pipeline(stage("detect"), stage("review", gate=True), stage("track"))
    change = commands.resume(project(ProjectState.SUCCEEDED, longer), longer, runs)
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


def test_winslow_variables_are_refused_but_may_be_unset() -> None:
    with pytest.raises(ValidationError, match="'WINSLOW_WORKSPACE' starts with WINSLOW_"):
        commands.check_variables({"WINSLOW_WORKSPACE": "/data"})
    with pytest.raises(ValidationError, match="'WINSLOW_X' starts with WINSLOW_"):
        commands.set_variables(project(), {"WINSLOW_X": "1"})
    with pytest.raises(ValidationError, match="'WINSLOW_RUN' starts with WINSLOW_"):
        commands.check_overrides(commands.RunOverrides(variables={"WINSLOW_RUN": "7"}))
    # Stored before the rule: still removable, and a lower-case name is the person's own.
    stored = project(variables={"WINSLOW_OLD": "1", "winslow_mine": "2"})
    assert commands.set_variables(stored, {}, ["WINSLOW_OLD"]).variables == {"winslow_mine": "2"}


def test_variables_are_bounded_in_count_and_size() -> None:
    limit = defaults.MAX_VARIABLES
    with pytest.raises(ValidationError, match=f"would have {limit + 1} variables"):
        commands.check_variables({f"V{i}": "" for i in range(limit + 1)})
    with pytest.raises(ValidationError, match=re.escape("'V' is 32.0 KiB long")):
        commands.check_variables({"V": "é" * (defaults.MAX_VARIABLE_BYTES // 2 + 1)})
    with pytest.raises(ValidationError, match="NUL character"):
        commands.check_variables({"V": "a\0b"})
    full = project(variables={f"V{i}": "x" * 30_000 for i in range(8)})
    with pytest.raises(ValidationError, match=re.escape("would hold 263.7 KiB together")):
        commands.set_variables(full, {"W": "x" * 30_000})
    # Unsetting alone always works, so a project over the limits can be brought back.
    assert len(commands.set_variables(full, {}, ["V0"]).variables) == 7


def test_label_count_is_bounded() -> None:
    labels = [f"l{i}" for i in range(defaults.MAX_LABELS)]
    assert len(commands.check_labels(labels)) == defaults.MAX_LABELS
    with pytest.raises(ValidationError, match=f"at most {defaults.MAX_LABELS} labels"):
        commands.relabel(project(labels=tuple(labels)), add=["one-more"])


def test_a_project_name_of_63_characters_is_accepted_and_64_refused_saying_so() -> None:
    assert commands.check_name("p" * 63) == "p" * 63
    with pytest.raises(ValidationError, match="cannot name a project: use 1 to 63 letters"):
        commands.check_name("p" * 64)


def test_a_variable_name_of_128_characters_is_accepted_and_129_refused_saying_so() -> None:
    """The refusal of a name only too long said to use letters, digits and '_', which it
    did: nothing told the person that names have a limit, or what it is."""
    assert commands.check_variables({"V" * 128: "1"}) == {"V" * 128: "1"}
    with pytest.raises(ValidationError) as refused:
        commands.set_variables(project(), {"V" * 129: "1"})
    assert refused.value.message == (
        f"'{'V' * 129}' is not a valid variable name; use at most 128 letters, digits and '_', "
        "not starting with a digit."
    )
    assert refused.value.field == f"variables.{'V' * 129}"


def test_a_label_of_63_characters_is_accepted_and_64_refused_saying_so() -> None:
    assert commands.relabel(project(), add=["l" * 63]).labels == ("l" * 63,)
    with pytest.raises(ValidationError) as refused:
        commands.relabel(project(), add=["l" * 64])
    assert refused.value.message == (
        f"'{'l' * 64}' is not a valid label: use up to 63 letters, digits and . _ : = / -"
    )
