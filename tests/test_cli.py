"""The `winslow` CLI against a real `winslow up`, the way scripts and people use it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures.server import BIN, Server
from winslow import __version__
from winslow.cli.client import ApiClient
from winslow.cli.people import _print_user
from winslow.cli.pipelines import _show_pipelines
from winslow.cli.projects import _no_projects, _print_runs, _print_variables
from winslow.cli.resources import _nothing_in
from winslow.cli.transfer import upload_file
from winslow.settings import ClientSettings

pytestmark = pytest.mark.slow

PIPELINE = """
name: cli-demo
variables:
  SECONDS: {default: "0"}
stages:
  - name: make
    command: ["sh", "-c", "sleep ${SECONDS}; mkdir -p out; echo made > out/made.txt; echo making"]
  - name: use
    command: ["sh", "-c", "cat out/made.txt; echo used >> out/made.txt"]
"""

BROKEN = """name: cli-broken
stages:
  - name: a
    comand: ["true"]
    requirements: {cpus: -1}
"""


@pytest.fixture
def winslow_server(module_server: Server) -> Server:
    """One `winslow up` for the module: its tests keep to their own projects."""
    return module_server


def test_validate_prints_every_problem_and_exits_1(winslow_server: Server, tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text(BROKEN)
    result = winslow_server.cli("pipeline", "validate", str(bad), check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith(f"error: {bad}:4:5: stages[a].comand:") for line in lines), lines
    assert any(f"{bad}:5:" in line and "cpus" in line for line in lines), lines
    good = tmp_path / "good.yaml"
    good.write_text(PIPELINE)
    assert winslow_server.cli("pipeline", "validate", str(good)).stdout.strip() == f"{good}: valid"


def test_project_lifecycle_from_the_cli(winslow_server: Server, tmp_path: Path) -> None:
    server = winslow_server
    (tmp_path / "p.yaml").write_text(PIPELINE)
    server.cli("pipeline", "apply", str(tmp_path / "p.yaml"))
    assert "cli-demo" in [p["name"] for p in server.json("pipeline", "list")["data"]]

    created = server.json(
        "project",
        "create",
        "ulm-0603",
        "--pipeline",
        "cli-demo",
        "--label",
        "ulm",
        "--var",
        "SECONDS=0",
    )
    assert (created["state"], created["labels"], created["variables"]) == (
        "idle",
        ["ulm"],
        {"SECONDS": "0"},
    )
    assert server.json("project", "env", "ulm-0603", "EXTRA=1", "--unset", "SECONDS") == {
        "EXTRA": "1"
    }
    server.cli("project", "start", "ulm-0603")
    done = server.wait_for("ulm-0603", {"succeeded", "failed"})
    assert [(r["stage"], r["state"]) for r in done["runs"]] == [
        ("make", "succeeded"),
        ("use", "succeeded"),
    ]

    listed = server.json("project", "list", "--state", "succeeded", "--label", "ulm")
    assert [p["name"] for p in listed["data"]] == ["ulm-0603"]
    # Nothing matching is said in words: it printed a bare header.
    none = server.cli("project", "list", "--state", "paused", "--label", "ulm").stdout
    assert none == "No project with state paused and label ulm.\n"
    assert "stdout | making" in server.cli("logs", "ulm-0603", "--stage", "make").stdout
    assert "stdout | made" in server.cli("logs", "ulm-0603", "--follow").stdout
    # A stage the pipeline lacks is named as such; it read "has no a run of stage ... yet".
    unknown = server.cli("logs", "ulm-0603", "--stage", "mkae", check=False)
    assert unknown.returncode == 1
    assert "Project 'ulm-0603' has no stage 'mkae'; its stages are: make, use." in unknown.stderr

    files = server.json("workspace", "ls", "ulm-0603", "out")["data"]
    assert [f["path"] for f in files] == ["out/made.txt"]
    server.cli("workspace", "download", "ulm-0603", "out", str(tmp_path / "got"))
    assert (tmp_path / "got" / "made.txt").read_text() == "made\nused\n"

    # A fix into make's workspace while nothing runs; redoing `use` starts from it.
    fix = tmp_path / "made.txt"
    fix.write_text("fixed\n")
    make_run = str(done["runs"][0]["id"])
    uploaded = server.json(
        "workspace", "upload", "ulm-0603", str(fix), "out/made.txt", "--run", make_run,
        "--note", "by hand",
    )  # fmt: skip
    assert (uploaded["path"], uploaded["version"]) == ("out/made.txt", 2)
    listed = server.json("workspace", "ls", "ulm-0603", "--run", make_run, "--version", "1")
    assert (listed["version"], listed["versions"]) == (1, [1, 2])

    server.cli("project", "resume", "ulm-0603", "--from", "use")
    again = server.wait_for("ulm-0603", {"succeeded", "failed"})
    assert [r["stage"] for r in again["runs"]] == ["make", "use", "use"]
    server.cli("workspace", "download", "ulm-0603", "out/made.txt", str(tmp_path / "redo.txt"))
    assert (tmp_path / "redo.txt").read_text() == "fixed\nused\n"

    server.cli("project", "rename", "ulm-0603", "ulm-2019")
    server.cli("project", "label", "ulm-2019", "--add", "done", "--remove", "ulm")
    shown = server.json("project", "show", "ulm-2019")
    assert (shown["name"], shown["labels"]) == ("ulm-2019", ["done"])
    kinds = [e["kind"] for e in server.json("project", "history", "ulm-2019")["data"]]
    assert {"create", "variables", "start", "resume", "rename", "labels"} <= set(kinds)
    server.cli("project", "delete", "ulm-2019")
    missing = server.cli("project", "show", "ulm-2019", check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "error: No project 'ulm-2019'; `winslow project list` shows them."
    )

    # Its contents go only with `winslow gc`; a dry run says what, and removes nothing.
    dry = server.json("gc", "--dry-run", "--grace", "0s")
    assert dry["removable"] and dry["removed"] == 0
    assert "would remove" in server.cli("gc", "--dry-run", "--grace", "0s").stdout
    gone = server.json("gc", "--grace", "0s")
    assert gone["removed"] == len(dry["removable"])
    assert server.json("gc", "--dry-run", "--grace", "0s")["removable"] == []


def test_pause_kill_and_conflicts_from_the_cli(winslow_server: Server, tmp_path: Path) -> None:
    server = winslow_server
    (tmp_path / "p.yaml").write_text(PIPELINE)
    server.cli("pipeline", "apply", str(tmp_path / "p.yaml"))
    server.cli(
        "project", "create", "slow", "--pipeline", "cli-demo", "--var", "SECONDS=60", "--start"
    )
    server.wait_for("slow", {"running"})
    refused = server.cli("project", "resume", "slow", check=False)
    assert refused.returncode == 1 and "nothing to resume" in refused.stderr
    assert server.json("project", "pause", "slow")["state"] == "pausing"
    server.cli("project", "kill", "slow")
    paused = server.wait_for("slow", {"paused"})
    assert [r["state"] for r in paused["runs"]] == ["cancelled"]


def test_resources_round_trip_and_resumed_upload(winslow_server: Server, tmp_path: Path) -> None:
    server = winslow_server
    data = os.urandom(40 * 1024 * 1024 + 123)
    local = tmp_path / "video.mp4"
    local.write_bytes(data)

    # An upload that dies after its first part...
    settings = ClientSettings(addr=server.addr, data_dir=server.data_dir)
    os.environ["XDG_CACHE_HOME"] = server.env["XDG_CACHE_HOME"]
    sent: list[int] = []

    def drop_after_first_part(n: int) -> None:
        sent.append(n)
        if len(sent) == 1:
            raise ConnectionError("network dropped")

    api = ApiClient(settings)
    with pytest.raises(ConnectionError):
        upload_file(api, local, "videos/v.mp4", drop_after_first_part, threads=1)
    assert server.json("resources", "ls")["data"] == []

    # ...goes on where it stopped when it runs again: the stored part is not sent again.
    resumed: list[int] = []
    result = upload_file(api, local, "videos/v.mp4", resumed.append, threads=1)
    api.close()
    assert result["size"] == len(data)
    assert resumed[0] == sent[0]
    assert sum(resumed) == len(data)

    # The CLI takes the same path, with parallel parts.
    cli = server.cli("resources", "upload", str(local), "videos/copy.mp4", "--json")
    assert json.loads(cli.stdout)["size"] == len(data)
    server.cli("resources", "rm", "videos/copy.mp4")

    listing = server.json("resources", "ls", "videos")["data"]
    assert [(f["name"], f["size"]) for f in listing] == [("v.mp4", len(data))]
    server.cli("resources", "download", "videos/v.mp4", str(tmp_path / "back.mp4"))
    got = (tmp_path / "back.mp4").read_bytes()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    server.cli("resources", "rm", "videos/v.mp4")
    assert server.json("resources", "ls", "videos")["data"] == []
    # An empty listing says so: a bare header read like a command that had failed.
    assert server.cli("resources", "ls", "videos").stdout == (
        "Nothing in 'videos' of the resource pool.\n"
    )


def test_no_projects_at_all_says_how_to_make_one() -> None:
    assert _no_projects({}) == (
        "No projects yet; `winslow project create NAME --pipeline P` makes one."
    )


def test_no_pipelines_says_how_to_add_one_or_that_none_loads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _show_pipelines({"data": [], "errors": {}})
    assert capsys.readouterr().out == "No pipelines yet; `winslow pipeline apply FILE` adds one.\n"
    problem = {"file": "a.yaml", "line": 3, "message": "not YAML"}
    _show_pipelines({"data": [], "errors": {"a.yaml": [problem]}})
    shown = capsys.readouterr()
    assert shown.out == "No pipeline loads; fix the files below.\n"
    assert shown.err == "warning: a.yaml is broken: a.yaml:3: not YAML\n"


def test_a_user_without_a_password_is_shown_how_to_get_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Found by trying it: it said "signs in with a token", yet no one can make a token
    for another user through the API; a password is how they get in."""
    user = {
        "name": "alice",
        "display_name": "",
        "email": "",
        "source": "local",
        "admin": False,
        "disabled": False,
        "created_at": "2026-12-04T15:58:39Z",
        "last_sign_in_at": None,
        "has_password": False,
        "groups": {},
        "quota": None,
    }
    _print_user(user)
    assert "password: none; `winslow user passwd alice` sets one\n" in capsys.readouterr().out


