"""What a job we write looks like, and the check of each one against Nomad's job schema.

The ``TypedDict``s name the part of Nomad's job API that ``render_jobspec`` writes
(hashicorp/nomad api/jobs.go, api/tasks.go). The schema is
``jobspecs/job-register.schema.json`` in the package, a copy of
``shared/nomad-api/job-register.schema.json`` (HashiCorp's nomad-openapi merged with the
Go structs, every object closed), so a misspelled or mistyped field is caught here
rather than by a Nomad agent, or not at all.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypedDict

from winslow.backends.nomad.jobtemplate import packaged_jobspecs_dir

SCHEMA_NAME = "job-register.schema.json"
"""JSON Schema of ``POST /v1/jobs``, copied from ``shared/nomad-api/`` into jobspecs."""

# ---------------------------------------------------------------------------------------
# The part of Nomad's job API we write (hashicorp/nomad api/jobs.go, api/tasks.go)


class NomadConstraint(TypedDict):
    """api.Constraint."""

    LTarget: str
    RTarget: str
    Operand: str


class NomadAffinity(TypedDict):
    """api.Affinity."""

    LTarget: str
    RTarget: str
    Operand: str
    Weight: int


class NomadRequestedDevice(TypedDict):
    """api.RequestedDevice."""

    Name: str
    Count: int
    Constraints: list[NomadConstraint]


class NomadResources(TypedDict, total=False):
    """api.Resources: CPU in MHz or whole cores (one of the two), memory in MB."""

    CPU: int
    Cores: int
    MemoryMB: int
    Devices: list[NomadRequestedDevice]


class NomadTemplate(TypedDict, total=False):
    """api.Template."""

    DestPath: str
    EmbeddedTmpl: str
    Envvars: bool
    ChangeMode: Literal["noop", "restart", "signal", "script"]
    Perms: str
    LeftDelim: str
    RightDelim: str
    ErrMissingKey: bool


class NomadTaskLifecycle(TypedDict):
    """api.TaskLifecycle."""

    Hook: Literal["prestart", "poststart", "poststop"]
    Sidecar: bool


class NomadVault(TypedDict, total=False):
    """api.Vault (``Role`` since Nomad 1.7)."""

    Role: str
    ChangeMode: Literal["noop", "restart", "signal"]
    Env: bool


class NomadWorkloadIdentity(TypedDict, total=False):
    """api.WorkloadIdentity (named identities since Nomad 1.7); TTL in nanoseconds."""

    Name: str
    Audience: list[str]
    TTL: int
    ChangeMode: str
    Env: bool
    File: bool


class NomadLogConfig(TypedDict):
    """api.LogConfig."""

    MaxFiles: int
    MaxFileSizeMB: int


class NomadTask(TypedDict, total=False):
    """api.Task; ``Config`` is the driver's own map, ``KillTimeout`` nanoseconds."""

    Name: str
    Driver: str
    Config: dict[str, Any]
    Env: dict[str, str]
    Templates: list[NomadTemplate]
    Resources: NomadResources
    Lifecycle: NomadTaskLifecycle
    KillSignal: str
    KillTimeout: int
    LogConfig: NomadLogConfig
    Vault: NomadVault
    Identities: list[NomadWorkloadIdentity]


class NomadRestartPolicy(TypedDict):
    """api.RestartPolicy; durations in nanoseconds."""

    Attempts: int
    Interval: int
    Delay: int
    Mode: Literal["fail", "delay"]


class NomadReschedulePolicy(TypedDict):
    """api.ReschedulePolicy; durations in nanoseconds."""

    Attempts: int
    Interval: int
    Delay: int
    DelayFunction: Literal["constant", "exponential", "fibonacci"]
    MaxDelay: int
    Unlimited: bool


class NomadDisconnectStrategy(TypedDict, total=False):
    """api.DisconnectStrategy (Nomad 1.8)."""

    Replace: bool


class NomadEphemeralDisk(TypedDict):
    """api.EphemeralDisk."""

    SizeMB: int
    Sticky: bool
    Migrate: bool


class NomadTaskGroup(TypedDict, total=False):
    """api.TaskGroup."""

    Name: str
    Count: int
    RestartPolicy: NomadRestartPolicy
    ReschedulePolicy: NomadReschedulePolicy
    Disconnect: NomadDisconnectStrategy
    EphemeralDisk: NomadEphemeralDisk
    Affinities: list[NomadAffinity]
    Tasks: list[NomadTask]


class NomadJob(TypedDict, total=False):
    """api.Job, as ``render_jobspec`` writes it: the value of ``{"Job": ...}``."""

    ID: str
    Name: str
    Type: Literal["batch"]
    Namespace: str
    Region: str
    Datacenters: list[str]
    Priority: int
    Meta: dict[str, str]
    TaskGroups: list[NomadTaskGroup]


class RenderedJobInvalidError(RuntimeError):
    """The rendered job does not match Nomad's schema: a bug in the template or here.

    ``problems`` lists each mismatch as ``path: message``.
    """

    def __init__(self, job_id: str, problems: list[str]) -> None:
        super().__init__(
            f"the job rendered for {job_id} does not match Nomad's job schema: "
            + "; ".join(problems[:5])
        )
        self.job_id = job_id
        self.problems = problems


# ---------------------------------------------------------------------------------------
# The check


def validate_jobspec(job: Mapping[str, Any], schema_path: Path | None = None) -> list[str]:
    """Return every way ``{"Job": job}`` departs from Nomad's job schema; ``[]`` if none.

    The schema is ``jobspecs/job-register.schema.json`` of the package, or ``schema_path``.
    Each problem reads ``Job/TaskGroups/0/Tasks/1/Resources/CPU: 'x' is not of type
    'integer'``.
    """
    validator = _validator(schema_path or packaged_jobspecs_dir() / SCHEMA_NAME)
    errors = sorted(validator.iter_errors({"Job": dict(job)}), key=lambda e: list(e.path))
    return [f"{'/'.join(str(p) for p in e.path) or '<root>'}: {e.message}" for e in errors]


@functools.lru_cache(maxsize=4)
def _validator(path: Path) -> Any:
    # Imported here: jsonschema (with referencing and rpds) is 3 MB and 25 ms that a
    # server on the local backend, which only names Nomad's types, never needs.
    from jsonschema import Draft202012Validator

    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)
