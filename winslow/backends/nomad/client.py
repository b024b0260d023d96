"""``NomadClient``: Nomad's HTTP API as Winslow uses it, and nothing else.

It mirrors the API the way hashicorp/nomad's own ``api`` package does: one handle per
resource (``jobs``, ``allocations``, ``evaluations``, ``nodes``, ``events``,
``client_fs``, ``variables``), one method per endpoint, and every read returns Nomad's
``X-Nomad-Index`` next to the body so a caller can turn it into a blocking query::

    nomad = NomadClient(config)
    allocs, index = nomad.jobs.allocations(job_id)
    allocs, index = nomad.jobs.allocations(job_id, index=index, wait=60)  # blocks until a change
    usage = nomad.allocations.stats(allocs[0]["ID"])  # what it uses now, from its node

One ``httpx.Client`` carries every call, with explicit timeouts; a blocking query's read
timeout is its ``wait`` plus the jitter Nomad may add (``wait / 16``) plus a margin.
Retries on 429 and 5xx live in one wrapper transport, ``RetryTransport``
(``transport.py``), whose backoff schedule is data; only idempotent calls repeat, so
registering a job is never sent twice.
Third-party errors stop here: an unreachable agent or a 5xx after the retries becomes
``BackendUnavailableError`` naming ``NOMAD_ADDR``, a refused token ``BackendError``, a job
Nomad will not take ``SubmitRejectedError``, and a 404 that means "gone" an empty answer.
The token travels in the ``X-Nomad-Token`` header only and is never logged.

Reads that a follower may answer take ``stale=True`` (Nomad's ``?stale``): any server
answers from its own state instead of forwarding to the leader, which spreads the load
but may lag behind the leader by a little; the caller decides where that is safe (see
``jobcache.py``). Every request is logged at DEBUG, once, by this module: httpx's own
"HTTP Request" line (INFO on the ``httpx`` logger) is dropped for the calls made here, so
a server at INFO shows what a person acts on, not one line per request.
"""

from __future__ import annotations

import base64
import builtins
import codecs
import contextlib
import contextvars
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, cast
from urllib.parse import quote

import httpx

