"""Credentials before bodies: a request without a valid token or session gets its 401
before the server reads a byte of its body, so a stranger's 50 MB costs nothing.

FastAPI reads (and parses) a body before it resolves a route's dependencies; the guard
(``winslow/api/guard.py``) checks the headers first. These tests hand the application a
body one chunk at a time, as a server does, and count what it asked for.
"""

from __future__ import annotations

import asyncio
import re
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psutil
import pytest
from fastapi import routing

from tests.fixtures.server import Server
from tests.fixtures.winslow import Harness
from winslow.api.guard import depends_on_caller, needs_caller
from winslow.store.sessions import end_session, start_session

BODY_BYTES = 50 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024

PUBLIC = {
    ("GET", "/api/v1/health"),
    ("POST", "/api/v1/session"),
    ("DELETE", "/api/v1/session"),
    ("POST", "/api/v1/projects/{ref}/trigger"),
    ("GET", "/api/v1/oidc"),
    ("GET", "/api/v1/oidc/start"),
    ("GET", "/api/v1/oidc/callback"),
}
"""The API's operations that need no API token or session (trigger checks its own)."""


class StreamedBody:
    """A JSON body of ``size`` bytes, made one chunk at a time when the app asks for it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read = 0

    async def receive(self) -> dict[str, Any]:
        if self.read >= self.size:
            await asyncio.sleep(3600)  # a client that waits for its answer
        chunk = b"x" * min(CHUNK_BYTES, self.size - self.read)
        if self.read == 0:
            chunk = b'{"text": "' + chunk[10:]
        self.read += len(chunk)
        if self.read >= self.size:
            chunk = chunk[:-2] + b'"}'
        return {"type": "http.request", "body": chunk, "more_body": self.read < self.size}


def call(app: Any, method: str, path: str, headers: dict[str, str], body: StreamedBody) -> dict:
    """Call the ASGI ``app`` as a server would; return the status and the body it answered.

    The body comes without a ``Content-Length`` (chunked), as a client that hides its size
    sends it: only reading tells how large it is, so nothing but the guard stops it unread.
    """
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    answer: dict[str, Any] = {"body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    # In a thread of its own: a browser test earlier in this worker may leave Playwright's
    # event loop running on the main thread, where asyncio.run refuses to start.
    with ThreadPoolExecutor(1) as pool:
        answering = asyncio.wait_for(app(scope, body.receive, send), timeout=120)
        pool.submit(asyncio.run, answering).result()
    return answer


def refused_unread(
    winslow: Harness, method: str, path: str, headers: dict[str, str], size: int = BODY_BYTES
) -> dict:
    """Send a body (50 MB) without credentials; check the 401 came before any of it was
    read and that answering took far less memory than the body's size."""
    body = StreamedBody(size)
    tracemalloc.start()
    try:
        answer = call(winslow.api.app, method, path, headers, body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert answer["status"] == 401, answer["body"][:300]
    assert body.read == 0, f"{body.read} bytes of the body were read before the 401"
    assert peak < max(size // 5, 2 * CHUNK_BYTES), f"answering took {peak} bytes"
    return answer


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/pipelines/validate"),
        ("PUT", "/api/v1/pipelines/big"),
        ("POST", "/api/v1/projects"),
        ("POST", "/api/v1/gc"),
    ],
)
def test_a_big_body_without_a_token_is_refused_before_it_is_read(
    winslow: Harness, method: str, path: str
) -> None:
    import json

    answer = refused_unread(winslow, method, path, {})
    assert json.loads(answer["body"]) == {
        "detail": "This endpoint needs a bearer token: send 'Authorization: Bearer <token>'. "
        "`winslow up` printed where the admin token is.",
        "code": "unauthorized",
    }


def test_a_wrong_token_or_an_ended_session_is_refused_before_the_body_too(
    winslow: Harness,
) -> None:
    path = "/api/v1/pipelines/validate"
    refused_unread(winslow, "POST", path, {"Authorization": "Bearer wsl_wrong"})
    started = start_session(winslow.context.store, winslow.token)
    assert started is not None
    cookie = {"Cookie": f"winslow_session={started[0]}", "X-Winslow-Console": "1"}
    end_session(winslow.context.store, started[0])
    refused_unread(winslow, "POST", path, cookie)
    refused_unread(winslow, "POST", path, {"Cookie": f"winslow_session={winslow.token}"})


def test_a_body_of_a_declared_size_below_any_limit_is_refused_unread_too(
    winslow: Harness,
) -> None:
    size = 500 * 1024
    refused_unread(winslow, "POST", "/api/v1/projects", {"Content-Length": str(size)}, size)


def test_with_a_token_the_body_is_read_as_before(winslow: Harness) -> None:
    body = StreamedBody(100 * 1024)
    headers = {"Authorization": f"Bearer {winslow.token}"}
    answer = call(winslow.api.app, "POST", "/api/v1/pipelines/validate", headers, body)
    assert body.read == body.size
    assert answer["status"] in (200, 422), answer["body"][:300]  # read, then judged


def api_operations(app: Any) -> dict[tuple[str, str], bool]:
    """(method, path) of every API operation → whether it declares a caller."""
    # FastAPI 0.165 keeps included routers nested; older ones list their routes flat.
    contexts = getattr(routing, "iter_route_contexts", lambda routes: routes)(app.routes)
    return {
        (method, route.path): depends_on_caller(route.dependant)
        for route in contexts
        if getattr(route, "dependant", None) is not None and route.path.startswith("/api/v1/")
        for method in route.methods
    }


def test_the_guard_lets_through_exactly_the_operations_that_declare_no_caller(
    winslow: Harness,
) -> None:
    operations = api_operations(winslow.api.app)
    assert len(operations) > 40  # the whole API was looked at
    assert {op for op, declared in operations.items() if not declared} == PUBLIC
    concrete = {(m, re.sub(r"\{[^}]+\}", "x", path)): d for (m, path), d in operations.items()}
    assert {op for op, declared in concrete.items() if needs_caller(*op) != declared} == set()
    assert needs_caller("POST", "/api/v1/no-such-thing")  # closed by default
    assert not needs_caller("POST", "/projects/x")  # the console's pages redirect instead


def test_no_operation_but_the_public_ones_reads_a_body_without_a_token(
    winslow: Harness,
) -> None:
    read = {}
    for method, path in api_operations(winslow.api.app):
        if (method, path) in PUBLIC or method == "HEAD":
            continue
        body = StreamedBody(4 * CHUNK_BYTES)
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        answer = call(winslow.api.app, method, concrete, {}, body)
        if answer["status"] != 401 or body.read:
            read[(method, path)] = (answer["status"], body.read)
    assert read == {}


@pytest.mark.slow
def test_a_real_server_answers_an_unauthenticated_50_mb_body_without_taking_it_in(
    winslow_server: Server,
) -> None:
    assert winslow_server.process is not None
    server = psutil.Process(winslow_server.process.pid)

    def body():
        yield b'{"text": "'
        for _ in range(BODY_BYTES // CHUNK_BYTES):
            yield b"x" * CHUNK_BYTES
        yield b'"}'

    before = server.memory_info().rss
    response = httpx.post(
        winslow_server.addr + "/api/v1/pipelines/validate",
        content=body(),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    grown = server.memory_info().rss - before
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert grown < BODY_BYTES // 2, f"the server grew by {grown} bytes"
