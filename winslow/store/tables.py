"""The SQL tables, as SQLAlchemy ORM classes. Only ``store/`` touches them.

JSON columns hold what is read whole and never queried by part (variables, the pipeline
snapshot). States are stored as their wire words.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ProjectRow(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    pipeline_name: Mapped[str] = mapped_column(String(63))
    pipeline: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20), index=True)
    state_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    waiting_for: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    approved_gates: Mapped[list[str]] = mapped_column(JSON, default=list)
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    variables: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state_changed_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    retention: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=None)
    """The project's own retention policy; ``NULL``: the pipeline's applies."""
    run_overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Stage → overrides for its next run only (resume/redo with overrides)."""
    hold_after: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Stages after whose next run the project pauses ("run only this stage")."""
    owner: Mapped[str] = mapped_column(String(100), default="")
    """The user who created the project: their quota holds its runs."""
    charged_group: Mapped[str | None] = mapped_column(String(100), nullable=True)
    """The group whose quota the project's runs count against too; NULL: none."""


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_project_stage", "project_id", "stage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    stage: Mapped[str] = mapped_column(String(63))
    attempt: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), index=True)
    variables: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    job_id: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    submitted: Mapped[bool] = mapped_column(Boolean, default=False)
    node: Mapped[str | None] = mapped_column(String(200), nullable=True)
    gpu_indices: Mapped[list[int]] = mapped_column(JSON, default=list)
    cpus: Mapped[float] = mapped_column(Float, default=1.0)
    memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    log_tail: Mapped[list[str]] = mapped_column(JSON, default=list)
    superseded: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    workspace_prefix: Mapped[str] = mapped_column(String(500), default="")
    log_key: Mapped[str] = mapped_column(String(500), default="")
    workspace_pruned: Mapped[bool] = mapped_column(Boolean, default=False)
    combination: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    """The sweep values of this run; empty for a stage that does not sweep."""
    results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    image: Mapped[str | None] = mapped_column(String(500), nullable=True)
    """The image this run used, where a redo overrode the stage's."""
    overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """What a person changed for this run only (variables, image, resources, comment)."""


class UsageRow(Base):
    """One sample of what a run used: CPU, memory, and GPUs where it has some."""

    __tablename__ = "run_usage"
    __table_args__ = (Index("ix_run_usage_run_at", "run_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer, ForeignKey("runs.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cpu_percent: Mapped[float] = mapped_column(Float)
    """Of one core: 250 means two and a half cores busy."""
    memory_mb: Mapped[float] = mapped_column(Float)
    gpu_percent: Mapped[float | None] = mapped_column(Float, nullable=True)
    """Mean utilisation of the run's GPUs; ``NULL`` where it has none or none is measured."""
    gpu_memory_mb: Mapped[float | None] = mapped_column(Float, nullable=True)


class EventRow(Base):
    """The append-only history of a project."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ProjectTokenRow(Base):
    """Tokens that act on one project only (``trigger``), stored as SHA-256 hashes only.

    Apart from ``api_tokens`` on purpose: a project token is never an API bearer token, and
    an API token never triggers. A revoked token keeps its row, so the list still shows
    what the history's ``trigger:<name>`` lines refer to.
    """

    __tablename__ = "project_tokens"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_project_tokens_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(63))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    capabilities: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ConsoleSessionRow(Base):
    """Console sessions: made at sign-in, ended by the server.

    The browser's cookie holds a random secret of which only the SHA-256 is kept here;
    ``handle`` is a second random value that names the session in lists and in a
    revocation, and never signs anybody in. A session signed in with an API token ends
    with that token's revocation; every session ends when its user is disabled.
    """

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    handle: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("api_tokens.id", ondelete="CASCADE"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """The absolute end, whatever the use."""
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """The latest request (written at most once a minute); the idle end counts from it."""
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    """The client's address at sign-in."""


# Tables kept in modules of their own join ``Base.metadata`` here, so whatever reads the
# metadata (migrations, schema checks) sees every table.
from winslow.store import audit_tables as _audit_tables  # noqa: E402, F401
from winslow.store import notify_tables as _notify_tables  # noqa: E402, F401
from winslow.store import people_tables as _people_tables  # noqa: E402, F401
from winslow.store import telemetry_tables as _telemetry_tables  # noqa: E402, F401
