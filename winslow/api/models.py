"""Bodies the API takes and gives. Pydantic sits here, at the edge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from winslow.core.models import HistoryEvent, Project, Run
from winslow.core.states import ProjectState, StageRunState


class Problem(BaseModel):
    file: str
    line: int | None
    column: int | None
    field: str
    message: str


class PipelineSummary(BaseModel):
    name: str
    description: str
    stages: list[str]
    file: str | None = None


class PipelinesPublic(BaseModel):
    data: list[PipelineSummary]
    errors: dict[str, list[Problem]] = {}
    """Files that failed to load, with every problem; they never hide the good ones."""


class PipelinePublic(BaseModel):
    name: str
    definition: dict[str, Any]
    text: str | None = None


class PipelineText(BaseModel):
    text: str = Field(description="The pipeline definition as YAML.")


class ValidationPublic(BaseModel):
    valid: bool
    problems: list[Problem]


class RunPublic(BaseModel):
    id: int
    stage: str
    attempt: int
    state: StageRunState
    job_id: str | None
    node: str | None
    gpu_indices: list[int]
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    exit_code: int | None
    reason: str | None
    log_tail: list[str]
    variables: dict[str, str]
    superseded: bool
    workspace: str

    @classmethod
    def of(cls, run: Run) -> RunPublic:
        return cls(
            id=run.id,
            stage=run.stage,
            attempt=run.attempt,
            state=run.state,
            job_id=run.job_id,
            node=run.node,
            gpu_indices=list(run.gpu_indices),
            created_at=run.created_at,
            started_at=run.started_at,
            ended_at=run.ended_at,
            exit_code=run.exit_code,
            reason=run.reason,
            log_tail=list(run.log_tail),
            variables=run.variables,
            superseded=run.superseded,
            workspace=run.workspace_prefix,
        )


class ProjectCreate(BaseModel):
    name: str
    pipeline: str
    labels: list[str] = []
    variables: dict[str, str] = {}
    start: bool = False


class ProjectUpdate(BaseModel):
    name: str | None = None
    labels_add: list[str] = []
    labels_remove: list[str] = []
    pipeline: str | None = Field(
        default=None, description="Follow this pipeline's current definition from now on."
    )


class ProjectPublic(BaseModel):
    id: str
    name: str
    pipeline: str
    state: ProjectState
    state_reason: str | None
    waiting_for: dict[str, Any]
    labels: list[str]
    variables: dict[str, str]
    stages: list[str]
    current_stages: list[str]
    created_at: datetime
    updated_at: datetime
    state_changed_at: datetime | None
    runs: list[RunPublic] | None = None

    @classmethod
    def of(
        cls, project: Project, runs: list[Run] | None = None, *, with_runs: bool = True
    ) -> ProjectPublic:
        """The project as the API shows it; ``with_runs=False`` leaves the run list out
        (for lists of projects) but still names the stages that run now."""
        stages = [s["name"] for s in project.pipeline.get("stages", [])]
        return cls(
            id=project.id,
            name=project.name,
            pipeline=project.pipeline_name,
            state=project.state,
            state_reason=project.state_reason,
            waiting_for=project.waiting_for,
            labels=list(project.labels),
            variables=project.variables,
            stages=stages,
            current_stages=sorted({r.stage for r in runs if r.active}) if runs else [],
            created_at=project.created_at,
            updated_at=project.updated_at,
            state_changed_at=project.state_changed_at,
            runs=[RunPublic.of(r) for r in runs] if runs is not None and with_runs else None,
        )


class ProjectsPublic(BaseModel):
    data: list[ProjectPublic]
    count: int


class ResumeBody(BaseModel):
    from_stage: str | None = None


class VariablesBody(BaseModel):
    set: dict[str, str] = {}
    unset: list[str] = []


class EventPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    kind: str
    message: str
    data: dict[str, Any]

    @classmethod
    def of(cls, event: HistoryEvent) -> EventPublic:
        return cls(
            id=event.id,
            at=event.at,
            actor=event.actor,
            kind=event.kind,
            message=event.message,
            data=event.data,
        )


class EventsPublic(BaseModel):
    data: list[EventPublic]


class FileEntry(BaseModel):
    path: str
    name: str
    size: int
    is_dir: bool
    modified: datetime | None


class FilesPublic(BaseModel):
    path: str
    data: list[FileEntry]


class UploadCreate(BaseModel):
    path: str
    size: int = Field(ge=0)


class UploadPublic(BaseModel):
    upload_id: str
    path: str
    size: int
    part_size: int
    part_count: int


class PartUrlsBody(BaseModel):
    path: str
    part_numbers: list[int]


class PartUrlsPublic(BaseModel):
    urls: dict[int, str]


class StoredPart(BaseModel):
    part_number: int
    etag: str
    size: int


class StoredPartsPublic(BaseModel):
    parts: list[StoredPart]


class CompletedPart(BaseModel):
    part_number: int
    etag: str


class UploadComplete(BaseModel):
    path: str
    parts: list[CompletedPart]


class DownloadPublic(BaseModel):
    url: str
    size: int
    name: str


class GpuPublic(BaseModel):
    index: int
    name: str
    memory_mb: int
    healthy: bool


class NodePublic(BaseModel):
    name: str
    status: str
    cpus: float
    memory_mb: int
    gpus: list[GpuPublic]
    runs: list[int]


class NodesPublic(BaseModel):
    data: list[NodePublic]


class Health(BaseModel):
    status: str
    version: str
    backend: str
