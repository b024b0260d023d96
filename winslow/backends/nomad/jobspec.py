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

Beside this module: ``envfile`` encodes those env files and arguments, ``jobtemplate``
finds the template (in the package) and renders only JSON, ``jobschema`` checks the result.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from winslow.backends.nomad.envfile import (
    NodeText,
    choose_delimiters,
    deliver_args,
    encode_env_file,
    needs_literal_delivery,
)
from winslow.backends.nomad.jobschema import (
    SCHEMA_NAME,
    NomadConstraint,
    NomadWorkloadIdentity,
    RenderedJobInvalidError,
    validate_jobspec,
)
from winslow.backends.nomad.jobtemplate import jobspecs_dir, load_template
from winslow.errors import SubmitRejectedError
from winslow.node.container import CONTAINER_STAGE_CACHE
from winslow.pipeline.interpolate import resolve_node_paths
from winslow.storage.nodecache import STAGE_CACHE

if TYPE_CHECKING:
    from winslow.backends.base import RunSpec
    from winslow.backends.nomad.config import NomadConfig

# ---------------------------------------------------------------------------------------
# Tunables

JOB_PRIORITY = 50
"""Nomad priority of every stage job (Nomad's default; 1-100)."""

MAIN_TASK = "main"
STAGE_IN_TASK = "stage-in"
STAGE_OUT_TASK = "stage-out"
FOLLOW_TASK = "stage-follow"
"""The sidecar of a container stage that copies its output into the run's log live."""
CHECKPOINT_TASK = "stage-checkpoint"
"""The sidecar of a stage with ``checkpoint:`` that publishes its checkpoint folder."""

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

FOLLOW_CPU_MHZ = 100
FOLLOW_MEMORY_MB = 256
"""What ``stage-follow`` reserves: Python and a megabyte of output at a time. Generous on
memory: a sidecar killed for its memory would make Nomad stop the stage too."""

MAIN_LOG_MAX_FILES = 10
MAIN_LOG_MAX_FILE_MB = 50
"""Rotation of the stage's stdout and stderr on the node; must stay below the disk size."""

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

VAULT_IDENTITY_NAME = "vault_default"
VAULT_IDENTITY_TTL_SECONDS = 3600
"""The workload identity Nomad exchanges for a Vault token (Vault cluster ``default``)."""

NVIDIA_GPU = "nvidia/gpu"
"""Device name the NVIDIA device plugin fingerprints (vendor/type)."""

STRING_PREFIX = "(?:)"
"""An empty group: put before a model pattern Nomad would read as a number or a bool, it
keeps the pattern a string and matches the same names."""

