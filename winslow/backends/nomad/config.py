"""How Winslow reaches Nomad and what its stage jobs may use, read once from settings.

Kept apart from the client and the job renderer so both take the same frozen value and
tests can build one without an environment. ``parse_constraints`` and ``image_problem``
check the settings that are text at start, naming the setting, so a typo stops ``winslow
up`` rather than every run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from winslow import __version__
from winslow.pipeline.goregex import go_regex_problem

CredentialSource = Literal["vault", "nomad-variables"]
ToolsDriver = Literal["docker", "raw_exec"]
Constraint = tuple[str, str, str]
"""``(LTarget, Operand, RTarget)`` of a Nomad constraint; RTarget ``""`` where it has none."""

TOOLS_IMAGE_REPOSITORY = "winslow-tools"
"""Repository name of the stage-in/stage-out image in a registry (``registry/Dockerfile.tools``)."""

TOOLS_IMAGE_PLACEHOLDER = f"registry.invalid/{TOOLS_IMAGE_REPOSITORY}:{__version__}"
"""What ``winslow_image`` is until someone names a real registry: fully qualified, so a job
renders, and under the reserved ``.invalid`` domain, so no node can ever pull it."""


@dataclass(frozen=True)
class NomadConfig:
    """Where Nomad is and how stage jobs are written for it."""

    address: str = "http://127.0.0.1:4646"
    token: str | None = None
    namespace: str = "default"
    """Nomad's own default; ``winslow up`` uses ``WINSLOW_NOMAD_NAMESPACE`` (``winslow``)."""
    region: str | None = None
    ca_file: str | None = None
    """PEM bundle to verify Nomad's TLS certificate; None: the system's trust store."""
    client_cert: str | None = None
    client_key: str | None = None
    """PEM certificate and key Winslow shows Nomad when its agents require client
    certificates (``tls { verify_https_client = true }``)."""
    tls_server_name: str | None = None
    """The name Nomad's certificate is checked against instead of ``address``'s host
    (``server.<region>.nomad`` for Nomad's own certificates)."""
    skip_verify: bool = False
    """Accept any certificate from Nomad; for trying things out only."""
    datacenters: tuple[str, ...] = ("*",)
    node_pool: str | None = None
    """Node pool stage jobs run in (Nomad 1.6+); None: Nomad's ``default`` pool."""
    constraints: tuple[Constraint, ...] = ()
    """Constraints every stage job carries, on top of its own (``parse_constraints``)."""
    job_prefix: str = "winslow-"
    """Every job Winslow submits has an ID starting with this; adoption looks for it."""
    winslow_image: str = TOOLS_IMAGE_PLACEHOLDER
    """Image of the prestart/poststop tasks that run `winslow stage-in`/`stage-out`."""
    allow_host_commands: bool = False
    """Let command-only stages (no `image:`) run with the `raw_exec` driver."""
    host_driver: Literal["raw_exec", "exec"] = "raw_exec"
    tools_driver: ToolsDriver = "docker"
    """Driver of the stage-in/stage-out tasks: ``docker`` runs ``winslow_image``;
    ``raw_exec`` runs ``winslow_command`` on the node and needs ``allow_host_commands``."""
    winslow_command: str = "winslow"
    """The ``winslow`` executable on the nodes, for ``raw_exec`` tools and host stages."""
    credentials: CredentialSource = "nomad-variables"
    """How tasks get the S3 credentials: a Nomad Variable, or Vault via workload identity."""
    credentials_path: str = "nomad/jobs"
    """Nomad Variable path, or Vault KV v2 API path (``secret/data/winslow/s3``), holding
    ``access_key`` and ``secret_key``.

    A task may read the Variables ``nomad/jobs`` and ``nomad/jobs/<job ID>[/<group>[/<task>]]``
    without any ACL policy; any other path needs one, and a policy can only be attached to
    one job ID, while every run is a job of its own. With ACLs on, put the keys at
    ``nomad/jobs`` in a namespace that only Winslow's jobs use."""
    vault_role: str | None = None
    vault_identity_audience: tuple[str, ...] = ("vault.io",)
    """Audience of the ``vault_default`` workload identity the tools tasks get for Vault;
    empty: add none and rely on the servers' ``vault.default_identity``."""
    s3_endpoint: str = ""
    """S3 endpoint as the tasks on the nodes reach it (not always the server's)."""
    s3_bucket: str = "winslow"
    s3_region: str = "us-east-1"
    extra_meta: dict[str, str] = field(default_factory=dict)
    node_cache_dir: str | None = None
    """Absolute folder on every node where stage-in keeps the input cache, so a video is
    fetched once per node; None: each run downloads its inputs. With docker tools it is
    bind-mounted, which needs ``volumes { enabled = true }`` in the nodes' docker plugin."""
    node_cache_max_bytes: int = 0
    transfer_retry_delays: tuple[float, ...] | None = None
    """Seconds before each new attempt of a stage-in or stage-out transfer; None: the
    tools' own (about 40 s in all). Tests shorten them."""
    """Size cap of the node cache, bytes; 0: no cap."""
    ephemeral_disk_mb: int = 10_240
    """Disk each stage job asks for, MB: the workspace, the inputs and the logs live in the
    allocation's folder. Nomad places by it; it does not enforce it."""
    jobspecs_dir: str | None = None
    """Folder with ``stage.json.j2`` (and optionally ``job-register.schema.json``), to try a
    changed template; None: ``jobspecs/`` inside the installed package."""
    lost_after_seconds: int = 120
    """How long a run's node may go unanswered (its allocation ``unknown``, the node
    ``down``) before the run counts as lost and its job is stopped, seconds."""


