"""The stand-in's service jobs against Nomad's documented behaviour.

Ports and their ``NOMAD_*`` variables (client/taskenv/env.go ``buildPortEnv``), Nomad
service registrations (``provider = "nomad"``, client/serviceregistration/nsd) and
``nomadService`` in templates, check results (``/v1/client/allocation/:id/checks``),
deployments and allocation health (client/allochealth/tracker.go; the deployment
descriptions of nomad/structs/structs.go), host volume feasibility
(scheduler/feasible.go ``HostVolumeChecker``: "missing compatible host volumes"), the
plan endpoint (``structs.JobPlanResponse`` with a ``JobDiff`` of nomad/structs/diff.go)
and a purging deregister.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.nomad_standin import NomadStandin

JsonDict = dict[str, Any]
SECOND = 1_000_000_000


@pytest.fixture
def nomad(nomad_standin: NomadStandin) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=nomad_standin.address, timeout=httpx.Timeout(20.0)) as client:
        yield client


def web_job(job_id: str, *, check_path: str = "/", min_healthy: int = 0, **group: Any) -> JsonDict:
    """A service job serving HTTP on a dynamic port, with a Nomad service and check."""
    return {
        "ID": job_id,
        "Type": "service",
        "TaskGroups": [
            {
                "Name": "web",
                "Count": 1,
                "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
                "Update": {
                    "MaxParallel": 1,
                    "HealthCheck": "checks",
                    "MinHealthyTime": min_healthy,
                    "HealthyDeadline": 20 * SECOND,
                },
                "Services": [
                    {
                        "Name": f"{job_id}-svc",
                        "PortLabel": "http",
                        "Provider": "nomad",
                        "Tags": ["web"],
                        "Checks": [
                            {
                                "Name": "alive",
                                "Type": "http",
                                "Path": check_path,
                                "Interval": SECOND,
                                "Timeout": SECOND,
                            }
                        ],
                    }
                ],
                "Tasks": [
                    {
                        "Name": "server",
                        "Driver": "raw_exec",
                        "Config": {
                            "command": sys.executable,
                            "args": [
                                "-m",
                                "http.server",
                                "--bind",
                                "127.0.0.1",
                                "${NOMAD_PORT_http}",
                            ],
                        },
                    }
                ],
                **group,
            }
        ],
    }


def until(read: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def deployment(nomad: httpx.Client, job_id: str) -> JsonDict:
    return nomad.get(f"/v1/job/{job_id}/deployment").json()


def test_a_healthy_service_registers_passes_its_check_and_completes_its_deployment(nomad):
    """A dynamic port reaches the task as NOMAD_PORT_http; the service is registered with
    the allocation's address; the check passes; the deployment ends "successful" with
    "Deployment completed successfully" and the allocation DeploymentStatus.Healthy."""
    assert nomad.post("/v1/jobs", json={"Job": web_job("web")}).status_code == 200
    done = until(lambda: deployment(nomad, "web"), lambda d: d and d["Status"] != "running")
    assert done["Status"] == "successful"
    assert done["StatusDescription"] == "Deployment completed successfully"
    assert done["TaskGroups"]["web"]["HealthyAllocs"] == 1
    assert done["TaskGroups"]["web"]["DesiredTotal"] == 1
    alloc = nomad.get("/v1/job/web/allocations").json()[0]
    full = nomad.get(f"/v1/allocation/{alloc['ID']}").json()
    assert full["DeploymentID"] == done["ID"]
    assert full["DeploymentStatus"]["Healthy"] is True
    port = full["AllocatedResources"]["Shared"]["Ports"][0]
    assert port["Label"] == "http" and port["Value"] > 0

    [reg] = nomad.get("/v1/service/web-svc").json()
    assert reg["Address"] == "127.0.0.1" and reg["Port"] == port["Value"]
    assert reg["AllocID"] == alloc["ID"] and reg["JobID"] == "web" and reg["Tags"] == ["web"]
    listed = nomad.get("/v1/services").json()
    assert listed == [
        {"Namespace": "default", "Services": [{"ServiceName": "web-svc", "Tags": ["web"]}]}
    ]
    [check] = nomad.get(f"/v1/client/allocation/{alloc['ID']}/checks").json().values()
    assert check["Status"] == "success" and check["StatusCode"] == 200
    assert (
        check["Check"] == "alive"
        and check["Service"] == "web-svc"
        and check["Mode"] == "healthiness"
    )
    assert httpx.get(f"http://127.0.0.1:{port['Value']}/").status_code == 200
    assert nomad.get("/v1/job/web").json()["Stable"] is True


def test_a_failing_check_makes_the_allocation_unhealthy_at_its_deadline(nomad):
    """http.server answers 404 for a missing path: the check fails, and once the healthy
    deadline passes the allocation is unhealthy ("Alloc Unhealthy" event) and the
    deployment "failed" with "Failed due to unhealthy allocations"."""
    job = web_job("sick", check_path="/no-such-file")
    job["TaskGroups"][0]["Update"]["HealthyDeadline"] = 2 * SECOND
    nomad.post("/v1/jobs", json={"Job": job})
    done = until(lambda: deployment(nomad, "sick"), lambda d: d and d["Status"] != "running")
    assert done["Status"] == "failed"
    assert done["StatusDescription"] == "Failed due to unhealthy allocations"
    alloc = nomad.get("/v1/job/sick/allocations").json()[0]
    assert alloc["DeploymentStatus"]["Healthy"] is False
    events = alloc["TaskStates"]["server"]["Events"]
    assert events[-1]["Type"] == "Alloc Unhealthy"
    assert events[-1]["DisplayMessage"] == "Services not healthy by deadline"
    [check] = nomad.get(f"/v1/client/allocation/{alloc['ID']}/checks").json().values()
    assert check["Status"] == "failure" and check["StatusCode"] == 404


def test_stopping_the_job_cancels_its_deployment_and_removes_its_registrations(nomad):
    job = web_job("short")
    job["TaskGroups"][0]["Update"]["MinHealthyTime"] = 60 * SECOND
    nomad.post("/v1/jobs", json={"Job": job})
    until(lambda: nomad.get("/v1/service/short-svc").json(), bool)
    running = deployment(nomad, "short")
    assert nomad.delete("/v1/job/short", params={"purge": "true"}).status_code == 200
    assert nomad.get("/v1/job/short").status_code == 404
    gone = until(lambda: nomad.get("/v1/service/short-svc").json(), lambda r: r == [])
    assert gone == []
    cancelled = nomad.get(f"/v1/deployment/{running['ID']}").json()
    assert cancelled["Status"] == "cancelled"
    assert cancelled["StatusDescription"] == "Cancelled because job is stopped"


def test_templates_find_services_through_nomad_service(nomad_standin, nomad):
    """``nomadService`` renders the registrations' address and port (consul-template)."""
    nomad.post("/v1/jobs", json={"Job": web_job("db")})
    [reg] = until(lambda: nomad.get("/v1/service/db-svc").json(), bool)
    client = web_job("app")
    client["TaskGroups"][0]["Tasks"][0]["Templates"] = [
        {
            "EmbeddedTmpl": (
                '{{ range nomadService "db-svc" }}DB={{ .Address }}:{{ .Port }}{{ end }}\n'
            ),
            "DestPath": "local/db.env",
            "Envvars": True,
        }
    ]
    nomad.post("/v1/jobs", json={"Job": client})
    alloc = until(
        lambda: nomad.get("/v1/job/app/allocations").json(),
        lambda a: a and a[0]["ClientStatus"] == "running",
    )[0]
    rendered = nomad_standin.client.alloc_dir(alloc["ID"]) / "server" / "local" / "db.env"
    assert rendered.read_text() == f"DB=127.0.0.1:{reg['Port']}\n"


