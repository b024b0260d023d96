"""The pure parts of ``winslow deploy``: choosing and ordering jobs, overrides, verdicts,
and the plan's words."""

from __future__ import annotations

from pathlib import Path

import pytest

from winslow.deploy.diff import plan_lines
from winslow.deploy.health import HealthState, job_health
from winslow.deploy.jobs import DeployJob, apply_overrides, order_jobs, select_jobs
from winslow.errors import DeployError


def job(job_id: str, role: str, variant: str = "", after: tuple[str, ...] = ()) -> DeployJob:
    body = {"ID": job_id, "TaskGroups": [{"Name": "g", "Count": 1, "Tasks": [{"Name": "t"}]}]}
    return DeployJob(Path(f"{job_id}.json"), body, role, variant, after)


def test_a_circle_of_needs_is_refused_by_name() -> None:
    with pytest.raises(DeployError, match="The jobs a, b need each other"):
        order_jobs([job("a", "x", after=("y",)), job("b", "y", after=("x",))])


def test_a_storage_variant_no_file_has_is_refused_listing_those_that_exist() -> None:
    jobs = [job("m", "storage", "minio"), job("s", "storage", "seaweedfs")]
    assert [j.id for j in select_jobs(jobs, "seaweedfs")] == ["s"]
    with pytest.raises(
        DeployError, match=r"No storage variant 'ceph'; the job files have \['minio', 'seaweedfs'\]"
    ):
        select_jobs(jobs, "ceph")
    with pytest.raises(DeployError, match="No job or role 'nope'"):
        select_jobs(jobs, "minio", only=["nope"])


def test_an_override_reaches_one_task_and_refuses_a_task_the_job_lacks() -> None:
    base = job("a", "server").job
    changed = apply_overrides(
        base, {"TaskGroups": {"g": {"Count": 2, "Tasks": {"t": {"Driver": "exec"}}}}}
    )
    assert changed["TaskGroups"][0]["Count"] == 2
    assert changed["TaskGroups"][0]["Tasks"][0] == {"Name": "t", "Driver": "exec"}
    assert base["TaskGroups"][0]["Count"] == 1
    with pytest.raises(DeployError, match="Override names task 'x', which the job does not have"):
        apply_overrides(base, {"TaskGroups": {"g": {"Tasks": {"x": {}}}}})


def running_alloc(alloc_id: str, **fields: object) -> dict[str, object]:
    return {
        "ID": alloc_id,
        "JobVersion": 0,
        "DesiredStatus": "run",
        "ClientStatus": "running",
        **fields,
    }


def test_a_deployment_that_succeeded_but_lost_its_allocation_is_not_healthy_now() -> None:
    spec = {"Version": 0, "Status": "running", "TaskGroups": [{"Name": "g", "Count": 1}]}
    deployment = {
        "JobVersion": 0,
        "Status": "successful",
        "TaskGroups": {"g": {"DesiredTotal": 1, "HealthyAllocs": 1}},
    }
    healthy = job_health("a", spec, [running_alloc("1")], deployment, {})
    assert healthy.state is HealthState.HEALTHY
    failed_task = {
        "State": "dead",
        "Failed": True,
        "Events": [{"Type": "Terminated", "DisplayMessage": "Exit Code: 1"}],
    }
    gone = running_alloc("1", ClientStatus="failed", TaskStates={"t": failed_task})
    verdict = job_health("a", spec, [gone], deployment, {})
    assert verdict.state is HealthState.PROGRESSING
    assert (
        verdict.line()
        == "a: 0/1 healthy (deployment successful); allocation 1: task t: Terminated: Exit Code: 1"
    )


def test_without_a_deployment_running_allocations_with_passing_checks_are_healthy() -> None:
    spec = {"Version": 3, "Status": "running", "TaskGroups": [{"Name": "g", "Count": 2}]}
    allocs = [
        running_alloc("1", JobVersion=3),
        running_alloc("2", JobVersion=3),
        running_alloc("0", JobVersion=2),
    ]
    failing = {"c": {"Check": "alive", "Service": "web", "Status": "failure", "Output": "HTTP 500"}}
    verdict = job_health("a", spec, allocs, None, {"2": failing})
    assert (verdict.state, verdict.healthy, verdict.allocation) == (HealthState.PROGRESSING, 1, "2")
    assert verdict.reason == "check alive of service web is failure: HTTP 500"
    assert job_health("a", spec, allocs, None, {}).state is HealthState.HEALTHY


def test_a_new_job_plans_as_added_with_its_creates() -> None:
    plan = {
        "Diff": {
            "Type": "Added",
            "Fields": [{"Type": "Added", "Name": "Type", "Old": "", "New": "service"}],
            "Objects": [],
            "TaskGroups": [{"Type": "Added", "Name": "g", "Updates": {"create": 1}, "Tasks": []}],
        }
    }
    assert plan_lines("a", plan) == [
        '+ Job: "a"',
        '  + Type: "service"',
        '  + Task Group: "g" (1 create)',
    ]
