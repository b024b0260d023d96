"""No 500 from any input, and bounded requests: every mistake a client can make is a 4xx
with words, decided before object storage is asked; bodies over their limit are refused
unread (413), and what a project may hold is bounded (422)."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from tests.fixtures.seeded import Seeded
from tests.fixtures.winslow import Harness
from winslow import defaults

TINY = """
name: tiny
stages:
  - name: only
    command: ["sh", "-c", "true"]
"""

MIB = 1024 * 1024


def refused(response: Any, status: int, code: str | None = None) -> str:
    """Assert ``response`` is Winslow's error with ``status``; return its detail."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["code"], str)
    if code is not None:
        assert body["code"] == code
    return body["detail"]  # type: ignore[no-any-return]


# -- the 500s of the issue, each a 4xx now ----------------------------------------------


def test_gc_with_an_absurd_grace_period_is_422_not_an_overflow(winslow: Harness) -> None:
    response = winslow.api.post("/api/v1/gc", json={"grace_seconds": 1e20})

    detail = refused(response, 422, "invalid_request")
    assert "grace_seconds" in detail


@pytest.mark.parametrize("char", ["\x01", "\x1b", "\x7f"], ids=["SOH", "ESC", "DEL"])
def test_a_control_character_in_pipeline_text_is_located(winslow: Harness, char: str) -> None:
    text = f"name: tiny\nstages:\n  - name: only{char}\n    command: [true]\n"

    checked = winslow.api.post("/api/v1/pipelines/validate", json={"text": text})
    applied = winslow.api.put("/api/v1/pipelines/tiny", json={"text": text})

    assert checked.status_code == 200
    (problem,) = checked.json()["problems"]
    assert (problem["line"], problem["column"]) == (3, 15)
    assert f"U+{ord(char):04X}" in problem["message"]
    assert "cannot appear in a YAML file" in problem["message"]
    refused(applied, 422, "invalid_pipeline")
    assert applied.json()["problems"][0]["line"] == 3
    assert winslow.api.get("/api/v1/pipelines/tiny").status_code == 404


@pytest.mark.parametrize(
    "text",
    [
        "name: [" + "[" * 1000 + "]" * 1001,
        "name:\n" + "".join("  " * depth + "- \n" for depth in range(1, 1000)),
    ],
    ids=["flow", "block"],
)
def test_yaml_nested_a_thousand_deep_is_refused_with_words(winslow: Harness, text: str) -> None:
    checked = winslow.api.post("/api/v1/pipelines/validate", json={"text": text})
    applied = winslow.api.put("/api/v1/pipelines/deep", json={"text": text})

    (problem,) = checked.json()["problems"]
    assert "nested more than 32 deep" in problem["message"]
    assert problem["line"] is not None
    refused(applied, 422, "invalid_pipeline")


# -- client mistakes about storage: 422, decided before S3 is asked -----------------------


@pytest.mark.parametrize("upload_id", ["%2E", "%2E%2E", "a%5Cb", "..%5C..", "%5C"])
def test_upload_ids_that_are_dots_or_backslashes_are_422(winslow: Harness, upload_id: str) -> None:
    base = f"/api/v1/resources/uploads/{upload_id}"
    answers = [
        winslow.api.post(f"{base}/urls", json={"path": "a.txt", "part_numbers": [1]}),
        winslow.api.get(f"{base}/parts", params={"path": "a.txt"}),
        winslow.api.post(f"{base}/complete", json={"path": "a.txt", "size": 1, "parts": []}),
        winslow.api.delete(base, params={"path": "a.txt"}),
    ]

    for answer in answers:
        assert "is not an upload ID" in refused(answer, 422, "invalid_input")


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("é" * 600, "would need a key of 1210 bytes"),
        ("ab/" * 335 + "c" * 10, "would need a key of 1025 bytes"),
        ("x" * 256 + "/clip.mp4", "is 256 bytes long"),
        ("videos/" + "ü" * 128 + ".mp4", "is 260 bytes long"),
    ],
    ids=["key-utf8", "key-ascii", "name-ascii", "name-utf8"],
)
def test_paths_object_storage_cannot_hold_are_422(winslow: Harness, path: str, words: str) -> None:
    begun = winslow.api.post("/api/v1/resources/uploads", json={"path": path, "size": 1})
    fetched = winslow.api.get("/api/v1/resources/download", params={"path": path})

    assert words in refused(begun, 422, "invalid_input")
    assert words in refused(fetched, 422, "invalid_input")


@pytest.mark.parametrize(
    "char", ["\u202e", "\u2066", "\u200b", "\u200d", "\ufeff", "\u2028"], ids=repr
)
def test_invisible_characters_in_new_pool_names_are_refused(winslow: Harness, char: str) -> None:
    path = f"clips/evil{char}gpj.mp4"

    begun = winslow.api.post("/api/v1/resources/uploads", json={"path": path, "size": 1})

    detail = refused(begun, 422, "invalid_input")
    assert f"U+{ord(char):04X}" in detail
    assert char not in detail  # shown escaped, never as the character itself
    assert winslow.api.get("/api/v1/resources", params={"path": "clips"}).json()["data"] == []


