"""Every `winslow` command that shows something takes `--json` with a stable shape; help,
completion, `logs` of a run that has not started, `pipeline validate` of many files and
`pipeline list` of a branching pipeline, as a new user meets them."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.fixtures.server import BIN, Server
from tests.test_cli_sessions import sign_in
from winslow.cli.main import app
from winslow.cli.pipelines import stage_graph_lines

NO_DATA = {
    "up": "runs the server until Ctrl-C; what it says is a log, not data",
    "checkpoint": "runs inside a stage; it tells the stage's log (stderr) and says it by "
    "its exit code",
    "deploy up": "narrates Nomad jobs coming up; `deploy status --json` is their data",
    "deploy down": "narrates Nomad jobs going away; `deploy status --json` is their data",
}
"""Visible commands without `--json`, each with why: they print no data."""


def visible_commands() -> Iterator[tuple[str, Any]]:
    def walk(command: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        if hasattr(command, "list_commands"):
            # As --help asks: the root builds a noun's commands only when asked for it.
            context = typer.Context(command)
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                if not sub.hidden:
                    yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), command

    yield from walk(typer.main.get_command(app), [])


def takes_json(command: Any) -> bool:
    return any("--json" in getattr(param, "opts", ()) for param in command.params)


def test_every_command_that_prints_data_takes_json() -> None:
    commands = dict(visible_commands())
    assert len(commands) > 40
    lacking = sorted(name for name, command in commands.items() if not takes_json(command))
    assert lacking == sorted(NO_DATA)


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "winslow"), *args],
        text=True,
        capture_output=True,
        timeout=60,
        env={**os.environ, "WINSLOW_ADDR": "http://127.0.0.1:9", **env},
    )


def test_help_shows_flags_without_a_type_and_wait_documents_its_exit_codes() -> None:
    for args in (["--help"], ["project", "--help"], ["project", "wait", "--help"]):
        shown = cli(*args, COLUMNS="80", TERM="dumb")
        assert shown.returncode == 0, shown.stderr
        assert "--help" in shown.stdout and "<bool>" not in shown.stdout, shown.stdout
    wait_help = " ".join(cli("project", "wait", "--help", COLUMNS="200").stdout.split())
    for words in (
        "0 succeeded",
        "1 failed",
        "2 bad usage",
        "3 a person is needed",
        "4 timeout",
    ):
        assert words in wait_help, wait_help


def test_shell_completion_is_offered_and_completes_commands() -> None:
    assert "--install-completion" in cli("--help", COLUMNS="120").stdout
    # The shell is found from the process that runs winslow, as in a person's terminal.
    script = subprocess.run(
        ["bash", "-c", f"{BIN / 'winslow'} --show-completion; true"],
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert "_WINSLOW_COMPLETE=complete_bash" in script.stdout, script.stderr
    completed = cli(_WINSLOW_COMPLETE="complete_bash", COMP_WORDS="winslow proj", COMP_CWORD="1")
    assert completed.stdout.split() == ["project"]


def test_validate_reports_every_file_missing_ones_too(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text('name: good\nstages:\n  - name: a\n    command: ["true"]\n')
    broken = tmp_path / "broken.yaml"
    broken.write_text('name: broken\nstages:\n  - name: a\n    comand: ["true"]\n')
    missing = [str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]
    files = [missing[0], str(good), missing[1], str(broken)]
    result = cli("pipeline", "validate", *files)
    assert result.returncode == 1
    assert f"{good}: valid" in result.stdout
    for name in missing:
        assert f"error: {name}: no such file" in result.stderr, result.stderr
    assert f"error: {broken}:4:5:" in result.stderr
    report = json.loads(cli("pipeline", "validate", *files, "--json").stdout)
    assert list(report) == files
    assert report[str(good)] == []
    assert [p["message"] for p in report[missing[1]]] == ["no such file"]
    assert set(report[str(broken)][0]) == {"file", "line", "column", "field", "message"}


def test_a_branching_pipeline_is_drawn_with_its_branches() -> None:
    stages = ["prepare", "detect", "track", "report", "merge"]
    needs = {
        "prepare": [],
        "detect": ["prepare"],
        "track": ["detect"],
        "report": ["prepare"],
        "merge": ["track", "report"],
    }
    assert stage_graph_lines(stages, needs) == [
        "prepare (at start)",
        "detect → track (after prepare)",
        "report (after prepare)",
        "merge (after track, report)",
    ]
    chain = {"a": [], "b": ["a"], "c": ["b"]}
    assert stage_graph_lines(["a", "b", "c"], chain) == ["a → b → c"]
    assert stage_graph_lines(["x", "y"], {"x": [], "y": []}) == ["x (at start)", "y (at start)"]


# -- against a real `winslow up` ------------------------------------------------------------

BRANCHES = """
name: json-branches
stages:
  - name: prepare
    command: ["sh", "-c", "mkdir -p out; echo ready > out/ready.txt; echo prepared"]
  - name: detect
  - name: track
  - name: report
    needs: [prepare]
  - name: merge
    needs: [track, report]
