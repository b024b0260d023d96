"""Render one Nomad batch job per stage run from ``jobspecs/stage.json.j2``; render only.

The template is JSON text in which every value passes ``| tojson`` (the environment's
``finalize`` refuses any other output), so no quote, newline or backslash in a project
name or a stage's env can break the document, and what comes out is checked against
Nomad's job schema before anyone sees it.

Nomad interpolates ``${...}`` at run time, with no escape, in task ``Env`` values
(helper/args ``ReplaceEnv``), and evaluates driver ``Config`` strings as HCL2 templates
(``${...}`` and ``%{...}``). So nothing a user wrote goes there. The stage's env, and each
argument holding ``${`` or ``%{``, reach the task through an env-file ``Templates`` entry
whose delimiters do not occur in it, quoted the way hashicorp/go-envparse reads back to
the original bytes; Nomad adds those variables to the task's environment as they are.
Such an argument becomes ``${WINSLOW_ARG_<i>}`` in ``Config``: Nomad substitutes the value
once and does not look into it again. S3 credentials never pass through here: the
stage-in/stage-out tasks render them from a Nomad Variable or Vault on the node.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import jinja2

from winslow.errors import SubmitRejectedError

if TYPE_CHECKING:
    from winslow.backends.base import RunSpec
    from winslow.backends.nomad.config import NomadConfig

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------
# Tunables

TEMPLATE_NAME = "stage.json.j2"
"""The job template, in the jobspecs folder."""

SCHEMA_NAME = "job-register.schema.json"
"""JSON Schema of ``POST /v1/jobs``, copied from ``shared/nomad-api/`` into jobspecs."""

DEFAULT_JOBSPECS_DIR = Path(__file__).resolve().parents[2] / "jobspecs"
"""The checkout's ``jobspecs/`` folder, used unless ``NomadConfig.jobspecs_dir`` says another."""

SHARED_SCHEMA_PATH = Path(__file__).resolve().parents[3].parent / "shared/nomad-api" / SCHEMA_NAME
"""Where the reference schema lives next to the checkout; the jobspecs copy must equal it."""

JOB_PRIORITY = 50
"""Nomad priority of every stage job (Nomad's default; 1-100)."""

GROUP_NAME = "stage"
MAIN_TASK = "main"
STAGE_IN_TASK = "stage-in"
STAGE_OUT_TASK = "stage-out"

SECOND_NS = 1_000_000_000
"""Nanoseconds in a second: Nomad's JSON API takes every duration in nanoseconds."""

RESTART_INTERVAL_SECONDS = 24 * 3600
RESTART_DELAY_SECONDS = 15
"""Restart policy window and delay, seconds; with 0 attempts they only satisfy validation."""

RESCHEDULE_INTERVAL_SECONDS = 24 * 3600
RESCHEDULE_DELAY_SECONDS = 30
"""Reschedule policy window and delay, seconds; with 0 attempts they only satisfy validation."""

AFFINITY_WEIGHT = 50
"""Weight (-100..100) of the preference for the node that holds the earlier workspace."""

MAIN_KILL_TIMEOUT_SECONDS = 15
"""Seconds Nomad waits after SIGTERM before it kills the stage task."""

STAGE_EXEC_GRACE_SECONDS = 10
"""Seconds ``stage-exec`` waits after passing SIGTERM on; below the kill timeout, so it
gets to SIGKILL the stage's own process group itself."""

TOOLS_KILL_TIMEOUT_SECONDS = 5
"""Seconds Nomad waits after SIGTERM before it kills stage-in or stage-out."""

TOOLS_CPU_MHZ = 200
TOOLS_MEMORY_MB = 512
"""What the stage-in and stage-out tasks reserve: Python, boto3 and a transfer's buffers."""

MAIN_LOG_MAX_FILES = 10
MAIN_LOG_MAX_FILE_MB = 50
"""Rotation of the stage's stdout and stderr on the node; must stay below the disk size."""

ENV_LINE_MAX_BYTES = 60_000
"""Longest env-file line we write, bytes: Nomad reads the file with a bufio.Scanner,
which refuses lines over 64 KiB."""

CONTAINER_ALLOC_DIR = "/alloc"
"""Where the docker driver mounts the allocation folder in every container."""

CONTAINER_CACHE = "/winslow-cache"
"""Where a docker stage-in or stage-out task sees the node cache."""