@pytest.mark.slow  # seeded: a real stage run
def test_part_urls_refuse_a_path_no_upload_could_have_begun_with(seeded: Seeded) -> None:
    api = seeded.winslow.api
    pool = f"/api/v1/resources/uploads/{seeded.pool_upload_id}/urls"
    workspace = (
        f"/api/v1/projects/{seeded.project}/runs/{seeded.run_id}/workspace/uploads/"
        f"{seeded.workspace_upload_id}/urls"
    )
    for path, words in [
        ("../up.txt", "contains '..'"),
        ("/etc/passwd", "is absolute"),
        ("a\x00b", "control character"),
        ("clips/evil\u202egpj.mp4", "U+202E"),
    ]:
        body = {"path": path, "part_numbers": [1]}
        assert words in refused(api.post(pool, json=body), 422, "invalid_input")
        assert words in refused(api.post(workspace, json=body), 422, "invalid_input")

    fine = {"path": "out/fix.csv", "part_numbers": [1]}
    assert list(api.post(workspace, json=fine).json()["urls"]) == ["1"]


def test_a_surrogate_in_a_body_is_422_not_a_crash(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    json_type = {"content-type": "application/json"}
    bodies = [
        ("/api/v1/projects", {"name": "p", "pipeline": "tiny", "variables": {"A": "\ud800"}}),
        ("/api/v1/pipelines/validate", {"text": "name: a\udfff\n"}),
        ("/api/v1/resources/uploads", {"path": "a\ud800.txt", "size": 1}),
    ]

    for path, body in bodies:
        # json.dumps escapes the surrogate as \ud800, as a browser's JSON.stringify does.
        answer = winslow.api.post(path, content=json.dumps(body), headers=json_type)
        assert "surrogate" in refused(answer, 422, "invalid_request")


def test_a_run_id_beyond_the_database_is_422(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    winslow.create("p", "tiny")
    huge = 10**20

    for path in (
        f"/api/v1/projects/p/runs/{huge}",
        f"/api/v1/projects/p/runs/{huge}/logs",
        f"/api/v1/projects/p/runs/{huge}/progress",
        f"/api/v1/projects/p/runs/{huge}/usage",
        f"/api/v1/projects/p/runs/{huge}/series",
        f"/api/v1/projects/p/workspace?run={huge}",
    ):
        refused(winslow.api.get(path), 422, "invalid_request")


# -- what a project may hold ------------------------------------------------------------


def test_winslow_variables_are_refused_naming_the_variable(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    created = winslow.api.post(
        "/api/v1/projects",
        json={"name": "p", "pipeline": "tiny", "variables": {"WINSLOW_WORKSPACE": "/tmp"}},
    )
    assert "'WINSLOW_WORKSPACE' starts with WINSLOW_" in refused(created, 422, "invalid_input")

    winslow.create("p", "tiny")
    patched = winslow.api.patch("/api/v1/projects/p/variables", json={"set": {"WINSLOW_X": "1"}})
    assert "'WINSLOW_X'" in refused(patched, 422, "invalid_input")
    assert winslow.show("p")["variables"] == {}


def test_a_pipeline_defining_a_winslow_variable_fails_at_its_line(winslow: Harness) -> None:
    text = TINY + "variables:\n  WINSLOW_RUN: {default: '1'}\n"

    applied = winslow.api.put("/api/v1/pipelines/tiny", json={"text": text})

    refused(applied, 422, "invalid_pipeline")
    (problem,) = applied.json()["problems"]
    assert (problem["file"], problem["line"], problem["field"]) == (
        "tiny.yaml",
        7,
        "variables.WINSLOW_RUN",
    )


def test_variable_count_and_size_are_bounded(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    many = {f"V{i}": "x" for i in range(defaults.MAX_VARIABLES + 1)}
    big = {"V": "x" * (defaults.MAX_VARIABLE_BYTES + 1)}
    together = {f"V{i}": "x" * 30_000 for i in range(10)}

    for variables, words in (
        (many, f"at most {defaults.MAX_VARIABLES} are allowed"),
        (big, "a value may have at most 32.0 KiB"),
        (together, "at most 256.0 KiB are allowed"),
    ):
        body = {"name": "p", "pipeline": "tiny", "variables": variables}
        created = winslow.api.post("/api/v1/projects", json=body)
        assert words in refused(created, 422, "invalid_input")

    winslow.create("p", "tiny", variables={f"V{i}": "x" for i in range(defaults.MAX_VARIABLES)})
    patched = winslow.api.patch("/api/v1/projects/p/variables", json={"set": {"ONE_MORE": "x"}})
    assert "would have 257 variables" in refused(patched, 422, "invalid_input")
    unset = winslow.api.patch("/api/v1/projects/p/variables", json={"unset": ["V0"]})
    assert unset.status_code == 200


def test_label_count_is_bounded(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    labels = [f"l{i}" for i in range(defaults.MAX_LABELS + 1)]

    created = winslow.api.post(
        "/api/v1/projects", json={"name": "p", "pipeline": "tiny", "labels": labels}
    )

    assert f"at most {defaults.MAX_LABELS} labels" in refused(created, 422, "invalid_input")


# -- bodies over their limit: 413, unread ---------------------------------------------------


def test_a_body_over_the_limit_is_413_naming_the_setting(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    variables = {f"V{i}": "" for i in range(400_000)}

    created = winslow.api.post(
        "/api/v1/projects", json={"name": "p", "pipeline": "tiny", "variables": variables}
    )

    detail = refused(created, 413, "too_large")
    assert "at most 1.0 MiB" in detail
    assert "WINSLOW_MAX_BODY_BYTES" in detail
    assert winslow.api.get("/api/v1/projects").json()["count"] == 0


def test_pipeline_text_gets_the_larger_limit(winslow: Harness) -> None:
    padding = "#" + "x" * 1000 + "\n"
    fits = TINY + padding * (int(1.5 * MIB) // len(padding))
    too_big = TINY + padding * (int(2.5 * MIB) // len(padding))

    assert winslow.api.post("/api/v1/pipelines/validate", json={"text": fits}).status_code == 200
    detail = refused(
        winslow.api.post("/api/v1/pipelines/validate", json={"text": too_big}), 413, "too_large"
    )
    assert "WINSLOW_MAX_PIPELINE_BYTES" in detail
    refused(winslow.api.put("/api/v1/pipelines/tiny", json={"text": too_big}), 413)
    big_json = {"name": "p", "pipeline": "tiny", "labels": [padding] * 1500}
    refused(winslow.api.post("/api/v1/projects", json=big_json), 413)


def _asgi_request(
    app: Any, path: str, headers: dict[str, str], chunks: Iterator[bytes]
) -> tuple[int, dict[str, Any], int]:
    """Send a body in chunks straight to the ASGI app, as a server does for a chunked
    request; return the status, the JSON answer and how many bytes the app read."""
    read = 0
    answer: list[bytes] = []
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            answer.append(message.get("body", b""))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    anyio.run(app, scope, receive, send)
    return status, json.loads(b"".join(answer)), read


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_fifty_megabytes_of_pipeline_text_are_refused_with_flat_memory(
    winslow: Harness, declared: bool
) -> None:
    chunk = b"x" * (64 * 1024)
    total = 50 * MIB
    chunks = iter([chunk] * (total // len(chunk)))
    headers = {"authorization": f"Bearer {winslow.token}", "content-type": "application/json"}
    if declared:
        headers["content-length"] = str(total)
    else:
        headers["transfer-encoding"] = "chunked"
    app = winslow.api.app

    tracemalloc.start()
    try:
        status, body, read = _asgi_request(app, "/api/v1/pipelines/validate", headers, chunks)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert status == 413
    assert body["code"] == "too_large"
    assert "WINSLOW_MAX_PIPELINE_BYTES" in body["detail"]
    limit = defaults.MAX_PIPELINE_BYTES
    assert read == (0 if declared else limit + len(chunk))  # not a byte more was read
    assert peak < 4 * limit, f"{peak} bytes held for a body refused at {limit}"


def test_a_real_server_answers_a_declared_huge_body_without_reading_it(
    module_server: Any,
) -> None:
    import socket

    token = (module_server.data_dir / "admin-token").read_text().strip()
    request = (
        "POST /api/v1/pipelines/validate HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{module_server.port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {50 * MIB}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", module_server.port), timeout=30) as sock:
        sock.sendall(request.encode())  # and not one byte of the body
        received = b""
        while chunk := sock.recv(65536):
            received += chunk

    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body)["code"] == "too_large"


# -- errors have one shape -----------------------------------------------------------------


def test_an_unexpected_exception_is_a_json_500(
    winslow: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(winslow.context.store, "list_projects", broken)
    client = TestClient(
        winslow.api.app,
        headers={"Authorization": f"Bearer {winslow.token}"},
        raise_server_exceptions=False,
    )

    response = client.get("/api/v1/projects")

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "detail": "GET /api/v1/projects failed unexpectedly; the server's log has the "
        "details. Please report it.",
        "code": "internal_error",
    }
    assert "fire" not in response.text


def test_unknown_routes_and_methods_answer_in_winslows_shape(winslow: Harness) -> None:
    assert "Nothing answers GET /api/v1/nope" in refused(
        winslow.api.get("/api/v1/nope"), 404, "not_found"
    )
    assert "allowed: " in refused(winslow.api.put("/api/v1/health"), 405, "method_not_allowed")
    broken = winslow.api.post(
        "/api/v1/gc", content=b"\xff\xfe{", headers={"content-type": "application/json"}
    )
    assert broken.status_code in (400, 422)
    refused(broken, broken.status_code)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/v1/projects", "GET, POST"),
        ("/api/v1/projects/p", "DELETE, GET, PATCH"),
        ("/api/v1/session", "DELETE, POST"),
    ],
)
def test_a_405_names_every_method_the_path_takes(winslow: Harness, path: str, allowed: str) -> None:
    answer = winslow.api.request("OPTIONS", path)

    assert f"allowed: {allowed}." in refused(answer, 405, "method_not_allowed")
    assert answer.headers["Allow"] == allowed
