"""Turn a run of a stage into the ``RunSpec`` a backend executes.

Deterministic: the same project, run and earlier runs always give the same spec and the
same job ID, so a spec rebuilt after a restart matches the one submitted before it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from winslow.backends.base import RunSpec
from winslow.core.models import Project, Run
from winslow.core.planner import (
    RunSet,
    StartRun,
    current_run_sets,
    current_runs,
    effective_variables,
    succeeded_in_sweep_order,
)
from winslow.core.resources import GpuRequest, ResourceRequest
from winslow.core.states import StageRunState
from winslow.pipeline.interpolate import interpolate_stage, node_literal
from winslow.pipeline.model import (
    Pipeline,
    Stage,
    SweepWorkspace,
    WorkspaceMode,
)
from winslow.storage.keys import checkpoint_prefix, log_key, workspace_prefix


def job_id_for(project: Project, run_id: int) -> str:
    """Return the backend job ID of a run: stable, unique, readable."""
    slug = re.sub(r"[^a-z0-9-]", "-", project.name.lower())[:40].strip("-") or "project"
    return f"winslow-{slug}-{project.id}-run-{run_id}"


def resource_request(stage: Stage) -> ResourceRequest:
    req = stage.requirements
    return ResourceRequest(
        cpus=float(req.cpus),
        memory_mb=int(req.memory),
        gpu=GpuRequest(
            count=req.gpu.count,
            model=req.gpu.model,
            min_memory_mb=req.gpu.min_memory,
            cpu_fallback=req.gpu.fallback == "cpu",
        ),
    )


def run_request(stage: Stage, run: Run) -> ResourceRequest:
    """What ``run`` asks of a node: the amounts it was created with (overrides included),
    the GPU model, memory and CPU fallback the stage asks for."""
    base = resource_request(stage)
    return ResourceRequest(
        cpus=run.cpus or base.cpus,
        memory_mb=run.memory_mb or base.memory_mb,
        gpu=replace(base.gpu, count=run.gpus),
    )


def _published_in_sweep_order(stage: Stage, run_set: dict[str, Run]) -> list[Run]:
    return [run for run in succeeded_in_sweep_order(stage, run_set) if run.workspace_prefix]


def workspace_sources(
    pipeline: Pipeline, stage: Stage, earlier: list[Run], run: Run | None = None
) -> tuple[str, ...]:
    """Return the workspaces a ``continue`` stage starts from: those of the stages it needs.

    A need that swept gives every succeeded combination's workspace, layered in sweep
    order; one that swept in a shared workspace gives its last one, which holds them all.
    A combination of a shared sweep starts from the combination before it instead.
    """
    if stage.workspace is WorkspaceMode.FRESH:
        return ()
    current = current_run_sets(earlier)
    if (
        run is not None
        and stage.sweep is not None
        and stage.sweep.workspace is SweepWorkspace.SHARED
    ):
        siblings = _published_in_sweep_order(stage, current.get(stage.name, {}))
        before = [r for r in siblings if r.id < run.id]
        if before:
            return (max(before, key=lambda r: r.id).workspace_prefix,)
    sources: list[str] = []
    for need in pipeline.needs_of(stage.name):
        need_stage = pipeline.stage(need)
        done = _published_in_sweep_order(need_stage, current.get(need, {}))
        if need_stage.sweep is not None and need_stage.sweep.workspace is SweepWorkspace.SHARED:
            done = [max(done, key=lambda r: r.id)] if done else []
        sources.extend(r.workspace_prefix for r in done)
    return tuple(sources)


def preferred_node(pipeline: Pipeline, stage: Stage, earlier: list[Run]) -> str | None:
    """Return the node the latest of the stages ``stage`` needs ran on, if any."""
    current = current_runs(earlier)
    nodes = [
        (run.ended_at, run.node)
        for need in pipeline.needs_of(stage.name)
        if (run := current.get(need)) is not None and run.node and run.ended_at
    ]
    return max(nodes)[1] if nodes else None


def resume_sources(run: Run, earlier: list[Run]) -> tuple[str, ...]:
    """Return the checkpoint prefixes a retry of ``run`` resumes from, newest first.

    Only a retry after ``lost`` resumes: the attempts right before ``run`` of the same
    stage and combination, back to the first that did not end lost (a retry after a
    failure starts afresh: its checkpoint may be what made it fail). Each is named, not
    just the last, because a lost attempt may have died before its first checkpoint.
    """
    sources: list[str] = []
    expected = run.attempt - 1
    siblings = [
        r
        for r in earlier
        if r.id < run.id and r.stage == run.stage and r.combination == run.combination
    ]
    for previous in sorted(siblings, key=lambda r: r.id, reverse=True):
        if expected < 1 or previous.attempt != expected:
            break
        if previous.state is not StageRunState.LOST or not previous.workspace_prefix:
            break
        sources.append(checkpoint_prefix(previous.workspace_prefix))
        expected -= 1
    return tuple(sources)


def run_values(project: Project, pipeline: Pipeline, stage: str, run_id: int) -> dict[str, str]:
    """The variables a run sees: pipeline defaults, project values, Winslow's own names."""
    values = effective_variables(pipeline, project.variables)
    values.update(
        {"WINSLOW_PROJECT": project.name, "WINSLOW_STAGE": stage, "WINSLOW_RUN": str(run_id)}
    )
    return values