import winslow
from winslow import metrics
from winslow.backends.nomad.config import NomadConfig
from winslow.backends.nomad.permissions import permission_error
from winslow.backends.nomad.tls import ssl_context, tls_problem
from winslow.backends.nomad.transport import (
    RETRY_EXTENSION,
    RETRY_SCHEDULE_SECONDS,
    RETRY_STATUSES,
    RetryTransport,
)
from winslow.backends.nomad.types import (
    NomadAllocation,
    NomadAllocationStub,
    NomadAllocResourceUsage,
    NomadEvaluation,
    NomadEventFrame,
    NomadJob,
    NomadJobDeregisterResponse,
    NomadJobListStub,
    NomadJobRegisterResponse,
    NomadNode,
    NomadNodeStub,
    NomadVariable,
)
from winslow.errors import (
    BackendError,
    BackendUnavailableError,
    ConflictError,
    SubmitRejectedError,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0
"""How long to wait for a TCP (and TLS) connection to the agent, seconds."""

READ_TIMEOUT_SECONDS = 30.0
"""How long an ordinary (non-blocking) call may wait for the agent's answer, seconds."""

BLOCKING_MARGIN_SECONDS = 5.0
"""Read timeout of a blocking query beyond its ``wait`` and Nomad's jitter, seconds."""

MAX_WAIT_SECONDS = 600.0
"""Longest ``wait`` Nomad honours for a blocking query (it caps it at 10 minutes), seconds."""

CONNECT_RETRIES = 2
"""Failed TCP connects ``httpx.HTTPTransport`` repeats at once, before our own schedule."""

STATS_READ_TIMEOUT_SECONDS = 10.0
"""How long an allocation's resource usage may take; the sampler asks again soon anyway."""

EVENT_STREAM_HEARTBEAT_SECONDS = 30.0
"""Nomad sends ``{}`` on an idle event stream this often (``nomad/event_endpoint.go``), seconds."""

BODY_MAX_CHARS = 300
"""Characters of a remote error body quoted in our messages and logs."""

ENFORCE_INDEX_ERROR = "Enforcing job modify index"
"""Prefix of Nomad's error when a check-and-set register finds the job exists
(``api.RegisterEnforceIndexErrPrefix``); Nomad answers it with a plain 500."""

_SENDING: contextvars.ContextVar[bool] = contextvars.ContextVar("nomad_sending", default=False)
"""True while this module sends a request, so httpx's line about it can be told apart."""


class _WithoutHttpxRequestLines(logging.Filter):
    """Drops the INFO line httpx logs for each request (``HTTP Request: GET ...``) when
    the request is one of ours; ``NomadClient._send`` logs it at DEBUG instead. Other
    users of httpx in the process keep their lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_SENDING.get() and str(record.msg).startswith("HTTP Request:"))


# A filter on the logger itself sees only what httpx logs there, whatever the handlers.
logging.getLogger("httpx").addFilter(_WithoutHttpxRequestLines())

LogType = Literal["stdout", "stderr"]
ParamValue = str | int | bool | None
Params = Mapping[str, ParamValue] | Sequence[tuple[str, ParamValue]]
"""Query parameters; a sequence of pairs where a name repeats (``topic``)."""


class NomadClient:
    """Nomad's HTTP API, one handle per resource; see the module docstring.

    ``transport`` replaces the network (tests pass an ``httpx.MockTransport``); it is
    wrapped in ``RetryTransport`` either way. Usable as a context manager; ``close``
    releases the connection pool.
    """

    def __init__(
        self,
        config: NomadConfig,
        transport: httpx.BaseTransport | None = None,
        *,
        retry_schedule: tuple[float, ...] = RETRY_SCHEDULE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.address = config.address.rstrip("/")
        inner = (
            transport
            if transport is not None
            else httpx.HTTPTransport(retries=CONNECT_RETRIES, verify=ssl_context(config))
        )
        headers = {"User-Agent": f"winslow/{winslow.__version__}"}
        if config.token:
            headers["X-Nomad-Token"] = config.token
        self._http = httpx.Client(
            base_url=self.address,
            transport=RetryTransport(inner, retry_schedule, sleep),
            headers=headers,
            timeout=httpx.Timeout(READ_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS),
        )
        self.jobs = Jobs(self)
        self.allocations = Allocations(self)
        self.evaluations = Evaluations(self)
        self.nodes = Nodes(self)
        self.events = Events(self)
        self.client_fs = ClientFs(self)
        self.variables = Variables(self)

    def close(self) -> None:
        self._http.close()

    def set_token(self, token: str | None) -> None:
        """Send ``token`` from now on (a rotated one); a blocking query or event stream
        already open keeps the old one until it ends."""
        headers = self._http.headers.copy()
        if token:
            headers["X-Nomad-Token"] = token
        else:
            headers.pop("X-Nomad-Token", None)
        # One assignment: a request being built sees the old headers or the new, whole.
        self._http.headers = headers

    def __enter__(self) -> NomadClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # The one way out to the network ----------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        index: int | None = None,
        wait: float | None = None,
        stream: bool = False,
        read_timeout: float | None = None,
        retry: bool | None = None,
        stale: bool = False,
    ) -> httpx.Response:
        """Send one request with namespace, region and blocking-query parameters; with
        ``stale``, any server may answer (``?stale=true``).

        Returns the response whatever its status (streamed, unread, with ``stream``);
        raises ``BackendUnavailableError`` when Nomad does not answer at all.
        """
        query = self._query(params)
        if stale:
            query.append(("stale", "true"))
        if index is not None:
            query.append(("index", str(index)))
        if wait is not None:
            wait = min(max(wait, 0.0), MAX_WAIT_SECONDS)
            query.append(("wait", f"{int(wait * 1000)}ms"))
            # Nomad adds up to wait/16 to a blocking query to spread wake-ups out.
            read_timeout = wait + wait / 16 + BLOCKING_MARGIN_SECONDS
        timeout = httpx.Timeout(
            READ_TIMEOUT_SECONDS,
            connect=CONNECT_TIMEOUT_SECONDS,
            read=READ_TIMEOUT_SECONDS if read_timeout is None else read_timeout,
        )
        extensions: dict[str, object] = {} if retry is None else {RETRY_EXTENSION: retry}
        if self.config.tls_server_name:
            # The name the certificate is checked against, and sent as SNI.
            extensions["sni_hostname"] = self.config.tls_server_name
        request = self._http.build_request(
            method, path, params=query, json=body, timeout=timeout, extensions=extensions
        )
        started = time.monotonic()
        token = _SENDING.set(True)
        try:
            response = self._http.send(request, stream=stream)
            seconds = time.monotonic() - started
            # A blocking query waits on purpose; its time says nothing of Nomad's health.
            metrics.observe_nomad(method, path, None if wait else seconds, response.status_code)
            log.debug(
                "%s %s%s -> %d in %.0f ms",
                method,
                path,
                " (stale)" if stale else "",
                response.status_code,
                (time.monotonic() - started) * 1000,
            )
            return response
        except httpx.TimeoutException as exc:
            metrics.observe_nomad(method, path, None, None, "timeout")
            raise BackendUnavailableError(
                f"Nomad at {self.address} (NOMAD_ADDR) did not answer {method} {path} in time "
                f"({type(exc).__name__}); the engine tries again later."
            ) from exc
        except httpx.TransportError as exc:
            metrics.observe_nomad(method, path, None, None, "unreachable")
            problem = tls_problem(exc, self.config, self.address)
            if problem is not None:
                raise BackendUnavailableError(f"{method} {path}: {problem}") from exc
            raise BackendUnavailableError(
                f"Cannot reach Nomad at {self.address} (NOMAD_ADDR) for {method} {path}: "
                f"{exc or type(exc).__name__}. Check that Nomad runs there; the engine tries "
                "again later."
            ) from exc
        finally:
            _SENDING.reset(token)

    def _query(self, params: Params | None) -> list[tuple[str, str | int | float | bool | None]]:
        """Namespace, region and ``params`` as query pairs; bools as Go writes them."""
        query: list[tuple[str, str | int | float | bool | None]] = [
            ("namespace", self.config.namespace)
        ]
        if self.config.region:
            query.append(("region", self.config.region))
        pairs = params.items() if isinstance(params, Mapping) else (params or ())
        for key, value in pairs:
            if value is None:
                continue
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            query.append((key, text))
        return query

    def _read(
        self,
        path: str,
        *,
        params: Params | None = None,
        index: int | None = None,
        wait: float | None = None,
        missing: Any = None,
        stale: bool = False,
    ) -> tuple[Any, int]:
        """GET ``path`` and return its JSON and index; ``missing`` instead on a 404."""
        response = self._send("GET", path, params=params, index=index, wait=wait, stale=stale)
        if response.status_code == 404:
            return missing, index_of(response)
        if not response.is_success:
            raise self._error(response, f"GET {path}")
        return self._json(response, f"GET {path}"), index_of(response)

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(
                f"Nomad at {self.address} answered {what} with something that is not JSON: "
                f"{cut(response.text)!r}"
            ) from exc

    def _error(self, response: httpx.Response, what: str) -> BackendError:
        """The error for a failed answer: permission, transient, or other; closes it."""
        try:
            response.read()
            body = cut(response.text)
        except httpx.HTTPError:
            body = ""
        finally:
            response.close()
        status = response.status_code
        if status in (401, 403):
            return permission_error(
                self.address,
                response.request.method,
                response.request.url.path,
                status,
                body,
                namespace=self.config.namespace,
                variable_path=self.config.credentials_path,
            )
        if status in RETRY_STATUSES or status >= 500:
            return BackendUnavailableError(
                f"Nomad at {self.address} (NOMAD_ADDR) answered {status} to {what}: {body}. "
                "The engine tries again later."
            )
        return BackendError(f"Nomad at {self.address} answered {status} to {what}: {body}")


class Jobs:
    """The ``/v1/jobs`` and ``/v1/job/:id`` endpoints."""

    def __init__(self, client: NomadClient) -> None:
        self._client = client

    def register(
        self, job: Mapping[str, Any], enforce_index: int | None = 0
    ) -> NomadJobRegisterResponse:
        """POST /v1/jobs.

        With ``enforce_index`` (default 0: "only if the job does not exist yet"), Nomad
        registers the job only if its modify index matches; otherwise it raises
        ``ConflictError``. Raises ``SubmitRejectedError`` with Nomad's message when Nomad
        refuses the job itself (a 4xx, or a 500 carrying validation errors).
        """
        body: dict[str, Any] = {"Job": dict(job)}
        if enforce_index is not None:
            body["EnforceIndex"] = True
            body["JobModifyIndex"] = enforce_index
        job_id = str(job.get("ID", ""))
        response = self._client._send("POST", "/v1/jobs", body=body)
        if response.is_success:
            return cast(NomadJobRegisterResponse, self._client._json(response, "POST /v1/jobs"))
        text, status = response.text, response.status_code
        if ENFORCE_INDEX_ERROR in text:
            raise ConflictError(f"Nomad job {job_id} already exists: {cut(text)}")
        permission = status in (401, 403)
        rejected = (400 <= status < 500 and status != 429) or (
            status == 500 and _is_validation_error(text)
        )
        if rejected and not permission:
            raise SubmitRejectedError(f"Nomad rejected job {job_id}: {cut(text)}")
        raise self._client._error(response, f"POST /v1/jobs ({job_id})")

    def read(self, job_id: str, *, stale: bool = False) -> tuple[NomadJob | None, int]:
        """GET /v1/job/:job_id. The index is the job's ``ModifyIndex`` (the ``jobs`` table's
        when Nomad has no such job)."""
        job, index = self._client._read(f"/v1/job/{_segment(job_id)}", stale=stale)
        return cast(NomadJob | None, job), index

    def list(
        self,
        prefix: str,
        index: int | None = None,
        wait: float | None = None,
        *,
        stale: bool = False,
    ) -> tuple[builtins.list[NomadJobListStub], int]:
        """GET /v1/jobs?prefix=:prefix (with ``meta=true``, so stubs carry the job's meta)."""
        jobs, last = self._client._read(
            "/v1/jobs",
            params={"prefix": prefix, "meta": True},
            index=index,
            wait=wait,
            missing=[],
            stale=stale,
        )
        return cast(builtins.list[NomadJobListStub], jobs or []), last

    def allocations(
        self,
        job_id: str,
        index: int | None = None,
        wait: float | None = None,
        *,
        stale: bool = False,
    ) -> tuple[builtins.list[NomadAllocationStub], int]:
        """GET /v1/job/:job_id/allocations. The index is the ``allocs`` table's."""
        allocs, last = self._client._read(
            f"/v1/job/{_segment(job_id)}/allocations",
            index=index,
            wait=wait,
            missing=[],
            stale=stale,
        )
        return cast(builtins.list[NomadAllocationStub], allocs or []), last

    def evaluations(
        self,
        job_id: str,
        index: int | None = None,
        wait: float | None = None,
        *,
        stale: bool = False,
    ) -> tuple[builtins.list[NomadEvaluation], int]:
        """GET /v1/job/:job_id/evaluations. The index is the ``evals`` table's."""
        evals, last = self._client._read(
            f"/v1/job/{_segment(job_id)}/evaluations",
            index=index,
            wait=wait,
            missing=[],
            stale=stale,
        )
        return cast(builtins.list[NomadEvaluation], evals or []), last

    def deregister(self, job_id: str, purge: bool = False) -> NomadJobDeregisterResponse | None:
        """DELETE /v1/job/:job_id; None when Nomad does not know the job."""
        path = f"/v1/job/{_segment(job_id)}"
        response = self._client._send("DELETE", path, params={"purge": purge})
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise self._client._error(response, f"DELETE {path}")
        return cast(NomadJobDeregisterResponse, self._client._json(response, f"DELETE {path}"))


class Allocations:
    """The ``/v1/allocations``, ``/v1/allocation/:id`` and ``/v1/client/allocation/:id/stats``
    endpoints (Nomad's Go ``api.Allocations`` serves the last one as ``Stats`` too)."""

    def __init__(self, client: NomadClient) -> None:
        self._client = client

    def list(
        self,
        index: int | None = None,
        wait: float | None = None,
        *,
        task_states: bool = True,
        stale: bool = False,
    ) -> tuple[builtins.list[NomadAllocationStub], int]:
        """GET /v1/allocations (every allocation of the namespace; ``prefix`` would match
        allocation IDs, not job IDs, so callers filter by ``JobID`` themselves)."""
        allocs, last = self._client._read(
            "/v1/allocations",
            params={"task_states": task_states},
            index=index,
            wait=wait,
            missing=[],
            stale=stale,
        )
        return cast(builtins.list[NomadAllocationStub], allocs or []), last

    def read(self, alloc_id: str) -> tuple[NomadAllocation | None, int]:
        """GET /v1/allocation/:alloc_id."""
        alloc, index = self._client._read(f"/v1/allocation/{_segment(alloc_id)}")
        return cast(NomadAllocation | None, alloc), index

    def stats(self, alloc_id: str) -> NomadAllocResourceUsage | None:
        """GET /v1/client/allocation/:alloc_id/stats.

        What the allocation's tasks use now, as the node running it measured; served by
        that node (a server forwards the call). None when Nomad does not know the
        allocation (any more). Not retried, with a short read timeout: whoever samples
        usage asks again in a few seconds, and a late answer is a stale one.
        """
        path = f"/v1/client/allocation/{_segment(alloc_id)}/stats"
        response = self._client._send(
            "GET", path, read_timeout=STATS_READ_TIMEOUT_SECONDS, retry=False
        )
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise self._client._error(response, f"GET {path}")
        return cast(NomadAllocResourceUsage, self._client._json(response, f"GET {path}"))


class Evaluations:
    """The ``/v1/evaluation/:id`` endpoint."""

    def __init__(self, client: NomadClient) -> None:
        self._client = client

    def read(self, eval_id: str) -> tuple[NomadEvaluation | None, int]:
        """GET /v1/evaluation/:eval_id."""
        evaluation, index = self._client._read(f"/v1/evaluation/{_segment(eval_id)}")
        return cast(NomadEvaluation | None, evaluation), index


class Nodes:
    """The ``/v1/nodes`` and ``/v1/node/:id`` endpoints."""

    def __init__(self, client: NomadClient) -> None:
        self._client = client

    def list(
        self, index: int | None = None, wait: float | None = None, *, stale: bool = False
    ) -> tuple[builtins.list[NomadNodeStub], int]:
        """GET /v1/nodes."""
        nodes, last = self._client._read(
            "/v1/nodes", index=index, wait=wait, missing=[], stale=stale
        )
        return cast(builtins.list[NomadNodeStub], nodes or []), last

    def read(self, node_id: str, *, stale: bool = False) -> tuple[NomadNode | None, int]:
        """GET /v1/node/:node_id."""
        node, index = self._client._read(f"/v1/node/{_segment(node_id)}", stale=stale)
        return cast(NomadNode | None, node), index

    def stats(self, node_id: str) -> dict[str, Any] | None:
        """GET /v1/client/stats?node_id=:node_id: the node's ``HostStats``, as its client
        measured them; None for a node Nomad does not know. Not retried, like
        ``Allocations.stats``: a late figure is a stale one."""
        path = "/v1/client/stats"
        response = self._client._send(
            "GET",
            path,
            params={"node_id": node_id},
            read_timeout=STATS_READ_TIMEOUT_SECONDS,
            retry=False,
        )
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise self._client._error(response, f"GET {path}")
        return cast(dict[str, Any], self._client._json(response, f"GET {path}"))


class Events:
    """The ``/v1/event/stream`` endpoint."""

    def __init__(self, client: NomadClient) -> None:
        self._client = client

    def stream(self, topics: Mapping[str, list[str]], index: int = 0) -> EventStream:
        """GET /v1/event/stream.

        ``topics`` maps a topic to filter keys (``{"Allocation": ["*"]}``); Nomad matches a
        key against an event's ``Key`` (the object's ID) or its ``FilterKeys`` (the job ID
        for allocations and evaluations), exactly, with ``*`` for all: no prefixes. Nomad
        starts at the buffered event with ``index`` itself, or at the oldest one it still
        has when that one is gone. Raises ``BackendError`` when Nomad has no event stream
        for us (404, 403); ``BackendUnavailableError`` when it does not answer.
        """
        params: list[tuple[str, ParamValue]] = [
            ("topic", f"{topic}:{key}") for topic, keys in topics.items() for key in keys
        ]
        params.append(("index", index))
        path = "/v1/event/stream"
        response = self._client._send(
            "GET",
            path,
            params=params,
            stream=True,
            # An idle stream still carries a heartbeat this often; silence longer is a
            # dead connection.
            read_timeout=EVENT_STREAM_HEARTBEAT_SECONDS + BLOCKING_MARGIN_SECONDS,
        )
        if response.status_code == 404:
            response.close()
            raise BackendError(
                f"Nomad at {self._client.address} has no event stream ({path} answered 404); "
                "it needs Nomad 1.0 or later."
            )
        if not response.is_success:
            raise self._client._error(response, f"GET {path}")
        return EventStream(response)


class EventStream:
    """An open ``/v1/event/stream``: iterate for frames; ``close`` from any thread ends it.

    Heartbeats (``{}``) are skipped. Iteration ends when Nomad closes the stream; a
    connection that breaks, or an error Nomad writes into the stream once it has begun
    (``event dropped from buffer`` for a reader too slow), raises
    ``BackendUnavailableError``. ``close`` shuts the socket down, which wakes a thread
    blocked reading it at once.
    """

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._lines = response.iter_lines()
        self._closed = threading.Event()
        self._reading = False

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> NomadEventFrame:
        self._reading = True
        try:
            return self._next_frame()
        finally:
            self._reading = False

    def _next_frame(self) -> NomadEventFrame:
        while True:
            try:
                line = next(self._lines)
            except StopIteration:
                self._response.close()
                raise
            except httpx.HTTPError as exc:
                self._response.close()
                if self._closed.is_set():
                    raise StopIteration from exc
                raise BackendUnavailableError(
                    f"Nomad's event stream broke off: {exc or type(exc).__name__}"
                ) from exc
            line = line.strip()
            if not line:
                continue
            try:
                frame = json.loads(line)
            except ValueError:
                # Once the stream began, Nomad can only report an error as plain text.
                self._response.close()
                raise BackendUnavailableError(
                    f"Nomad's event stream ended with an error: {cut(line)}"
                ) from None
            if not isinstance(frame, dict) or not frame:
                continue  # heartbeat
            return cast(NomadEventFrame, frame)

    def close(self) -> None:
        """End the stream; safe from another thread while one is blocked reading it."""
        if self._closed.is_set():
            return
        self._closed.set()
        network = self._response.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
        if isinstance(sock, socket.socket):
            # shutdown wakes a blocked recv(); close() alone would leave it waiting.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if not self._reading:
            # No thread is inside the response (the reader closes it when it wakes).
            self._response.close()


class ClientFs:
    """The ``/v1/client/fs/*`` endpoints, served by the node that runs the allocation."""

    def __init__(self, client: NomadClient) -> None:
        self._client = client

    def logs(
        self,
        alloc_id: str,
        task: str,
        type: LogType,
        offset: int = 0,
        follow: bool = False,
        origin: Literal["start", "end"] = "start",
    ) -> Iterator[bytes]:
        """GET /v1/client/fs/logs/:alloc_id.

        Yields the log's bytes from ``offset`` (counted across Nomad's rotated files) as
        they arrive, decoding the base64 ``Data`` of each frame; streamed, never read
        whole. Yields nothing when the allocation, or the task's log, does not exist (any
        more). Not retried: a reader asks again anyway.
        """
        path = f"/v1/client/fs/logs/{_segment(alloc_id)}"
        params: dict[str, str | int | bool | None] = {
            "task": task,
            "type": type,
            "offset": offset,
            "origin": origin,
            "follow": follow,
            "plain": False,
        }
        response = self._client._send("GET", path, params=params, stream=True, retry=False)
        if not response.is_success:
            response.read()
            response.close()
            if response.status_code == 404 or _means_no_log(response.text):
                return iter(())
            raise self._client._error(response, f"GET {path}")
        return _log_bytes(response, self._client.address)

    def read_at(self, alloc_id: str, path: str, offset: int, limit: int) -> bytes:
        """GET /v1/client/fs/readat/:alloc_id.

        Returns up to ``limit`` bytes of the file at ``path`` (relative to the allocation
        folder, e.g. ``alloc/logs/winslow.log``) from ``offset``; ``b""`` when the
        allocation or the file does not exist (any more). Not retried, like ``logs``.
        """
        url = f"/v1/client/fs/readat/{_segment(alloc_id)}"
        params: dict[str, ParamValue] = {"path": path, "offset": offset, "limit": limit}
        response = self._client._send("GET", url, params=params, retry=False)
        if response.status_code == 404 or (
            not response.is_success and _means_no_log(response.text)
        ):
            return b""
        if not response.is_success:
            raise self._client._error(response, f"GET {url}")
        return response.content


def _log_bytes(response: httpx.Response, address: str) -> Iterator[bytes]:
    """The bytes of a stream of ``StreamFrame`` objects, written back to back."""
    decoder = json.JSONDecoder()
    text = codecs.getincrementaldecoder("utf-8")(errors="replace")
    buffer = ""
    try:
        for chunk in response.iter_bytes():
            buffer += text.decode(chunk)
            while True:
                buffer = buffer.lstrip()
                if not buffer:
                    break
                try:
                    frame, end = decoder.raw_decode(buffer)
                except ValueError:
                    break  # an incomplete frame: wait for more bytes
                buffer = buffer[end:]
                data = frame.get("Data") if isinstance(frame, dict) else None
                if data:
                    yield base64.b64decode(data)
        buffer += text.decode(b"", final=True)
        if buffer.strip():
            raise BackendError(
                f"Nomad at {address} sent a log frame that is not JSON: {cut(buffer)!r}"
            )
    except httpx.HTTPError as exc:
        raise BackendUnavailableError(
            f"Reading a log from Nomad at {address} broke off: {exc or type(exc).__name__}"
        ) from exc
    finally:
        response.close()


class Variables:
    """The ``/v1/var/:path`` endpoint (Nomad Variables)."""

    def __init__(self, client: NomadClient) -> None:
        self._client = client

    def put(self, path: str, items: Mapping[str, str]) -> NomadVariable:
        """PUT /v1/var/:path. The items are secrets: they are never logged."""
        url = f"/v1/var/{quote(path, safe='/')}"
        body = {"Namespace": self._client.config.namespace, "Path": path, "Items": dict(items)}
        response = self._client._send("PUT", url, body=body)
        if not response.is_success:
            raise self._client._error(response, f"PUT {url}")
        return cast(NomadVariable, self._client._json(response, f"PUT {url}"))


def index_of(response: httpx.Response) -> int:
    """The ``X-Nomad-Index`` of an answer; 0 when absent or unreadable."""
    try:
        return int(response.headers.get("X-Nomad-Index", "0"))
    except ValueError:
        return 0


def cut(text: str, limit: int = BODY_MAX_CHARS) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _segment(value: str) -> str:
    return quote(value, safe="")


def _is_validation_error(text: str) -> bool:
    """True for the multierror text Nomad's job validation answers with (as a 500)."""
    lowered = text.lower()
    return "error occurred:" in lowered or "errors occurred:" in lowered


def _means_no_log(text: str) -> bool:
    """True when Nomad says the allocation or the task's log file does not exist."""
    lowered = text.lower()
    return any(words in lowered for words in ("unknown allocation", "not found", "no such file"))
