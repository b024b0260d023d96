"""The stand-in's HTTP API: Nomad's endpoints, status codes and wire formats.

Routes parse the request, read or write the ``State`` under its lock, and answer as a
Nomad agent does (``command/agent/http.go`` and friends): JSON bodies; errors as
``text/plain`` with Nomad's wording (``job not found`` 404, ``Permission denied`` 403,
``Enforcing job modify index 0: job already exists`` 500, a job that fails validation
500 with go-multierror's text); ``X-Nomad-Index``, ``X-Nomad-KnownLeader`` and
``X-Nomad-LastContact`` on reads, a 404 for a missing object included. A read with
``?index=N`` blocks until the index it reports passes N or ``wait`` (default 5 min, at
most 10, plus up to 1/16 jitter) ends, then answers the current state either way.

Allocations and evaluations are written without their empty fields, as go-msgpack
encodes the structs Nomad tags ``_struct`` omitempty (answers and events alike); list
stubs keep every field. ``/v1/allocations`` honours ``task_states`` and ``resources``.

``/v1/jobs`` and ``/v1/allocations`` page as Nomad's ``nomad/state/paginator`` does:
``per_page`` stubs (all when absent or 0; not a number is a 400), from the first whose
token is not below ``next_token``; when more are left, the token of the first one left
out comes back in ``X-Nomad-NextToken``. Jobs go in (namespace, ID) order with the token
``<namespace>.<ID>``; allocations in (create index, ID) order with ``<create index>.<ID>``,
compared index first as numbers (``CreateIndexAndIDTokenizer``), or in ID order with the
ID as token when listed by ``prefix`` (``IDTokenizer``).

``/v1/client/allocation/:id/stats`` answers the client's latest measurement of the
allocation's running tasks (see ``executor``), without an index, as client endpoints do;
``/v1/client/stats?node_id=`` the node's host statistics (``executor.Client.host_stats``).

Reads take ``?stale`` as every Nomad agent does (``command/agent/http.go``
``parseConsistency``: empty or a Go bool, anything else a 400). The stand-in is a single
server, its own leader, so a stale answer is the leader's answer.

``app.state.requests`` (a ``RequestCounter``) counts every request by method and route
as it arrives, and those that asked for a stale read: what the load benchmark and the
load tests measure Winslow's requests to Nomad with.

Streams: ``/v1/event/stream`` writes one JSON frame per line and ``{}`` heartbeats;
``/v1/client/fs/logs`` writes ``StreamFrame`` objects back to back with no separator
(base64 ``Data``, ``Offset`` = file offset after the frame's data), ``{}`` heartbeats
while following, or raw bytes with ``plain=true``. As on a real agent, following a log
does not end when the task does, unless the stand-in is told to close such streams.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import posixpath
import random
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from .gc import collect_garbage
from .scheduler import (
    eval_stub,
    new_eval,
    put_eval,
    put_job,
)
from .service_routes import add_service_routes
from .shapes import NOMAD_VERSION, canonical_job, job_spec_key, job_stub, omit_empty
from .state import alloc_terminal, now_ns
from .ui_routes import add_ui_routes

if TYPE_CHECKING:
    from .standin import NomadStandin

__all__ = ["RequestCounter", "create_app"]

JsonDict = dict[str, Any]
MAX_WAIT_SECONDS = 600.0
DEFAULT_WAIT_SECONDS = 300.0
LOG_FRAME_SIZE = 64 * 1024
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


# Struct-valued (not pointer) fields of ``structs.Allocation``: empty when all theirs are.
ALLOC_VALUE_STRUCTS = frozenset({"DesiredTransition"})


class NomadError(Exception):
    """An error answer: Nomad writes the status and the bare message as text.

    ``index``: a read that found nothing still sets its query meta first
    (``setMeta`` before ``CodedError(404, ...)`` in ``command/agent/*_endpoint.go``), so
    the answer carries ``X-Nomad-Index`` (the table's index), ``X-Nomad-KnownLeader``
    and ``X-Nomad-LastContact``.
    """

    def __init__(self, status: int, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.index = index


class RequestCounter:
    """The requests the stand-in was sent, by ``"METHOD /route"`` (the route as the app
    declares it: ``GET /v1/job/{job_id:path}/allocations``), and how many of them asked
    for a stale read. Thread-safe: the server counts, a test or a benchmark reads.

        counter = standin.app.state.requests
        counter.reset()
        ...
        counter.total(), counter.counts()["GET /v1/job/{job_id:path}"], counter.stale
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self.stale = 0

    def count(self, route: str, stale: bool) -> None:
        with self._lock:
            self._counts[route] += 1
            self.stale += stale

    def counts(self) -> dict[str, int]:
        """Requests per route since the last ``reset``."""
        with self._lock:
            return dict(self._counts)

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self.stale = 0


class CountRequests:
    """ASGI middleware: count each request by its route as it arrives, and answer a
    ``stale`` that is no bool as Nomad's ``parseConsistency`` does (400)."""

    def __init__(self, app: ASGIApp, counter: RequestCounter, routes: Sequence[BaseRoute]):
        self.app = app
        self.counter = counter
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = next(
            (
                getattr(r, "path", scope["path"])
                for r in self.routes
                if r.matches(scope)[0] is not Match.NONE
            ),
            scope["path"],
        )
        query = parse_qs(scope.get("query_string", b"").decode(), keep_blank_values=True)
        stale = query.get("stale")
        wanted = False
        if stale is not None and scope["method"] == "GET" and route != "/v1/event/stream":
            try:
                wanted = stale[0] == "" or _parse_bool(stale[0])
            except ValueError:
                self.counter.count(f"{scope['method']} {route}", False)
                message = (
                    f"Expect `true` or `false` for `stale` query string parameter, got {stale[0]}"
                )
                await PlainTextResponse(message, status_code=400)(scope, receive, send)
                return
        self.counter.count(f"{scope['method']} {route}", wanted)
        await self.app(scope, receive, send)


def query_meta(index: int) -> dict[str, str]:
    """The headers of ``setMeta`` (``command/agent/http.go``) for a read at ``index``."""
    return {"X-Nomad-Index": str(index), "X-Nomad-KnownLeader": "true", "X-Nomad-LastContact": "0"}


def alloc_json(alloc: JsonDict) -> JsonDict:
    """A ``structs.Allocation`` as Nomad encodes it: without its empty fields."""
    return omit_empty(alloc, ALLOC_VALUE_STRUCTS)


def eval_json(ev: JsonDict) -> JsonDict:
    """A ``structs.Evaluation`` as Nomad encodes it: without its empty fields
    (``RelatedEvals`` included, unless ``?related=true`` filled it)."""
    return omit_empty(ev)


def event_json(event: JsonDict) -> JsonDict:
    """An event as the stream encodes it: its Allocation or Evaluation payload without
    empty fields (the allocation's ``Job`` is nil in events, so it is left out too)."""
    topic = event["Topic"]
    payload = (event.get("Payload") or {}).get(topic)
    if topic == "Allocation" and isinstance(payload, dict):
        return {**event, "Payload": {topic: alloc_json(payload)}}
    if topic == "Evaluation" and isinstance(payload, dict):
        return {**event, "Payload": {topic: eval_json(payload)}}
    return event


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string such as ``5s``, ``1m30s`` or ``250ms``."""
    scale = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    pos, total = 0, 0.0
    if text in ("0", ""):
        return 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            raise ValueError(text)
        total += float(match.group(1)) * scale[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(text)
    return total


def _multierror(errors: list[str]) -> str:
    """go-multierror's text, which Nomad returns for a job that fails validation."""
    if len(errors) == 1:
        return f"1 error occurred:\n\t* {errors[0]}\n\n"
    points = "\n\t".join(f"* {e}" for e in errors)
    return f"{len(errors)} errors occurred:\n\t{points}\n\n"


def _nested(text: str) -> str:
    # A nested multierror prints inside its parent's line, minus its trailing blank lines.
    return text.rstrip("\n")


def validate_job(raw: JsonDict) -> list[str]:
    """The checks of ``structs.Job.Validate`` a stage job can trip; messages are Nomad's."""
    errors: list[str] = []
    if " " in str(raw.get("ID", "")):
        errors.append("Job ID contains a space")
    if raw.get("Type") not in (None, "", "service", "batch", "system", "sysbatch"):
        errors.append(f'Invalid job type: "{raw.get("Type")}"')
    groups = raw.get("TaskGroups") or []
    if not groups:
        errors.append("Missing job task groups")
    seen: dict[str, int] = {}
    for idx, group in enumerate(groups):
        name = group.get("Name") or ""
        if not name:
            errors.append(f"Job task group {idx + 1} missing name")
        elif name in seen:
            errors.append(
                f"Job task group {idx + 1} redefines '{name}' from group {seen[name] + 1}"
            )
        else:
            seen[name] = idx
    for group in groups:
        group_errors: list[str] = []
        tasks = group.get("Tasks") or []
        if not tasks:
            group_errors.append("Missing tasks for task group")
        for idx, task in enumerate(tasks):
            task_errors = []
            if not task.get("Name"):
                task_errors.append("Missing task name")
            if not task.get("Driver"):
                task_errors.append("Missing task driver")
            if task_errors:
                label = task.get("Name") or str(idx + 1)
                group_errors.append(
                    f"Task {label} validation failed: {_nested(_multierror(task_errors))}"
                )
        if group_errors:
            errors.append(
                f"Task group {group.get('Name') or ''} validation failed: "
                f"{_nested(_multierror(group_errors))}"
            )
    return errors


def page_of(request: Request) -> tuple[int, str]:
    """``per_page`` and ``next_token`` as ``parsePagination`` reads them."""
    raw = request.query_params.get("per_page", "")
    try:
        per_page = int(raw) if raw else 0
    except ValueError:
        raise NomadError(400, "Expect a number for `per_page` query string parameter") from None
    return per_page, request.query_params.get("next_token", "")


def paginate(
    listed: list[tuple[str, JsonDict]], per_page: int, reached: Callable[[str], bool]
) -> tuple[list[JsonDict], str]:
    """One page of ``listed`` (token, item) pairs in order: the items from the first whose
    token ``reached`` the next token, ``per_page`` of them, and the token of the one
    after (empty at the end), as ``Paginator.Page`` gives them."""
    start = next((i for i, (token, _) in enumerate(listed) if reached(token)), len(listed))
    rest = listed[start:]
    if per_page < 0:  # the first item already passes the count: none, and its token
        return [], rest[0][0] if rest else ""
    if per_page == 0 or len(rest) <= per_page:
        return [item for _, item in rest], ""
    return [item for _, item in rest[:per_page]], rest[per_page][0]


def _not_before(target: str) -> Callable[[str], bool]:
    """``CreateIndexAndIDTokenizer``: ``<index>.<id>`` tokens compared index first, as
    numbers; a target that is not of that shape compares as a string."""
    index, _, alloc_id = target.partition(".")
    if not target or not index.isdigit() or not alloc_id:
        return lambda token: token >= target
    wanted = (int(index), alloc_id)

    def reached(token: str) -> bool:
        created, _, rest = token.partition(".")
        return (int(created), rest) >= wanted

    return reached


def create_app(standin: NomadStandin) -> FastAPI:
    """The FastAPI app serving ``standin``'s state."""
    app = FastAPI(title="Nomad stand-in", openapi_url=None, docs_url=None, redoc_url=None)
    state = standin.state
    app.state.requests = RequestCounter()
    app.add_middleware(CountRequests, counter=app.state.requests, routes=app.router.routes)

    @app.exception_handler(NomadError)
    async def nomad_error(_request: Request, exc: NomadError) -> Response:
        headers = query_meta(exc.index) if exc.index is not None else None
        return PlainTextResponse(exc.message, status_code=exc.status, headers=headers)

    # --- helpers ------------------------------------------------------------------------

    def check_acl(request: Request, capability: str | None = None) -> None:
        if capability is not None and capability in standin.denied_capabilities:
            # A token whose policy lacks the namespace capability (acl.AllowNsOp fails):
            # the endpoint answers structs.ErrPermissionDenied.
            raise NomadError(403, "Permission denied")
        if standin.token is None:
            return
        token = request.headers.get("X-Nomad-Token", "")
        auth = request.headers.get("Authorization", "")
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if not token:
            # The anonymous token, with no anonymous policy: Nomad's answer.
            raise NomadError(403, "Permission denied")
        if token != standin.token:
            raise NomadError(403, "ACL token not found")

    def namespace_of(request: Request) -> str:
        return request.query_params.get("namespace") or "default"

    def json_response(
        body: Any, index: int | None = None, status: int = 200, next_token: str = ""
    ) -> Response:
        headers = {"X-Nomad-KnownLeader": "true", "X-Nomad-LastContact": "0"}
        if index is not None:
            headers = query_meta(index)
        if next_token:
            headers["X-Nomad-NextToken"] = next_token
        return Response(
            content=json.dumps(body, separators=(",", ":")),
            status_code=status,
            media_type="application/json",
            headers=headers,
        )

    def register_response(ev: JsonDict, job: JsonDict, index: int) -> Response:
        """The body of a job register (or evaluate) answer."""
        return json_response(
            {
                "EvalID": ev["ID"],
                "EvalCreateIndex": index,
                "JobModifyIndex": job["JobModifyIndex"],
                "Warnings": "",
                "Index": index,
                "LastContact": 0,
                "KnownLeader": False,
            },
            index=index,
        )

    async def block(request: Request, index_of: Callable[[], int]) -> int:
        """Wait as a blocking query does; return the index to report."""
        query = request.query_params
        min_index = 0
        if query.get("index"):
            try:
                min_index = int(query["index"])
            except ValueError:
                raise NomadError(400, "Invalid index") from None
        wait = DEFAULT_WAIT_SECONDS
        if query.get("wait"):
            try:
                wait = parse_go_duration(query["wait"])
            except ValueError:
                raise NomadError(400, "Invalid wait time") from None
        if min_index <= 0:
            return index_of()
        wait = min(wait or DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS)
        wait += random.uniform(0, wait / 16)  # Nomad's jitter spreads reconnecting clients
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not standin.closing:
            index = index_of()
            if index > min_index:
                return index
            await asyncio.sleep(0.02)
        return index_of()

    def table_or(obj_index: Callable[[], int | None], table: str) -> Callable[[], int]:
        def index() -> int:
            with state.lock:
                value = obj_index()
                return max(value if value is not None else state.current_index(table), 1)

        return index

    async def read_body(request: Request) -> JsonDict:
        raw = await request.body()
        if not raw:
            raise NomadError(400, "Request body is empty")
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise NomadError(400, str(exc)) from None
        if not isinstance(body, dict):
            raise NomadError(
                400, "json: cannot unmarshal into Go value of type api.JobRegisterRequest"
            )
        return body

    # --- status and agent -----------------------------------------------------------------

    @app.get("/v1/status/leader")
    async def status_leader() -> Response:
        return json_response("127.0.0.1:4647")

    @app.put("/v1/system/gc")
    async def system_gc(request: Request) -> Response:
        # Nomad enqueues the forced GC and answers at once with no body; done here before
        # answering, which a caller waiting for the collection cannot tell apart.
        check_acl(request)
        collect_garbage(state)
        return Response(status_code=200)

    @app.get("/v1/agent/self")
    async def agent_self(request: Request) -> Response:
        check_acl(request)
        return json_response(
            {
                "config": {
                    "Region": "global",
                    "Datacenter": "dc1",
                    "NodeName": "standin",
                    "Version": {
                        "Version": NOMAD_VERSION,
                        "Prerelease": "",
                        "Metadata": "standin",
                    },
                    "ACL": {"Enabled": standin.token is not None},
                    "Server": {"Enabled": True},
                    "Client": {"Enabled": True},
                },
                "member": {
                    "Name": "standin.global",
                    "Addr": "127.0.0.1",
                    "Port": 4648,
                    "Tags": {
                        "region": "global",
                        "dc": "dc1",
                        "build": NOMAD_VERSION,
                        "role": "nomad",
                    },
                    "Status": "alive",
                },
                "stats": {"nomad": {"leader": "true", "server": "true"}},
            }
        )

    # --- jobs ---------------------------------------------------------------------------

    async def register(request: Request, path_id: str | None) -> Response:
        check_acl(request)
        body = await read_body(request)
        raw = body.get("Job")
        if not isinstance(raw, dict):
            raise NomadError(400, "Job must be specified")
        if not raw.get("ID"):
            raise NomadError(400, "Job ID hasn't been provided")
        if path_id is not None and raw["ID"] != path_id:
            raise NomadError(400, "Job ID does not match name")
        namespace = request.query_params.get("namespace") or raw.get("Namespace") or "default"
        if namespace not in state.namespaces:
            raise NomadError(500, f'nonexistent namespace "{namespace}"')
        errors = validate_job(raw)
        pool = raw.get("NodePool") or "default"
        if pool not in state.node_pools:
            # The node pool admission hook runs before Job.Validate; one multierror holds both
            # (nomad/job_endpoint.go NewJobEndpoints, job_endpoint_hook_node_pool.go).
            errors.insert(0, f'job "{raw["ID"]}" is in nonexistent node pool "{pool}"')
        if errors:
            raise NomadError(500, _multierror(errors))
        enforce = bool(body.get("EnforceIndex"))
        want_index = int(body.get("JobModifyIndex") or 0)
        with state.lock:
            existing = state.job(namespace, raw["ID"])
            if enforce:
                prefix = "Enforcing job modify index"
                if existing is None and want_index != 0:
                    raise NomadError(500, f"{prefix} {want_index}: job does not exist")
                if existing is not None and want_index == 0:
                    raise NomadError(500, f"{prefix} 0: job already exists")
                if existing is not None and want_index != existing["JobModifyIndex"]:
                    raise NomadError(
                        500,
                        f"{prefix} {want_index}: job exists with conflicting job modify index: "
                        f"{existing['JobModifyIndex']}",
                    )
            job = canonical_job(raw, namespace, now_ns())
            changed = existing is None or job_spec_key(job) != job_spec_key(existing)
            with state.txn("JobRegistered") as index:
                if existing is None:
                    job.update(CreateIndex=index, JobModifyIndex=index)
                elif changed:
                    job.update(
                        CreateIndex=existing["CreateIndex"],
                        JobModifyIndex=index,
                        Version=existing["Version"] + 1,
                        Status=existing["Status"],
                    )
                else:
                    job = existing
                if changed:
                    put_job(state, job)
                ev = new_eval(job, "job-register", index)
                put_eval(state, ev)
        standin.scheduler.enqueue(ev["ID"])
        return register_response(ev, job, index)

    @app.post("/v1/jobs")
    @app.put("/v1/jobs")
    async def jobs_register(request: Request) -> Response:
        return await register(request, None)

    @app.get("/v1/jobs")
    async def jobs_list(request: Request) -> Response:
        check_acl(request)
        namespace = namespace_of(request)
        prefix = request.query_params.get("prefix", "")
        with_meta = request.query_params.get("meta", "") in ("true", "1")
        per_page, after = page_of(request)
        index = await block(request, lambda: state.current_index("jobs"))
        with state.lock:
            listed = [
                (f"{ns}.{job_id}", job)
                for (ns, job_id), job in sorted(state.jobs.items())
                if (namespace == "*" or ns == namespace) and job_id.startswith(prefix)
            ]
            jobs, next_token = paginate(listed, per_page, lambda token: token >= after)
            stubs = [job_stub(job, _summary(job), with_meta) for job in jobs]
        return json_response(stubs, index, next_token=next_token)

    def _summary(job: JsonDict) -> JsonDict:
        groups: JsonDict = {
            g["Name"]: {
                "Queued": 0,
                "Complete": 0,
                "Failed": 0,
                "Running": 0,
                "Starting": 0,
                "Lost": 0,
                "Unknown": 0,
            }
            for g in job["TaskGroups"]
        }
        for alloc in state.job_allocs(job["Namespace"], job["ID"]):
            counts = groups.get(alloc["TaskGroup"])
            if counts is None:
                continue
            key = {
                "pending": "Starting",
                "running": "Running",
                "complete": "Complete",
                "failed": "Failed",
                "lost": "Lost",
            }.get(alloc["ClientStatus"], "Unknown")
            counts[key] += 1
        for ev in state.job_evals(job["Namespace"], job["ID"]):
            if ev["Status"] == "blocked":
                for name, queued in (ev["QueuedAllocations"] or {}).items():
                    if name in groups:
                        groups[name]["Queued"] = queued
                for name in ev["FailedTGAllocs"] or {}:
                    if name in groups and not groups[name]["Queued"]:
                        groups[name]["Queued"] = 1
        return {
            "JobID": job["ID"],
            "Namespace": job["Namespace"],
            "Summary": groups,
            "Children": {"Pending": 0, "Running": 0, "Dead": 0},
            "CreateIndex": job["CreateIndex"],
            "ModifyIndex": job["ModifyIndex"],
        }

    @app.post("/v1/job/{job_id:path}/evaluate")
    async def job_evaluate(job_id: str, request: Request) -> Response:
        check_acl(request)
        namespace = namespace_of(request)
        with state.lock:
            job = state.job(namespace, job_id)
            if job is None:
                raise NomadError(500, "job not found")
            with state.txn("EvaluationUpdated") as index:
                ev = new_eval(job, "job-register", index)
                put_eval(state, ev)
        standin.scheduler.enqueue(ev["ID"])
        return register_response(ev, job, index)

    @app.get("/v1/job/{job_id:path}/allocations")
    async def job_allocations(job_id: str, request: Request) -> Response:
        check_acl(request)
        namespace = namespace_of(request)
        include_all = request.query_params.get("all", "") in ("true", "1")
        index = await block(request, lambda: state.current_index("allocs"))
        with state.lock:
            job = state.job(namespace, job_id)
            allocs = [
                _alloc_stub(a)
                for a in state.job_allocs(namespace, job_id)
                if include_all or job is None or a["Job"]["CreateIndex"] == job["CreateIndex"]
            ]
        return json_response(allocs, index)

    @app.get("/v1/job/{job_id:path}/evaluations")
    async def job_evaluations(job_id: str, request: Request) -> Response:
        check_acl(request)
        namespace = namespace_of(request)
        index = await block(request, lambda: state.current_index("evals"))
        with state.lock:
            evals = [eval_json(e) for e in state.job_evals(namespace, job_id)]
        return json_response(evals, index)

    @app.get("/v1/job/{job_id:path}/summary")
    async def job_summary(job_id: str, request: Request) -> Response:
        check_acl(request)
        namespace = namespace_of(request)
        index = await block(request, lambda: state.current_index("jobs"))
        with state.lock:
            job = state.job(namespace, job_id)
            if job is None:
                raise NomadError(404, "job not found", index)
            return json_response(_summary(job), index)

    add_ui_routes(app, standin)
    add_service_routes(
        app,
        standin,
        check_acl=check_acl,
        json_response=json_response,
        block=block,
        read_body=read_body,
        error=NomadError,
    )

    @app.get("/v1/job/{job_id:path}")
    async def job_read(job_id: str, request: Request) -> Response:
        check_acl(request)
        namespace = namespace_of(request)

        def job_index() -> int | None:
            job = state.job(namespace, job_id)
            return job["ModifyIndex"] if job else None

        index = await block(request, table_or(job_index, "jobs"))
        with state.lock:
            job = state.job(namespace, job_id)
            if job is None:
                raise NomadError(404, "job not found", index)
            return json_response(job, index)

    @app.post("/v1/job/{job_id:path}")
    @app.put("/v1/job/{job_id:path}")
    async def job_update(job_id: str, request: Request) -> Response:
        return await register(request, job_id)

    @app.delete("/v1/job/{job_id:path}")
    async def job_delete(job_id: str, request: Request) -> Response:
        check_acl(request)
        namespace = namespace_of(request)
        purge = request.query_params.get("purge", "") in ("true", "1")
        with state.lock:
            job = state.job(namespace, job_id)
            if job is None:
                # Nomad answers a deregister of an unknown job with an empty success.
                return json_response(
                    {
                        "EvalID": "",
                        "EvalCreateIndex": 0,
                        "JobModifyIndex": 0,
                        "VolumeEvalID": "",
                        "VolumeEvalIndex": 0,
                        "Index": 0,
                        "LastContact": 0,
                        "KnownLeader": False,
                    },
                    index=0,
                )
            with state.txn("JobDeregistered") as index:
                if purge:
                    put_job(state, job, deleted=True)
                elif not job["Stop"]:
                    job["Stop"] = True
                    job["Version"] += 1
                    job["JobModifyIndex"] = index
                    put_job(state, job)
                ev = new_eval(job, "job-deregister", index, JobModifyIndex=index)
                put_eval(state, ev)
        standin.scheduler.enqueue(ev["ID"])
        return json_response(
            {
                "EvalID": ev["ID"],
                "EvalCreateIndex": index,
                "JobModifyIndex": index,
                "VolumeEvalID": "",
                "VolumeEvalIndex": 0,
                "Index": index,
                "LastContact": 0,
                "KnownLeader": False,
            },
            index=index,
        )

    # --- allocations and evaluations ----------------------------------------------------

    def _alloc_stub(
        alloc: JsonDict, *, resources: bool = False, task_states: bool = True
    ) -> JsonDict:
        """``Allocation.Stub``: ``AllocatedResources`` only with ``resources``
        (``json:",omitempty"``), ``TaskStates`` null without ``task_states``."""
        keys = (
            "ID",
            "EvalID",
            "Name",
            "Namespace",
            "NodeID",
            "NodeName",
            "JobID",
            "TaskGroup",
            "DesiredStatus",
            "DesiredDescription",
            "ClientStatus",
            "ClientDescription",
            "DesiredTransition",
            "TaskStates",
            "DeploymentStatus",
            "FollowupEvalID",
            "NextAllocation",
            "RescheduleTracker",
            "PreemptedAllocations",
            "PreemptedByAllocation",
            "CreateIndex",
            "ModifyIndex",
            "CreateTime",
            "ModifyTime",
        )
        stub = {key: alloc[key] for key in keys}
        stub["JobType"] = alloc["Job"]["Type"]
        stub["JobVersion"] = alloc["Job"]["Version"]
        if resources:
            stub["AllocatedResources"] = alloc["AllocatedResources"]
        if not task_states:
            stub["TaskStates"] = None
        return stub

    def query_bool(request: Request, field: str) -> bool | None:
        """``parseBool`` of ``command/agent/http.go``: None when the parameter is absent."""
        text = request.query_params.get(field, "")
        if not text:
            return None
        try:
            return _parse_bool(text)
        except ValueError as exc:
            raise NomadError(
                500, f'Failed to parse value of "{field}" ({text}) as a bool: {exc}'
            ) from None

    @app.get("/v1/allocations")
    async def allocations(request: Request) -> Response:
        check_acl(request)
        namespace = namespace_of(request)
        prefix = request.query_params.get("prefix", "")
        # Nomad keeps TaskStates unless asked not to (structs.NewAllocStubFields).
        resources = bool(query_bool(request, "resources"))
        task_states = query_bool(request, "task_states") is not False
        per_page, after = page_of(request)
        index = await block(request, lambda: state.current_index("allocs"))
        with state.lock:
            chosen = [
                a
                for a in state.allocs.values()
                if (namespace == "*" or a["Namespace"] == namespace) and a["ID"].startswith(prefix)
            ]
            if prefix:
                listed = [(a["ID"], a) for a in sorted(chosen, key=lambda a: a["ID"])]
                allocs, next_token = paginate(listed, per_page, lambda token: token >= after)
            else:
                order = sorted(chosen, key=lambda a: (a["CreateIndex"], a["ID"]))
                listed = [(f"{a['CreateIndex']}.{a['ID']}", a) for a in order]
                allocs, next_token = paginate(listed, per_page, _not_before(after))
            out = [_alloc_stub(a, resources=resources, task_states=task_states) for a in allocs]
        return json_response(out, index, next_token=next_token)

    @app.get("/v1/allocation/{alloc_id}")
    async def allocation(alloc_id: str, request: Request) -> Response:
        check_acl(request)

        def alloc_index() -> int | None:
            alloc = state.allocs.get(alloc_id)
            return alloc["ModifyIndex"] if alloc else None

        index = await block(request, table_or(alloc_index, "allocs"))
        with state.lock:
            alloc = state.allocs.get(alloc_id)
            if alloc is None:
                raise NomadError(404, "alloc not found", index)
            return json_response(alloc_json(alloc), index)

    @app.get("/v1/evaluations")
    async def evaluations(request: Request) -> Response:
        check_acl(request)
        namespace = namespace_of(request)
        index = await block(request, lambda: state.current_index("evals"))
        with state.lock:
            out = [
                eval_json(e)
                for e in sorted(state.evals.values(), key=lambda e: e["CreateIndex"])
                if namespace == "*" or e["Namespace"] == namespace
            ]
        return json_response(out, index)

    @app.get("/v1/evaluation/{eval_id}")
    async def evaluation(eval_id: str, request: Request) -> Response:
        check_acl(request)
        related = request.query_params.get("related", "") in ("true", "1")

        def eval_index() -> int | None:
            ev = state.evals.get(eval_id)
            return ev["ModifyIndex"] if ev else None

        index = await block(request, table_or(eval_index, "evals"))
        with state.lock:
            ev = state.evals.get(eval_id)
            if ev is None:
                raise NomadError(404, "eval not found", index)
            out = dict(ev)
            if related:
                # Nomad lists the chain this eval belongs to (previous, next, blocked).
                out["RelatedEvals"] = [
                    eval_stub(e)
                    for e in state.job_evals(ev["Namespace"], ev["JobID"])
                    if e["ID"] != ev["ID"]
                    and (
                        e["ID"] in (ev["PreviousEval"], ev["BlockedEval"], ev["NextEval"])
                        or ev["ID"] in (e["PreviousEval"], e["BlockedEval"], e["NextEval"])
                    )
                ]
            return json_response(eval_json(out), index)

    # --- nodes ----------------------------------------------------------------------------

    @app.get("/v1/nodes")
    async def nodes(request: Request) -> Response:
        check_acl(request)
        with_resources = request.query_params.get("resources", "") in ("true", "1")
        prefix = request.query_params.get("prefix", "")
        index = await block(request, lambda: state.current_index("nodes"))
        with state.lock:
            out = [
                n.stub(with_resources)
                for n in sorted(state.nodes.values(), key=lambda n: n.name)
                if n.id.startswith(prefix)
            ]
        return json_response(out, index)

    @app.get("/v1/node/{node_id}")
    async def node(node_id: str, request: Request) -> Response:
        check_acl(request)

        def node_index() -> int | None:
            found = state.nodes.get(node_id)
            return found.modify_index if found else None

        index = await block(request, table_or(node_index, "nodes"))
        with state.lock:
            found = state.nodes.get(node_id)
            if found is None:
                raise NomadError(404, "node not found", index)
            return json_response(found.to_json(), index)

    @app.get("/v1/node/{node_id}/allocations")
    async def node_allocations(node_id: str, request: Request) -> Response:
        check_acl(request)
        index = await block(request, lambda: state.current_index("allocs"))
        with state.lock:
            out = [alloc_json(a) for a in state.allocs.values() if a["NodeID"] == node_id]
        return json_response(out, index)

    # --- variables ------------------------------------------------------------------------

    @app.get("/v1/vars")
    async def variables_list(request: Request) -> Response:
        check_acl(request)
        namespace = namespace_of(request)
        prefix = request.query_params.get("prefix", "")
        index = await block(request, lambda: state.current_index("variables"))
        with state.lock:
            out = [
                {k: v for k, v in var.items() if k != "Items"}
                for (ns, path), var in sorted(state.variables.items())
                if (namespace == "*" or ns == namespace) and path.startswith(prefix)
            ]
        return json_response(out, index)

    @app.get("/v1/var/{path:path}")
    async def variable_read(path: str, request: Request) -> Response:
        check_acl(request)
        namespace = namespace_of(request)

        def var_index() -> int | None:
            var = state.variables.get((namespace, path))
            return var["ModifyIndex"] if var else None

        index = await block(request, table_or(var_index, "variables"))
        with state.lock:
            var = state.variables.get((namespace, path))
            if var is None:
                raise NomadError(404, "variable not found", index)
            return json_response(var, index)

    @app.put("/v1/var/{path:path}")
    @app.post("/v1/var/{path:path}")
    async def variable_write(path: str, request: Request) -> Response:
        check_acl(request)
        namespace = namespace_of(request)
        body = await read_body(request)
        items = body.get("Items")
        if not items:
            raise NomadError(400, "variable missing required Items object")
        cas = request.query_params.get("cas")
        with state.lock:
            current = state.variables.get((namespace, path))
            if cas is not None:
                try:
                    want = int(cas)
                except ValueError:
                    raise NomadError(400, f"can not parse cas: {cas}") from None
                have = current["ModifyIndex"] if current else 0
                if want != have:
                    conflict = current or {"Namespace": namespace, "Path": path}
                    return json_response(conflict, index=have, status=409)
            var = standin.write_variable(
                path, {str(k): str(v) for k, v in items.items()}, namespace
            )
        return json_response(var, var["ModifyIndex"])

    @app.delete("/v1/var/{path:path}")
    async def variable_delete(path: str, request: Request) -> Response:
        check_acl(request)
        namespace = namespace_of(request)
        with state.lock, state.txn("VariableDeleted") as index:
            state.touch("variables")
            state.variables.pop((namespace, path), None)
        return Response(status_code=204, headers={"X-Nomad-Index": str(index)})

    # --- event stream ---------------------------------------------------------------------

    @app.get("/v1/event/stream")
    async def event_stream(request: Request) -> Response:
        check_acl(request)
        query = request.query_params
        try:
            index = int(query.get("index") or 0)
        except ValueError as exc:
            raise NomadError(400, f"Unable to parse index: {exc}") from None
        topics: dict[str, list[str]] = {}
        for raw in query.getlist("topic"):
            parts = raw.split(":")
            if len(parts) > 2:
                raise NomadError(
                    400,
                    "Invalid topic query: error parsing topics: "
                    f"Invalid key value pair for topic, topic: {raw}",
                )
            topics.setdefault(parts[0], []).append(parts[1] if len(parts) == 2 else "*")
        if not topics:
            topics = {"*": ["*"]}
        sub = state.subscribe(index, topics, namespace_of(request))

        async def frames() -> AsyncIterator[bytes]:
            # Current Nomad opens every stream with a heartbeat.
            yield b"{}\n"
            last_beat = time.monotonic()
            last_check = last_beat
            while not standin.closing:
                batch = state.read_frames(sub)
                if batch is None:
                    return
                for frame_index, events in batch:
                    frame = {"Index": frame_index, "Events": [event_json(e) for e in events]}
                    yield json.dumps(frame, separators=(",", ":")).encode() + b"\n"
                now = time.monotonic()
                if now - last_beat >= standin.heartbeat_interval:
                    last_beat = now
                    if not standin.heartbeats_paused:
                        yield b"{}\n"
                if now - last_check > 0.5:
                    last_check = now
                    if await request.is_disconnected():
                        return
                await asyncio.sleep(0.02)

        return StreamingResponse(
            frames(), media_type="application/json", headers={"Cache-Control": "no-cache"}
        )

    # --- files -----------------------------------------------------------------------------

    @app.get("/v1/client/fs/readat/{alloc_id}")
    async def read_at(alloc_id: str, request: Request) -> Response:
        """Raw bytes of a file in the allocation folder, as Nomad's ``fs readat`` gives.

        The agent checks its parameters first (``command/agent/fs_endpoint.go``
        FileReadAtRequest: no path 400, an offset or limit that is not an integer 500),
        then the client streams the file (``client/fs_endpoint.go`` stream): an unknown
        allocation 404, a path that escapes the allocation folder, does not exist or is
        a folder 400 (``AllocDir.Stat``), a task's secrets 500 (``AllocDir.ReadAt``).
        """
        check_acl(request, "read-fs")
        query = request.query_params
        rel = query.get("path", "")
        if not rel:
            raise NomadError(400, "must provide a file name")
        offset = _parse_int(query.get("offset", ""), "offset")
        limit = _parse_int(query["limit"], "limit") if query.get("limit") else 0
        with state.lock:
            alloc = state.allocs.get(alloc_id)
            if alloc is None:
                raise NomadError(404, f'Unknown allocation "{alloc_id}"')
            tasks = [t["Name"] for g in alloc["Job"]["TaskGroups"] for t in g["Tasks"]]
        # escapingfs.PathEscapesAllocViaRelative: joined (not rooted) under a stand-in base.
        base = "/alloc-dir/alloc-id"
        if posixpath.relpath(posixpath.normpath(f"{base}/{rel}"), base).startswith(".."):
            raise NomadError(400, "Path escapes the alloc directory")
        root = standin.client.alloc_dir(alloc_id)
        path = Path(os.path.normpath(root / rel.lstrip("/")))
        if not path.exists():
            raise NomadError(400, f"stat {path}: no such file or directory")
        if path.is_dir():
            raise NomadError(400, f"file {json.dumps(rel)} is a directory")
        for task in tasks:
            for private, what in (("secrets", "secret"), ("private", "private")):
                folder = str(root / task / private)
                if str(path).lower().startswith(folder.lower()):
                    raise NomadError(500, f"Reading {what} file prohibited: {rel}")
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(limit) if limit > 0 else handle.read()
        return Response(data, media_type="application/octet-stream")

    # --- resource usage --------------------------------------------------------------

    @app.get("/v1/client/allocation/{alloc_id}/stats")
    async def alloc_stats(alloc_id: str, request: Request) -> Response:
        """What the allocation's running tasks use, as its node measured them last."""
        check_acl(request)
        with state.lock:
            alloc = state.allocs.get(alloc_id)
            if alloc is None:
                raise NomadError(404, f'Unknown allocation "{alloc_id}"')
            node = state.nodes.get(alloc["NodeID"])
            if node is None or node.status != "ready":
                raise NomadError(500, "No path to node")
        stats = standin.client.alloc_stats(alloc_id)
        if stats is None:
            # Placed but not (yet) handed to its client: the client does not know it.
            raise NomadError(404, f'Unknown allocation "{alloc_id}"')
        return json_response(stats)

    @app.get("/v1/client/stats")
    async def client_stats(request: Request) -> Response:
        """The node's ``HostStats`` (ACL ``node:read``). Through a server ``node_id`` is
        required (nomad/client_stats_endpoint.go: "missing NodeID"); an unknown node is a
        404 (structs.NewErrUnknownNode), one that is not connected has "No path to node"."""
        check_acl(request)
        node_id = request.query_params.get("node_id", "")
        if not node_id:
            raise NomadError(500, "missing NodeID")
        with state.lock:
            node = state.nodes.get(node_id)
            if node is None:
                raise NomadError(404, f'Unknown node "{node_id}"')
            if node.status != "ready" or standin.client.partitioned(node_id):
                raise NomadError(500, "No path to node")
        return json_response(standin.client.host_stats(node))

    # --- logs ----------------------------------------------------------------------------

    @app.get("/v1/client/fs/logs/{alloc_id}")
    async def logs(alloc_id: str, request: Request) -> Response:
        check_acl(request, "read-logs")
        query = request.query_params
        task = query.get("task", "")
        if not task:
            raise NomadError(400, "must provide task name")
        log_type = query.get("type", "")
        if log_type not in ("stdout", "stderr"):
            raise NomadError(400, "must provide log type (stdout/stderr)")
        origin = query.get("origin") or "start"
        if origin not in ("start", "end"):
            raise NomadError(400, "origin must be start or end")
        try:
            follow = _parse_bool(query.get("follow"))
            plain = _parse_bool(query.get("plain"))
            offset = int(query.get("offset") or 0)
        except ValueError as exc:
            raise NomadError(400, str(exc)) from None
        with state.lock:
            alloc = state.allocs.get(alloc_id)
            if alloc is None:
                raise NomadError(404, f'Unknown allocation "{alloc_id}"')
            node = state.nodes.get(alloc["NodeID"])
            if node is None or node.status != "ready":
                raise NomadError(500, "No path to node")
            task_state = (alloc["TaskStates"] or {}).get(task)
            if task_state is None:
                raise NomadError(400, f'unknown task name "{task}"')
            if task_state["StartedAt"] == "0001-01-01T00:00:00Z":
                raise NomadError(404, f'task "{task}" not started yet. No logs available')
        rel = f"alloc/logs/{task}.{log_type}.0"
        path = standin.client.alloc_dir(alloc_id) / rel
        size = path.stat().st_size if path.exists() else 0
        position = max(size - offset, 0) if origin == "end" else min(offset, size)

        def task_done() -> bool:
            with state.lock:
                current = state.allocs.get(alloc_id)
                states = (current or {}).get("TaskStates") or {}
                return (
                    current is None
                    or alloc_terminal(current)
                    or (states.get(task, {}).get("State") == "dead")
                )

        async def frames() -> AsyncIterator[bytes]:
            nonlocal position
            last_beat = time.monotonic()
            last_check = last_beat
            with path.open("rb") as handle:
                while not standin.closing:
                    handle.seek(position)
                    data = handle.read(LOG_FRAME_SIZE)
                    if data:
                        position += len(data)
                        if plain:
                            yield data
                        else:
                            frame = {
                                "Offset": position,
                                "Data": base64.b64encode(data).decode(),
                                "File": rel,
                            }
                            yield json.dumps(frame, separators=(",", ":")).encode()
                        continue
                    if not follow:
                        return
                    if standin.close_finished_log_streams and task_done():
                        # Read once more: the task may have written before it ended.
                        handle.seek(position)
                        if not handle.read(1):
                            return
                        continue
                    now = time.monotonic()
                    if now - last_beat >= standin.log_heartbeat_interval:
                        last_beat = now
                        if not plain and not standin.heartbeats_paused:
                            yield b"{}"
                    if now - last_check > 0.5:
                        last_check = now
                        if await request.is_disconnected():
                            return
                    await asyncio.sleep(0.05)

        media = "text/plain" if plain else "application/json"
        return StreamingResponse(frames(), media_type=media)

    return app


def _parse_int(text: str, what: str) -> int:
    """Go's ``strconv.ParseInt(text, 10, 64)``; Nomad answers its error with a 500."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        reason = f'strconv.ParseInt: parsing "{text}": invalid syntax'
    elif not -(2**63) <= int(text) < 2**63:
        reason = f'strconv.ParseInt: parsing "{text}": value out of range'
    else:
        return int(text)
    raise NomadError(500, f"error parsing {what}: {reason}")


def _parse_bool(value: str | None) -> bool:
    """Go's strconv.ParseBool."""
    if value is None or value == "":
        return False
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{value}": invalid syntax')