def test_a_host_volume_no_node_offers_blocks_the_group(nomad_standin, nomad):
    job = web_job("vol", Volumes={"data": {"Name": "data", "Type": "host", "Source": "pgdata"}})
    ev = nomad.post("/v1/jobs", json={"Job": job}).json()
    done = until(
        lambda: nomad.get(f"/v1/evaluation/{ev['EvalID']}").json(),
        lambda e: e["Status"] != "pending",
    )
    metric = done["FailedTGAllocs"]["web"]
    assert metric["ConstraintFiltered"] == {"missing compatible host volumes": 1}
    nomad_standin.add_node("with-volume", host_volumes={"pgdata": "/srv/pgdata"})
    alloc = until(lambda: nomad.get("/v1/job/vol/allocations").json(), bool)[0]
    assert alloc["NodeName"] == "with-volume"
    node = nomad.get(f"/v1/node/{alloc['NodeID']}").json()
    assert node["HostVolumes"] == {
        "pgdata": {"Name": "pgdata", "Path": "/srv/pgdata", "ReadOnly": False}
    }


def test_plan_answers_the_diff_and_the_updates_without_registering(nomad):
    job = web_job("planned")
    new = nomad.post("/v1/job/planned/plan", json={"Job": job, "Diff": True}).json()
    assert set(new) == {
        "Annotations",
        "CreatedEvals",
        "Diff",
        "FailedTGAllocs",
        "Index",
        "JobModifyIndex",
        "NextPeriodicLaunch",
        "Warnings",
    }
    assert new["Diff"]["Type"] == "Added" and new["JobModifyIndex"] == 0
    assert new["Annotations"]["DesiredTGUpdates"]["web"]["Place"] == 1
    assert new["Diff"]["TaskGroups"][0]["Updates"] == {"create": 1}
    assert nomad.get("/v1/job/planned").status_code == 404

    registered = nomad.post("/v1/jobs", json={"Job": job}).json()
    until(lambda: nomad.get("/v1/job/planned/allocations").json(), bool)
    same = nomad.post("/v1/job/planned/plan", json={"Job": job, "Diff": True}).json()
    assert same["Diff"]["Type"] == "None"
    assert same["JobModifyIndex"] == registered["JobModifyIndex"]
    assert same["Annotations"]["DesiredTGUpdates"]["web"]["Ignore"] == 1

    job["TaskGroups"][0]["Tasks"][0]["Env"] = {"MODE": "fast"}
    edited = nomad.post("/v1/job/planned/plan", json={"Job": job, "Diff": True}).json()
    assert edited["Diff"]["Type"] == "Edited"
    [group] = edited["Diff"]["TaskGroups"]
    assert group["Updates"] == {"create/destroy update": 1}
    [task] = group["Tasks"]
    assert task["Type"] == "Edited"
    [env] = [o for o in task["Objects"] if o["Name"] == "Env"]
    assert env["Fields"] == [
        {"Annotations": None, "Name": "MODE", "New": "fast", "Old": "", "Type": "Added"}
    ]
    assert nomad.get("/v1/job/planned").json()["Version"] == 0
