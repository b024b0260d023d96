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

The endpoints that stream, the event stream and a task's log, are in ``streams.py``.
A list of jobs or allocations is read in pages of ``LIST_PAGE_SIZE`` (Nomad's
``per_page`` and ``next_token``); ``pages`` hands them over one by one, so a caller that
looks at each stub once holds a page, not 10,000 stubs, at any moment.

Reads that a follower may answer take ``stale=True`` (Nomad's ``?stale``): any server
answers from its own state instead of forwarding to the leader, which spreads the load
but may lag behind the leader by a little; the caller decides where that is safe (see
``jobcache.py``). Every request is logged at DEBUG, once, by this module: httpx's own
"HTTP Request" line (INFO on the ``httpx`` logger) is dropped for the calls made here, so
a server at INFO shows what a person acts on, not one line per request.
"""

from __future__ import annotations

import builtins
import contextvars
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast
from urllib.parse import quote

import httpx

import winslow
from winslow import metrics
from winslow.backends.nomad.config import NomadConfig
from winslow.backends.nomad.permissions import permission_error
from winslow.backends.nomad.streams import ClientFs, Events
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
    NomadJob,
    NomadJobDeregisterResponse,
    NomadJobListStub,
    NomadJobRegisterResponse,
    NomadNode,
    NomadNodeStub,
    NomadVariable,
)
from winslow.backends.nomad.wire import (
    BLOCKING_MARGIN_SECONDS,
    Params,
    ParamValue,
    cut,
    index_of,
    segment,
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

MAX_WAIT_SECONDS = 600.0
"""Longest ``wait`` Nomad honours for a blocking query (it caps it at 10 minutes), seconds."""

CONNECT_RETRIES = 2
"""Failed TCP connects ``httpx.HTTPTransport`` repeats at once, before our own schedule."""

LIST_PAGE_SIZE = 500
"""Stubs asked for per page of a list (``per_page``). Read whole, the lists of 10,000
ended jobs and their allocations peaked 77 MB above the backend's start and left 27 MB
behind; in pages of 500, 14 and 10 MB, for the same CPU (``bench/nomad_lists.py``)."""

STATS_READ_TIMEOUT_SECONDS = 10.0
"""How long an allocation's resource usage may take; the sampler asks again soon anyway."""

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
        after_failure: str = "the engine tries again later",
    ) -> None:
        """``after_failure`` ends the message of a call Nomad did not answer: what happens
        next, for whoever reads it (the engine's log, or a person at ``winslow deploy``)."""
        self.config = config
        self.after_failure = after_failure
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
                f"({type(exc).__name__}); {self.after_failure}."
            ) from exc
        except httpx.TransportError as exc:
            metrics.observe_nomad(method, path, None, None, "unreachable")
            problem = tls_problem(exc, self.config, self.address)
            if problem is not None:
                raise BackendUnavailableError(f"{method} {path}: {problem}") from exc
            raise BackendUnavailableError(
                f"Cannot reach Nomad at {self.address} (NOMAD_ADDR) for {method} {path}: "
                f"{exc or type(exc).__name__}. Check that Nomad runs there; "
                f"{self.after_failure}."
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

    def _pages(
        self,
        path: str,
        *,
        params: Mapping[str, ParamValue],
        index: int | None = None,
        wait: float | None = None,
        stale: bool = False,
    ) -> Iterator[tuple[builtins.list[Any], int]]:
        """GET a list ``path`` page by page; yield each page with its index.

        Only the first page waits on ``index``: the next ones continue the same listing
        (``next_token`` keeps its place, not a snapshot, so an item that changed between
        two pages shows as it was when its page was read).
        """
        token = ""
        while True:
            query: dict[str, ParamValue] = {**params, "per_page": LIST_PAGE_SIZE}
            if token:
                query["next_token"] = token
            response = self._send("GET", path, params=query, index=index, wait=wait, stale=stale)
            if response.status_code == 404:
                yield [], index_of(response)
                return
            if not response.is_success:
                raise self._error(response, f"GET {path}")
            yield self._json(response, f"GET {path}") or [], index_of(response)
            token = response.headers.get("X-Nomad-NextToken", "")
            if not token:
                return
            index = wait = None

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
        job, index = self._client._read(f"/v1/job/{segment(job_id)}", stale=stale)
        return cast(NomadJob | None, job), index

    def list(
        self,
        prefix: str,
        index: int | None = None,
        wait: float | None = None,
        *,
        stale: bool = False,
    ) -> tuple[builtins.list[NomadJobListStub], int]:
        """GET /v1/jobs?prefix=:prefix (with ``meta=true``, so stubs carry the job's meta),
        every page; the index is the first page's."""
        return _gathered(self.pages(prefix, index, wait, stale=stale))

    def pages(
        self,
        prefix: str,
        index: int | None = None,
        wait: float | None = None,
        *,
        stale: bool = False,
    ) -> Iterator[tuple[builtins.list[NomadJobListStub], int]]:
        """``list``, one page at a time, in job ID order."""
        return self._client._pages(
            "/v1/jobs", params={"prefix": prefix, "meta": True}, index=index, wait=wait, stale=stale
        )

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
            f"/v1/job/{segment(job_id)}/allocations",
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
            f"/v1/job/{segment(job_id)}/evaluations",
            index=index,
            wait=wait,
            missing=[],
            stale=stale,
        )
        return cast(builtins.list[NomadEvaluation], evals or []), last

    def deregister(self, job_id: str, purge: bool = False) -> NomadJobDeregisterResponse | None:
        """DELETE /v1/job/:job_id; None when Nomad does not know the job."""
        path = f"/v1/job/{segment(job_id)}"
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
        allocation IDs, not job IDs, so callers filter by ``JobID`` themselves), every
        page; the index is the first page's."""
        return _gathered(self.pages(index, wait, task_states=task_states, stale=stale))

    def pages(
        self,
        index: int | None = None,
        wait: float | None = None,
        *,
        task_states: bool = True,
        stale: bool = False,
    ) -> Iterator[tuple[builtins.list[NomadAllocationStub], int]]:
        """``list``, one page at a time, oldest allocation first."""
        return self._client._pages(
            "/v1/allocations",
            params={"task_states": task_states},
            index=index,
            wait=wait,
            stale=stale,
        )

    def read(self, alloc_id: str) -> tuple[NomadAllocation | None, int]:
        """GET /v1/allocation/:alloc_id."""
        alloc, index = self._client._read(f"/v1/allocation/{segment(alloc_id)}")
        return cast(NomadAllocation | None, alloc), index

    def stats(self, alloc_id: str) -> NomadAllocResourceUsage | None:
        """GET /v1/client/allocation/:alloc_id/stats.

        What the allocation's tasks use now, as the node running it measured; served by
        that node (a server forwards the call). None when Nomad does not know the
        allocation (any more). Not retried, with a short read timeout: whoever samples
        usage asks again in a few seconds, and a late answer is a stale one.
        """
        path = f"/v1/client/allocation/{segment(alloc_id)}/stats"
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
        evaluation, index = self._client._read(f"/v1/evaluation/{segment(eval_id)}")
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
        node, index = self._client._read(f"/v1/node/{segment(node_id)}", stale=stale)
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


def _gathered(pages: Iterator[tuple[list[Any], int]]) -> tuple[list[Any], int]:
    """Every item of ``pages`` in order, and the first page's index (the earliest)."""
    items: list[Any] = []
    first: int | None = None
    for page, index in pages:
        items.extend(page)
        first = index if first is None else first
    return items, first or 0


def _is_validation_error(text: str) -> bool:
    """True for the multierror text Nomad's job validation answers with (as a 500)."""
    lowered = text.lower()
    return "error occurred:" in lowered or "errors occurred:" in lowered
