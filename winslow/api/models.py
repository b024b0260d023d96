"""Bodies the API takes and gives. Pydantic sits here, at the edge.

Every body the API takes is a ``Body``: besides its fields' own bounds, no string in it may
hold half of a surrogate pair (JSON's ``"\\ud800"``), which is no text and which neither
SQL, nor object storage, nor an error message could carry. Bodies are bounded in bytes by
``api/limits.py`` before they are parsed; counts and sizes that matter after (variables,
labels) are checked by ``core/commands.py`` in words a person reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from winslow import defaults
from winslow.core.commands import RunOverrides
from winslow.core.models import HistoryEvent, Project, Run
from winslow.core.states import ProjectState, StageRunState
from winslow.pipeline.model import Megabytes, RetentionPolicy

RunIdPath = Annotated[int, Path(ge=0, le=defaults.MAX_ID, description="Run ID")]
"""A run's ID in a route's path: an ID the database can hold, so no lookup overflows."""

RunIdQuery = Annotated[
    int | None,
    Query(ge=0, le=defaults.MAX_ID, description="Run ID; default: the latest ended run"),
]

AfterEventQuery = Annotated[
    int, Query(ge=0, le=defaults.MAX_ID, description="Only events after this event ID.")
]


class Body(BaseModel):
    """Base of every body the API takes: refuses unpaired surrogates anywhere in it."""

    @model_validator(mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        todo = [value]
        while todo:
            item = todo.pop()
            if isinstance(item, str):
                _refuse_surrogates(item)
            elif isinstance(item, dict):
                todo.extend(item.keys())
                todo.extend(item.values())
            elif isinstance(item, list):
                todo.extend(item)
        return value


def _refuse_surrogates(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"the text {text[max(0, exc.start - 20) : exc.start + 20]!a} holds "
            f"U+{ord(text[exc.start]):04X}, half of a surrogate pair, which is not a "
            "character; send UTF-8 text"
        ) from None


class Problem(BaseModel):
    file: str
    line: int | None
    column: int | None
    field: str
    message: str


class ErrorPublic(BaseModel):
    """Every error answer: words for a person, and a machine word.

    ``code`` is ``invalid_request`` (the body or a parameter breaks the schema),
    ``invalid_input``, ``invalid_pipeline`` (with ``problems``), ``unauthorized``,
    ``forbidden``, ``not_found``, ``conflict``, ``too_large``, ``storage_error``,
    ``backend_unavailable``, ``internal_error``, or another word of ``winslow.errors``.
    """

    detail: str
    """What happened, to which thing, and what to do next."""
    code: str
    problems: list[Problem] | None = None
    """Only for ``invalid_pipeline``: every problem, at file, line and column."""
    fields: dict[str, str] | None = None
    """Where a problem sits in the request, as a dotted path (``overrides.resources.memory``,
    ``answers.NAME``, ``variables.LR``), and what is wrong there: a form marks those fields."""


class PipelineSummary(BaseModel):
    name: str
    description: str
    stages: list[str]
    needs: dict[str, list[str]] = {}
    """The stages each stage waits for, the default (the stage before) resolved."""
    file: str | None = None


class PipelinesPublic(BaseModel):
    data: list[PipelineSummary]
    errors: dict[str, list[Problem]] = {}
    """Files that failed to load, with every problem; they never hide the good ones."""


class PipelinePublic(BaseModel):
    name: str
    definition: dict[str, Any]
    text: str | None = None


class PipelineText(Body):
    text: str = Field(description="The pipeline definition as YAML.")


class ValidationPublic(BaseModel):
    valid: bool
    problems: list[Problem]


class RunPublic(BaseModel):
    """A run as the API shows it: read straight from the core ``Run``'s attributes."""

    model_config = ConfigDict(from_attributes=True)

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
    workspace: str = Field(validation_alias=AliasChoices("workspace_prefix", "workspace"))
    """The storage prefix the run's workspace versions are published under."""
    workspace_pruned: bool
    """The retention policy deleted this run's workspace."""
    combination: dict[str, str] = {}
    """The sweep values this run ran with; empty unless its stage sweeps."""
    results: dict[str, Any] = {}
    """What the stage reported: ``WINSLOW_RESULT: key=value`` lines and ``results.json``."""
    image: str | None = None
    """The image this run used where a redo overrode the stage's."""
    cpus: float
    memory_mb: int
    gpus: int
    overrides: dict[str, Any] = {}
    """What a person changed for this run only (variables, image, resources, comment)."""

    @classmethod
    def of(cls, run: Run) -> RunPublic:
        return cls.model_validate(run)


GroupRoleWord = Literal["member", "maintainer", "owner"]
RoleWord = Literal["public", "member", "maintainer", "owner"]


