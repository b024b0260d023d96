"""Which runs a retention policy prunes: the current, latest and active runs never."""

from __future__ import annotations

import pytest

from tests.core.factories import project, run, stage
from winslow.core import commands
from winslow.core.retention import (
    describe_retention,
    effective_retention,
    pruning_message,
    runs_to_prune,
)
from winslow.core.states import StageRunState
from winslow.pipeline.model import Pipeline, RetentionPolicy

S, F, L, C = (
    StageRunState.SUCCEEDED,
    StageRunState.FAILED,
    StageRunState.LOST,
    StageRunState.CANCELLED,
)
R, P = StageRunState.RUNNING, StageRunState.PENDING


def pipeline(*stages, retention=None) -> Pipeline:
    return Pipeline.model_validate(
        {"name": "traffic", "stages": list(stages), "retention": retention}
    )


def policy(keep_succeeded: int | None = None, keep_failed: bool = True):
    return lambda _stage: RetentionPolicy(keep_succeeded=keep_succeeded, keep_failed=keep_failed)


def ids(runs) -> list[int]:
    return [r.id for r in runs]


def redone(*states: StageRunState, stage_name: str = "detect", first_id: int = 1):
    """Runs of one stage, each superseded by the next (as `resume --from` leaves them)."""
    last = len(states) - 1
    return [
        run(stage_name, state, run_id=first_id + i, superseded=i < last)
        for i, state in enumerate(states)
    ]


def test_keep_latest_succeeded_prunes_the_older_ones():
    runs = redone(S, S, S, S)

    assert ids(runs_to_prune(runs, policy(keep_succeeded=2))) == [1, 2]
    assert ids(runs_to_prune(runs, policy(keep_succeeded=1))) == [1, 2, 3]


def test_no_policy_or_keep_everything_prunes_nothing():
    runs = redone(S, S, F, S)

    assert runs_to_prune(runs, lambda _stage: None) == []
    assert runs_to_prune(runs, policy()) == []


def test_failed_runs_stay_unless_the_policy_drops_them():
    runs = redone(F, L, C, S, S)

    assert ids(runs_to_prune(runs, policy(keep_succeeded=1))) == [4]
    assert ids(runs_to_prune(runs, policy(keep_succeeded=1, keep_failed=False))) == [1, 2, 3, 4]
    # Dropping failed runs alone leaves every succeeded run alone.
    assert ids(runs_to_prune(runs, policy(keep_failed=False))) == [1, 2, 3]


def test_current_run_and_latest_run_both_stay():
    # A later run that is superseded leaves the one before it current: both keep theirs.
    runs = [
        run("detect", S, run_id=1, superseded=True),
        run("detect", S, run_id=2),
        run("detect", F, run_id=3, superseded=True),
    ]
    doomed = runs_to_prune(runs, policy(keep_succeeded=0, keep_failed=False))

    assert ids(doomed) == [1]  # 2 is current, 3 is the latest


def test_a_retried_failure_goes_when_failed_runs_are_dropped():
    # An automatic retry does not supersede the failed attempt; the retry is current.
    runs = [run("detect", F, run_id=1), run("detect", S, attempt=2, run_id=2)]

    assert ids(runs_to_prune(runs, policy(keep_failed=False))) == [1]
    assert runs_to_prune(runs, policy(keep_succeeded=1)) == []


def test_the_latest_run_stays_even_when_superseded():
    runs = [
        run("detect", S, run_id=1, superseded=True),
        run("detect", F, run_id=2, superseded=True),
    ]

    assert ids(runs_to_prune(runs, policy(keep_succeeded=0, keep_failed=False))) == [1]


def test_active_runs_stay():
    runs = [
        run("detect", S, run_id=1, superseded=True),
        run("detect", R, run_id=2),
        run("detect", P, run_id=3),
    ]

    assert ids(runs_to_prune(runs, policy(keep_succeeded=0))) == [1]


def test_superseded_succeeded_runs_count_among_the_latest_n():
    runs = redone(S, S, S)

    assert ids(runs_to_prune(runs, policy(keep_succeeded=2))) == [1]