"""


def branch_pipeline(tmp_path: Path, name: str = "json-branches") -> Path:
    text = BRANCHES.replace("json-branches", name)
    for stage in ("detect", "track", "report", "merge"):
        text = text.replace(
            f"  - name: {stage}\n", f'  - name: {stage}\n    command: ["true"]\n', 1
        )
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_pipeline_list_draws_branches_and_lists_needs(
    module_server: Server, tmp_path: Path
) -> None:
    server = module_server
    server.cli("pipeline", "apply", str(branch_pipeline(tmp_path)))
    listed = server.json("pipeline", "list")["data"]
    mine = next(p for p in listed if p["name"] == "json-branches")
    assert mine["needs"]["merge"] == ["track", "report"] and mine["needs"]["detect"] == ["prepare"]
    table = server.cli("pipeline", "list").stdout
    assert "detect → track (after prepare)" in table
    assert "merge (after track, report)" in table
    assert "prepare → detect → track → report" not in table  # no longer drawn as a chain
    deleted = server.json("pipeline", "delete", "json-branches")
    assert deleted == {"name": "json-branches", "deleted": True}


def narrow(server: Server, *args: str) -> str:
    """What ``winslow`` prints on an 80-column terminal."""
    env = {**server.env, "COLUMNS": "80"}
    result = subprocess.run(
        [str(BIN / "winslow"), *args], env=env, text=True, capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_new_json_shapes_of_tokens(module_server: Server) -> None:
    server = module_server
    made = server.json("token", "create", "json-bot", "--local")
    assert set(made) == {"name", "admin", "token"} and made["token"].startswith("wsl_")
    listed = server.json("token", "list", "--local")
    assert set(listed) == {"data", "count"} and listed["count"] == len(listed["data"])
    mine = next(t for t in listed["data"] if t["name"] == "json-bot")
    assert set(mine) == {"name", "created_at", "admin", "revoked"} and not mine["revoked"]
    revoked = server.json("token", "revoke", "json-bot", "--local")
    assert revoked == {"name": "json-bot", "revoked": True}
    table = server.cli("token", "list", "--local").stdout.splitlines()
    assert table[0].split() == ["NAME", "CREATED", "ADMIN", "REVOKED"]


@pytest.mark.slow
def test_new_json_shapes_of_sessions_and_notices(module_server: Server, tmp_path: Path) -> None:
    server = module_server
    token = server.json("token", "create", "json-ana", "--local")["token"]
    browser = sign_in(server, token, "Firefox/140")
    handle = next(
        s["handle"] for s in server.json("session", "list")["data"] if s["user"] == "json-ana"
    )
    signed_in = next(s for s in server.json("session", "list")["data"] if s["handle"] == handle)
    assert signed_in["created_at"][:19].replace("T", " ") in narrow(server, "session", "list")
    assert server.json("session", "revoke", handle) == {"handle": handle, "revoked": True}
    browser.close()
    server.cli("pipeline", "apply", str(branch_pipeline(tmp_path, "json-notice")))
    server.cli(
        "notify",
        "add",
        "json-hook",
        "--webhook",
        "http://127.0.0.1:9/",
        "--pipeline",
        "json-notice",
    )
    assert server.json("notify", "remove", "json-hook") == {"name": "json-hook", "removed": True}


@pytest.mark.slow
def test_new_json_shapes_of_projects_files_and_logs(module_server: Server, tmp_path: Path) -> None:
    server = module_server
    server.cli("pipeline", "apply", str(branch_pipeline(tmp_path, "json-run")))
    server.cli("project", "create", "json-p", "--pipeline", "json-run", "--start")
    done = server.wait_for("json-p", {"succeeded", "failed"})
    assert done["state"] == "succeeded", done

    shown = narrow(server, "project", "show", "json-p")
    for run in done["runs"]:  # every start time whole on an 80-column terminal
        assert run["started_at"][:19].replace("T", " ") in shown, shown

    logs = server.json("logs", "json-p", "--stage", "prepare")
    assert set(logs) == {"project", "run", "stage", "state", "reason", "lines"}
    assert logs["stage"] == "prepare" and logs["state"] == "succeeded"
    assert any(line.endswith("stdout | prepared") for line in logs["lines"]), logs["lines"]
    followed = server.cli("logs", "json-p", "--stage", "prepare", "--follow", "--json").stdout
    objects = [json.loads(line) for line in followed.splitlines()]
    assert objects and all(set(o) == {"run", "stage", "line"} for o in objects)

    got = server.json(
        "workspace", "download", "json-p", "out", str(tmp_path / "got"), "--run", str(logs["run"])
    )
    assert got == {
        "project": "json-p",
        "path": "out",
        "files": [{"file": str(tmp_path / "got" / "ready.txt"), "size": 6}],
    }

    local = tmp_path / "v.bin"
    local.write_bytes(b"x" * 10)
    server.cli("resources", "upload", str(local), "json/v.bin")
    back = server.json("resources", "download", "json/v.bin", str(tmp_path / "back.bin"))
    assert back == {"path": "json/v.bin", "file": str(tmp_path / "back.bin"), "size": 10}
    assert server.json("resources", "rm", "json/v.bin") == {"path": "json/v.bin", "deleted": True}

    server.json("project", "token", "create", "json-p", "hook")
    revoked = server.json("project", "token", "revoke", "json-p", "hook")
    assert revoked == {"project": "json-p", "name": "hook", "revoked": True}
    assert server.json("project", "delete", "json-p") == {"project": "json-p", "deleted": True}


HOG = """
name: json-hog
stages:
  - name: hog
    requirements: {{cpus: {cpus}}}
    command: ["sh", "-c", "while [ ! -f {go_on} ]; do sleep 0.1; done"]
  - name: starved
    needs: []
    requirements: {{cpus: 1}}
    command: ["true"]
