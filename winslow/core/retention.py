"""Which runs' workspaces a retention policy prunes: a pure function of the runs.

A workspace is a run's manifests; their contents are shared blobs that ``winslow gc``
frees once no manifest names them. Pruning never touches what a later step may still
start from: a stage's current run (later stages and redos continue from it), its latest
run and its active runs always keep their workspace. Among the rest, succeeded runs
beyond the stage's latest N succeeded go, and failed, lost or cancelled runs go when the
policy drops them. The policy is the project's own if it has one, else the stage's,
else the pipeline's; without any, nothing is pruned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from winslow.core.models import Project, Run
from winslow.core.planner import current_run_list
from winslow.core.states import UNSUCCESSFUL_RUN_STATES, StageRunState
from winslow.pipeline.model import Pipeline, RetentionPolicy

PolicyForStage = Callable[[str], RetentionPolicy | None]
"""A stage's name → the retention that applies to its runs (``None``: keep everything)."""


def effective_retention(project: Project, pipeline: Pipeline, stage: str) -> RetentionPolicy | None:
    """Return the retention for ``stage``'s runs: the project's, else the stage's, else
    the pipeline's; ``None`` if none is set."""
    if project.retention is not None:
        return project.retention
    return pipeline.retention_of(stage)


def runs_to_prune(runs: Iterable[Run], policy_for_stage: PolicyForStage) -> list[Run]:
    """Return the runs whose workspace ``policy_for_stage`` no longer keeps, oldest first.

    Never a stage's current run, latest run or an active run; never a run pruned before.
    The latest N succeeded runs are counted among all the stage's succeeded runs,
    superseded ones included.
    """
    ordered = sorted(runs, key=lambda run: run.id)
    # Every current run: a sweep has one per combination, and the next stage needs them all.
    current = {run.id for run in current_run_list(ordered)}
    by_stage: dict[str, list[Run]] = {}
    for run in ordered:
        by_stage.setdefault(run.stage, []).append(run)
    doomed: list[Run] = []
    for stage, stage_runs in by_stage.items():
        policy = policy_for_stage(stage)
        if policy is None or policy.keeps_everything:
            continue
        keep = current | {stage_runs[-1].id}
        if policy.keep_succeeded is not None and policy.keep_succeeded > 0:
            succeeded = [run for run in stage_runs if run.state is StageRunState.SUCCEEDED]
            keep |= {run.id for run in succeeded[-policy.keep_succeeded :]}
        for run in stage_runs:
            if run.id in keep or run.active or run.workspace_pruned:
                continue
            if run.state is StageRunState.SUCCEEDED:
                if policy.keep_succeeded is not None:
                    doomed.append(run)
            elif run.state in UNSUCCESSFUL_RUN_STATES and not policy.keep_failed:
                doomed.append(run)
    return sorted(doomed, key=lambda run: run.id)


def describe_retention(policy: RetentionPolicy | None) -> str:
    """Say a policy in words: ``keep the latest 1 succeeded, drop failed``."""
    if policy is None or policy.keeps_everything:
        return "keep every workspace"
    words = []
    if policy.keep_succeeded is not None:
        words.append(f"keep the latest {policy.keep_succeeded} succeeded")
    if not policy.keep_failed:
        words.append("drop failed")
    return ", ".join(words)


def pruning_message(doomed: list[Run], policy_for_stage: PolicyForStage) -> str:
    """The history line of one pruning: ``pruned the workspaces of runs 3, 5 (retention:
    keep the latest 1 succeeded)``; runs under different policies are grouped by policy."""
    groups: dict[str, list[int]] = {}
    for run in doomed:
        groups.setdefault(describe_retention(policy_for_stage(run.stage)), []).append(run.id)
    parts = [
        f"{'run' if len(ids) == 1 else 'runs'} {', '.join(map(str, ids))} (retention: {words})"
        for words, ids in groups.items()
    ]
    noun = "workspace" if len(doomed) == 1 else "workspaces"
    return f"pruned the {noun} of " + "; ".join(parts)
