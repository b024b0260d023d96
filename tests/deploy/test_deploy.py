"""``winslow deploy`` with the real job files of ``deploy/nomad/jobs/``.

Every job file must pass Nomad's job schema as written and as ``winslow deploy`` fills it
in. Against the Nomad stand-in, the real files are registered; the only thing changed is
what the stand-in cannot run, through ``--override`` as an operator would: each task runs
``fake_service.py`` with ``raw_exec`` instead of a docker image it cannot pull, the ports
are dynamic so parallel tests do not collide, and ``min_healthy_time`` and the check
intervals are 1 s instead of 10 s. Templates, variables, services, checks and update
blocks stay as the files say. The Makefile's targets are read with ``make -n`` and their
``winslow deploy`` commands parsed by the CLI itself.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer

from tests.nomad_standin import NomadStandin
from winslow.backends.nomad.jobschema import validate_jobspec
from winslow.cli.deploy import deploy_app
from winslow.deploy.jobs import (
    DeployVars,
    fill_job,
    load_jobs,
    needed_variables,
    order_jobs,
    select_jobs,
    shipped_jobs_dir,
)

ROOT = Path(__file__).resolve().parents[2]
JOBS_DIR = ROOT / "deploy" / "nomad" / "jobs"
BIN = Path(sys.executable).parent
FAKE = Path(__file__).with_name("fake_service.py")
NAMESPACE = "winslow-system"
SECOND = 1_000_000_000
SECRETS = {
    "db_password": "pg-secret",
    "s3_access_key": "winslow",
    "s3_secret_key": "s3-secret",
    "nomad_token": "nomad-secret",
}
REGISTRY_SECRETS = {"htpasswd": "winslow:$2y$05$x", "tls_crt": "CERT", "tls_key": "KEY"}
JOB_FILES = sorted(JOBS_DIR.glob("*.json"))


@pytest.mark.parametrize("path", JOB_FILES, ids=lambda p: p.name)
def test_every_job_file_fits_nomads_job_schema(path: Path) -> None:
    job = json.loads(path.read_text())["Job"]
    assert validate_jobspec(job) == []
    with_vault = fill_job(job, DeployVars(registry="reg.example:5000", vault_addr="https://v:8200"))
    assert validate_jobspec(with_vault) == []
    assert validate_jobspec(fill_job(job, DeployVars(datacenters=("dc1",)))) == []


def test_the_job_files_cover_what_a_cluster_needs() -> None:
    jobs = load_jobs(JOBS_DIR)
    assert {j.role for j in jobs} == {"database", "storage", "registry", "server"}
    assert {j.variant for j in jobs if j.role == "storage"} == {
        "minio",
        "minio-distributed",
        "seaweedfs",
    }
    server = next(j.job for j in jobs if j.role == "server")
    group = server["TaskGroups"][0]
    assert group["Services"][0]["Checks"][0]["Path"] == "/api/v1/health"
    assert group["RestartPolicy"]["Attempts"] > 0
    task = group["Tasks"][0]
    assert task["Env"]["WINSLOW_BACKEND"] == "nomad"
    assert task["Vault"]["Role"] == "winslow-server"
    assert server["Namespace"] == NAMESPACE


def test_database_and_storage_come_before_the_server() -> None:
    ordered = order_jobs(select_jobs(load_jobs(JOBS_DIR), "seaweedfs"))
    ids = [j.id for j in ordered]
    assert ids == ["winslow-postgres", "winslow-seaweedfs", "winslow-registry", "winslow-server"]


def test_filling_in_touches_only_winslows_images_and_the_vault_parts() -> None:
    server = next(j.job for j in load_jobs(JOBS_DIR) if j.id == "winslow-server")
    registry = next(j.job for j in load_jobs(JOBS_DIR) if j.id == "winslow-registry")
    values = DeployVars(registry="registry.example:5000", tag="abc123", namespace="ops")
    filled = fill_job(server, values)
    task = filled["TaskGroups"][0]["Tasks"][0]
    assert task["Config"]["image"] == "registry.example:5000/winslow:abc123"
    assert filled["Namespace"] == "ops"
    assert "Vault" not in task and "Identities" not in task  # no Vault address given
    assert not [k for k in task["Env"] if k.startswith("WINSLOW_VAULT_")]
    assert task["Env"]["WINSLOW_NOMAD_IMAGE"] == "registry.example:5000/winslow-tools:abc123"
    assert (
        fill_job(registry, values)["TaskGroups"][0]["Tasks"][0]["Config"]["image"] == "registry:2"
    )
    kept = fill_job(server, DeployVars(vault_addr="https://vault.example:8200"))
    kept_task = kept["TaskGroups"][0]["Tasks"][0]
    assert kept_task["Vault"]["Role"] == "winslow-server"
    assert kept_task["Env"]["WINSLOW_VAULT_ADDR"] == "https://vault.example:8200"
    assert server["TaskGroups"][0]["Tasks"][0]["Vault"] is not None  # the loaded job is untouched


def test_the_secrets_each_job_reads_are_known_before_registering() -> None:
    jobs = {j.id: j.job for j in load_jobs(JOBS_DIR)}
    assert needed_variables(jobs["winslow-server"]) == {
        "nomad/jobs": {"db_password", "s3_access_key", "s3_secret_key", "nomad_token"}
    }
    assert needed_variables(jobs["winslow-registry"]) == {
        "nomad/jobs/winslow-registry": {"htpasswd", "tls_crt", "tls_key"}
    }


# --- the Makefile targets -----------------------------------------------------------------

# Make reads these from the environment too; the tests set them only on the command line.
MAKE_INPUTS = (
    "NOMAD_ADDR",
    "STORAGE",
    "DEPLOY_ONLY",
    "DEPLOY_ARGS",
    "REGISTRY",
    "TAG",
    "VAULT_ADDR",
)
DEPLOY_TARGETS = {
    "deploy": "up",
    "deploy-plan": "plan",
    "undeploy": "down",
    "cluster-status": "status",
}


def make_deploy_commands(
    monkeypatch: pytest.MonkeyPatch, *variables: str
) -> dict[str, tuple[list[str], dict[str, Any]]]:
    """What ``make -n`` of the four targets would run, by subcommand: the environment
    assignments before ``winslow deploy <subcommand>``, and the options as that
    subcommand parses them (an option it does not know fails here)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("WINSLOW_VAULT_ADDR", "WINSLOW_DEPLOY_NAMESPACE"):  # options default to them
        monkeypatch.delenv(name, raising=False)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in MAKE_INPUTS and k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    }
    dry = subprocess.run(
        ["make", "-n", *DEPLOY_TARGETS, *variables],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    group = typer.main.get_command(deploy_app)
    assert isinstance(group, typer.core.TyperGroup)
    found: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for line in dry.splitlines():
        words = shlex.split(line)
        at = next((i for i, w in enumerate(words) if w.endswith("/winslow")), None)
        if at is None or words[at + 1] != "deploy":
            continue
        assert words[at] == ".venv/bin/winslow", line
        subcommand, args = words[at + 2], words[at + 3 :]
        assert subcommand not in found, dry
        found[subcommand] = (
            words[:at],
            group.commands[subcommand].make_context(subcommand, args).params,
        )
    assert sorted(found) == sorted(DEPLOY_TARGETS.values()), dry
    return found


def test_make_deploy_targets_pass_the_cluster_the_images_and_vault_to_winslow_deploy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README "Deploying on Nomad" and deploy/README.md: NOMAD_ADDR reaches every target,
    STORAGE, DEPLOY_ONLY (comma-separated roles) and DEPLOY_NAMESPACE choose the jobs of
    all four (undeploy and cluster-status too: they find what deploy made), REGISTRY,
    TAG, VAULT_ADDR and DEPLOY_ARGS fill in what deploy and deploy-plan register."""
    found = make_deploy_commands(
        monkeypatch,
        "NOMAD_ADDR=https://nomad.lab:4646",
        "STORAGE=seaweedfs",
        "DEPLOY_ONLY=database,server",
        "REGISTRY=registry.lab:5000",
        "TAG=abc123",
        "VAULT_ADDR=https://vault.lab:8200",
        "DEPLOY_ARGS=--override cluster.json --datacenter dc1",
        "DEPLOY_NAMESPACE=lab-system",
    )
    chosen = {"storage": "seaweedfs", "only": ("database", "server"), "namespace": "lab-system"}
    filled = {
        "registry": "registry.lab:5000",
        "tag": "abc123",
        "vault_addr": "https://vault.lab:8200",
        "override": "cluster.json",
        "datacenter": ("dc1",),
    }
    for subcommand, (env, params) in found.items():
        assert env == ["NOMAD_ADDR=https://nomad.lab:4646"], subcommand
        assert {name: params[name] for name in chosen} == chosen, subcommand
    for subcommand in ("up", "plan"):
        params = found[subcommand][1]
        assert {name: params[name] for name in filled} == filled, subcommand


def test_make_deploy_targets_without_variables_deploy_minio_and_leave_nomad_addr_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unset, NOMAD_ADDR is not passed (winslow deploy reads NOMAD_ADDR from its own
    environment, as the nomad CLI does), storage is MinIO, every role is deployed and
    nothing is filled in."""
    found = make_deploy_commands(monkeypatch)
    for subcommand, (env, params) in found.items():
        assert env == [], subcommand
        assert (params["storage"], params["only"]) == ("minio", ()), subcommand
    for subcommand in ("up", "plan"):
        params = found[subcommand][1]
        unset = ("registry", "tag", "vault_addr", "override", "datacenter")
        assert [params[name] for name in unset] == [None, None, None, None, ()], subcommand


# --- against the stand-in -----------------------------------------------------------------


def stand_in_override(extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Per job: tasks run fake_service.py with raw_exec, ports dynamic, 1 s to healthy."""
    override: dict[str, Any] = {}
    for job in load_jobs(JOBS_DIR):
        groups: dict[str, Any] = {}
        for group in job.job["TaskGroups"]:
            labels = [p["Label"] for n in group["Networks"] for p in n["ReservedPorts"]]
            update = {**group["Update"], "MinHealthyTime": SECOND}
            services = [
                {**s, "Checks": [{**c, "Interval": SECOND} for c in s["Checks"]]}
                for s in group["Services"]
            ]
            tasks = {
                task["Name"]: {
                    "Driver": "raw_exec",
                    "Config": {
                        "command": sys.executable,
                        "args": [str(FAKE), f"NOMAD_PORT_{labels[0]}"],
                    },
                }
                for task in group["Tasks"]
            }
            groups[group["Name"]] = {
                "Networks": [
                    {"Mode": "host", "DynamicPorts": [{"Label": label} for label in labels]}
                ],
                "Update": update,
                "Services": services,
                "Tasks": tasks,
            }
            for key, value in ((extra or {}).get(job.id) or {}).items():
                if key == "Env":
                    for task in tasks.values():
                        task["Env"] = {**(group["Tasks"][0].get("Env") or {}), **value}
                else:
                    groups[group["Name"]][key] = {**groups[group["Name"]].get(key, {}), **value}
        override[job.id] = {"TaskGroups": groups}
    return override


HOST_VOLUMES = (
    "winslow-server",
    "winslow-postgres",
    "winslow-minio",
    "winslow-registry",
    "winslow-seaweedfs",
)


@pytest.fixture
def cluster(nomad_standin: NomadStandin, tmp_path: Path) -> NomadStandin:
    """The stand-in with Winslow's namespace, its secrets, and a second node that offers
    the host volumes of deploy/nomad/client/host-volumes.hcl (standin-1 offers none)."""
    volumes = {name: str(tmp_path / "volumes" / name) for name in HOST_VOLUMES}
    nomad_standin.add_node("storage-1", host_volumes=volumes)
    nomad_standin.add_namespace(NAMESPACE)
    nomad_standin.put_variable("nomad/jobs", SECRETS, namespace=NAMESPACE)
    nomad_standin.put_variable("nomad/jobs/winslow-registry", REGISTRY_SECRETS, namespace=NAMESPACE)
    return nomad_standin


def deploy(
    standin: NomadStandin,
    tmp_path: Path,
    *args: str,
    override: dict[str, Any] | None = None,
    jobs_dir: Path | None = JOBS_DIR,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``winslow deploy ARGS`` at the stand-in, run in ``tmp_path``; ``jobs_dir`` None
    leaves ``--jobs-dir`` out, ``env`` adds to a clean environment."""
    path = tmp_path / "override.json"
    path.write_text(json.dumps(override if override is not None else stand_in_override()))
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "WINSLOW_"))}
    environ.update(NOMAD_ADDR=standin.address, WINSLOW_DATA_DIR=str(tmp_path / "data"))
    environ.update(env or {})
    command = [str(BIN / "winslow"), "deploy", *args]
    if jobs_dir is not None:
        command += ["--jobs-dir", str(jobs_dir)]
    if args[0] in ("up", "plan"):
        command += ["--override", str(path)]
    return subprocess.run(
        command, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=240
    )


