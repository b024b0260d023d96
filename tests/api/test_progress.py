"""A run's progress from a real stage that prints percentages, through the API."""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.fixtures.server import Server
from tests.fixtures.winslow import Harness
from tests.fixtures.workspaces import read_workspace

pytestmark = pytest.mark.slow

PRINTS_PROGRESS = """
name: {name}
stages:
  - name: work
    command: ["sh", "-c", "echo starting; echo '10 %'; sleep 0.3; echo '50 %'; {then}"]
"""


def progress(winslow: Harness, project: str, run_id: int, expect: int = 200) -> dict:
    response = winslow.api.get(f"/api/v1/projects/{project}/runs/{run_id}/progress")
    assert response.status_code == expect, response.text
    return response.json()


def test_progress_and_time_left_from_a_real_running_stage(winslow: Harness) -> None:
    winslow.apply_pipeline(PRINTS_PROGRESS.format(name="live", then="sleep 60"))
    winslow.create("live", "live", start=True)
    run = winslow.wait_until_running("live")
    deadline = time.monotonic() + 30
    while (seen := progress(winslow, "live", run["id"]))["percent"] != 50:
        assert time.monotonic() < deadline, f"the stage's 50 % never showed: {seen}"
        time.sleep(0.2)
    assert seen["run"] == run["id"] and seen["state"] == "running"
    assert seen["source"] == "log"
    assert seen["seconds_left"] is not None and seen["seconds_left"] >= 0
    started = datetime.fromisoformat(winslow.show("live")["runs"][0]["started_at"])
    assert datetime.fromisoformat(seen["at"]) >= started  # the time of the "50 %" line

    winslow.command("live", "kill")
    winslow.engine.run_until_idle()
    ended = progress(winslow, "live", run["id"])
    assert ended["state"] == "cancelled"
    assert ended["percent"] == 50  # the last report stays
    assert ended["seconds_left"] is None  # nothing is left of a run that ended


def test_an_ended_run_keeps_its_last_percent_without_time_left(winslow: Harness) -> None:
    winslow.apply_pipeline(PRINTS_PROGRESS.format(name="done", then="echo finished"))
    winslow.create("done", "done", start=True)
    winslow.engine.run_until_idle()
    run = winslow.show("done")["runs"][0]
    assert run["state"] == "succeeded"
    assert progress(winslow, "done", run["id"]) | {"at": None} == {
        "run": run["id"],
        "state": "succeeded",
        "percent": 50.0,
        "at": None,
        "seconds_left": None,
        "source": "log",
    }


def test_a_stage_that_prints_no_percentage_has_no_progress(winslow: Harness) -> None:
    winslow.apply_pipeline(
        'name: quiet\nstages:\n  - name: hush\n    command: ["sh", "-c", "echo hello"]\n'
    )
    winslow.create("quiet", "quiet", start=True)
    winslow.engine.run_until_idle()
    run = winslow.show("quiet")["runs"][0]
    seen = progress(winslow, "quiet", run["id"])
    assert (seen["percent"], seen["at"], seen["seconds_left"]) == (None, None, None)
    assert progress(winslow, "quiet", 999, expect=404)["code"]


def test_project_show_prints_progress_of_the_running_run(
    winslow_server: Server, tmp_path: Path
) -> None:
    server = winslow_server
    (tmp_path / "p.yaml").write_text(PRINTS_PROGRESS.format(name="cli", then="sleep 60"))
    server.cli("pipeline", "apply", str(tmp_path / "p.yaml"))
    server.cli("project", "create", "cli", "--pipeline", "cli", "--start")
    run = server.wait_for("cli", {"running"})["runs"][0]
    deadline = time.monotonic() + 30
    while "50 %" not in (shown := server.cli("project", "show", "cli").stdout):
        assert time.monotonic() < deadline, f"no progress in `project show`:\n{shown}"
        time.sleep(0.3)
    assert re.search(rf"^run {run['id']} \(work\): 50 % · (about \d+ min|under a minute) left$",
                     shown, re.MULTILINE), shown  # fmt: skip
    assert "progress" not in server.json("project", "show", "cli")  # --json is the API's shape
    server.cli("project", "kill", "cli")
    server.wait_for("cli", {"paused"})


def test_a_progress_file_instead_of_printing(winslow: Harness) -> None:
    winslow.apply_pipeline("""
name: progress-file
stages:
  - name: work
    command: ["sh", "-c", "mkdir -p .winslow; echo 3/4 > .winslow/progress; sleep 30"]
  - name: next
    command: ["sh", "-c", "ls -A"]
""")
    winslow.create("file", "progress-file", start=True)
    run = winslow.wait_until_running("file")
    deadline = time.monotonic() + 30
    while (seen := progress(winslow, "file", run["id"]))["percent"] != 75:
        assert time.monotonic() < deadline, winslow.log("file", run["id"])
        time.sleep(0.3)
    assert seen["seconds_left"] is not None
    assert "progress | WINSLOW_PROGRESS: 0.75" in winslow.log("file", run["id"])
    winslow.command("file", "kill")
    winslow.engine.run_until_idle()
    assert progress(winslow, "file", run["id"])["percent"] == 75
    # The file is the node's to read, not part of what the stage hands on.
    assert ".winslow/progress" not in read_workspace(winslow.context.objects, run["workspace"])
