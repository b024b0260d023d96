"""The HTTP API's promises at its edge: tokens, clear 4xx errors, safe paths, uploads."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest

from tests.fixtures.winslow import Harness

TINY = """
name: tiny
stages:
  - name: only
    command: ["sh", "-c", "mkdir -p out; echo result > out/r.txt"]
"""


def test_health_needs_no_token(winslow: Harness) -> None:
    response = winslow.api.get("/api/v1/health", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.json()["backend"] == "local"


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer wsl_wrong", "Basic abc"])
def test_every_other_endpoint_refuses_a_missing_or_wrong_token(
    winslow: Harness, header: str
) -> None:
    for path in ("/api/v1/projects", "/api/v1/pipelines", "/api/v1/resources", "/api/v1/nodes"):
        response = winslow.api.get(path, headers={"Authorization": header})
        assert response.status_code == 401, path
        assert "token" in response.json()["detail"]
    response = winslow.api.post(
        "/api/v1/projects",
        json={"name": "x", "pipeline": "tiny"},
        headers={"Authorization": header},
    )
    assert response.status_code == 401


def test_unknown_project_is_404_with_the_way_out(winslow: Harness) -> None:
    response = winslow.api.get("/api/v1/projects/ulm-0603")
    assert response.status_code == 404
    assert response.json() == {
        "detail": "No project 'ulm-0603'; `winslow project list` shows them.",
        "code": "not_found",
    }


def test_invalid_pipeline_is_refused_with_line_and_field(winslow: Harness) -> None:
    text = "name: bad\nstages:\n  - name: a\n    comand: [true]\n"
    response = winslow.api.put("/api/v1/pipelines/bad", json={"text": text})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_pipeline"
    assert any(p["line"] == 4 and "comand" in p["message"] for p in body["problems"])
    assert winslow.api.get("/api/v1/pipelines/bad").status_code == 404


def test_broken_pipeline_file_does_not_hide_good_ones(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    (winslow.context.pipelines.path / "broken.yaml").write_text("name: broken\nstages: 3\n")
    body = winslow.api.get("/api/v1/pipelines").json()
    assert [p["name"] for p in body["data"]] == ["tiny"]
    assert "broken.yaml" in body["errors"]


def test_duplicate_project_name_is_409(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    winslow.create("p", "tiny")
    response = winslow.api.post("/api/v1/projects", json={"name": "p", "pipeline": "tiny"})
    assert response.status_code == 409
    assert "exists already" in response.json()["detail"]


def test_project_of_unknown_pipeline_is_404(winslow: Harness) -> None:
    response = winslow.api.post("/api/v1/projects", json={"name": "p", "pipeline": "nope"})
    assert response.status_code == 404
    assert "No pipeline 'nope'" in response.json()["detail"]


def test_list_filters_by_state_and_label(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    winslow.create("a", "tiny", labels=["ulm"])
    winslow.create("b", "tiny", labels=["berlin"])
    winslow.command("b", "start")

    def names(**query: str) -> list[str]:
        body = winslow.api.get("/api/v1/projects", params=query).json()
        return [p["name"] for p in body["data"]]

    assert names() == ["a", "b"]
    assert names(label="ulm") == ["a"]
    assert names(state="idle") == ["a"]
    assert names(state="running") == ["b"]
    assert winslow.api.get("/api/v1/projects", params={"state": "bogus"}).status_code == 422


def test_list_pages_with_skip_and_limit_and_counts_all(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    for name in ("e", "a", "d", "b", "c"):
        winslow.create(name, "tiny", labels=["odd"] if name in "ace" else [])

    def page(**query: int | str) -> tuple[list[str], int]:
        response = winslow.api.get("/api/v1/projects", params=query)
        assert response.status_code == 200, response.text
        return [p["name"] for p in response.json()["data"]], response.json()["count"]

    assert page(limit=2) == (["a", "b"], 5)
    assert page(skip=2, limit=2) == (["c", "d"], 5)
    assert page(skip=4, limit=2) == (["e"], 5)
    assert page(skip=9) == ([], 5)
    assert page(label="odd", skip=1) == (["c", "e"], 3)  # paging applies after the filter
    for bad in ({"skip": -1}, {"limit": 0}, {"limit": 100_000}):
        response = winslow.api.get("/api/v1/projects", params=bad)
        assert response.status_code == 422, bad
        assert next(iter(bad)) in response.text  # the error names the parameter


def test_the_cli_reads_every_page_of_a_list(winslow: Harness, monkeypatch) -> None:
    from fastapi.testclient import TestClient

    from winslow import defaults
    from winslow.cli.client import ApiClient
    from winslow.cli.helpers import all_pages
    from winslow.settings import ClientSettings

    winslow.apply_pipeline(TINY)
    for name in ("e", "a", "d", "b", "c"):
        winslow.create(name, "tiny", labels=["odd"] if name in "ace" else [])
    api = ApiClient(ClientSettings(addr="http://testserver", token=winslow.token))
    api.http = TestClient(
        winslow.api.app,
        base_url="http://testserver/api/v1",
        headers={"Authorization": f"Bearer {winslow.token}"},
    )
    monkeypatch.setattr(defaults, "MAX_PAGE_SIZE", 2)  # three pages of five projects
    listed = all_pages(api, "/projects", {})
    assert ([p["name"] for p in listed["data"]], listed["count"]) == (["a", "b", "c", "d", "e"], 5)
    odd = all_pages(api, "/projects", {"label": "odd"})
    assert [p["name"] for p in odd["data"]] == ["a", "c", "e"]


def test_rename_and_labels(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    winslow.create("old", "tiny", labels=["a"])
    body = winslow.api.patch(
        "/api/v1/projects/old", json={"name": "new", "labels_add": ["b"], "labels_remove": ["a"]}
    )
    assert body.status_code == 200
    assert (body.json()["name"], body.json()["labels"]) == ("new", ["b"])
    assert winslow.api.get("/api/v1/projects/old").status_code == 404


@pytest.mark.parametrize(
    "path",
    ["../etc/passwd", "a/../../b", "/etc/passwd", "a\x00b", "bad\nname", "x" * 2000],
)
def test_path_traversal_and_bad_paths_refused(winslow: Harness, path: str) -> None:
    for method, url, kwargs in [
        ("GET", "/api/v1/resources/download", {"params": {"path": path}}),
        ("GET", "/api/v1/resources", {"params": {"path": path}}),
        ("DELETE", "/api/v1/resources", {"params": {"path": path}}),
        ("POST", "/api/v1/resources/uploads", {"json": {"path": path, "size": 1}}),
    ]:
        response = winslow.api.request(method, url, **kwargs)
        assert response.status_code == 422, (method, url)
        assert response.json()["code"] == "invalid_input"


@pytest.mark.slow
def test_workspace_paths_are_checked_too(winslow: Harness) -> None:
    winslow.apply_pipeline(TINY)
    winslow.create("ws", "tiny", start=True)
    winslow.engine.run_until_idle()
    for path in ("../../logs/x", "/etc/passwd"):
        response = winslow.api.get("/api/v1/projects/ws/workspace/download", params={"path": path})
        assert response.status_code == 422
    listing = winslow.api.get("/api/v1/projects/ws/workspace", params={"path": "out"}).json()
    assert [f["path"] for f in listing["data"]] == ["out/r.txt"]


def test_unicode_names_are_kept(winslow: Harness, tmp_path) -> None:
    name = "videos/Straße über Ulm.mp4"
    upload = winslow.api.post("/api/v1/resources/uploads", json={"path": name, "size": 5}).json()
    urls = winslow.api.post(
        f"/api/v1/resources/uploads/{upload['upload_id']}/urls",
        json={"path": name, "part_numbers": [1]},
    ).json()["urls"]
    etag = httpx.put(urls["1"], content=b"hello").headers["ETag"].strip('"')
    done = winslow.api.post(
        f"/api/v1/resources/uploads/{upload['upload_id']}/complete",
        json={"path": name, "size": 5, "parts": [{"part_number": 1, "md5": etag}]},
    )
    assert done.status_code == 200
    listing = winslow.api.get("/api/v1/resources", params={"path": "videos"}).json()["data"]
    assert [f["name"] for f in listing] == ["Straße über Ulm.mp4"]
    info = winslow.api.get("/api/v1/resources/download", params={"path": name}).json()
    response = httpx.get(info["url"])
    assert response.content == b"hello"
    assert "attachment" in response.headers["content-disposition"]


def test_multipart_upload_resumes_from_stored_parts(winslow: Harness) -> None:
    data = os.urandom(11 * 1024 * 1024)
    upload = winslow.api.post(
        "/api/v1/resources/uploads", json={"path": "big.bin", "size": len(data)}
    ).json()
    part = upload["part_size"]
    assert upload["part_count"] == -(-len(data) // part)
    url = lambda n: winslow.api.post(  # noqa: E731
        f"/api/v1/resources/uploads/{upload['upload_id']}/urls",
        json={"path": "big.bin", "part_numbers": [n]},
    ).json()["urls"][str(n)]
    chunks = [data[i : i + part] for i in range(0, len(data), part)]
    httpx.put(url(1), content=chunks[0])
    # The connection "drops"; a new client asks what is stored and sends the rest.
    stored = winslow.api.get(
        f"/api/v1/resources/uploads/{upload['upload_id']}/parts", params={"path": "big.bin"}
    ).json()["parts"]
    assert [p["part_number"] for p in stored] == [1]
    assert winslow.api.get("/api/v1/resources", params={"path": ""}).json()["data"] == []
    etags = {1: stored[0]["etag"]}
    for number in range(2, len(chunks) + 1):
        etags[number] = httpx.put(url(number), content=chunks[number - 1]).headers["ETag"]
    done = winslow.api.post(
        f"/api/v1/resources/uploads/{upload['upload_id']}/complete",
        json={
            "path": "big.bin",
            "size": len(data),
            "parts": [{"part_number": n, "md5": e.strip('"')} for n, e in etags.items()],
        },
    )
    assert done.json()["size"] == len(data)
    info = winslow.api.get("/api/v1/resources/download", params={"path": "big.bin"}).json()
    got = httpx.get(info["url"]).content
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    tail = httpx.get(info["url"], headers={"Range": f"bytes={len(data) - 10}-"})
    assert tail.status_code == 206 and tail.content == data[-10:]


def test_bad_request_bodies_are_422_in_words(winslow: Harness) -> None:
    response = winslow.api.post("/api/v1/projects", json={"pipeline": "tiny"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("The request is malformed: name:")
    # It said "0: JSON decode error", naming a field "0".
    garbled = winslow.api.post(
        "/api/v1/projects", content=b'{"name": "x",}', headers={"Content-Type": "application/json"}
    )
    assert garbled.status_code == 422
    assert garbled.json()["detail"] == (
        "The request is malformed: the body is not valid JSON "
        "(Expecting property name enclosed in double quotes at character 13)"
    )
    assert garbled.json()["fields"] == {}


def test_console_asks_to_sign_in_and_points_to_the_api_docs(winslow: Harness) -> None:
    response = winslow.api.get("/", headers={"Authorization": ""}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/signin?next=/")
    signin = winslow.api.get("/signin")
    assert signin.status_code == 200 and 'href="/docs"' in signin.text
    assert winslow.api.get("/docs").status_code == 200
    assert "/api/v1/projects" in winslow.api.get("/api/v1/openapi.json").json()["paths"]


def test_a_project_shows_the_pipeline_defaults_it_does_not_set(winslow: Harness) -> None:
    winslow.apply_pipeline(
        "name: rated\nvariables:\n  RATE: {default: 5}\n  MODE: {default: fast}\n"
        '  INPUT: {required: true}\nstages:\n  - name: a\n    command: ["true"]\n'
    )
    winslow.create("r", "rated", variables={"MODE": "careful"})
    shown = winslow.show("r")
    assert shown["variables"] == {"MODE": "careful"}
    assert shown["variable_defaults"] == {"RATE": "5"}  # MODE is set; INPUT has none
    answer = winslow.api.patch("/api/v1/projects/r/variables", json={"unset": ["MODE"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["variable_defaults"] == {"RATE": "5", "MODE": "fast"}


def test_two_apps_in_one_process_each_serve_their_own_winslow(
    winslow: Harness, tmp_path, object_store
) -> None:
    """Every app serves the same route objects (built once per process, ``api/app.py``):
    what a request reads must still come from the app it reached."""
    from fastapi.testclient import TestClient

    from tests.fixtures.winslow import build_context
    from winslow.api.app import create_app

    other = build_context(tmp_path / "other", object_store, f"sqlite:///{tmp_path / 'o.db'}")
    token = other.store.create_token("someone-else", admin=True)
    try:
        with TestClient(create_app(other), headers={"Authorization": f"Bearer {token}"}) as second:
            winslow.apply_pipeline(TINY)
            assert [p["name"] for p in winslow.api.get("/api/v1/pipelines").json()["data"]] == [
                "tiny"
            ]
            assert second.get("/api/v1/pipelines").json()["data"] == []
            assert second.get("/api/v1/projects").json()["count"] == 0
            # Each knows only its own tokens.
            assert (
                winslow.api.get(
                    "/api/v1/projects", headers={"Authorization": f"Bearer {token}"}
                ).status_code
                == 401
            )
    finally:
        other.store.close()