class ProjectCreate(Body):
    name: str
    pipeline: str
    labels: list[str] = []
    variables: dict[str, str] = {}
    start: bool = False
    group: str | None = Field(
        default=None,
        description="A group of yours: it gets group_role on the project, and its quota "
        "holds the project's runs.",
    )
    group_role: GroupRoleWord = "maintainer"
    public: bool = Field(default=False, description="Every signed-in user may read it.")


class ProjectUpdate(Body):
    name: str | None = None
    labels_add: list[str] = []
    labels_remove: list[str] = []
    pipeline: str | None = Field(
        default=None, description="Follow this pipeline's current definition from now on."
    )
    retention: RetentionPolicy | None = Field(
        default=None,
        description="The project's own retention, winning over the pipeline's; null clears it "
        "(leave it out to keep it as it is).",
    )


class ProjectPublic(BaseModel):
    """A project as the API shows it: the core ``Project``'s attributes, and what follows
    from its definition and runs (``of``)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    pipeline: str = Field(validation_alias=AliasChoices("pipeline_name", "pipeline"))
    state: ProjectState
    state_reason: str | None
    waiting_for: dict[str, Any]
    labels: list[str]
    variables: dict[str, str]
    variable_defaults: dict[str, str] = {}
    """The pipeline's default of each variable the project does not set: what stages see
    for it."""
    stages: list[str] = []
    current_stages: list[str] = []
    created_at: datetime
    updated_at: datetime
    state_changed_at: datetime | None
    retention: RetentionPolicy | None = None
    """The project's own retention; ``None``: the pipeline's (and its stages') applies."""
    run_overrides: dict[str, dict[str, Any]] = {}
    """Stage → what its next run changes, for that run only."""
    hold_after: list[str] = []
    """The project pauses once these stages ran ("run only this stage")."""
    runs: list[RunPublic] | None = None

    @field_validator("hold_after", mode="before")
    @classmethod
    def _in_order(cls, value: Any) -> Any:
        return sorted(value) if isinstance(value, set | frozenset) else value

    @classmethod
    def of(
        cls, project: Project, runs: list[Run] | None = None, *, with_runs: bool = True
    ) -> ProjectPublic:
        """The project as the API shows it; ``with_runs=False`` leaves the run list out
        (for lists of projects) but still names the stages that run now."""
        public = cls.model_validate(project)
        public.stages = [stage["name"] for stage in project.pipeline.get("stages", [])]
        declared = project.pipeline.get("variables") or {}
        public.variable_defaults = {
            name: str(spec["default"])
            for name, spec in declared.items()
            if spec.get("default") is not None and name not in project.variables
        }
        public.current_stages = sorted({r.stage for r in runs if r.active}) if runs else []
        if runs is not None and with_runs:
            public.runs = [RunPublic.of(run) for run in runs]
        return public


class RunPlacement(BaseModel):
    """One active run of a project: its stage, the node it runs on, the GPUs it holds."""

    run: int
    stage: str
    node: str | None
    gpus: list[int]
    """The GPUs' indices on the node; empty where the scheduler picked them (Nomad)."""
    gpu_count: int = 0
    """How many GPUs the run holds, whether or not their indices are known."""


class OverviewRow(BaseModel):
    """One project as the console's overview shows it."""

    id: str
    name: str
    labels: list[str]
    pipeline: str
    state: ProjectState
    state_reason: str | None
    needs_person: bool
    """Awaiting input, failed or paused: a person is needed to go on."""
    current_stages: list[str]
    """Stages running now, or the stage it waits at."""
    stages_total: int
    stages_done: int
    state_since: datetime | None
    updated_at: datetime | None = None
    placements: list[RunPlacement] = []
    """Where the project's active runs run: node and GPUs (pending ones not yet placed)."""


class OverviewPublic(BaseModel):
    """One page of the overview; ``count`` is how many projects match in all."""

    data: list[OverviewRow]
    count: int
    needs_person: int
    """Projects matching the query that wait for a person (at a gate, paused, failed)."""
    states: list[str]


class ProjectsPublic(BaseModel):
    """One page of projects; ``count`` is how many match in all, on every page."""

    data: list[ProjectPublic]
    count: int


class ResourceOverrides(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cpus: float | None = Field(default=None, gt=0, le=defaults.MAX_CPUS)
    memory: Megabytes | None = Field(
        default=None, gt=0, le=defaults.MAX_MEMORY_MB, description="MiB, or a size like 8G."
    )
    gpus: int | None = Field(default=None, ge=0, le=defaults.MAX_GPUS)


class OverridesBody(Body):
    """What the next run of the stage does differently, for that run only."""

    model_config = ConfigDict(extra="forbid")

    variables: dict[str, str] = {}
    image: str | None = Field(default=None, max_length=defaults.MAX_TEXT_LENGTH)
    resources: ResourceOverrides = ResourceOverrides()
    comment: str = Field(default="", max_length=defaults.MAX_TEXT_LENGTH)

    def to_core(self) -> RunOverrides:
        return RunOverrides(
            variables=dict(self.variables),
            image=self.image or None,
            cpus=self.resources.cpus,
            memory_mb=self.resources.memory,
            gpus=self.resources.gpus,
            comment=self.comment.strip(),
        )


class ResumeBody(Body):
    model_config = ConfigDict(extra="forbid")

    from_stage: str | None = Field(default=None, max_length=defaults.MAX_TEXT_LENGTH)
    only: bool = Field(default=False, description="Run only this stage, then pause.")
    like_run: int | None = Field(
        default=None,
        ge=0,
        le=defaults.MAX_ID,
        description="Redo as this earlier run was: its variables, image, resources.",
    )
    overrides: OverridesBody | None = None
    answers: dict[str, str | bool | int | float] | None = Field(
        default=None,
        description="Answers to the questions of the gate this resume passes, by input name; "
        "they become project variables. A 422 with code `invalid_answers` lists each wrong "
        "one under `fields` as `answers.NAME`.",
    )


class VariablesBody(Body):
    set: dict[str, str] = {}
    unset: list[str] = []


class EventPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    kind: str
    message: str
    data: dict[str, Any]

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, event: HistoryEvent) -> EventPublic:
        return cls.model_validate(event)


class EventsPublic(BaseModel):
    data: list[EventPublic]


class FileEntry(BaseModel):
    path: str
    name: str
    size: int
    is_dir: bool
    modified: datetime | None
    link: str | None = None
    """A symlink's target (workspaces keep symlinks as such)."""


class FilesPublic(BaseModel):
    path: str
    data: list[FileEntry]


class WorkspaceFilePublic(FileEntry):
    """A file uploaded into a run's workspace, and the workspace version that holds it."""

    run: int
    version: int


class WorkspaceUploadCreate(Body):
    """Begin uploading ``size`` bytes to ``path`` in a run's workspace."""

    path: str
    size: int = Field(ge=0)


class GcBody(Body):
    dry_run: bool = True
    grace_seconds: float = Field(
        default=defaults.GC_GRACE_SECONDS, ge=0, le=defaults.MAX_GC_GRACE_SECONDS
    )
    """Unreferenced contents younger than this stay."""
    multipart_grace_seconds: float = Field(
        default=defaults.MULTIPART_GRACE_SECONDS, ge=0, le=defaults.MAX_GC_GRACE_SECONDS
    )
    """Unfinished uploads begun or added to within this stay; older ones are aborted."""


class GcPublic(BaseModel):
    dry_run: bool
    manifests: int
    referenced: int
    blobs: int
    blob_bytes: int
    kept_young: int
    removable: list[str]
    """Keys of the contents that went (or, dry, would go)."""
    removable_bytes: int
    removed: int
    removed_bytes: int
    stale_pending: int
    finished_pending: int
    """Records of stage-outs whose retry published, removed (dry: would be)."""
    uploads_active: int
    """Unfinished uploads left alone: begun or added to within the grace period."""
    uploads_abandoned: list[str]
    """Keys of the unfinished uploads that are (dry: would be) aborted."""
    uploads_aborted: int


class WorkspacePublic(BaseModel):
    """One folder of one version of a run's workspace."""

    run: int
    stage: str
    version: int
    """The version shown; 0 when the run wrote nothing."""
    versions: list[int]
    """Every version: 1 is what the stage wrote, later ones are people's fixes."""
    origin: str
    note: str
    path: str
    data: list[FileEntry]


class UploadCreate(Body):
    """Begin a multipart upload of ``size`` bytes to ``path``."""

    path: str
    size: int = Field(ge=0)


class UploadPublic(BaseModel):
    """A multipart upload in progress: send parts of ``part_size`` bytes (the last one the
    rest), numbered 1 to ``part_count``, to the URLs ``.../{upload_id}/urls`` hands out."""

    upload_id: str
    path: str
    size: int
    part_size: int
    part_count: int


class PartUrlsBody(Body):
    path: str
    part_numbers: list[int] = Field(max_length=defaults.MULTIPART_MAX_PARTS)


class PartUrlsPublic(BaseModel):
    """Presigned PUT URLs by part number. Send each part's base64 MD5 as ``Content-MD5``
    with it and object storage refuses bytes damaged on the way."""

    urls: dict[int, str]


class StoredPart(BaseModel):
    """A part object storage holds. ``etag`` is the hex MD5 of its bytes. A part sent
    twice may be listed twice (SeaweedFS keeps both until completion); the one whose
    ``etag`` matches the ``md5`` given at completion is used."""

    part_number: int
    etag: str
    size: int


class StoredPartsPublic(BaseModel):
    parts: list[StoredPart]


class CompletedPart(BaseModel):
    """One part as the client sent it: ``md5`` is the hex MD5 of the bytes it sent;
    ``etag`` (optional) is what object storage answered to the PUT."""

    part_number: int
    md5: str = Field(pattern=r"^[0-9a-fA-F]{32}$")
    etag: str | None = None


class UploadComplete(Body):
    """Finish an upload: every part 1 to ``part_count`` with its MD5, and the file's
    ``size`` as given when the upload began; both are checked before the file appears."""

    path: str
    size: int = Field(ge=0)
    parts: list[CompletedPart] = Field(max_length=defaults.MULTIPART_MAX_PARTS)
    note: str = Field(default="", max_length=defaults.MAX_TEXT_LENGTH)
    """Workspace uploads only: a person's words for the new version (what the fix is)."""


class DownloadPublic(BaseModel):
    url: str
    size: int
    name: str
    version: str = ""
    """Which bytes the URL gives: another value, other bytes. A download interrupted and
    continued keeps what it already has only while this stays the same."""
    modified: datetime | None = None
    """When the file was last written (a downloaded copy gets this time)."""


class GpuPublic(BaseModel):
    index: int
    name: str
    memory_mb: int
    healthy: bool


class NodeDrainPublic(BaseModel):
    """The operator's drain of a node: it takes no new stages; those on it are stopped at
    ``deadline`` (at once when ``forced``; never when neither)."""

    started_at: datetime | None
    deadline: datetime | None
    forced: bool
    summary: str
    """"draining since 2026-12-03 13:02 UTC, stages stopped at 2026-12-03 14:02 UTC"."""


class NodePublic(BaseModel):
    name: str
    status: str
    """``ready`` (takes stages), ``draining``, ``ineligible`` or ``down``."""
    eligible: bool
    """Whether the scheduler may place new stages there (Nomad's scheduling eligibility)."""
    drain: NodeDrainPublic | None
    cpus: float
    memory_mb: int
    gpus: list[GpuPublic]
    runs: list[int]


class NodesPublic(BaseModel):
    data: list[NodePublic]


class HealthProblem(BaseModel):
    """A part that does not work now; ``reason`` is for a person."""

    component: Literal["s3"] = Field(description="What is down: `s3`, the object storage.")
    reason: str


class Health(BaseModel):
    """Answered with 200 while the server runs, degraded or not: the problems say what
    does not work, and a load balancer should keep sending requests."""

    status: Literal["ok", "degraded"] = Field(
        description="`degraded` while any part in `problems` does not work."
    )
    version: str
    backend: str
    problems: list[HealthProblem] = []


class ProjectTokenCreate(Body):
    """A token for scripts that act on one project; ``capabilities`` say what it may do."""

    name: str
    capabilities: list[str] = ["trigger"]


class ProjectTokenPublic(BaseModel):
    """A project token as listed: never the token itself."""

    name: str
    capabilities: list[str]
    created_at: datetime
    revoked: bool
    revoked_at: datetime | None


class ProjectTokenCreated(BaseModel):
    """The new token, shown this once; only its hash is kept. ``project`` is the project's
    id, which stays when the project is renamed: trigger URLs use it."""

    name: str
    capabilities: list[str]
    token: str
    created_at: datetime
    project: str


class ProjectTokensPublic(BaseModel):
    data: list[ProjectTokenPublic]


class TriggerBody(Body):
    """Resume the project; with ``from_stage``, redo that stage and what follows it."""

    from_stage: str | None = Field(default=None, max_length=defaults.MAX_TEXT_LENGTH)
    comment: str = Field(default="", max_length=500)
    """Why, in a person's words; it lands in the project's history."""


class TriggerPublic(BaseModel):
    """What a trigger did. Only this much: the token may trigger, not read the project."""

    project: str
    state: ProjectState
    state_reason: str | None
    message: str


class SessionCreate(BaseModel):
    """Sign in to the console with a user name and password (a local user's, or the
    directory's where LDAP is set up), or with an API token (the CLI's)."""

    token: str | None = Field(default=None, min_length=1, max_length=500)
    username: str | None = Field(default=None, min_length=1, max_length=100)
    password: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _one_way_in(self) -> SessionCreate:
        if (self.token is None) == (self.username is None or self.password is None):
            raise ValueError("give either token, or username and password")
        return self


class SessionPublic(BaseModel):
    """A console session as listed: who, since when, until when; never its secret.

    ``handle`` names the session to revoke it and signs nobody in. A session ends at
    ``expires_at``, or at ``idle_expires_at`` unless it is used before.
    """

    handle: str
    user: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    idle_expires_at: datetime
    user_agent: str
    address: str
    current: bool = False
    """Whether this is the session the request came through."""


class SessionsPublic(BaseModel):
    data: list[SessionPublic]
