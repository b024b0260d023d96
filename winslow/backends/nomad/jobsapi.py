"""Nomad's endpoints for long-running jobs, as ``winslow deploy`` uses them.

Stage jobs need only what ``client.py`` wraps; service jobs also need the plan, the
deployment Nomad keeps per job version, the services a job registers and the results
of their checks. These ride on the same ``NomadClient`` (its transport, retries, token
and namespace), one method per endpoint, as ``client.py`` does:

    api = ServiceJobs(NomadClient(config))
    plan = api.plan(job)                       # what registering would change
    deployment, index = api.latest_deployment("winslow-server")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict, cast
from urllib.parse import quote

from winslow.errors import BackendError, SubmitRejectedError

if TYPE_CHECKING:
    from winslow.backends.nomad.client import NomadClient

__all__ = [
    "NomadCheckResult",
    "NomadDeployment",
    "NomadDeploymentGroup",
    "NomadJobPlanResponse",
    "NomadServiceRegistration",
    "ServiceJobs",
]


class NomadDeploymentGroup(TypedDict, total=False):
    """api.DeploymentState."""

    DesiredTotal: int
    PlacedAllocs: int
    HealthyAllocs: int
    UnhealthyAllocs: int
    ProgressDeadline: int
    RequireProgressBy: str


class NomadDeployment(TypedDict, total=False):
    """api.Deployment."""

    ID: str
    JobID: str
    JobVersion: int
    Status: str
    StatusDescription: str
    TaskGroups: dict[str, NomadDeploymentGroup]


class NomadJobPlanResponse(TypedDict, total=False):
    """api.JobPlanResponse."""

    JobModifyIndex: int
    Diff: dict[str, Any] | None
    Annotations: dict[str, Any] | None
    FailedTGAllocs: dict[str, Any] | None
    Warnings: str


class NomadServiceRegistration(TypedDict, total=False):
    """api.ServiceRegistration."""

    ID: str
    ServiceName: str
    AllocID: str
    Address: str
    Port: int
    Tags: list[str]


class NomadCheckResult(TypedDict, total=False):
    """api.CheckQueryResult (one check of an allocation, as its client last ran it)."""

    Check: str
    Service: str
    Status: str
    StatusCode: int
    Output: str
    Timestamp: int


class ServiceJobs:
    """Plan, deployments, services and checks of ``client``'s Nomad."""

    def __init__(self, client: NomadClient) -> None:
        self._client = client

    def plan(self, job: Mapping[str, Any], diff: bool = True) -> NomadJobPlanResponse:
        """POST /v1/job/:job_id/plan. Raises ``SubmitRejectedError`` when Nomad refuses the
        job itself, as registering it would."""
        job_id = str(job.get("ID", ""))
        path = f"/v1/job/{quote(job_id, safe='')}/plan"
        response = self._client._send("POST", path, body={"Job": dict(job), "Diff": diff})
        if response.is_success:
            return cast(NomadJobPlanResponse, self._client._json(response, f"POST {path}"))
        if 400 <= response.status_code < 500 and response.status_code not in (401, 403, 429):
            raise SubmitRejectedError(f"Nomad refused the plan of job {job_id}: {response.text}")
        raise self._client._error(response, f"POST {path}")

    def latest_deployment(
        self, job_id: str, index: int | None = None, wait: float | None = None
    ) -> tuple[NomadDeployment | None, int]:
        """GET /v1/job/:job_id/deployment: the newest deployment, None when there is none."""
        body, last = self._client._read(
            f"/v1/job/{quote(job_id, safe='')}/deployment", index=index, wait=wait
        )
        return cast(NomadDeployment | None, body or None), last

    def service(self, name: str) -> list[NomadServiceRegistration]:
        """GET /v1/service/:service_name: where the service's instances answer."""
        body, _ = self._client._read(f"/v1/service/{quote(name, safe='')}", missing=[])
        return cast(list[NomadServiceRegistration], body or [])

    def checks(self, alloc_id: str) -> dict[str, NomadCheckResult]:
        """GET /v1/client/allocation/:alloc_id/checks: check ID → latest result; empty for
        an allocation whose node no longer knows it."""
        try:
            body, _ = self._client._read(
                f"/v1/client/allocation/{quote(alloc_id, safe='')}/checks", missing={}
            )
        except BackendError:
            # A client that is gone cannot answer for its checks; health says why anyway.
            return {}
        return cast(dict[str, NomadCheckResult], body or {})

    def namespace_exists(self, name: str) -> bool:
        """GET /v1/namespace/:name: whether Nomad has the namespace."""
        body, _ = self._client._read(f"/v1/namespace/{quote(name, safe='')}")
        return body is not None

    def variable_keys(self, path: str) -> set[str] | None:
        """GET /v1/var/:path: the item names of a Nomad Variable (never their values);
        None when it does not exist."""
        body, _ = self._client._read(f"/v1/var/{quote(path, safe='/')}")
        if not body:
            return None
        return set((body.get("Items") or {}).keys())
