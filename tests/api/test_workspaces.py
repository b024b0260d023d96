"""Workspaces through the API: browse versions, download a file or a folder, upload a fix."""

from __future__ import annotations

import base64
import hashlib
import io
import stat
import zipfile
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.fixtures.winslow import Harness

pytestmark = pytest.mark.slow

GATED = """
name: fixable
stages:
  - name: prepare
    command:
      - sh
      - -c
      - >-
        mkdir -p out/deep; echo tracks > out/tracks.csv; echo deep > out/deep/d.txt;
        printf '#!/bin/sh\\necho hi\\n' > run.sh; chmod 755 run.sh; ln -s out/tracks.csv latest;
        echo original > params.txt
  - name: review
    gate: true
    command: ["sh", "-c", "cat params.txt"]
"""

SLOW = """
name: slow
stages:
  - name: first
    command: ["sh", "-c", "echo x > x.txt; sleep 30"]
"""


@pytest.fixture
def at_gate(winslow: Harness) -> dict:
    """A project whose first stage wrote its workspace and that now waits at a gate."""
    winslow.apply_pipeline(GATED)
    winslow.create("fix", "fixable", start=True)
    winslow.engine.run_until_idle()
    project = winslow.show("fix")
    assert project["state"] == "awaiting_input"
    return project["runs"][0]


def upload(
    winslow: Harness, run: int, path: str, data: bytes, note: str = "", project: str = "fix"
) -> httpx.Response:
    """The browser's flow: begin, PUT each part with its Content-MD5, complete with MD5s."""
    base = f"/api/v1/projects/{project}/runs/{run}/workspace/uploads"
    begun = winslow.api.post(base, json={"path": path, "size": len(data)})
    if begun.status_code != 201:
        return begun
    upload_id = begun.json()["upload_id"]
    urls = winslow.api.post(
        f"{base}/{upload_id}/urls", json={"path": path, "part_numbers": [1]}
    ).json()["urls"]
    digest = hashlib.md5(data, usedforsecurity=False)
    put = httpx.put(
        urls["1"], content=data, headers={"Content-MD5": base64.b64encode(digest.digest()).decode()}
    )
    assert put.status_code == 200, put.text
    return winslow.api.post(
        f"{base}/{upload_id}/complete",
        json={
            "path": path,
            "size": len(data),
            "parts": [{"part_number": 1, "md5": digest.hexdigest()}],
            "note": note,
        },
    )


def test_listing_shows_folders_files_links_and_the_version(winslow: Harness, at_gate) -> None:
    root = winslow.api.get("/api/v1/projects/fix/workspace").json()
    assert (root["run"], root["stage"], root["version"], root["versions"]) == (
        at_gate["id"],
        "prepare",
        1,
        [1],
    )
    assert root["origin"] == "stage-out"
    entries = {e["path"]: e for e in root["data"]}
    assert set(entries) == {"out", "run.sh", "latest", "params.txt"}
    assert entries["out"]["is_dir"] and entries["out"]["size"] == len("tracks\ndeep\n")
    assert entries["latest"]["link"] == "out/tracks.csv"
    deep = winslow.api.get("/api/v1/projects/fix/workspace", params={"path": "out"}).json()
    assert [e["path"] for e in deep["data"]] == ["out/deep", "out/tracks.csv"]
    everything = winslow.api.get(
        "/api/v1/projects/fix/workspace", params={"recursive": "true"}
    ).json()
    assert [e["path"] for e in everything["data"]] == [
        "latest",
        "out/deep/d.txt",
        "out/tracks.csv",
        "params.txt",
        "run.sh",
    ]
    missing = winslow.api.get("/api/v1/projects/fix/workspace", params={"path": "nope"})
    assert missing.status_code == 404 and "No folder 'nope'" in missing.json()["detail"]
    no_version = winslow.api.get("/api/v1/projects/fix/workspace", params={"version": 7})
    assert no_version.status_code == 404 and "has: 1" in no_version.json()["detail"]