WORKSPACE_DIR = "workspace"
INPUTS_DIR = "inputs"
"""Folders in the allocation folder, shared by stage-in, the stage and stage-out."""

WINSLOW_LOG = "${NOMAD_ALLOC_DIR}/logs/winslow.log"
"""The run's timestamped log: stage-in's and stage-exec's lines; stage-out archives it."""

STAGE_ENV_FILE = "secrets/stage.env"
TOOL_ENV_FILE = "secrets/args.env"
S3_ENV_FILE = "secrets/s3.env"
"""Env files rendered by Nomad into the task's own secrets folder (not served by alloc fs)."""

DELIMITER_BASE = "winslow:none"
"""Template delimiters of the literal env files are built from this and checked absent."""

VAULT_IDENTITY_NAME = "vault_default"
VAULT_IDENTITY_TTL_SECONDS = 3600
"""The workload identity Nomad exchanges for a Vault token (Vault cluster ``default``)."""

NVIDIA_GPU = "nvidia/gpu"
"""Device name the NVIDIA device plugin fingerprints (vendor/type)."""

_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ARG_NAME = re.compile(r"WINSLOW_ARG_[0-9]+")
_TEMPLATE_PATH = re.compile(r"[A-Za-z0-9._~@/-]+")
_NODE_TOKENS = ("${WINSLOW_WORKSPACE}", "${WINSLOW_INPUTS}")
_OWN_ENV = frozenset({"WINSLOW_WORKSPACE", "WINSLOW_INPUTS"})

HOST_COMMANDS_HINT = (
    "set WINSLOW_NOMAD_ALLOW_HOST_COMMANDS=true to run it with Nomad's "
    "raw_exec driver, or give the stage an image"
)


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
    """api.Resources: CPU in MHz, memory in MB."""

    CPU: int
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
# Env files Nomad reads back exactly (hashicorp/go-envparse)


def encode_env_value(value: str) -> str:
    """Return ``value`` double-quoted so that go-envparse yields exactly ``value``.

    Inside double quotes go-envparse copies every byte but ``"`` and ``\\`` as it is (UTF-8
    included; ``$`` expands nothing) and refuses raw control characters, so those are the
    ones escaped: ``\\\\``, ``\\"``, ``\\n``, ``\\t``, and ``\\u00XX`` for the other control
    characters. Raises ``ValueError`` for NUL, which no process environment can hold.
    """
    if "\x00" in value:
        raise ValueError("it contains a NUL character, which an environment cannot carry")
    out = ['"']
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def encode_env_file(env: Mapping[str, str]) -> str:
    """Return an env file, one ``NAME="value"`` line each, that go-envparse reads as ``env``.

    Raises ``ValueError`` naming the variable when a name is not ``[A-Za-z_][A-Za-z0-9_]*``,
    a value holds NUL or is not encodable as UTF-8, or a line would pass
    ``ENV_LINE_MAX_BYTES``.
    """
    lines = []
    for name, value in env.items():
        if not _VARIABLE_NAME.fullmatch(name):
            raise ValueError(f"variable name {name!r} is not of the form [A-Za-z_][A-Za-z0-9_]*")
        try:
            line = f"{name}={encode_env_value(value)}"
            size = len(line.encode("utf-8"))
        except (ValueError, UnicodeEncodeError) as exc:
            reason = exc.args[0] if isinstance(exc, ValueError) else "it is not valid text"
            raise ValueError(f"variable {name}: {reason}") from exc
        if size > ENV_LINE_MAX_BYTES:
            raise ValueError(
                f"variable {name} is {size} bytes as an env-file line; Nomad reads lines of "
                f"at most 64 KiB, so keep it under {ENV_LINE_MAX_BYTES} bytes"
            )
        lines.append(line + "\n")
    return "".join(lines)


def choose_delimiters(content: str) -> tuple[str, str]:
    """Return template delimiters of which neither occurs in ``content``.

    Deterministic: the same content always gets the same pair, so a job rendered again
    after a restart is the same job.
    """
    suffix = 0
    while True:
        tag = DELIMITER_BASE if suffix == 0 else f"{DELIMITER_BASE}:{suffix}"
        left, right = f"[[{tag}", f"{tag}]]"
        if left not in content and right not in content:
            return left, right
        suffix += 1