"""


@pytest.mark.slow
def test_logs_of_a_run_not_started_say_it_waits_and_why(
    module_server: Server, tmp_path: Path
) -> None:
    server = module_server
    cpus = min(n["cpus"] for n in server.json("nodes")["data"])
    go_on = tmp_path / "go-on"
    (tmp_path / "hog.yaml").write_text(HOG.format(cpus=f"{cpus:g}", go_on=go_on))
    server.cli("pipeline", "apply", str(tmp_path / "hog.yaml"))
    server.cli("project", "create", "json-hog", "--pipeline", "json-hog", "--start")
    try:
        deadline = time.monotonic() + 60
        starved: dict[str, Any] = {}
        while time.monotonic() < deadline:
            runs = server.json("project", "show", "json-hog")["runs"]
            starved = next((r for r in runs if r["stage"] == "starved"), {})
            if (starved.get("reason") or "").startswith("waiting for"):
                break
            time.sleep(0.3)
        assert starved.get("state") == "pending", starved
        shown = server.cli("logs", "json-hog", "--stage", "starved")
        assert shown.returncode == 0 and shown.stdout == ""
        assert shown.stderr.startswith(f"run {starved['id']} ('starved') is pending"), shown
        assert "waiting for 1 CPUs" in shown.stderr
        data = server.json("logs", "json-hog", "--stage", "starved")
        assert (data["state"], data["lines"]) == ("pending", [])
        assert data["reason"].startswith("waiting for 1 CPUs")
    finally:
        go_on.touch()
    server.wait_for("json-hog", {"succeeded"})


@pytest.mark.slow
def test_import_prints_json(module_server: Server, tmp_path: Path) -> None:
    old = tmp_path / "old.yml"
    old.write_text(
        'name: "Old Json"\nstages:\n  - Worker:\n      id: "a"\n      name: "detect"\n'
        '      image: {name: "hello-world"}\n'
    )
    result = module_server.cli("pipeline", "import", str(old), "--json")
    report = json.loads(result.stdout)
    assert set(report) == {"name", "yaml", "output", "warnings", "applied"}
    assert report["output"] is None and report["applied"] is False
    assert "detect" in report["yaml"]
    written = tmp_path / "new.yaml"
    applied = module_server.cli(
        "pipeline", "import", str(old), "-o", str(written), "--apply", "--json"
    )
    report = json.loads(applied.stdout)
    assert (report["yaml"], report["output"], report["applied"]) == (None, str(written), True)
    assert report["name"] in [p["name"] for p in module_server.json("pipeline", "list")["data"]]
