"""The deploy job files: loaded, chosen, ordered and filled in with the cluster's values.

A job file is exactly what ``nomad job run -json`` takes, so an operator without Winslow
can run it by hand. Three ``Meta`` keys say how ``winslow deploy`` treats it:
``deploy_role`` (``database``, ``storage``, ``registry``, ``server``), ``deploy_variant``
(one of several interchangeable files of a role: ``minio``, ``minio-distributed``,
``seaweedfs``) and ``deploy_after`` (roles that must be healthy first). Filling in
changes only what differs between clusters, and only in ways the file shows: the
registry and tag of Winslow's own images (written with ``IMAGE_REGISTRY_PLACEHOLDER``,
as a task's image or an environment value such as ``WINSLOW_NOMAD_IMAGE``),
the datacenters, the namespace, and the Vault parts (kept with a Vault address, removed
without one, because a task with a ``vault`` block cannot be placed on a cluster without
Vault). Overrides replace keys of a job, a group or a task by name, for what a cluster
must do its own way.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from winslow.errors import DeployError

__all__ = [
    "DEFAULT_STORAGE",
    "IMAGE_REGISTRY_PLACEHOLDER",
    "DeployJob",
    "DeployVars",
    "apply_overrides",
    "fill_job",
    "load_jobs",
    "needed_variables",
    "order_jobs",
    "select_jobs",
]

IMAGE_REGISTRY_PLACEHOLDER = "registry.lab:5000"
"""The registry Winslow's own images are written with in the job files."""
DEFAULT_STORAGE = "minio"
"""The storage variant deployed unless another is named."""
ROLE_ORDER = ("database", "storage", "registry", "server")
"""Ties in the dependency order are broken by this order, then by job ID."""
VAULT_ENV_PREFIX = "WINSLOW_VAULT_"

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class DeployJob:
    """One job file: its job (the value of ``"Job"``) and how deploy treats it."""

    path: Path
    job: JsonDict
    role: str
    variant: str = ""
    after: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return str(self.job["ID"])


@dataclass(frozen=True)
class DeployVars:
    """The values that differ between clusters; None keeps what the file says."""

    registry: str | None = None
    tag: str | None = None
    datacenters: tuple[str, ...] | None = None
    namespace: str | None = None
    vault_addr: str | None = None
    """Vault for the server's workload identity; None: no Vault parts at all."""
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """Job ID → keys to replace (``TaskGroups``/``Tasks`` as maps by name)."""


def shipped_jobs_dir() -> Path:
    """The job files this Winslow ships (``deploy/nomad/jobs`` of a checkout links here), so
    an installed ``winslow deploy`` deploys the version it is."""
    return Path(str(resources.files("winslow.deploy") / "jobs"))