def test_a_file_downloads_ranged_with_its_name(winslow: Harness, at_gate) -> None:
    info = winslow.api.get(
        "/api/v1/projects/fix/workspace/download", params={"path": "out/tracks.csv"}
    ).json()
    assert (info["name"], info["size"]) == ("tracks.csv", 7)
    whole = httpx.get(info["url"])
    assert whole.content == b"tracks\n"
    assert 'filename="tracks.csv"' in whole.headers["content-disposition"]
    part = httpx.get(info["url"], headers={"Range": "bytes=2-4"})
    assert (part.status_code, part.content) == (206, b"ack")
    folder = winslow.api.get("/api/v1/projects/fix/workspace/download", params={"path": "out"})
    assert folder.status_code == 404 and "archive" in folder.json()["detail"]


def test_a_folder_downloads_as_a_streamed_zip(winslow: Harness, at_gate) -> None:
    response = winslow.api.get("/api/v1/projects/fix/workspace/archive")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert f"run{at_gate['id']}-workspace.zip" in response.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    assert archive.read("out/deep/d.txt") == b"deep\n"
    assert archive.read("params.txt") == b"original\n"
    mode = archive.getinfo("run.sh").external_attr >> 16
    assert stat.S_ISREG(mode) and mode & 0o111
    link = archive.getinfo("latest").external_attr >> 16
    assert stat.S_ISLNK(link) and archive.read("latest") == b"out/tracks.csv"

    out = winslow.api.get("/api/v1/projects/fix/workspace/archive", params={"path": "out"})
    names = zipfile.ZipFile(io.BytesIO(out.content)).namelist()
    assert sorted(names) == ["out/deep/d.txt", "out/tracks.csv"]


def test_a_fix_uploaded_while_paused_is_a_new_version_the_next_stage_sees(
    winslow: Harness, at_gate
) -> None:
    run = at_gate["id"]
    done = upload(winslow, run, "params.txt", b"fixed by hand\n", note="threshold 0.4")
    assert done.status_code == 200, done.text
    assert (done.json()["version"], done.json()["size"]) == (2, 14)

    now = winslow.api.get("/api/v1/projects/fix/workspace", params={"run": run}).json()
    assert (now["version"], now["versions"], now["origin"]) == (2, [1, 2], "upload")
    assert now["note"] == "threshold 0.4"
    before = winslow.api.get(
        "/api/v1/projects/fix/workspace/download",
        params={"run": run, "path": "params.txt", "version": 1},
    ).json()
    assert httpx.get(before["url"]).content == b"original\n"  # version 1 is untouched

    history = winslow.api.get("/api/v1/projects/fix/history").json()["data"]
    event = next(e for e in history if e["kind"] == "workspace-upload")
    assert "replaced 'params.txt'" in event["message"] and "version 2" in event["message"]

    winslow.command("fix", "resume")
    winslow.engine.run_until_idle()
    project = winslow.show("fix")
    assert project["state"] == "succeeded"
    assert "stdout | fixed by hand" in winslow.log("fix", project["runs"][-1]["id"])


def test_uploads_are_refused_while_the_project_runs(winslow: Harness) -> None:
    winslow.apply_pipeline(SLOW)
    winslow.create("fix", "slow", start=True)
    running = winslow.wait_until_running("fix")
    response = upload(winslow, running["id"], "x.txt", b"y")
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "'first' (run" in detail and "Pause the project" in detail
    assert (
        winslow.api.post(
            "/api/v1/projects/fix/runs/999/workspace/uploads", json={"path": "a", "size": 1}
        ).status_code
        == 404
    )
    winslow.command("fix", "kill")
    winslow.engine.run_until_idle()


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", "a\x00b", "x" * 2000])
def test_workspace_upload_paths_are_checked(winslow: Harness, at_gate, path: str) -> None:
    response = upload(winslow, at_gate["id"], path, b"x")
    assert response.status_code == 422
    assert response.json()["detail"]