# ---------------------------------------------------------------------------------------
# Settings that are text, checked at start

CONSTRAINT_OPERANDS = frozenset(
    {
        "=",
        "==",
        "is",
        "!=",
        "not",
        "<",
        "<=",
        ">",
        ">=",
        "regexp",
        "version",
        "semver",
        "set_contains",
        "set_contains_all",
        "set_contains_any",
        "is_set",
        "is_not_set",
    }
)
"""Operators of a node constraint (hashicorp/nomad nomad/structs/structs.go
``Constraint.Validate``); ``distinct_hosts`` and ``distinct_property`` mean nothing for a
job of one allocation."""

_NO_RTARGET = frozenset({"is_set", "is_not_set"})
_CONSTRAINT = re.compile(r"(\S+)\s+(\S+)(?:\s+(.*))?", re.DOTALL)
_NODE_TARGET = re.compile(r"\$\{(?:node|attr|meta)\.[A-Za-z0-9_.-]+\}")
CONSTRAINTS_SYNTAX = (
    "write `${attribute} operator value`, several separated by ';', e.g. "
    "`${node.class} = gpu; ${attr.cpu.arch} = amd64`"
)


def parse_constraints(
    text: str, setting: str = "WINSLOW_NOMAD_CONSTRAINTS"
) -> tuple[Constraint, ...]:
    """Return the constraints written in ``text``: ``${node.class} = gpu; ${meta.rack} !=
    r1``, each ``LTARGET OPERATOR [RTARGET]`` with a ``${node.*}``, ``${attr.*}`` or
    ``${meta.*}`` target and one of Nomad's operators (``is_set`` and ``is_not_set`` take
    no value). Raises ``ValueError`` naming ``setting`` and the constraint at fault.
    """
    constraints: list[Constraint] = []
    for part in text.split(";"):
        written = part.strip()
        if not written:
            continue
        match = _CONSTRAINT.fullmatch(written)
        if match is None:
            raise ValueError(f"{setting}: {written!r} is not a constraint; {CONSTRAINTS_SYNTAX}")
        target, operand, value = match.group(1), match.group(2), (match.group(3) or "").strip()
        problem = _constraint_problem(target, operand, value)
        if problem is not None:
            raise ValueError(f"{setting}: {written!r}: {problem}")
        constraints.append((target, operand, value))
    return tuple(constraints)


