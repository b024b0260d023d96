"""``winslow deploy up|plan|down|status``: Winslow and its services as Nomad jobs.

Talks to Nomad itself (``NOMAD_ADDR``, ``NOMAD_TOKEN`` and the TLS settings, as the server
does), so no ``nomad`` binary is needed; ``make deploy`` and friends call these. The job
files are ``deploy/nomad/jobs/*.json`` unless ``--jobs-dir`` names others.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from winslow.cli.helpers import JsonOpt, WinslowTyper, emit, fail, out
from winslow.errors import BackendError, DeployError

deploy_app = WinslowTyper(
    help="Deploy Winslow, its database, storage and registry as Nomad jobs.",
    no_args_is_help=True,
)

JobsDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--jobs-dir",
        help="Folder of the JSON job files; default: the ones this Winslow ships "
        "(deploy/nomad/jobs in a checkout).",
    ),
]
StorageOpt = Annotated[
    str,
    typer.Option("--storage", help="Storage variant: minio, minio-distributed or seaweedfs."),
]
OnlyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--only", help="Only this job ID or role (database, storage, registry, server); repeatable."
    ),
]
RegistryOpt = Annotated[
    str | None,
    typer.Option("--registry", help="Registry of Winslow's images (host:port)."),
]
TagOpt = Annotated[str | None, typer.Option("--tag", help="Tag of Winslow's images.")]
DatacenterOpt = Annotated[
    list[str] | None,
    typer.Option("--datacenter", help="Datacenter the jobs may run in; repeatable."),
]
NamespaceOpt = Annotated[
    str,
    typer.Option(
        "--namespace", envvar="WINSLOW_DEPLOY_NAMESPACE", help="Nomad namespace of the jobs."
    ),
]
VaultOpt = Annotated[
    str | None,
    typer.Option(
        "--vault-addr",
        envvar="WINSLOW_VAULT_ADDR",
        help="Vault the server reads its secrets from (workload identity); unset: no Vault.",
    ),
]
OverrideOpt = Annotated[
    Path | None,
    typer.Option("--override", help="JSON file: job ID → keys to replace in that job."),
]

NOMAD_CLI_VARIABLES = (
    "NOMAD_ADDR",
    "NOMAD_TOKEN",
    "NOMAD_REGION",
    "NOMAD_CACERT",
    "NOMAD_CLIENT_CERT",
    "NOMAD_CLIENT_KEY",
    "NOMAD_TLS_SERVER_NAME",
    "NOMAD_SKIP_VERIFY",
)
"""How the ``nomad`` CLI finds its cluster (the namespace is ``--namespace``'s)."""
DEFAULT_NAMESPACE = "winslow-system"


def _deployer(
    jobs_dir: Path | None,
    storage: str,
    only: list[str] | None,
    registry: str | None,
    tag: str | None,
    datacenter: list[str] | None,
    namespace: str,
    vault_addr: str | None,
    override: Path | None,
) -> tuple[Any, list[Any]]:
    from winslow.backends.nomad.client import NomadClient
    from winslow.backends.nomad.config import NomadConfig
    from winslow.deploy.jobs import (
        DeployVars,
        load_jobs,
        order_jobs,
        select_jobs,
        shipped_jobs_dir,
    )
    from winslow.deploy.runner import Deployer
    from winslow.settings import Settings

    overrides: dict[str, Any] = {}
    if override is not None:
        try:
            overrides = json.loads(override.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DeployError(f"--override {override}: not a JSON object ({exc}).") from exc
    values = DeployVars(
        registry=registry or None,
        tag=tag or None,
        datacenters=tuple(datacenter) if datacenter else None,
        namespace=namespace,
        vault_addr=vault_addr or None,
        overrides=overrides,
    )
    every = load_jobs(jobs_dir or shipped_jobs_dir())
    jobs = order_jobs(select_jobs(every, storage, only or ()))
    # The operator's tool, run like `nomad` with the deploy token: Nomad's own variables win
    # here over the WINSLOW_NOMAD_* ones a server's environment may also hold.
    nomads_own: dict[str, Any] = {
        name: os.environ[name] for name in NOMAD_CLI_VARIABLES if name in os.environ
    }
    settings = Settings(**nomads_own)
    config = NomadConfig(**settings.nomad_connection(), namespace=namespace)
    deployer = Deployer(
        NomadClient(config, after_failure="run the command again once Nomad answers"),
        values,
        say=lambda line: out.print(line, markup=False, highlight=False),
        variants=every,
    )
    return deployer, jobs


@deploy_app.command("up")
def up(
    jobs_dir: JobsDirOpt = None,
    storage: StorageOpt = "minio",
    only: OnlyOpt = None,
    registry: RegistryOpt = None,
    tag: TagOpt = None,
    datacenter: DatacenterOpt = None,
    namespace: NamespaceOpt = DEFAULT_NAMESPACE,
    vault_addr: VaultOpt = None,
    override: OverrideOpt = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds each job may take to become healthy.")
    ] = 600.0,
) -> None:
    """Register every job in order and wait until each is healthy."""
    try:
        deployer, jobs = _deployer(
            jobs_dir, storage, only, registry, tag, datacenter, namespace, vault_addr, override
        )
        with deployer.client:
            deployer.up(jobs, timeout=timeout)
    except (DeployError, BackendError) as exc:
        fail(exc.message)
    out.print(f"deployed: {', '.join(j.id for j in jobs)}", markup=False, highlight=False)


@deploy_app.command("plan")
def plan(
    jobs_dir: JobsDirOpt = None,
    storage: StorageOpt = "minio",
    only: OnlyOpt = None,
    registry: RegistryOpt = None,
    tag: TagOpt = None,
    datacenter: DatacenterOpt = None,
    namespace: NamespaceOpt = DEFAULT_NAMESPACE,
    vault_addr: VaultOpt = None,
    override: OverrideOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what `deploy up` would change, job by job (Nomad's plan diff)."""
    from winslow.deploy.diff import plan_lines

    try:
        deployer, jobs = _deployer(
            jobs_dir, storage, only, registry, tag, datacenter, namespace, vault_addr, override
        )
        with deployer.client:
            plans = deployer.plan(jobs)
    except (DeployError, BackendError) as exc:
        fail(exc.message)

    def human(data: list[dict[str, Any]]) -> None:
        for entry in data:
            for line in plan_lines(entry["job"], entry["plan"]):
                out.print(line, markup=False, highlight=False)

    emit([{"job": job_id, "plan": body} for job_id, body in plans], as_json, human)


@deploy_app.command("down")
def down(
    jobs_dir: JobsDirOpt = None,
    storage: StorageOpt = "minio",
    only: OnlyOpt = None,
    namespace: NamespaceOpt = DEFAULT_NAMESPACE,
    keep: Annotated[
        bool, typer.Option("--keep", help="Stop the jobs but keep them in Nomad.")
    ] = False,
) -> None:
    """Stop and remove the jobs, the server first. Host volumes keep their data."""
    try:
        deployer, jobs = _deployer(jobs_dir, storage, only, None, None, None, namespace, None, None)
        with deployer.client:
            deployer.down(jobs, purge=not keep)
    except (DeployError, BackendError) as exc:
        fail(exc.message)


@deploy_app.command("status")
def status(
    jobs_dir: JobsDirOpt = None,
    storage: StorageOpt = "minio",
    only: OnlyOpt = None,
    namespace: NamespaceOpt = DEFAULT_NAMESPACE,
    as_json: JsonOpt = False,
) -> None:
    """Each job's health, and where its services answer. Exit 1 when one is not healthy."""
    from winslow.deploy.health import HealthState

    try:
        deployer, jobs = _deployer(jobs_dir, storage, only, None, None, None, namespace, None, None)
        with deployer.client:
            found = deployer.status(jobs)
    except (DeployError, BackendError) as exc:
        fail(exc.message)
    data = [
        {
            **asdict(s.health),
            "state": s.health.state.value,
            "addresses": s.addresses,
            "note": s.note,
        }
        for s in found
    ]

    def human(rows: list[dict[str, Any]]) -> None:
        for entry, row in zip(found, rows, strict=True):
            where = "  ".join(f"{n} {', '.join(a)}" for n, a in row["addresses"].items())
            out.print(
                f"{entry.health.line()}{entry.note}{'  ' + where if where else ''}",
                markup=False,
                highlight=False,
            )

    emit(data, as_json, human)
    if any(s.health.state is not HealthState.HEALTHY for s in found):
        raise typer.Exit(1)
