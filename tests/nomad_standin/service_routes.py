"""The stand-in's endpoints for service jobs: plan, deployments, services and checks.

``POST /v1/job/:id/plan`` (``plan``); ``GET /v1/job/:id/deployment`` (the latest
deployment, ``null`` when none), ``GET /v1/job/:id/deployments``, ``GET
/v1/deployment/:id``; ``GET /v1/services`` and ``GET /v1/service/:name``
(``structs.ServiceRegistration``); ``GET /v1/client/allocation/:id/checks``. Reads block
on ``?index`` as every list endpoint does. Registered by ``create_app`` before the
catch-all ``/v1/job/{job_id:path}`` routes, which would swallow these paths.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from .plan import plan_job
from .services import job_deployments

if TYPE_CHECKING:
    from .standin import NomadStandin

__all__ = ["add_service_routes"]

JsonDict = dict[str, Any]


def add_service_routes(
    app: FastAPI,
    standin: NomadStandin,
    *,
    check_acl: Callable[[Request], None],
    json_response: Callable[..., Response],
    block: Callable[[Request, Callable[[], int]], Awaitable[int]],
    read_body: Callable[[Request], Awaitable[JsonDict]],
    error: Callable[[int, str], Exception],
) -> None:
    state = standin.state

    def namespace_of(request: Request) -> str:
        return request.query_params.get("namespace") or "default"

    @app.post("/v1/job/{job_id:path}/plan")
    @app.put("/v1/job/{job_id:path}/plan")
    async def job_plan(job_id: str, request: Request) -> Response:
        check_acl(request)
        body = await read_body(request)
        raw = body.get("Job")
        if not isinstance(raw, dict):
            raise error(400, "Job must be specified")
        if raw.get("ID") != job_id:
            raise error(400, "Job ID does not match")
        namespace = request.query_params.get("namespace") or raw.get("Namespace") or "default"
        if namespace not in state.namespaces:
            raise error(500, f'nonexistent namespace "{namespace}"')
        with state.lock:
            plan = plan_job(state, raw, namespace, bool(body.get("Diff")))
        return json_response(plan, index=max(state.index, 1))

    @app.get("/v1/job/{job_id:path}/deployments")
    async def job_deployments_list(job_id: str, request: Request) -> Response:
        check_acl(request)
        index = await block(request, lambda: state.current_index("deployment"))
        with state.lock:
            found = job_deployments(state, namespace_of(request), job_id)
        return json_response(found, index)

    @app.get("/v1/job/{job_id:path}/deployment")
    async def job_deployment(job_id: str, request: Request) -> Response:
        check_acl(request)
        index = await block(request, lambda: state.current_index("deployment"))
        with state.lock:
            found = job_deployments(state, namespace_of(request), job_id)
        return json_response(found[0] if found else None, index)

    @app.get("/v1/deployment/{deployment_id}")
    async def deployment_read(deployment_id: str, request: Request) -> Response:
        check_acl(request)
        index = await block(request, lambda: state.current_index("deployment"))
        with state.lock:
            found = state.deployments.get(deployment_id)
        if found is None:
            raise error(404, "deployment not found")
        return json_response(found, index)

    @app.get("/v1/services")
    async def services_list(request: Request) -> Response:
        check_acl(request)
        namespace = namespace_of(request)
        index = await block(request, lambda: state.current_index("service_registrations"))
        by_ns: dict[str, dict[str, set[str]]] = {}
        with state.lock:
            for reg in state.services.values():
                if namespace in ("*", reg["Namespace"]):
                    tags = by_ns.setdefault(reg["Namespace"], {}).setdefault(
                        reg["ServiceName"], set()
                    )
                    tags.update(reg["Tags"])
        body = [
            {
                "Namespace": ns,
                "Services": [
                    {"ServiceName": n, "Tags": sorted(t)} for n, t in sorted(svcs.items())
                ],
            }
            for ns, svcs in sorted(by_ns.items())
        ]
        return json_response(body, index)

    @app.get("/v1/service/{name}")
    async def service_read(name: str, request: Request) -> Response:
        check_acl(request)
        namespace = namespace_of(request)
        index = await block(request, lambda: state.current_index("service_registrations"))
        with state.lock:
            regs = [
                dict(r)
                for r in sorted(state.services.values(), key=lambda r: r["CreateIndex"])
                if r["ServiceName"] == name and r["Namespace"] == namespace
            ]
        return json_response(regs, index)

    @app.get("/v1/namespace/{name}")
    async def namespace_read(name: str, request: Request) -> Response:
        check_acl(request)
        with state.lock:
            known = name in state.namespaces
        if not known:
            raise error(404, "namespace not found")
        body = {
            "Name": name,
            "Description": "Default shared namespace" if name == "default" else "",
            "Quota": "",
            "Capabilities": None,
            "NodePoolConfiguration": None,
            "Meta": None,
            "CreateIndex": 1,
            "ModifyIndex": 1,
        }
        return json_response(body, index=1)

    @app.get("/v1/client/allocation/{alloc_id}/checks")
    async def alloc_checks(alloc_id: str, request: Request) -> Response:
        check_acl(request)
        with state.lock:
            if alloc_id not in state.allocs:
                raise error(404, "Unknown allocation")
        return json_response(standin.health.check_results(alloc_id))