def test_env_shows_the_pipeline_defaults_a_project_leaves_and_says_when_there_are_none(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Found by trying it: after `project env P --unset RATE` it printed nothing at all,
    though the stages then see the pipeline's default."""
    _print_variables({"variables": {"MODE": "fast"}, "variable_defaults": {"RATE": "5"}})
    assert capsys.readouterr().out == "MODE=fast\nRATE=5  (the pipeline's default)\n"
    _print_variables({"variables": {}, "variable_defaults": {}})
    assert capsys.readouterr().out == (
        "No variables: none set, and the pipeline gives no defaults.\n"
    )


def test_a_project_without_runs_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    _print_runs([])
    assert capsys.readouterr().out == "runs: none yet\n"


def test_an_empty_resource_pool_says_how_to_fill_it(capsys: pytest.CaptureFixture[str]) -> None:
    _nothing_in("")
    assert capsys.readouterr().out == (
        "The resource pool is empty; `winslow resources upload FILE [PATH]` adds a file.\n"
    )


def test_cli_without_server_says_where_it_looked(tmp_path: Path) -> None:
    env = {**os.environ, "WINSLOW_ADDR": "http://127.0.0.1:9", "WINSLOW_TOKEN": "x"}
    env["WINSLOW_CLI_RETRY_SECONDS"] = "0"  # else it waits a minute for a server to come
    result = subprocess.run(
        [str(BIN / "winslow"), "project", "list"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: No Winslow server answers at http://127.0.0.1:9.")


def test_version_prints_the_version_and_exits_0() -> None:
    result = subprocess.run([str(BIN / "winslow"), "--version"], capture_output=True, text=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"winslow {__version__}\n", "")


CHATTY = """
name: cli-chatty
variables:
  GATE: {required: true}
stages:
  - name: talk
    command:
      - sh
      - -c
      - >-
        for i in 1 2 3; do echo line $i; sleep 0.2; done;
        while [ ! -e ${GATE} ]; do sleep 0.05; done;
        for i in 4 5 6; do echo line $i; sleep 0.2; done; exit 3
"""


def test_logs_follow_prints_lines_while_the_stage_runs(
    winslow_server: Server, tmp_path: Path
) -> None:
    server = winslow_server
    (tmp_path / "p.yaml").write_text(CHATTY)
    server.cli("pipeline", "apply", str(tmp_path / "p.yaml"))
    # The stage holds its last lines until the test has seen the first one: however slow
    # the machine, the line came while the stage ran.
    gate = tmp_path / "gate"
    server.cli(
        "project", "create", "live", "--pipeline", "cli-chatty", "--var", f"GATE={gate}", "--start"
    )
    server.wait_for("live", {"running"})
    # Its run started: one still pending gets a note on stderr first (CI's loaded machine
    # followed it before the runner had started).
    deadline = time.monotonic() + 30
    while not any(run["started_at"] for run in server.api("/projects/live")["runs"]):
        assert time.monotonic() < deadline, "the stage never started"
        time.sleep(0.1)
    follow = subprocess.Popen(
        [str(BIN / "winslow"), "logs", "live", "-f"],
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follow.stdout is not None
        printed = [follow.stdout.readline()]
        while "stdout | " not in printed[-1]:
            assert printed[-1], "logs -f ended before the stage printed anything"
            printed.append(follow.stdout.readline())
        state_at_first_line = server.json("project", "show", "live")["runs"][0]["state"]
        gate.touch()
        rest = follow.stdout.read()  # through the same buffer as the lines read so far
        follow.wait(timeout=60)
        assert follow.stderr is not None
        errors = follow.stderr.read()
    finally:
        follow.kill()
    assert state_at_first_line == "running"  # the line came while the stage ran
    assert (follow.returncode, errors) == (0, "")  # the run failed; following it did not
    lines = printed + rest.splitlines()
    runs = server.json("project", "show", "live")["runs"]
    assert [line.split("stdout | ")[1].strip() for line in lines if "stdout | " in line] == [
        f"line {i}" for i in range(1, 7)
    ], [(r["id"], r["attempt"], r["state"], r["reason"]) for r in runs]
    assert server.json("project", "show", "live")["runs"][0]["exit_code"] == 3


def test_bad_option_is_usage_error_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "winslow"), "project", "create", "x", "--pipeline", "p", "--var", "NOEQUALS"],
        capture_output=True,
        text=True,
        env={**os.environ, "WINSLOW_ADDR": "http://127.0.0.1:9"},
    )
    assert result.returncode == 2
    assert "--var" in result.stderr


def test_tokens_created_and_revoked_on_the_server_machine(winslow_server: Server) -> None:
    import httpx

    token = winslow_server.cli("token", "create", "ci-bot", "--local").stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(winslow_server.addr + "/api/v1/projects", headers=headers).status_code == 200
    assert "ci-bot" in winslow_server.cli("token", "list", "--local").stdout
    winslow_server.cli("token", "revoke", "ci-bot", "--local")
    assert httpx.get(winslow_server.addr + "/api/v1/projects", headers=headers).status_code == 401
    again = winslow_server.cli("token", "create", "ci-bot", "--local", check=False)
    assert again.returncode == 1 and "has a token named 'ci-bot' already" in again.stderr


def test_project_wait_returns_when_a_person_is_needed(
    winslow_server: Server, tmp_path: Path
) -> None:
    (tmp_path / "g.yaml").write_text(
        'name: gate\nstages:\n  - name: a\n    command: ["true"]\n'
        '  - name: b\n    gate: true\n    command: ["true"]\n'
    )
    winslow_server.cli("pipeline", "apply", str(tmp_path / "g.yaml"))
    winslow_server.cli("project", "create", "w", "--pipeline", "gate", "--start")
    # As a script sees it: the exit status of the installed `winslow` process.
    waited = winslow_server.cli(
        "project", "wait", "w", "--timeout", "60", "--json", check=False, process=True
    )
    # 3: a person is needed; the project's JSON is printed all the same.
    assert waited.returncode == 3, waited.stderr
    assert json.loads(waited.stdout)["state"] == "awaiting_input"
    reached = winslow_server.json("project", "wait", "w", "--state", "awaiting_input")
    assert reached["state"] == "awaiting_input"  # --state reached: exit 0
    late = winslow_server.cli(
        "project", "wait", "w", "--state", "succeeded", "--timeout", "1", check=False
    )
    assert late.returncode == 4 and "still awaiting_input" in late.stderr
    wrong = winslow_server.cli("project", "wait", "w", "--state", "done", check=False)
    assert wrong.returncode == 2 and "--state" in wrong.stderr


def test_project_wait_exits_1_as_soon_as_a_branch_failed(
    winslow_server: Server, tmp_path: Path
) -> None:
    go_on = tmp_path / "go-on"
    (tmp_path / "b.yaml").write_text(
        "name: branches\nstages:\n"
        '  - name: report\n    command: ["sh", "-c", "exit 2"]\n'
        "  - name: infer\n    needs: []\n"
        f'    command: ["sh", "-c", "while [ ! -f {go_on} ]; do sleep 0.1; done"]\n'
    )
    winslow_server.cli("pipeline", "apply", str(tmp_path / "b.yaml"))
    winslow_server.cli("project", "create", "b", "--pipeline", "branches", "--start")
    failing = winslow_server.cli("project", "wait", "b", "--timeout", "60", "--json", check=False)
    # Returns while 'infer' still runs: the failure needs a person now, not at the end.
    assert failing.returncode == 1, failing.stderr
    shown = json.loads(failing.stdout)
    assert shown["state"] == "failing"
    assert shown["state_reason"].startswith("stage 'report'")
    go_on.touch()
    failed = winslow_server.cli("project", "wait", "b", "--timeout", "60", "--state", "failed")
    assert failed.returncode == 0 and "b: failed" in failed.stdout
    again = winslow_server.cli("project", "wait", "b", "--timeout", "60", check=False)
    assert again.returncode == 1 and "b: failed (stage 'report'" in again.stdout


def test_project_wait_exit_codes_cover_every_state_that_needs_a_person() -> None:
    from winslow.cli.projects import WAIT_EXIT_CODES
    from winslow.core.states import NEEDS_PERSON_STATES, ProjectState

    # Idle is no state the console counts as waiting for a person (projects are often made
    # to be started later), but a wait on one would never end unless someone starts it.
    ends = NEEDS_PERSON_STATES | {ProjectState.SUCCEEDED, ProjectState.IDLE}
    assert set(WAIT_EXIT_CODES) == {s.value for s in ends}
    assert {code for state, code in WAIT_EXIT_CODES.items() if state != "succeeded"} == {1, 3}