def _constraint_problem(target: str, operand: str, value: str) -> str | None:
    if not _NODE_TARGET.fullmatch(target):
        return (
            f"{target!r} is no node attribute; start with one such as ${{node.class}}, "
            f"${{attr.cpu.arch}} or ${{meta.rack}} ({CONSTRAINTS_SYNTAX})"
        )
    if operand not in CONSTRAINT_OPERANDS:
        known = ", ".join(sorted(CONSTRAINT_OPERANDS))
        return f"{operand!r} is not one of Nomad's operators: {known}"
    if operand in _NO_RTARGET:
        return f"{operand} takes no value; remove {value!r}" if value else None
    if not value:
        return f"{operand} needs a value after it"
    if operand == "regexp":
        try:
            re.compile(value)
        except re.error as exc:
            return f"{value!r} is not a regular expression: {exc}"
        missing = go_regex_problem(value)
        if missing is not None:
            return f"{value!r} uses {missing}, which Nomad's regular expressions do not have"
    return None


def nomad_config_problem(config: NomadConfig) -> str | None:
    """What keeps ``config`` from working, in a sentence naming the setting; None if nothing.

    Docker tools need a fully qualified ``winslow_image`` that is not the placeholder; a
    client certificate needs its key.
    """
    if config.tools_driver == "docker":
        if config.winslow_image == TOOLS_IMAGE_PLACEHOLDER:
            return (
                "WINSLOW_NOMAD_IMAGE is not set; the stage-in and stage-out tasks run "
                "`winslow` from that image with Nomad's docker driver. Build it (`make "
                "images`), push it to a registry your Nomad nodes pull from (`make push "
                "REGISTRY=host:port`) and "
                f"set WINSLOW_NOMAD_IMAGE=<registry>/{TOOLS_IMAGE_REPOSITORY}:{__version__}, "
                "or set WINSLOW_NOMAD_TOOLS_DRIVER=raw_exec to run the nodes' own `winslow`."
            )
        problem = image_problem(config.winslow_image)
        if problem is not None:
            return problem
    if (config.client_cert is None) != (config.client_key is None):
        have, lack = (
            ("NOMAD_CLIENT_CERT", "NOMAD_CLIENT_KEY")
            if config.client_cert is not None
            else ("NOMAD_CLIENT_KEY", "NOMAD_CLIENT_CERT")
        )
        return f"{have} is set but {lack} is not; set both, or neither."
    if config.credentials == "vault" and "/data/" not in config.credentials_path:
        # The template reads `.Data.data`, which only a KV v2 API path answers.
        return (
            f"WINSLOW_NOMAD_CREDENTIALS_PATH={config.credentials_path!r} is no KV v2 API "
            "path; with WINSLOW_NOMAD_CREDENTIALS=vault write <mount>/data/<path> "
            "(secret/data/winslow/s3), or leave it unset to use WINSLOW_VAULT_MOUNT and "
            "WINSLOW_VAULT_PATH."
        )
    return None


_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?P<name>(?:(?P<domain>{_DOMAIN})/)?{_PATH}(?:/{_PATH})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)


def image_problem(image: str, setting: str = "WINSLOW_NOMAD_IMAGE") -> str | None:
    """Why ``image`` is not a fully qualified image reference (a registry host, a
    repository, and a tag or a digest), in a sentence naming ``setting``; None when it is.

    The host is what docker takes for one (distribution/reference ``splitDockerDomain``):
    a first component with a ``.`` or a ``:``, or ``localhost``. Without it docker would
    look on Docker Hub; without a tag it would pull ``latest``, whatever that is today.
    """
    example = f"registry.example:5000/{TOOLS_IMAGE_REPOSITORY}:{__version__}"
    match = _IMAGE.fullmatch(image)
    if match is None:
        return f"{setting}={image!r} is not an image reference; write one like {example}"
    domain = match.group("domain")
    if domain is None or not ("." in domain or ":" in domain or domain == "localhost"):
        return (
            f"{setting}={image!r} names no registry host, so docker would look for it on "
            f"Docker Hub; write the registry your Nomad nodes pull from, like {example}"
        )
    if match.group("tag") is None and match.group("digest") is None:
        return (
            f"{setting}={image!r} has neither a tag nor a digest, so every node pulls "
            f"whatever 'latest' is then; add the version, like {example}"
        )
    return None
