"""Project tokens and triggers from the `winslow` CLI against a real `winslow up`.

The way a script outside Winslow uses them: create a token once, keep it, trigger with it
(the CLI or the printed curl command), and see it refused once it is revoked.
"""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.fixtures.server import BIN, Server

pytestmark = pytest.mark.slow

PIPELINE = """
name: cli-gated
stages:
  - name: prepare
    command: ["sh", "-c", "echo prepared > prepared.txt"]
  - name: review
    gate: true
    command: ["sh", "-c", "cat prepared.txt"]
  - name: finish
    command: ["sh", "-c", "echo done"]
"""


def test_trigger_from_a_script_with_a_project_token(winslow_server: Server, tmp_path) -> None:
    server = winslow_server
    (tmp_path / "p.yaml").write_text(PIPELINE)
    server.cli("pipeline", "apply", str(tmp_path / "p.yaml"))
    server.cli("project", "create", "ulm-0603", "--pipeline", "cli-gated", "--start")
    server.wait_for("ulm-0603", {"awaiting_input"})

    created = server.cli("project", "token", "create", "ulm-0603", "nightly")
    token = created.stdout.strip()
    assert token.startswith("wsl_t_") and "\n" not in token  # stdout: the token alone
    assert "shown this once" in created.stderr
    curl = next(line for line in created.stderr.splitlines() if "curl" in line)
    assert f"X-Winslow-Trigger-Token: {token}" in curl
    url = curl.split()[-1]
    assert url.startswith(server.addr + "/api/v1/projects/") and url.endswith("/trigger")

    listed = server.json("project", "token", "list", "ulm-0603")["data"]
    assert [(t["name"], t["capabilities"], t["revoked"]) for t in listed] == [
        ("nightly", ["trigger"], False)
    ]
    assert token not in server.cli("project", "token", "list", "ulm-0603").stdout

    triggered = server.cli(
        "project", "trigger", "ulm-0603", "--token", token, "--comment", "footage is in"
    )
    assert triggered.stdout.strip() == (
        "ulm-0603: running (resumed; let gated stage 'review' start; comment: footage is in)"
    )
    server.wait_for("ulm-0603", {"succeeded"})

    # The curl command it printed works as printed, with no API token anywhere.
    response = httpx.post(
        url,
        headers={"X-Winslow-Trigger-Token": token},
        json={"from_stage": "finish", "comment": "again"},
    )
    assert response.status_code == 200, response.text
    done = server.wait_for("ulm-0603", {"succeeded"})
    assert [r["stage"] for r in done["runs"] if not r["superseded"]] == [
        "prepare",
        "review",
        "finish",
    ]
    assert len([r for r in done["runs"] if r["stage"] == "finish"]) == 2

    # The token from the environment, as a script keeps it.
    result = subprocess.run(
        [str(BIN / "winslow"), "project", "trigger", "ulm-0603", "--from", "finish", "--json"],
        env={**server.env, "WINSLOW_TRIGGER_TOKEN": token},
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert '"state": "running"' in result.stdout
    server.wait_for("ulm-0603", {"succeeded"})

    history = server.json("project", "history", "ulm-0603")["data"]
    assert [(e["actor"], e["message"]) for e in history if e["kind"] == "resume"] == [
        ("trigger:nightly", "resumed; let gated stage 'review' start; comment: footage is in"),
        ("trigger:nightly", "resumed from stage 'finish'; comment: again"),
        ("trigger:nightly", "resumed from stage 'finish'"),
    ]

    wrong = server.cli("project", "trigger", "ulm-0603", "--token", "wsl_t_nope", check=False)
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("error: The trigger token is not valid for project 'ulm-0603'")

    revoked = server.cli("project", "token", "revoke", "ulm-0603", "nightly")
    assert revoked.stdout.strip() == "token 'nightly' of project 'ulm-0603' revoked"
    refused = server.cli("project", "trigger", "ulm-0603", "--token", token, check=False)
    assert refused.returncode == 1
    assert "wrong, revoked, or another project's" in refused.stderr
    assert server.json("project", "show", "ulm-0603")["state"] == "succeeded"
    listed = server.json("project", "token", "list", "ulm-0603")["data"]
    assert [(t["name"], t["revoked"]) for t in listed] == [("nightly", True)]

    missing = server.cli("project", "trigger", "ulm-0603", check=False)
    assert missing.returncode == 2  # bad usage: --token is required
    assert "--token" in missing.stderr