# ---------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True)
class NodeText:
    """An argument of our own that Nomad is meant to interpolate (``${NOMAD_ALLOC_DIR}``)."""

    text: str


def needs_literal_delivery(text: str) -> bool:
    """Return True when Nomad would read ``text`` in driver config as an HCL2 template."""
    return "${" in text or "%{" in text


def deliver_args(args: Sequence[str | NodeText]) -> tuple[list[str], dict[str, str]]:
    """Return the driver-config form of ``args`` and the env carrying literal ones.

    An argument that Nomad would interpolate becomes ``${WINSLOW_ARG_<i>}``, ``i`` its
    position, and its value goes into the returned env, which must reach the task through
    an env-file template. Nomad's HCL2 evaluation substitutes a variable's value as a
    string and does not evaluate it again.
    """
    rendered: list[str] = []
    literal: dict[str, str] = {}
    for index, arg in enumerate(args):
        if isinstance(arg, NodeText):
            rendered.append(arg.text)
        elif needs_literal_delivery(arg):
            name = f"WINSLOW_ARG_{index}"
            literal[name] = arg
            rendered.append("${" + name + "}")
        else:
            rendered.append(arg)
    return rendered, literal


def render_jobspec(
    spec: RunSpec,
    config: NomadConfig,
    *,
    lost_retries: int = 0,
    affinity_node: str | None = None,
    mhz_per_cpu: int = 1000,
) -> dict[str, Any]:
    """Return the Nomad job (the value of ``{"Job": ...}``) that runs ``spec`` once.

    ``lost_retries`` is the stage's ``retry.on_lost``; it is recorded in the job's Meta
    only. The job lets Nomad neither restart, reschedule nor replace anything, since
    Nomad's reschedule policy acts on *failed* allocations and lost ones are replaced
    regardless of it: each would run the stage again inside the same run. The engine
    starts a new run instead, counting attempts. ``affinity_node`` is a node name Nomad
    should prefer (where the earlier workspace is); ``mhz_per_cpu`` turns the stage's
    CPUs into Nomad's MHz.

    Raises ``SubmitRejectedError`` when the stage cannot run as given on this cluster
    (a command-only stage without ``allow_host_commands``, an env Nomad cannot carry, a
    setting missing) and ``RenderedJobInvalidError`` when the result does not match
    Nomad's job schema, which is a bug.
    """
    job_text = _render_text(spec, config, lost_retries, affinity_node, mhz_per_cpu)
    job: dict[str, Any] = json.loads(job_text)
    schema = _jobspecs_dir(config) / SCHEMA_NAME
    problems = validate_jobspec(job, schema if schema.is_file() else None)
    if problems:
        raise RenderedJobInvalidError(spec.job_id, problems)
    return job


def validate_jobspec(job: Mapping[str, Any], schema_path: Path | None = None) -> list[str]:
    """Return every way ``{"Job": job}`` departs from Nomad's job schema; ``[]`` if none.

    The schema is ``jobspecs/job-register.schema.json`` (a copy of
    ``shared/nomad-api/job-register.schema.json``), or ``schema_path``. Each problem reads
    ``Job/TaskGroups/0/Tasks/1/Resources/CPU: 'x' is not of type 'integer'``. Without the
    ``jsonschema`` package nothing is checked and ``[]`` comes back, with a warning.
    """
    validator = _validator(schema_path or _default_schema_path())
    if validator is None:
        return []
    errors = sorted(validator.iter_errors({"Job": dict(job)}), key=lambda e: list(e.path))
    return [f"{'/'.join(str(p) for p in e.path) or '<root>'}: {e.message}" for e in errors]