def nomad_get(standin: NomadStandin, path: str) -> httpx.Response:
    return httpx.get(f"{standin.address}{path}", params={"namespace": NAMESPACE}, timeout=10)


MINIO_NODES = 4
"""winslow-minio-distributed's Count: one MinIO per node (distinct_hosts)."""


def add_minio_nodes(standin: NomadStandin, volumes: Path) -> set[str]:
    """The nodes winslow-minio-distributed asks for, as deploy/nomad/README.md sets them
    up: ``meta { winslow_minio = "true" }`` and the winslow-minio host volume. Their IDs."""
    return {
        standin.add_node(
            f"minio-{n}",
            meta={"winslow_minio": "true"},
            host_volumes={"winslow-minio": str(volumes / f"minio-{n}")},
        )
        for n in range(1, MINIO_NODES + 1)
    }


@pytest.mark.parametrize("storage", ["minio", "seaweedfs", "minio-distributed"])
def test_deploy_up_registers_in_order_waits_until_each_is_healthy_and_down_purges_them(
    cluster: NomadStandin, tmp_path: Path, storage: str
) -> None:
    storage_job = f"winslow-{storage}"
    count = MINIO_NODES if storage == "minio-distributed" else 1
    minio_nodes = add_minio_nodes(cluster, tmp_path / "minio") if count > 1 else set()
    chosen = ("--storage", storage)
    result = deploy(cluster, tmp_path, "up", *chosen, "--timeout", "90")
    assert result.returncode == 0, result.stderr + result.stdout
    lines = result.stdout.splitlines()
    registering = [line for line in lines if "registering" in line]
    assert registering == [
        "[1/4] winslow-postgres: registering (database)",
        f"[2/4] {storage_job}: registering (storage)",
        "[3/4] winslow-registry: registering (registry)",
        "[4/4] winslow-server: registering (server)",
    ]
    job_ids = ["winslow-postgres", storage_job, "winslow-registry", "winslow-server"]
    registered = {j["ID"] for j in nomad_get(cluster, "/v1/jobs").json()}
    assert registered == set(job_ids)  # the one storage job asked for, no other
    for position, job_id in enumerate(job_ids):
        desired = count if job_id == storage_job else 1
        healthy_at = lines.index(f"  {job_id}: {desired}/{desired} healthy (deployment successful)")
        if position + 1 < len(job_ids):  # each is healthy before the next is registered
            assert healthy_at < lines.index(registering[position + 1])
        deployment = nomad_get(cluster, f"/v1/job/{job_id}/deployment").json()
        assert deployment["Status"] == "successful"
    storage_allocs = nomad_get(cluster, f"/v1/job/{storage_job}/allocations").json()
    assert len(storage_allocs) == count
    if minio_nodes:  # one MinIO on each node meant for it
        assert {a["NodeID"] for a in storage_allocs} == minio_nodes
    # The server found PostgreSQL and storage through Nomad's service registrations.
    postgres = nomad_get(cluster, "/v1/service/winslow-postgres").json()
    s3 = nomad_get(cluster, "/v1/service/winslow-s3").json()
    assert {i["JobID"] for i in s3} == {storage_job}
    server_alloc = nomad_get(cluster, "/v1/job/winslow-server/allocations").json()[0]
    env = json.loads(
        (cluster.client.alloc_dir(server_alloc["ID"]) / "alloc" / "env.json").read_text()
    )
    assert env["WINSLOW_DATABASE_URL"] == (
        f"postgresql+psycopg://winslow:pg-secret@127.0.0.1:{postgres[0]['Port']}/winslow"
    )
    # One address, however many instances storage has (a distributed MinIO answers on each).
    assert env["WINSLOW_S3_ENDPOINT"] in {f"http://127.0.0.1:{i['Port']}" for i in s3}
    assert env["WINSLOW_BACKEND"] == "nomad"

    status = deploy(cluster, tmp_path, "status", *chosen)
    assert status.returncode == 0, status.stderr
    assert f"{storage_job}: {count}/{count} healthy (deployment successful)" in status.stdout
    assert "winslow-server: 1/1 healthy (deployment successful)" in status.stdout
    assert "winslow 127.0.0.1:" in status.stdout

    down = deploy(cluster, tmp_path, "down", *chosen)
    assert down.returncode == 0, down.stderr
    assert down.stdout.splitlines() == [f"{job_id}: purged" for job_id in reversed(job_ids)]
    for job_id in job_ids:
        gone = nomad_get(cluster, f"/v1/job/{job_id}")
        assert (gone.status_code, gone.text) == (404, "job not found")
    assert nomad_get(cluster, "/v1/jobs").json() == []
    # Their allocations stop, so their processes end and their services go.
    deadline = time.monotonic() + 30
    while cluster.task_pids() or nomad_get(cluster, "/v1/services").json():
        assert time.monotonic() < deadline, nomad_get(cluster, "/v1/services").text
        time.sleep(0.1)
    after = deploy(cluster, tmp_path, "status", *chosen)
    assert after.returncode == 1
    assert after.stdout.splitlines() == [
        f"{job_id}: 0/0 healthy (not registered)" for job_id in job_ids
    ]