def test_a_file_cannot_replace_a_folder(winslow: Harness, at_gate) -> None:
    response = upload(winslow, at_gate["id"], "out", b"x")
    assert response.status_code == 422
    assert "'out' is a folder" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("out/evil\u202egpj.sh", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("out/zero\u200bwidth.txt", "U+200B ZERO WIDTH SPACE"),
        ("out/" + "n" * 256, "is 256 bytes long"),
    ],
    ids=["bidi", "zero-width", "long-name"],
)
def test_workspace_names_a_listing_could_not_show_are_refused(
    winslow: Harness, at_gate, path: str, words: str
) -> None:
    base = f"/api/v1/projects/fix/runs/{at_gate['id']}/workspace/uploads"
    begun = winslow.api.post(base, json={"path": path, "size": 1})
    assert begun.status_code == 422
    assert words in begun.json()["detail"]

    # Begun under a plain name, completed under the refused one: refused as well.
    upload_id = winslow.api.post(base, json={"path": "ok.txt", "size": 1}).json()["upload_id"]
    parts = [{"part_number": 1, "md5": "0" * 32}]
    completed = winslow.api.post(
        f"{base}/{upload_id}/complete", json={"path": path, "size": 1, "parts": parts}
    )
    assert completed.status_code == 422
    assert words in completed.json()["detail"]
    assert winslow.api.get("/api/v1/projects/fix/workspace").json()["versions"] == [1]


@pytest.mark.parametrize("s3_id", ["%2E", "%2E%2E", "a%5Cb"])
def test_workspace_upload_ids_that_are_dots_or_backslashes_are_422(
    winslow: Harness, at_gate, s3_id: str
) -> None:
    base = f"/api/v1/projects/fix/runs/{at_gate['id']}/workspace/uploads/abc123.{s3_id}"
    answers = [
        winslow.api.post(f"{base}/urls", json={"path": "a.txt", "part_numbers": [1]}),
        winslow.api.get(f"{base}/parts"),
        winslow.api.post(f"{base}/complete", json={"path": "a.txt", "size": 1, "parts": []}),
        winslow.api.delete(base),
    ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert "is not an upload ID" in answer.json()["detail"]


TIMED = """
name: timed
stages:
  - name: early
    command: ["sh", "-c", "echo early > early.txt; touch -d '2024-05-01 10:00:00 UTC' early.txt"]
  - name: late
    command: ["sh", "-c", "echo late > late.txt"]
"""


def test_each_file_keeps_its_own_time_across_stages_versions_and_archives(
    winslow: Harness,
) -> None:
    """Every file of a version showed that version's time: a file the first stage wrote
    seemed written by the last, and after a fix was uploaded, everything seemed written
    then."""
    winslow.apply_pipeline(TIMED)
    winslow.create("timed", "timed", start=True)
    winslow.engine.run_until_idle()
    project = winslow.show("timed")
    assert project["state"] == "succeeded"
    late_run = project["runs"][-1]["id"]
    early_time = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)

    def times(version: int | None = None) -> dict[str, datetime]:
        params = {"run": late_run} | ({"version": version} if version else {})
        listing = winslow.api.get("/api/v1/projects/timed/workspace", params=params).json()
        return {e["path"]: datetime.fromisoformat(e["modified"]) for e in listing["data"]}

    first = times()
    assert first["early.txt"] == early_time  # carried through the second stage unchanged
    assert first["late.txt"] > early_time + timedelta(days=365)

    done = upload(winslow, late_run, "fix.txt", b"fix\n", project="timed")
    assert done.status_code == 200, done.text
    second = times(2)
    assert (second["early.txt"], second["late.txt"]) == (early_time, first["late.txt"])
    assert second["fix.txt"] > first["late.txt"]

    archive = zipfile.ZipFile(
        io.BytesIO(
            winslow.api.get(
                "/api/v1/projects/timed/workspace/archive", params={"run": late_run}
            ).content
        )
    )
    assert archive.getinfo("early.txt").date_time == (2024, 5, 1, 10, 0, 0)