def _render_text(
    spec: RunSpec,
    config: NomadConfig,
    lost_retries: int,
    affinity_node: str | None,
    mhz_per_cpu: int,
) -> str:
    if not spec.job_id.startswith(config.job_prefix):
        raise SubmitRejectedError(
            f"Job ID '{spec.job_id}' does not start with the Nomad job prefix "
            f"'{config.job_prefix}', so Winslow could not find the job again after a restart; "
            "make WINSLOW_NOMAD_JOB_PREFIX match the IDs the engine gives."
        )
    if affinity_node is not None and "${" in affinity_node:
        raise ValueError(f"node name {affinity_node!r} holds '${{'")
    own = _OwnValues(config)
    meta = {**config.extra_meta, **_meta(spec, lost_retries)}
    context = {
        "job_id": spec.job_id,
        "name": (
            f"{spec.project_name} · {spec.stage} · run {spec.run_id} (attempt {spec.attempt})"
        ),
        "namespace": config.namespace,
        "region": config.region,
        "datacenters": list(config.datacenters),
        "priority": JOB_PRIORITY,
        "meta": meta,
        "restart": {
            "interval": RESTART_INTERVAL_SECONDS * SECOND_NS,
            "delay": RESTART_DELAY_SECONDS * SECOND_NS,
        },
        "reschedule": {
            "interval": RESCHEDULE_INTERVAL_SECONDS * SECOND_NS,
            "delay": RESCHEDULE_DELAY_SECONDS * SECOND_NS,
        },
        "disk_mb": config.ephemeral_disk_mb,
        "affinity_node": affinity_node,
        "affinity_weight": AFFINITY_WEIGHT,
        "stage_in": _tool_task(spec, config, own, STAGE_IN_TASK),
        "main": _main_task(spec, config, own, mhz_per_cpu),
        "stage_out": _tool_task(spec, config, own, STAGE_OUT_TASK),
    }
    return _template(_jobspecs_dir(config)).render(context)


def _meta(spec: RunSpec, lost_retries: int) -> dict[str, str]:
    meta = {
        "winslow_project": spec.project_name,
        "winslow_project_id": spec.project_id,
        "winslow_pipeline": spec.pipeline,
        "winslow_stage": spec.stage,
        "winslow_run": str(spec.run_id),
        "winslow_attempt": str(spec.attempt),
        "winslow_managed": "true",
        "winslow_lost_retries": str(lost_retries),
    }
    if spec.timeout_seconds is not None:
        # Nomad has no run-time limit for a docker task: the backend enforces this one.
        meta["winslow_timeout_seconds"] = str(spec.timeout_seconds)
    return meta


class _OwnValues:
    """Settings that go into interpolated places, checked once: they must hold no ``${``."""

    def __init__(self, config: NomadConfig) -> None:
        self.winslow_image = _own(config.winslow_image, "WINSLOW_NOMAD_IMAGE")
        self.winslow_command = _own(config.winslow_command, "WINSLOW_NOMAD_WINSLOW_COMMAND")
        if not config.s3_endpoint:
            raise SubmitRejectedError(
                "No S3 endpoint for the stage's tasks: set WINSLOW_NOMAD_S3_ENDPOINT to the "
                "object storage address as the Nomad nodes reach it."
            )
        self.node_cache_dir: str | None = None
        if config.node_cache_dir is not None:
            cache = _own(config.node_cache_dir, "WINSLOW_NOMAD_NODE_CACHE_DIR")
            if not cache.startswith("/") or ":" in cache:
                raise SubmitRejectedError(
                    f"WINSLOW_NOMAD_NODE_CACHE_DIR={cache!r} must be an absolute path "
                    "without ':'; change it."
                )
            self.node_cache_dir = cache
        self.s3_env = {
            "WINSLOW_S3_ENDPOINT": _own(config.s3_endpoint, "WINSLOW_NOMAD_S3_ENDPOINT"),
            "WINSLOW_S3_BUCKET": _own(config.s3_bucket, "WINSLOW_NOMAD_S3_BUCKET"),
            "WINSLOW_S3_REGION": _own(config.s3_region, "WINSLOW_NOMAD_S3_REGION"),
        }


def _own(value: str, setting: str) -> str:
    if needs_literal_delivery(value) or "\x00" in value:
        raise SubmitRejectedError(
            f"{setting}={value!r} holds '${{' or '%{{', which Nomad would interpolate; "
            f"change {setting}."
        )
    return value