def test_down_and_status_without_the_deployed_storage_name_the_one_that_runs(
    cluster: NomadStandin, tmp_path: Path
) -> None:
    """`make undeploy` without the `STORAGE=` of `make deploy` looks for winslow-minio; it
    must not say "not registered" and leave the cluster's SeaweedFS running unremarked."""
    up = deploy(cluster, tmp_path, "up", "--storage", "seaweedfs", "--only", "storage")
    assert up.returncode == 0, up.stderr + up.stdout
    hint = "winslow-seaweedfs is: pass --storage seaweedfs (STORAGE=seaweedfs)"

    status = deploy(cluster, tmp_path, "status", "--only", "storage")
    assert status.returncode == 1
    assert status.stdout.splitlines() == [f"winslow-minio: 0/0 healthy (not registered); {hint}"]
    down = deploy(cluster, tmp_path, "down", "--only", "storage")
    assert down.stdout.splitlines() == [f"winslow-minio: not registered; {hint}"]
    assert [j["ID"] for j in nomad_get(cluster, "/v1/jobs").json()] == ["winslow-seaweedfs"]

    down = deploy(cluster, tmp_path, "down", "--storage", "seaweedfs", "--only", "storage")
    assert down.stdout.splitlines() == ["winslow-seaweedfs: purged"]


