"""Server-Sent Events from a real server: live log lines while a stage runs, and project
changes the moment they happen."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import Server

pytestmark = pytest.mark.slow

PIPELINE = """
name: chatty
stages:
  - name: talk
    command: ["sh", "-c", "for i in 1 2 3 4 5 6; do echo line $i; sleep 1; done"]
"""


@pytest.fixture
def winslow_server(module_server: Server) -> Server:
    """One `winslow up` for the module: its tests keep to their own projects."""
    return module_server


def events(response: httpx.Response) -> Iterator[tuple[str, dict]]:
    kind = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: ") and kind is not None:
            yield kind, json.loads(line[len("data: ") :])


def token(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {(server.data_dir / 'admin-token').read_text().strip()}"}


def test_live_log_stream_delivers_lines_while_the_stage_runs(
    winslow_server: Server, tmp_path: Path
) -> None:
    (tmp_path / "p.yaml").write_text(PIPELINE)
    winslow_server.cli("pipeline", "apply", str(tmp_path / "p.yaml"))
    winslow_server.cli("project", "create", "live", "--pipeline", "chatty", "--start")
    deadline = time.monotonic() + 30
    while not (runs := winslow_server.json("project", "show", "live")["runs"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    url = f"{winslow_server.addr}/api/v1/projects/live/runs/{runs[0]['id']}/logs/stream"
    lines: list[str] = []
    state_at_first_line = None
    with httpx.stream("GET", url, headers=token(winslow_server), timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for kind, data in events(response):
            if kind == "log":
                lines += [line for line in data["lines"] if "stdout |" in line]
                if state_at_first_line is None and lines:
                    state_at_first_line = winslow_server.json("project", "show", "live")["runs"][0][
                        "state"
                    ]
            elif kind == "end":
                assert data == {"state": "succeeded", "exit_code": 0}
                break
    assert state_at_first_line == "running"
    assert [line.split("stdout | ")[1] for line in lines] == [f"line {i}" for i in range(1, 7)]


def test_project_stream_reports_each_change(winslow_server: Server, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PIPELINE.replace("1 2 3 4 5 6", "1"))
    winslow_server.cli("pipeline", "apply", str(tmp_path / "p.yaml"))
    winslow_server.cli("project", "create", "watched", "--pipeline", "chatty")
    states: list[str] = []
    history: list[str] = []
    url = f"{winslow_server.addr}/api/v1/projects/watched/events"
    with httpx.stream("GET", url, headers=token(winslow_server), timeout=30) as response:
        for kind, data in events(response):
            if kind == "project":
                states.append(data["state"])
                if data["state"] == "idle":
                    winslow_server.cli("project", "start", "watched")
                if data["state"] == "succeeded":
                    break
            elif kind == "history":
                history.append(data["kind"])
    assert states[0] == "idle" and states[-1] == "succeeded"
    assert "running" in states
    assert history[:2] == ["create", "start"]


def test_overview_stream_sees_new_projects(winslow_server: Server, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PIPELINE)
    winslow_server.cli("pipeline", "apply", str(tmp_path / "p.yaml"))
    seen: list[str] = []
    with httpx.stream(
        "GET", f"{winslow_server.addr}/api/v1/events", headers=token(winslow_server), timeout=30
    ) as response:
        winslow_server.cli("project", "create", "fresh", "--pipeline", "chatty")
        for kind, data in events(response):
            # The module's other projects may still be changing; the new one must come.
            if kind == "project" and data["name"] == "fresh":
                seen.append(data["name"])
                break
    assert seen == ["fresh"]