def _main_task(
    spec: RunSpec, config: NomadConfig, own: _OwnValues, mhz_per_cpu: int
) -> dict[str, Any]:
    """The stage itself: in its image with docker, or on the node through stage-exec."""
    user_env = _user_env(spec)
    argv: list[str | NodeText]
    if spec.image is not None:
        image = spec.image
        if needs_literal_delivery(image) or "\x00" in image:
            raise SubmitRejectedError(
                f"Stage '{spec.stage}' names the image {image!r}, which is not a valid image "
                "reference; fix the stage's image."
            )
        workspace = f"{CONTAINER_ALLOC_DIR}/{WORKSPACE_DIR}"
        inputs = f"{CONTAINER_ALLOC_DIR}/{INPUTS_DIR}"
        # The container's paths are known now, so references resolve here.
        user_env = {k: _resolve_tokens(v, workspace, inputs) for k, v in user_env.items()}
        argv = [_resolve_tokens(arg, workspace, inputs) for arg in spec.command]
        _refuse_nul(spec, argv)
        rendered, literal = deliver_args(argv)
        driver_config: dict[str, Any] = {"image": image, "work_dir": workspace}
        if rendered:
            driver_config["command"] = rendered[0]
            if len(rendered) > 1:
                driver_config["args"] = rendered[1:]
        driver = "docker"
        env = {"WINSLOW_WORKSPACE": workspace, "WINSLOW_INPUTS": inputs}
    else:
        if not config.allow_host_commands:
            raise SubmitRejectedError(
                f"Stage '{spec.stage}' has no image, and this Nomad cluster runs no commands "
                f"directly on its nodes: {HOST_COMMANDS_HINT}."
            )
        if not spec.command:
            raise SubmitRejectedError(
                f"Stage '{spec.stage}' has neither an image nor a command; give it one."
            )
        alloc = "${NOMAD_ALLOC_DIR}"
        workspace_ref = NodeText(f"{alloc}/{WORKSPACE_DIR}")
        inputs_ref = NodeText(f"{alloc}/{INPUTS_DIR}")
        # The node's paths are known only there: stage-exec resolves ${WINSLOW_WORKSPACE}
        # and ${WINSLOW_INPUTS} in the arguments and the env, as the local runner does.
        _refuse_nul(spec, spec.command)
        argv = [
            "stage-exec",
            "--workdir",
            workspace_ref,
            "--workspace",
            workspace_ref,
            "--inputs",
            inputs_ref,
            "--log",
            NodeText(WINSLOW_LOG),
            "--grace",
            str(STAGE_EXEC_GRACE_SECONDS),
            "--isolate-gpus",
        ]
        if spec.timeout_seconds is not None:
            argv += ["--timeout", str(spec.timeout_seconds)]
        argv += ["--", *spec.command]
        rendered, literal = deliver_args(argv)
        driver = config.host_driver
        driver_config = {"command": own.winslow_command, "args": rendered}
        env = {
            "WINSLOW_WORKSPACE": f"{alloc}/{WORKSPACE_DIR}",
            "WINSLOW_INPUTS": f"{alloc}/{INPUTS_DIR}",
        }
    templates = []
    literal_env = {**user_env, **literal}
    if literal_env:
        templates.append(_literal_env_template(spec, STAGE_ENV_FILE, literal_env))
    gpu = spec.resources.gpu
    constraints: list[NomadConstraint] = []
    if gpu.model:
        constraints.append(
            {"LTarget": "${device.model}", "RTarget": gpu.model, "Operand": "regexp"}
        )
    if gpu.min_memory_mb:
        # The NVIDIA plugin reports memory with its unit (MiB); Nomad compares units.
        constraints.append(
            {
                "LTarget": "${device.attr.memory}",
                "RTarget": f"{gpu.min_memory_mb} MiB",
                "Operand": ">=",
            }
        )
    return {
        "name": MAIN_TASK,
        "driver": driver,
        "config": driver_config,
        "env": env,
        "templates": templates,
        "cpu": max(1, round(spec.resources.cpus * mhz_per_cpu)),
        "memory_mb": spec.resources.memory_mb,
        "gpu": (
            {"name": NVIDIA_GPU, "count": gpu.count, "constraints": constraints}
            if gpu.count > 0
            else None
        ),
        "kill_timeout": MAIN_KILL_TIMEOUT_SECONDS * SECOND_NS,
        "log_max_files": MAIN_LOG_MAX_FILES,
        "log_max_file_mb": MAIN_LOG_MAX_FILE_MB,
    }


def _moves_data(spec: RunSpec, which: str) -> bool:
    """Whether the stage-in or stage-out task of ``spec`` has workspace or input data to move."""
    if which == STAGE_IN_TASK:
        return bool(spec.inputs or spec.workspace_sources)
    return bool(spec.workspace_prefix)


