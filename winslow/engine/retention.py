"""Carry out a project's retention: delete the manifests of runs it no longer keeps.

``core/retention.py`` decides which runs go; this deletes their workspace manifests
through a callback (the engine holds no object store), then marks the runs pruned with
one history line. Deleting comes first: if it fails half way, nothing is marked and
the next run end tries again (deleting what is gone already is harmless). The blobs
the manifests named stay until ``winslow gc`` finds no other manifest naming them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from winslow.core.retention import effective_retention, pruning_message, runs_to_prune
from winslow.engine.transitions import mark_workspaces_pruned
from winslow.pipeline.model import Pipeline, RetentionPolicy
from winslow.store.repo import Store

log = logging.getLogger(__name__)


def apply_retention(
    store: Store, project_id: str, prune_workspace: Callable[[str], object]
) -> list[int]:
    """Prune the workspaces the project's retention no longer keeps; return their runs.

    Raises what ``prune_workspace`` raises (``StorageError``), with nothing marked.
    """
    project = store.get_project(project_id)
    pipeline = Pipeline.model_validate(project.pipeline)
    policies = [project.retention, pipeline.retention, *(s.retention for s in pipeline.stages)]
    if all(p is None or p.keeps_everything for p in policies):
        # Every run's policy is one of these: nothing to prune, and no need to load the
        # project's runs, which this runs after every run's end.
        return []

    def policy(stage: str) -> RetentionPolicy | None:
        return effective_retention(project, pipeline, stage)

    doomed = runs_to_prune(store.runs(project.id), policy)
    if not doomed:
        return []
    for run in doomed:
        if run.workspace_prefix:
            prune_workspace(run.workspace_prefix)
    ids = [run.id for run in doomed]
    message = pruning_message(doomed, policy)
    mark_workspaces_pruned(store, project.id, ids, message, {"runs": ids})
    log.info("project %s: %s", project.name, message)
    return ids