ATTRIBUTE_UNITS = (
    *("KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "kB", "KB", "MB", "GB", "TB", "PB", "EB"),
    *("KiB/s", "MiB/s", "GiB/s", "TiB/s", "PiB/s", "EiB/s"),
    *("kB/s", "KB/s", "MB/s", "GB/s", "TB/s", "PB/s", "EB/s"),
    *("MHz", "GHz", "mW", "W", "kW", "MW", "GW"),
)
"""Units Nomad strips off a number (hashicorp/nomad plugins/shared/structs/units.go)."""

GO_BOOLS = frozenset(
    {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}
)
"""What Go's ``strconv.ParseBool`` reads as a bool."""

_ARG_NAME = re.compile(r"WINSLOW_ARG_[0-9]+")
_GO_NUMBER = re.compile(
    r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?"
    r"|0[xX][0-9a-fA-F_.]*(?:[pP][+-]?[0-9_]*)?|inf|infinity|nan)",
    re.IGNORECASE,
)
_TEMPLATE_PATH = re.compile(r"[A-Za-z0-9._~@/-]+")
_OWN_ENV = frozenset({"WINSLOW_WORKSPACE", "WINSLOW_INPUTS"})

HOST_COMMANDS_HINT = (
    "set WINSLOW_NOMAD_ALLOW_HOST_COMMANDS=true to run it with Nomad's "
    "raw_exec driver, or give the stage an image"
)


# ---------------------------------------------------------------------------------------
# The job


def render_jobspec(
    spec: RunSpec,
    config: NomadConfig,
    *,
    lost_retries: int = 0,
    affinity_node: str | None = None,
) -> dict[str, Any]:
    """Return the Nomad job (the value of ``{"Job": ...}``) that runs ``spec`` once.

    ``lost_retries`` is the stage's ``retry.on_lost``; it is recorded in the job's Meta
    only. The job lets Nomad neither restart, reschedule nor replace anything, since
    Nomad's reschedule policy acts on *failed* allocations and lost ones are replaced
    regardless of it: each would run the stage again inside the same run. The engine
    starts a new run instead, counting attempts. ``affinity_node`` is a node name Nomad
    should prefer (where the earlier workspace is).

    The stage's CPUs become whole ``cores`` (a fraction rounds up), reserved for it alone
    on the node Nomad picks: MHz would have to be guessed before Nomad picks the node, and
    a core's MHz differ from node to node.

    Raises ``SubmitRejectedError`` when the stage cannot run as given on this cluster
    (a command-only stage without ``allow_host_commands``, an env Nomad cannot carry, a
    setting missing) and ``RenderedJobInvalidError`` when the result does not match
    Nomad's job schema, which is a bug.
    """
    job_text = _render_text(spec, config, lost_retries, affinity_node)
    job: dict[str, Any] = json.loads(job_text)
    schema = jobspecs_dir(config) / SCHEMA_NAME
    problems = validate_jobspec(job, schema if schema.is_file() else None)
    if problems:
        raise RenderedJobInvalidError(spec.job_id, problems)
    return job


def _render_text(
    spec: RunSpec,
    config: NomadConfig,
    lost_retries: int,
    affinity_node: str | None,
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
        "node_pool": config.node_pool,
        "constraints": [
            {"LTarget": left, "RTarget": right, "Operand": operand}
            for left, operand, right in config.constraints
        ],
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
        "main": _main_task(spec, config, own),
        "follow": _follow_task(spec, config, own),
        "checkpoint": (
            _tool_task(spec, config, own, CHECKPOINT_TASK) if spec.checkpoint_prefix else None
        ),
        "stage_out": _tool_task(spec, config, own, STAGE_OUT_TASK),
    }
    return load_template(jobspecs_dir(config)).render(context)


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


# ---------------------------------------------------------------------------------------
# The stage's own task


@dataclass(frozen=True)
class _StageLaunch:
    """How the main task starts the stage: its driver, driver config and env."""

    driver: str
    config: dict[str, Any]
    env: dict[str, str]
    """Our own variables, safe to write into the job's ``Env``."""
    literal_env: dict[str, str]
    """The stage's env and the arguments Nomad would interpolate, for an env file."""


def _main_task(spec: RunSpec, config: NomadConfig, own: _OwnValues) -> dict[str, Any]:
    """The stage itself: in its image with docker, or on the node through stage-exec."""
    user_env = _user_env(spec)
    if spec.image is not None:
        launch = _container_launch(spec, spec.image, user_env, own.node_cache_dir)
    else:
        launch = _host_launch(spec, config, own, user_env)
    templates = []
    if launch.literal_env:
        templates.append(_literal_env_template(spec, STAGE_ENV_FILE, launch.literal_env))
    return {
        "name": MAIN_TASK,
        "driver": launch.driver,
        "config": launch.config,
        "env": launch.env,
        "templates": templates,
        "cores": max(1, math.ceil(spec.resources.cpus)),
        "memory_mb": spec.resources.memory_mb,
        "gpu": _gpu_device(spec),
        "kill_timeout": MAIN_KILL_TIMEOUT_SECONDS * SECOND_NS,
        "log_max_files": MAIN_LOG_MAX_FILES,
        "log_max_file_mb": MAIN_LOG_MAX_FILE_MB,
    }


def _container_launch(
    spec: RunSpec, image: str, user_env: dict[str, str], node_cache: str | None
) -> _StageLaunch:
    """The stage's command in its image with docker, working in the workspace; the stage
    cache of the node's cache folder mounted where there is one (``WINSLOW_CACHE_DIR``)."""
    if needs_literal_delivery(image) or "\x00" in image:
        raise SubmitRejectedError(
            f"Stage '{spec.stage}' names the image {image!r}, which is not a valid image "
            "reference; fix the stage's image."
        )
    workspace = f"{CONTAINER_ALLOC_DIR}/{WORKSPACE_DIR}"
    inputs = f"{CONTAINER_ALLOC_DIR}/{INPUTS_DIR}"
    # The container's paths are known now, so references resolve here.
    user_env = {k: resolve_node_paths(v, workspace, inputs) for k, v in user_env.items()}
    argv: list[str | NodeText] = [resolve_node_paths(a, workspace, inputs) for a in spec.command]
    _refuse_nul(spec, argv)
    rendered, literal = deliver_args(argv)
    driver_config: dict[str, Any] = {"image": image, "work_dir": workspace}
    if rendered:
        driver_config["command"] = rendered[0]
        if len(rendered) > 1:
            driver_config["args"] = rendered[1:]
    env = {"WINSLOW_WORKSPACE": workspace, "WINSLOW_INPUTS": inputs}
    if node_cache is not None:
        # docker makes the folder on the node where it is missing.
        driver_config["volumes"] = [f"{node_cache}/{STAGE_CACHE}:{CONTAINER_STAGE_CACHE}"]
        env["WINSLOW_CACHE_DIR"] = CONTAINER_STAGE_CACHE
    return _StageLaunch(
        driver="docker", config=driver_config, env=env, literal_env={**user_env, **literal}
    )


def _host_launch(
    spec: RunSpec, config: NomadConfig, own: _OwnValues, user_env: dict[str, str]
) -> _StageLaunch:
    """The stage's command on the node, under ``winslow stage-exec``."""
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
    argv: list[str | NodeText] = [
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
    if own.node_cache_dir is not None and config.host_driver == "raw_exec":
        # exec's chroot shows the task no folder of the node's own.
        argv += ["--stage-cache", f"{own.node_cache_dir}/{STAGE_CACHE}"]
    argv += ["--", *spec.command]
    rendered, literal = deliver_args(argv)
    return _StageLaunch(
        driver=config.host_driver,
        config={"command": own.winslow_command, "args": rendered},
        env={
            "WINSLOW_WORKSPACE": f"{alloc}/{WORKSPACE_DIR}",
            "WINSLOW_INPUTS": f"{alloc}/{INPUTS_DIR}",
        },
        literal_env={**user_env, **literal},
    )


def _gpu_device(spec: RunSpec) -> dict[str, Any] | None:
    """The ``nvidia/gpu`` request with the stage's model pattern and GPU memory; None: no GPU."""
    gpu = spec.resources.gpu
    if gpu.count <= 0:
        return None
    constraints: list[NomadConstraint] = []
    if gpu.model:
        constraints.append(
            {"LTarget": "${device.model}", "RTarget": nomad_string(gpu.model), "Operand": "regexp"}
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
    return {"name": NVIDIA_GPU, "count": gpu.count, "constraints": constraints}


def nomad_string(pattern: str) -> str:
    """``pattern`` as a device constraint's right-hand side that Nomad keeps a string.

    Nomad types that side with ``ParseAttribute`` (hashicorp/nomad
    plugins/shared/structs/attribute.go): a number, with or without a unit suffix, or a
    bool, before a string; ``regexp`` then matches only when both sides are strings
    (scheduler/feasible.go ``checkAttributeConstraint``). So ``4090`` or ``80GB`` would
    never match any GPU; ``(?:)4090`` parses as none of those and matches what ``4090``
    does. Other patterns are left as written.
    """
    numeric = pattern
    if pattern[-1:].isalpha():
        longest_first = sorted(ATTRIBUTE_UNITS, key=len, reverse=True)
        unit = next((u for u in longest_first if pattern.endswith(u)), "")
        numeric = pattern.removesuffix(unit).strip() if unit else pattern
    if pattern in GO_BOOLS or _GO_NUMBER.fullmatch(numeric):
        return STRING_PREFIX + pattern
    return pattern


# ---------------------------------------------------------------------------------------
# The stage-in and stage-out tasks


def _moves_data(spec: RunSpec, which: str) -> bool:
    """Whether the stage-in or stage-out task of ``spec`` has workspace or input data to move."""
    if which == STAGE_IN_TASK:
        return bool(spec.inputs or spec.workspace_sources or spec.resume_from)
    return which == STAGE_OUT_TASK and bool(spec.workspace_prefix)


def _tool_task(spec: RunSpec, config: NomadConfig, own: _OwnValues, which: str) -> dict[str, Any]:
    """stage-in (prestart), stage-out (poststop) or stage-checkpoint (a poststart sidecar,
    which like stage-follow always exits 0): ``winslow`` with the S3 keys."""
    if which == STAGE_IN_TASK:
        args, hook = _stage_in_args(spec), "prestart"
    elif which == CHECKPOINT_TASK:
        args, hook = _checkpoint_args(spec), "poststart"
    else:
        args, hook = _stage_out_args(spec), "poststop"
    uses_cache = own.node_cache_dir is not None and _moves_data(spec, which)
    if uses_cache and own.node_cache_dir is not None:
        cache = own.node_cache_dir if config.tools_driver == "raw_exec" else CONTAINER_CACHE
        args += ["--cache", cache]
        if config.node_cache_max_bytes:
            args += ["--cache-max", str(config.node_cache_max_bytes)]
    if config.transfer_retry_delays is not None and which != CHECKPOINT_TASK:
        args += ["--retry-delays", ",".join(f"{d:g}" for d in config.transfer_retry_delays)]
    _refuse_nul(spec, args)
    rendered, literal = deliver_args(args)
    driver, driver_config = _tool_driver(config, own, rendered, uses_cache)
    templates = [_credentials_template(config)]
    if literal:
        templates.append(_literal_env_template(spec, TOOL_ENV_FILE, literal))
    vault, identities = _vault_access(config)
    return {
        "name": which,
        "hook": hook,
        "sidecar": which == CHECKPOINT_TASK,
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


def _follow_task(spec: RunSpec, config: NomadConfig, own: _OwnValues) -> dict[str, Any] | None:
    """A container stage's log follower: ``winslow stage-follow``; None for a host stage.

    Nothing in a stage's own image writes the run's log, so this sidecar copies the
    stage's stdout and stderr from Nomad's log files into it as they come
    (``node/follow.py``). Nomad starts a ``poststart`` task once the main task has started,
    and kills a sidecar once the main task is dead; a sidecar that *fails* would make
    Nomad kill the stage (client/allocrunner/alloc_runner.go ``handleTaskStateUpdates``),
    which is why stage-follow always exits 0. Its drain stays below its kill timeout.
    """
    if spec.image is None:
        return None  # stage-exec logs a host stage's output itself
    alloc = "${NOMAD_ALLOC_DIR}"
    args: list[str | NodeText] = [
        "stage-follow",
        "--logs-dir",
        NodeText(f"{alloc}/logs"),
        "--task",
        MAIN_TASK,
        "--log",
        NodeText(WINSLOW_LOG),
        "--workspace",
        NodeText(f"{alloc}/{WORKSPACE_DIR}"),
    ]
    rendered, _ = deliver_args(args)
    driver, driver_config = _tool_driver(config, own, rendered, uses_cache=False)
    return {
        "name": FOLLOW_TASK,
        "hook": "poststart",
        "sidecar": True,
        "driver": driver,
        "config": driver_config,
        "env": {},
        "templates": [],
        "cpu": FOLLOW_CPU_MHZ,
        "memory_mb": FOLLOW_MEMORY_MB,
        "kill_timeout": TOOLS_KILL_TIMEOUT_SECONDS * SECOND_NS,
        "vault": None,
        "identities": [],
    }


def _stage_in_args(spec: RunSpec) -> list[str | NodeText]:
    """``winslow stage-in``: earlier workspaces and pool inputs into the allocation."""
    alloc = "${NOMAD_ALLOC_DIR}"
    args: list[str | NodeText] = [
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
    for prefix in spec.resume_from:
        args += ["--resume-from", prefix]
    return args


def _checkpoint_args(spec: RunSpec) -> list[str | NodeText]:
    """``winslow stage-checkpoint``: the checkpoint folder to the run's checkpoint prefix."""
    return [
        "stage-checkpoint",
        "--workspace",
        NodeText(f"${{NOMAD_ALLOC_DIR}}/{WORKSPACE_DIR}"),
        "--prefix",
        spec.checkpoint_prefix,
        "--every",
        str(spec.checkpoint_every or 0),
        "--log",
        NodeText(WINSLOW_LOG),
    ]


def _stage_out_args(spec: RunSpec) -> list[str | NodeText]:
    """``winslow stage-out``: the workspace to the run's prefix, the log to its key."""
    alloc = "${NOMAD_ALLOC_DIR}"
    args: list[str | NodeText] = [
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
    for prefix in (spec.checkpoint_prefix, *spec.resume_from) if spec.checkpoint_prefix else ():
        args += ["--checkpoints", prefix]
    return args


def _tool_driver(
    config: NomadConfig, own: _OwnValues, rendered: list[str], uses_cache: bool
) -> tuple[str, dict[str, Any]]:
    """The driver of a stage-in/out task and its config: ``winslow`` in its image, or the
    node's own ``winslow`` with raw_exec where host commands are allowed."""
    if config.tools_driver == "docker":
        driver_config: dict[str, Any] = {
            "image": own.winslow_image,
            "command": "winslow",
            "args": rendered,
        }
        if uses_cache:
            driver_config["volumes"] = [f"{own.node_cache_dir}:{CONTAINER_CACHE}"]
        return "docker", driver_config
    if not config.allow_host_commands:
        raise SubmitRejectedError(
            "WINSLOW_NOMAD_TOOLS_DRIVER=raw_exec runs `winslow stage-in` and `stage-out` "
            "directly on the nodes, which this cluster does not allow: set "
            "WINSLOW_NOMAD_ALLOW_HOST_COMMANDS=true, or WINSLOW_NOMAD_TOOLS_DRIVER=docker."
        )
    return "raw_exec", {"command": own.winslow_command, "args": rendered}


def _vault_access(
    config: NomadConfig,
) -> tuple[dict[str, Any] | None, list[NomadWorkloadIdentity]]:
    """The task's ``vault`` block and the workload identity it logs in with; none without
    Vault credentials."""
    if config.credentials != "vault":
        return None, []
    identities: list[NomadWorkloadIdentity] = []
    if config.vault_identity_audience:
        identities.append(
            {
                "Name": VAULT_IDENTITY_NAME,
                "Audience": list(config.vault_identity_audience),
                "TTL": VAULT_IDENTITY_TTL_SECONDS * SECOND_NS,
                "ChangeMode": "noop",
            }
        )
    return {"role": config.vault_role}, identities


# ---------------------------------------------------------------------------------------
# Env files, names and paths


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