def _tool_task(spec: RunSpec, config: NomadConfig, own: _OwnValues, which: str) -> dict[str, Any]:
    """stage-in (prestart) or stage-out (poststop): ``winslow`` with the S3 keys."""
    alloc = "${NOMAD_ALLOC_DIR}"
    args: list[str | NodeText]
    if which == STAGE_IN_TASK:
        args = [
            "stage-in",
            "--workspace",
            NodeText(f"{alloc}/{WORKSPACE_DIR}"),
            "--inputs",
            NodeText(f"{alloc}/{INPUTS_DIR}"),
            "--log",
            NodeText(WINSLOW_LOG),
        ]
        for source in spec.workspace_sources:
            args += ["--source", source]
        for path in spec.inputs:
            args += ["--input", path]
        hook = "prestart"
    else:
        args = [
            "stage-out",
            "--workspace",
            NodeText(f"{alloc}/{WORKSPACE_DIR}"),
            "--log",
            NodeText(WINSLOW_LOG),
            "--logs-dir",
            NodeText(f"{alloc}/logs"),
            "--task",
            MAIN_TASK,
        ]
        if spec.workspace_prefix:
            args += ["--prefix", spec.workspace_prefix]
        if spec.log_key:
            args += ["--log-key", spec.log_key]
        if spec.image is not None:
            # Without stage-exec nothing copied the stage's output into the run's log.
            args.append("--merge-task-logs")
        hook = "poststop"
    uses_cache = own.node_cache_dir is not None and _moves_data(spec, which)
    if uses_cache and own.node_cache_dir is not None:
        cache = own.node_cache_dir if config.tools_driver == "raw_exec" else CONTAINER_CACHE
        args += ["--cache", cache]
        if config.node_cache_max_bytes:
            args += ["--cache-max", str(config.node_cache_max_bytes)]
    _refuse_nul(spec, args)
    rendered, literal = deliver_args(args)
    if config.tools_driver == "docker":
        driver = "docker"
        driver_config: dict[str, Any] = {
            "image": own.winslow_image,
            "command": "winslow",
            "args": rendered,
        }
        if uses_cache:
            driver_config["volumes"] = [f"{own.node_cache_dir}:{CONTAINER_CACHE}"]
    else:
        if not config.allow_host_commands:
            raise SubmitRejectedError(
                "WINSLOW_NOMAD_TOOLS_DRIVER=raw_exec runs `winslow stage-in` and `stage-out` "
                "directly on the nodes, which this cluster does not allow: set "
                "WINSLOW_NOMAD_ALLOW_HOST_COMMANDS=true, or WINSLOW_NOMAD_TOOLS_DRIVER=docker."
            )
        driver = "raw_exec"
        driver_config = {"command": own.winslow_command, "args": rendered}
    templates = [_credentials_template(config)]
    if literal:
        templates.append(_literal_env_template(spec, TOOL_ENV_FILE, literal))
    vault = None
    identities: list[NomadWorkloadIdentity] = []
    if config.credentials == "vault":
        vault = {"role": config.vault_role}
        if config.vault_identity_audience:
            identities.append(
                {
                    "Name": VAULT_IDENTITY_NAME,
                    "Audience": list(config.vault_identity_audience),
                    "TTL": VAULT_IDENTITY_TTL_SECONDS * SECOND_NS,
                    "ChangeMode": "noop",
                }
            )
    return {
        "name": which,
        "hook": hook,
        "driver": driver,
        "config": driver_config,
        "env": dict(own.s3_env),
        "templates": templates,
        "cpu": TOOLS_CPU_MHZ,
        "memory_mb": TOOLS_MEMORY_MB,
        "kill_timeout": TOOLS_KILL_TIMEOUT_SECONDS * SECOND_NS,
        "vault": vault,
        "identities": identities,
    }