def test_plan_shows_the_diff_of_a_change_and_down_removes_the_jobs(
    cluster: NomadStandin, tmp_path: Path
) -> None:
    first = deploy(
        cluster, tmp_path, "up", "--only", "database", "--only", "server", "--timeout", "90"
    )
    assert first.returncode == 0, first.stderr + first.stdout

    same = deploy(cluster, tmp_path, "plan", "--only", "database", "--only", "server")
    assert same.returncode == 0, same.stderr
    assert same.stdout.splitlines() == [
        'Job: "winslow-postgres" (no changes)',
        'Job: "winslow-server" (no changes)',
    ]

    override = stand_in_override({"winslow-server": {"Env": {"WINSLOW_POLL_SECONDS": "2"}}})
    changed = deploy(
        cluster, tmp_path, "plan", "--only", "database", "--only", "server", override=override
    )
    assert changed.returncode == 0, changed.stderr
    assert 'Job: "winslow-postgres" (no changes)' in changed.stdout
    assert '+/- Job: "winslow-server"' in changed.stdout
    assert '+/- Task Group: "server" (1 create/destroy update)' in changed.stdout
    assert '+ WINSLOW_POLL_SECONDS: "2"' in changed.stdout
    assert (
        nomad_get(cluster, "/v1/job/winslow-server").json()["Version"] == 0
    )  # a plan changes nothing

    down = deploy(cluster, tmp_path, "down", "--only", "database", "--only", "server")
    assert down.returncode == 0, down.stderr
    assert down.stdout.splitlines() == ["winslow-server: purged", "winslow-postgres: purged"]
    for job_id in ("winslow-server", "winslow-postgres"):
        assert nomad_get(cluster, f"/v1/job/{job_id}").status_code == 404
    stopped = nomad_get(cluster, "/v1/allocations").json()
    assert stopped and all(a["DesiredStatus"] == "stop" for a in stopped)


