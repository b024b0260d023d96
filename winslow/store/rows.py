"""Rows into values: the one mapping from each table row to its ``core/models.py`` value.

Writes go the other way through ``store/transaction.py`` (``column_value``); nothing
outside ``store/`` sees a row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from winslow.core.models import HistoryEvent, Project, Run
from winslow.core.states import ProjectState, StageRunState
from winslow.pipeline.model import RetentionPolicy
from winslow.store.tables import EventRow, ProjectRow, RunRow


def utc(value: datetime | None) -> datetime | None:
    """Return ``value`` as an aware UTC datetime (SQLite hands back naive ones)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC)


def to_project(row: ProjectRow, pipeline: dict[str, Any] | None = None) -> Project:
    """The project of ``row``; with ``pipeline``, that one instead of the row's (a list
    shares one decoded copy of equal snapshots, and does not load the row's)."""
    return Project(
        id=row.id,
        name=row.name,
        pipeline_name=row.pipeline_name,
        pipeline=row.pipeline if pipeline is None else pipeline,
        state=ProjectState(row.state),
        version=row.version,
        created_at=utc(row.created_at) or now(),
        updated_at=utc(row.updated_at) or now(),
        labels=tuple(row.labels or ()),
        variables=dict(row.variables or {}),
        state_reason=row.state_reason,
        waiting_for=dict(row.waiting_for or {}),
        approved_gates=frozenset(row.approved_gates or ()),
        state_changed_at=utc(row.state_changed_at),
        retention=RetentionPolicy.model_validate(row.retention)
        if row.retention is not None
        else None,
        run_overrides={k: dict(v) for k, v in (row.run_overrides or {}).items()},
        hold_after=frozenset(row.hold_after or ()),
        owner=row.owner or "",
        charged_group=row.charged_group,
    )


def to_run(row: RunRow) -> Run:
    return Run(
        id=row.id,
        project_id=row.project_id,
        stage=row.stage,
        attempt=row.attempt,
        state=StageRunState(row.state),
        created_at=utc(row.created_at) or now(),
        variables=dict(row.variables or {}),
        job_id=row.job_id,
        submitted=row.submitted,
        node=row.node,
        gpu_indices=tuple(row.gpu_indices or ()),
        cpus=row.cpus,
        memory_mb=row.memory_mb,
        gpus=row.gpus,
        started_at=utc(row.started_at),
        ended_at=utc(row.ended_at),
        exit_code=row.exit_code,
        reason=row.reason,
        log_tail=tuple(row.log_tail or ()),
        superseded=row.superseded,
        cancel_requested=row.cancel_requested,
        workspace_prefix=row.workspace_prefix,
        log_key=row.log_key,
        workspace_pruned=bool(row.workspace_pruned),
        combination=dict(row.combination or {}),
        results=dict(row.results or {}),
        image=row.image,
        overrides=dict(row.overrides or {}),
    )


def to_event(row: EventRow) -> HistoryEvent:
    return HistoryEvent(
        id=row.id,
        project_id=row.project_id,
        at=utc(row.at) or now(),
        actor=row.actor,
        kind=row.kind,
        message=row.message,
        data=dict(row.data or {}),
    )