def load_jobs(directory: Path) -> list[DeployJob]:
    """Every ``*.json`` job file of ``directory``, sorted by name.

    Raises ``DeployError`` naming the file for one that is not a ``{"Job": {...}}`` with
    an ``ID`` and a ``deploy_role`` meta key.
    """
    if not directory.is_dir():
        raise DeployError(
            f"No job folder {directory}; --jobs-dir names the folder of the job files."
        )
    jobs = []
    for path in sorted(directory.glob("*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DeployError(f"{path}: not a JSON job file ({exc}).") from exc
        job = body.get("Job") if isinstance(body, dict) else None
        if not isinstance(job, dict) or not job.get("ID"):
            raise DeployError(f'{path}: expected {{"Job": {{"ID": ...}}}}, as nomad job run -json.')
        meta = job.get("Meta") or {}
        if not meta.get("deploy_role"):
            raise DeployError(f"{path}: job {job['ID']} has no Meta.deploy_role.")
        after = tuple(r.strip() for r in str(meta.get("deploy_after", "")).split(",") if r.strip())
        jobs.append(
            DeployJob(path, job, meta["deploy_role"], str(meta.get("deploy_variant", "")), after)
        )
    if not jobs:
        raise DeployError(f"No job files (*.json) in {directory}.")
    return jobs


def select_jobs(
    jobs: Sequence[DeployJob], storage: str = DEFAULT_STORAGE, only: Sequence[str] = ()
) -> list[DeployJob]:
    """The jobs to deploy: of a role with variants, the one named ``storage`` (or the
    role's only file); with ``only``, just the jobs whose ID or role it names.

    Raises ``DeployError`` for a variant or name no file has, listing those that exist.
    """
    chosen = []
    for job in jobs:
        siblings = [j for j in jobs if j.role == job.role]
        if len(siblings) > 1 and job.variant != storage:
            continue
        chosen.append(job)
    variants = sorted({j.variant for j in jobs if j.variant})
    if variants and storage not in variants:
        raise DeployError(f"No storage variant {storage!r}; the job files have {variants}.")
    if only:
        names = {j.id for j in chosen} | {j.role for j in chosen}
        unknown = [name for name in only if name not in names]
        if unknown:
            raise DeployError(
                f"No job or role {unknown[0]!r} to deploy; there are {sorted(names)}."
            )
        chosen = [j for j in chosen if j.id in only or j.role in only]
    return chosen


def order_jobs(jobs: Sequence[DeployJob]) -> list[DeployJob]:
    """``jobs`` so that each comes after the roles it needs (those among ``jobs``).

    Raises ``DeployError`` when the needs go round in a circle.
    """

    def rank(job: DeployJob) -> tuple[int, str]:
        position = ROLE_ORDER.index(job.role) if job.role in ROLE_ORDER else len(ROLE_ORDER)
        return position, job.id

    roles = {j.role for j in jobs}
    pending = sorted(jobs, key=rank)
    done_roles: set[str] = set()
    ordered: list[DeployJob] = []
    while pending:
        ready = [j for j in pending if all(r in done_roles or r not in roles for r in j.after)]
        if not ready:
            names = ", ".join(j.id for j in pending)
            raise DeployError(
                f"The jobs {names} need each other (Meta.deploy_after); break the circle."
            )
        job = ready[0]
        ordered.append(job)
        pending.remove(job)
        if all(j.role != job.role for j in pending):
            done_roles.add(job.role)
    return ordered


def fill_job(job: Mapping[str, Any], values: DeployVars) -> JsonDict:
    """A copy of ``job`` with the cluster's values in; ``job`` is left as it is."""
    filled = apply_overrides(job, values.overrides.get(str(job["ID"])) or {})
    if values.datacenters is not None:
        filled["Datacenters"] = list(values.datacenters)
    if values.namespace is not None:
        filled["Namespace"] = values.namespace
    for group in filled.get("TaskGroups") or []:
        for task in group.get("Tasks") or []:
            config = task.get("Config") or {}
            if isinstance(config.get("image"), str):
                config["image"] = _image(config["image"], values)
            env = task.get("Env") or {}
            for key, value in env.items():
                # The tools image the server hands its stage jobs is one of ours too.
                if isinstance(value, str):
                    env[key] = _image(value, values)
            _fill_vault(task, values.vault_addr)
    return filled


def _image(image: str, values: DeployVars) -> str:
    """``image`` in the cluster's registry with its tag, if it is one of Winslow's own."""
    prefix = IMAGE_REGISTRY_PLACEHOLDER + "/"
    if not image.startswith(prefix):
        return image
    repository, _, tag = image[len(prefix) :].partition(":")
    registry = (values.registry or IMAGE_REGISTRY_PLACEHOLDER).rstrip("/")
    return f"{registry}/{repository}:{values.tag or tag or 'latest'}"


def _fill_vault(task: JsonDict, vault_addr: str | None) -> None:
    if vault_addr:
        if task.get("Vault") is not None:
            task["Env"] = {**(task.get("Env") or {}), f"{VAULT_ENV_PREFIX}ADDR": vault_addr}
        return
    env = task.get("Env") or {}
    task.pop("Vault", None)
    identities = [
        i for i in task.get("Identities") or [] if not str(i.get("Name", "")).startswith("vault_")
    ]
    if "Identities" in task:
        task["Identities"] = identities or None
        if task["Identities"] is None:
            del task["Identities"]
    for key in [k for k in env if k.startswith(VAULT_ENV_PREFIX)]:
        del env[key]


def apply_overrides(job: Mapping[str, Any], override: Mapping[str, Any]) -> JsonDict:
    """A copy of ``job`` with ``override``'s keys replacing its own.

    ``TaskGroups`` and, inside a group, ``Tasks`` are given as maps by name, so an override
    reaches one task without repeating the rest:
    ``{"TaskGroups": {"server": {"Tasks": {"server": {"Driver": "raw_exec"}}}}}``.
    Raises ``DeployError`` for a group or task the job does not have.
    """
    result = copy.deepcopy(dict(job))
    for key, value in override.items():
        if key == "TaskGroups":
            _override_named(result, "TaskGroups", value, "group")
        else:
            result[key] = copy.deepcopy(value)
    return result


def _override_named(parent: JsonDict, key: str, by_name: Mapping[str, Any], what: str) -> None:
    items = {item.get("Name"): item for item in parent.get(key) or []}
    for name, override in by_name.items():
        item = items.get(name)
        if item is None:
            raise DeployError(f"Override names {what} {name!r}, which the job does not have.")
        for sub_key, value in override.items():
            if what == "group" and sub_key == "Tasks":
                _override_named(item, "Tasks", value, "task")
            else:
                item[sub_key] = copy.deepcopy(value)


_NOMAD_VAR = re.compile(r'nomadVar\s+"([^"@]+)"')
_ITEM = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)")


def needed_variables(job: Mapping[str, Any]) -> dict[str, set[str]]:
    """Nomad Variable path → the item names the job's templates read from it.

    A template waits for a Variable that does not exist and renders an empty string for
    a missing item, so a job lacking its secrets would hang or start wrongly configured;
    ``winslow deploy`` checks these before registering. Reads the ``{{ with nomadVar
    "path" }} ... .item ... {{ end }}`` form the job files use.
    """
    needed: dict[str, set[str]] = {}
    for group in job.get("TaskGroups") or []:
        for task in group.get("Tasks") or []:
            for template in task.get("Templates") or []:
                source = str(template.get("EmbeddedTmpl") or "")
                _read_template(source, needed)
    return needed


def _read_template(source: str, needed: dict[str, set[str]]) -> None:
    # A stack of what each open block's dot is: a Variable's path, or None for another.
    stack: list[str | None] = []
    for action in re.findall(r"\{\{-?\s*(.*?)\s*-?\}\}", source, re.DOTALL):
        word = action.split(" ", 1)[0]
        if word == "end":
            if stack:
                stack.pop()
            continue
        match = _NOMAD_VAR.search(action)
        if word == "with" and match is not None:
            stack.append(match.group(1))
            needed.setdefault(match.group(1), set())
            continue
        if word in ("with", "range"):
            stack.append(None)
            continue
        if word == "if":  # an if keeps the dot of its block
            stack.append(stack[-1] if stack else None)
            continue
        if word == "else":
            continue
        if stack and stack[-1] is not None:
            needed[stack[-1]].update(_ITEM.findall(action))