def test_a_job_that_never_becomes_healthy_fails_the_deploy_naming_job_allocation_and_reason(
    cluster: NomadStandin, tmp_path: Path
) -> None:
    override = stand_in_override(
        {
            "winslow-server": {
                "Env": {"FAKE_STATUS": "503"},
                "Update": {"HealthyDeadline": 3 * SECOND},
            }
        }
    )
    result = deploy(
        cluster, tmp_path, "up", "--only", "server", "--timeout", "60", override=override
    )
    assert result.returncode == 1
    alloc = nomad_get(cluster, "/v1/job/winslow-server/allocations").json()[0]
    error = result.stderr.strip()
    assert error.startswith(f"error: Job winslow-server, allocation {alloc['ID'][:8]} failed: ")
    assert "Failed due to unhealthy allocations" in error
    assert "Services not healthy by deadline" in error
    assert "check api-health of service winslow is failure: nomad: http response code 503" in error


def test_a_missing_secret_stops_the_deploy_before_anything_is_registered(
    nomad_standin: NomadStandin, tmp_path: Path
) -> None:
    nomad_standin.add_namespace(NAMESPACE)
    nomad_standin.put_variable("nomad/jobs", {"db_password": "x"}, namespace=NAMESPACE)
    result = deploy(nomad_standin, tmp_path, "up", "--only", "server")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: Job winslow-server reads the Nomad Variable nomad/jobs (namespace "
        "winslow-system), which lacks nomad_token, s3_access_key, s3_secret_key. Create it: "
        "nomad var put -namespace winslow-system nomad/jobs db_password=... nomad_token=... "
        "s3_access_key=... s3_secret_key=..."
    )
    assert nomad_get(nomad_standin, "/v1/job/winslow-server").status_code == 404