def _credentials_template(config: NomadConfig) -> dict[str, Any]:
    """The S3 keys, rendered on the node into the task's secrets folder, never in the job.

    ``toJSON`` quotes each key as a JSON string, which go-envparse reads back exactly
    (its double quotes take JSON's escapes). A missing key fails the task
    (``ErrMissingKey``) rather than starting it with an empty one.
    """
    path = config.credentials_path
    if not _TEMPLATE_PATH.fullmatch(path):
        raise SubmitRejectedError(
            f"WINSLOW_NOMAD_CREDENTIALS_PATH={path!r} is not a plain path (letters, digits, "
            "'.', '_', '~', '@', '-' and '/'); change it."
        )
    if config.credentials == "vault":
        opening = f'{{{{ with secret "{path}" }}}}'
        access, secret = ".Data.data.access_key", ".Data.data.secret_key"
    else:
        opening = f'{{{{ with nomadVar "{path}" }}}}'
        access, secret = ".access_key", ".secret_key"
    content = (
        f"{opening}"
        f"WINSLOW_S3_ACCESS_KEY={{{{ {access} | toJSON }}}}\n"
        f"WINSLOW_S3_SECRET_KEY={{{{ {secret} | toJSON }}}}\n"
        "{{ end }}"
    )
    return {
        "dest": S3_ENV_FILE,
        "content": content,
        "left": None,
        "right": None,
        "err_missing_key": True,
    }


def _literal_env_template(spec: RunSpec, dest: str, env: Mapping[str, str]) -> dict[str, Any]:
    try:
        content = encode_env_file(env)
    except ValueError as exc:
        raise SubmitRejectedError(
            f"Stage '{spec.stage}' cannot be passed to Nomad as it is: {exc}; change that "
            "variable or argument."
        ) from exc
    left, right = choose_delimiters(content)
    return {
        "dest": dest,
        "content": content,
        "left": left,
        "right": right,
        "err_missing_key": False,
    }


def _user_env(spec: RunSpec) -> dict[str, str]:
    """The stage's env as the task gets it; names Nomad or we depend on are refused."""
    env: dict[str, str] = {}
    for name, value in spec.env.items():
        if name in _OWN_ENV:
            continue  # ours win, as in the local backend
        if name.startswith("NOMAD_") or _ARG_NAME.fullmatch(name):
            raise SubmitRejectedError(
                f"Stage '{spec.stage}' sets the variable {name}, a name the Nomad backend "
                "needs for itself (NOMAD_*, WINSLOW_ARG_<n>); rename the variable."
            )
        env[name] = value
    return env


def _refuse_nul(spec: RunSpec, args: Sequence[str | NodeText]) -> None:
    for arg in args:
        if isinstance(arg, str) and "\x00" in arg:
            raise SubmitRejectedError(
                f"Stage '{spec.stage}' has a command argument with a NUL character, which "
                "no process can receive; fix the stage's command."
            )


def _resolve_tokens(text: str, workspace: str, inputs: str) -> str:
    return text.replace(_NODE_TOKENS[0], workspace).replace(_NODE_TOKENS[1], inputs)


# ---------------------------------------------------------------------------------------
# Template and schema loading


class _JsonText(str):
    """Text that ``tojson`` produced, the only kind the template may output."""

    __slots__ = ()


def _tojson(value: object) -> _JsonText:
    return _JsonText(json.dumps(value, ensure_ascii=False, allow_nan=False))


def _fragment(text: str) -> _JsonText:
    """A macro's output, checked to be one JSON value and re-encoded."""
    try:
        return _tojson(json.loads(text))
    except json.JSONDecodeError as exc:
        raise TypeError(f"a macro of {TEMPLATE_NAME} wrote invalid JSON: {exc}") from exc


def _only_json(value: object) -> object:
    if isinstance(value, _JsonText):
        return value
    raise TypeError(f"the job template output {value!r} without `| tojson`; fix {TEMPLATE_NAME}")


def _jobspecs_dir(config: NomadConfig) -> Path:
    return Path(config.jobspecs_dir) if config.jobspecs_dir else DEFAULT_JOBSPECS_DIR


@functools.lru_cache(maxsize=4)
def _template(folder: Path) -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        finalize=_only_json,
        keep_trailing_newline=True,
    )
    env.filters["tojson"] = _tojson
    env.filters["fragment"] = _fragment
    return env.get_template(TEMPLATE_NAME)


def _default_schema_path() -> Path:
    copy = DEFAULT_JOBSPECS_DIR / SCHEMA_NAME
    return copy if copy.is_file() or not SHARED_SCHEMA_PATH.is_file() else SHARED_SCHEMA_PATH


@functools.lru_cache(maxsize=4)
def _validator(path: Path) -> Any:
    try:
        from jsonschema import Draft202012Validator
    except ImportError:
        log.warning(
            "jobspec: jsonschema is not installed, so rendered jobs are not checked against "
            "Nomad's schema; pip install jsonschema"
        )
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)
