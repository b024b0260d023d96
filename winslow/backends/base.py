"""The one contract every backend keeps, and the values that cross it.

The engine never holds a concrete backend: it submits a ``RunSpec`` under a deterministic
job ID, hears that a job changed through the ``on_event`` callback it passed to
``start``, and reads the job's ``JobStatus`` back. Submitting the same job ID twice must
not start the stage twice; that is what makes the engine restart-safe. While a job runs,
``usage`` says what its stage uses now, as a ``UsageSample``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol

from winslow.core.resources import NodeInfo, ResourceRequest
from winslow.core.telemetry import NodeSample


class JobState(str, Enum):
    """What a backend knows of one job; the engine maps it onto the run."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    LOST = "lost"
    CANCELLED = "cancelled"


TERMINAL_JOB_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.LOST, JobState.CANCELLED}
)


@dataclass(frozen=True)
class RunSpec:
    """Everything a backend needs to run one stage execution (one run).

    ``command`` and ``env`` are already interpolated, as node text: the backend resolves
    the ``${WINSLOW_WORKSPACE}`` and ``${WINSLOW_INPUTS}`` left in them where it knows the
    paths, with ``pipeline.interpolate.resolve_node_paths`` (which turns an escaped
    ``$${WINSLOW_WORKSPACE}`` into the literal). ``env`` holds the project variables, the
    stage's env and ``WINSLOW_PROJECT``/``WINSLOW_STAGE``/``WINSLOW_RUN``; the backend adds
    ``WINSLOW_WORKSPACE`` and ``WINSLOW_INPUTS``, which only it knows.
    """

    job_id: str
    project_id: str
    project_name: str
    pipeline: str
    stage: str
    run_id: int
    attempt: int
    command: tuple[str, ...]
    env: dict[str, str]
    resources: ResourceRequest
    image: str | None = None
    inputs: tuple[str, ...] = ()
    """Resource pool paths to bring to the node, under ``WINSLOW_INPUTS``."""
    workspace_sources: tuple[str, ...] = ()
    """Storage prefixes of earlier workspaces to start from, applied in order."""
    workspace_prefix: str = ""
    """Storage prefix the run's workspace is published to when it ends."""
    log_key: str = ""
    """Storage key the run's log is archived to when it ends."""
    timeout_seconds: int | None = None
    node: str | None = None
    """The node the engine placed the run on, where the backend lets the engine place."""
    gpu_indices: tuple[int, ...] = ()
    """The GPUs the engine gave the run on ``node``."""
    preferred_node: str | None = None
    """Where the stages this one needs ran, so its data is likely cached there; backends
    that place runs themselves prefer it (an affinity, not a constraint)."""
    checkpoint_every: int | None = None
    """Seconds between the node's publishes of the stage's checkpoint folder; None: the
    stage keeps no checkpoints."""
    checkpoint_prefix: str = ""
    """Storage prefix this run's checkpoints are published to."""
    resume_from: tuple[str, ...] = ()
    """Checkpoint prefixes of the lost attempts before this one, newest first: stage-in
    restores the latest checkpoint of the first that has one."""


@dataclass(frozen=True)
class JobStatus:
    """A backend's view of one job."""

    job_id: str
    state: JobState
    node: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    results_left: bool | None = None
    """Whether the ended stage left a ``results.json`` in its workspace, as its runner
    recorded it: False spares the engine a look in storage. None where the backend cannot
    tell (Nomad), or the runner did not say; storage is read then."""


@dataclass(frozen=True)
class UsageSample:
    """What one running job's stage uses at one moment, however the backend measured it."""

    cpu_percent: float
    """Of one core, over the last few seconds: 250 means two and a half cores busy."""
    memory_mb: float
    """Resident memory of all the stage's processes, MB (MiB, as everywhere in Winslow)."""
    gpu_percent: float | None = None
    """Mean utilisation of the job's GPUs, 0 to 100; None where it has none or none answer."""
    gpu_memory_mb: float | None = None
    """Memory in use on the job's GPUs, summed, MB; None where it has none or none answer."""


JobEventCallback = Callable[[str], None]
"""Called with a job ID whenever that job may have changed; must return quickly."""


class Backend(Protocol):
    """Runs stages. Implementations: ``backends/local``, ``backends/nomad``."""

    name: str
    places_runs: bool
    """True when the engine picks node and GPUs (local); False when the backend does (Nomad)."""
    purges_killed_jobs: bool
    """True when the engine should ``remove`` a killed run's job once its end is recorded
    (Nomad, where a stopped job otherwise lingers); False where nothing lingers (local)."""
    logs_on_this_machine: bool
    """True when ``logs`` reads a file on the engine's own machine (local): an ended run's
    results are then read from it, not from storage, where the runner archives the log
    only after it recorded the end."""
    usage_interval_seconds: float | None
    """Least seconds between two ``usage`` samples of one run, where a sample costs a
    request to a shared service (Nomad); None: sample every run each round the engine's
    sampler makes (local, where a sample is a look at this machine)."""
    usage_requests_per_second: float | None
    """Most ``usage`` samples per second for all runs together, which stretches each run's
    interval as runs grow in number; None: no bound."""

    def start(self, on_event: JobEventCallback) -> None:
        """Begin watching jobs; call ``on_event(job_id)`` whenever one changes."""
        ...

    def stop(self) -> None:
        """Stop watching. Running jobs keep running."""
        ...

    def submit(self, spec: RunSpec) -> None:
        """Start the job unless a job with ``spec.job_id`` already exists.

        Raises ``SubmitRejectedError`` when the stage can never run as given (the reason
        becomes the run's), ``BackendUnavailableError`` when the engine should try again.
        """
        ...

    def status(self, job_id: str) -> JobStatus | None:
        """Return the job's status, or ``None`` if this backend never heard of it."""
        ...

    def list_jobs(self) -> list[JobStatus]:
        """Return every job this backend still knows, for adoption after a restart."""
        ...

    def logs(self, job_id: str, offset: int = 0, limit: int | None = None) -> bytes:
        """Return the job's log from byte ``offset`` on, as far as it is written now, at
        most ``limit`` bytes (a reader of a long log goes through it in bounded pieces)."""
        ...

    def log_size(self, job_id: str) -> int | None:
        """Return how many bytes the job's log holds now, where that is cheap to know;
        None where it is not (then a reader of the log's end reads it all)."""
        ...

    def cancel(self, job_id: str) -> None:
        """Stop the job now; its status becomes ``CANCELLED`` once it has stopped."""
        ...

    def remove(self, job_id: str) -> None:
        """Forget the ended job: delete what the backend keeps of it (its project is being
        deleted, or it was killed and ``purges_killed_jobs``). An unknown job is fine.

        Raises ``ConflictError`` while the job is pending or running: cancel it first.
        """
        ...

    def nodes(self) -> list[NodeInfo]:
        """Return the nodes this backend can run stages on."""
        ...

    def usage(self, job_id: str) -> UsageSample | None:
        """Return what the job's stage uses now; None while it does not run (pending,
        staging in or out, ended, unknown) or cannot be measured at the moment.

        May take a fraction of a second (a first CPU reading needs two looks); raises
        ``BackendUnavailableError`` when the backend does not answer.
        """
        ...

    def node_stats(self, at: datetime) -> list[NodeSample]:
        """Return what each node that answers uses now, stamped ``at`` (``core.telemetry``);
        a node that cannot be read is left out. Called every few seconds by one thread."""
        ...