def test_a_missing_namespace_says_how_to_create_it(
    nomad_standin: NomadStandin, tmp_path: Path
) -> None:
    result = deploy(nomad_standin, tmp_path, "up", "--only", "database")
    assert result.returncode == 1
    assert "Nomad has no namespace 'winslow-system'" in result.stderr


def test_deploy_talks_to_nomad_addr_even_where_the_servers_own_nomad_address_is_set(
    cluster: NomadStandin, tmp_path: Path
) -> None:
    """A shell that runs a Winslow server may hold `WINSLOW_NOMAD_ADDR` and the server's
    `WINSLOW_NOMAD_TOKEN`; `winslow deploy`, run like `nomad` with the deploy token, goes
    where `NOMAD_ADDR` says."""
    elsewhere = {"WINSLOW_NOMAD_ADDR": "http://127.0.0.1:9"}  # discard: nothing answers
    result = deploy(cluster, tmp_path, "plan", "--only", "database", env=elsewhere)
    assert result.returncode == 0, result.stderr
    assert "winslow-postgres" in result.stdout


def test_deploy_anywhere_uses_the_job_files_this_winslow_ships(
    cluster: NomadStandin, tmp_path: Path
) -> None:
    """Without `--jobs-dir`, away from a checkout (an installed Winslow), `winslow deploy`
    deploys the jobs of its own version; a checkout's `deploy/nomad/jobs` is those files."""
    assert shipped_jobs_dir().resolve() == JOBS_DIR.resolve()
    result = deploy(cluster, tmp_path, "plan", "--only", "database", jobs_dir=None)
    assert result.returncode == 0, result.stderr
    assert "winslow-postgres" in result.stdout


def test_a_job_no_node_can_take_fails_after_the_timeout_saying_why(
    nomad_standin: NomadStandin, tmp_path: Path
) -> None:
    nomad_standin.add_namespace(NAMESPACE)
    nomad_standin.put_variable("nomad/jobs", SECRETS, namespace=NAMESPACE)
    result = deploy(nomad_standin, tmp_path, "up", "--only", "database", "--timeout", "3")
    assert result.returncode == 1
    assert result.stderr.strip().startswith(
        "error: Job winslow-postgres is not healthy after 3 s: group postgres: no node can "
        "take it (1 evaluated; missing compatible host volumes (1 nodes))."
    )