def build_spec(project: Project, pipeline: Pipeline, run: Run, earlier: list[Run]) -> RunSpec:
    """Return the spec of ``run``; ``earlier`` are the project's other runs."""
    stage = pipeline.stage(run.stage)
    values = dict(run.variables)
    values.update(
        {"WINSLOW_PROJECT": project.name, "WINSLOW_STAGE": run.stage, "WINSLOW_RUN": str(run.id)}
    )
    # Command and env are node text: the backend fills in ${WINSLOW_WORKSPACE} and
    # ${WINSLOW_INPUTS} at the node (resolve_node_paths); values and escapes stay literal.
    command, env, inputs = interpolate_stage(stage, values, for_node=True)
    env = {**{name: node_literal(value) for name, value in values.items()}, **env}
    before = [r for r in earlier if r.id < run.id]
    own_prefix = run.workspace_prefix or workspace_prefix(project.id, run.id)
    checkpoint = stage.checkpoint
    return RunSpec(
        job_id=run.job_id or job_id_for(project, run.id),
        project_id=project.id,
        project_name=project.name,
        pipeline=pipeline.name,
        stage=run.stage,
        run_id=run.id,
        attempt=run.attempt,
        command=tuple(command or ()),
        env=env,
        resources=run_request(stage, run),
        image=run.image or stage.image,
        inputs=tuple(inputs),
        workspace_sources=workspace_sources(pipeline, stage, before, run),
        workspace_prefix=own_prefix,
        log_key=run.log_key or log_key(project.id, run.id),
        timeout_seconds=stage.timeout,
        node=run.node,
        gpu_indices=run.gpu_indices,
        preferred_node=preferred_node(pipeline, stage, before),
        checkpoint_every=checkpoint.every if checkpoint is not None else None,
        checkpoint_prefix=checkpoint_prefix(own_prefix) if checkpoint is not None else "",
        resume_from=resume_sources(run, before) if checkpoint is not None else (),
    )


def overrides_for(
    start: StartRun,
    pending: dict[str, dict[str, Any]],
    runs: list[Run],
    current: dict[str, RunSet],
) -> dict[str, Any]:
    """The overrides a new run gets: a retry keeps its run's, a sweep's later
    combinations take their siblings', a first run takes what a person asked for."""
    if start.attempt > 1:
        retried = [
            run
            for run in runs
            if run.stage == start.stage and run.combination == dict(start.combination)
        ]
        return dict(retried[-1].overrides) if retried else {}
    if start.stage in pending:
        return pending[start.stage]
    if start.combination:
        siblings = current.get(start.stage, {})
        with_overrides = [run for run in siblings.values() if run.overrides]
        if with_overrides:
            return dict(max(with_overrides, key=lambda run: run.id).overrides)
    return {}


def new_run_fields(
    pipeline: Pipeline, start: StartRun, overrides: dict[str, Any]
) -> dict[str, Any]:
    """The fields of a new pending run of ``start``, but those that need its id."""
    request = resource_request(pipeline.stage(start.stage))
    resources = overrides.get("resources", {})
    return {
        "stage": start.stage,
        "attempt": start.attempt,
        "state": StageRunState.PENDING,
        "cpus": float(resources.get("cpus", request.cpus)),
        "memory_mb": int(resources.get("memory_mb", request.memory_mb)),
        "gpus": int(resources.get("gpus", request.gpu.count)),
        "reason": f"waiting to start ({start.reason})",
        "combination": dict(start.combination),
        "image": overrides.get("image"),
        "overrides": overrides,
    }


def run_identity(
    project: Project,
    pipeline: Pipeline,
    start: StartRun,
    overrides: dict[str, Any],
    run_id: int,
) -> dict[str, Any]:
    """The fields of a new run that follow from its id: its variables (with a person's
    overrides and its sweep values), job ID, workspace prefix and log key."""
    values = run_values(project, pipeline, start.stage, run_id)
    # A sweep's own values win over a person's overrides: they are what the run is for.
    values.update(overrides.get("variables", {}))
    values.update(start.combination)
    return {
        "variables": {k: v for k, v in values.items() if not k.startswith("WINSLOW_")},
        "job_id": job_id_for(project, run_id),
        "workspace_prefix": workspace_prefix(project.id, run_id),
        "log_key": log_key(project.id, run_id),
    }