def test_runs_pruned_before_are_skipped():
    runs = redone(S, S, S)
    runs[0] = run("detect", S, run_id=1, superseded=True, workspace_pruned=True)

    assert ids(runs_to_prune(runs, policy(keep_succeeded=1))) == [2]


def test_each_stage_is_counted_on_its_own():
    runs = [*redone(S, S, S, first_id=1), *redone(S, S, stage_name="track", first_id=10)]

    assert ids(runs_to_prune(runs, policy(keep_succeeded=1))) == [1, 2, 10]


def test_stage_retention_overrides_the_pipelines():
    pipe = pipeline(
        stage("detect"),
        stage("track", retention={"keep_succeeded": 2}),
        retention={"keep_succeeded": 1, "keep_failed": False},
    )
    owner = project(pipe=pipe)
    runs = [*redone(S, S, S, first_id=1), *redone(F, S, S, S, stage_name="track", first_id=10)]

    doomed = runs_to_prune(runs, lambda name: effective_retention(owner, pipe, name))

    assert ids(doomed) == [1, 2, 11]  # track keeps its failed run 10 and its latest 2


def test_project_retention_wins_over_the_pipeline_and_its_stages():
    pipe = pipeline(
        stage("detect", retention={"keep_succeeded": 5}), retention={"keep_succeeded": 5}
    )
    owner = project(pipe=pipe, retention=RetentionPolicy(keep_succeeded=1))

    assert effective_retention(owner, pipe, "detect") == RetentionPolicy(keep_succeeded=1)
    assert effective_retention(project(pipe=pipe), pipe, "detect").keep_succeeded == 5


def test_without_any_retention_nothing_is_pruned():
    pipe = pipeline(stage("detect"))

    assert effective_retention(project(pipe=pipe), pipe, "detect") is None


@pytest.mark.parametrize(
    ("retention", "words"),
    [
        (RetentionPolicy(keep_succeeded=1), "keep the latest 1 succeeded"),
        (
            RetentionPolicy(keep_succeeded=3, keep_failed=False),
            "keep the latest 3 succeeded, drop failed",
        ),
        (RetentionPolicy(keep_failed=False), "drop failed"),
        (RetentionPolicy(), "keep every workspace"),
        (None, "keep every workspace"),
    ],
)
def test_describe_retention(retention, words):
    assert describe_retention(retention) == words


def test_pruning_message_names_the_runs_and_the_policy():
    runs = redone(S, S, S, S, S, S)
    doomed = [runs[2], runs[4]]

    assert (
        pruning_message(doomed, policy(keep_succeeded=1))
        == "pruned the workspaces of runs 3, 5 (retention: keep the latest 1 succeeded)"
    )
    assert (
        pruning_message([runs[2]], policy(keep_succeeded=1))
        == "pruned the workspace of run 3 (retention: keep the latest 1 succeeded)"
    )


def test_set_retention_says_what_applies_from_now_on():
    before = project()
    change = commands.set_retention(before, RetentionPolicy(keep_succeeded=2, keep_failed=False))

    assert change.sets_retention and change.retention == RetentionPolicy(
        keep_succeeded=2, keep_failed=False
    )
    assert change.message == (
        "retention: keep the latest 2 succeeded, drop failed (wins over the pipeline's)"
    )
    cleared = commands.set_retention(project(retention=change.retention), None)
    assert cleared.sets_retention and cleared.retention is None
    assert cleared.message == "retention: the pipeline's from now on"
    assert cleared.data["before"] == {"keep_succeeded": 2, "keep_failed": False}


def test_retention_in_a_pipeline_file_must_be_a_count():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        pipeline(stage("detect"), retention={"keep_succeeded": -1})
    with pytest.raises(ValidationError):
        pipeline(stage("detect"), retention={"keep_latest": 1})


def test_every_current_combination_of_a_sweep_keeps_its_workspace() -> None:
    runs = [
        run("train", StageRunState.SUCCEEDED, run_id=1, combination={"LR": "0.1"}),
        run("train", StageRunState.SUCCEEDED, run_id=2, combination={"LR": "0.01"}),
        run("train", StageRunState.SUCCEEDED, run_id=3, combination={"LR": "0.001"}),
    ]
    policy = RetentionPolicy(keep_succeeded=1)
    assert runs_to_prune(runs, lambda _stage: policy) == []
