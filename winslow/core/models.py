"""The values that travel between store, core and engine: projects, runs, history.

Frozen dataclasses: core functions read them and return decisions, never mutate them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from winslow.core.states import ACTIVE_RUN_STATES, ProjectState, StageRunState
from winslow.pipeline.model import RetentionPolicy, combination_key


@dataclass(frozen=True)
class Run:
    """One execution of one stage. Runs are never overwritten; a redo adds a run."""

    id: int
    project_id: str
    stage: str
    attempt: int
    state: StageRunState
    created_at: datetime
    variables: dict[str, str] = field(default_factory=dict)
    job_id: str | None = None
    submitted: bool = False
    node: str | None = None
    gpu_indices: tuple[int, ...] = ()
    cpus: float = 1.0
    memory_mb: int = 0
    gpus: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    log_tail: tuple[str, ...] = ()
    superseded: bool = False
    """A later resume or redo replaced this run's result; it stays in the history."""
    cancel_requested: bool = False
    workspace_prefix: str = ""
    log_key: str = ""
    workspace_pruned: bool = False
    """The retention policy deleted this run's workspace manifests; the run stays."""
    combination: dict[str, str] = field(default_factory=dict)
    """The sweep values this run ran with; empty unless its stage sweeps."""
    results: dict[str, Any] = field(default_factory=dict)
    """What the stage reported (``WINSLOW_RESULT:`` lines, ``results.json``)."""
    image: str | None = None
    """The image the run used where it differs from the stage's (an override)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """What a person changed for this run only: variables, image, resources, comment."""

    @property
    def combination_key(self) -> str:
        return combination_key(self.combination)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_RUN_STATES


@dataclass(frozen=True)
class Project:
    """A pipeline applied to one input, steered by a person."""

    id: str
    name: str
    pipeline_name: str
    pipeline: dict[str, Any]
    """The definition the project follows (a snapshot; changing pipeline replaces it)."""
    state: ProjectState
    version: int
    created_at: datetime
    updated_at: datetime
    labels: tuple[str, ...] = ()
    variables: dict[str, str] = field(default_factory=dict)
    state_reason: str | None = None
    waiting_for: dict[str, Any] = field(default_factory=dict)
    """Why it awaits input: ``{"gate": "review"}`` or ``{"variables": ["INPUT_VIDEO"]}``."""
    approved_gates: frozenset[str] = frozenset()
    """Gated stages a person has let start; each approval is used up by one start."""
    state_changed_at: datetime | None = None
    retention: RetentionPolicy | None = None
    """The project's own retention; it wins over the pipeline's and its stages'."""
    run_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Stage → what its next run changes, for that run only (a resume with overrides)."""
    hold_after: frozenset[str] = frozenset()
    """Stages whose next run is the last before the project pauses ("only this stage")."""
    owner: str = ""
    """The user who created it; their quota holds its runs."""
    charged_group: str | None = None
    """The group whose quota its runs count against too."""


@dataclass(frozen=True)
class HistoryEvent:
    """One line of a project's history: who did what, when."""

    id: int
    project_id: str
    at: datetime
    actor: str
    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)
