"""`winslow project show` lists a gate's questions; `winslow project resume --set` answers
them, against a real `winslow up`."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.server import Server

PIPELINE = """\
name: asks
stages:
  - name: a
    command: ["sh", "-c", "echo 'WINSLOW_RESULT: count=7'"]
  - name: b
    gate: true
    command: ["sh", "-c", "echo threshold=$THRESHOLD"]
    env: {THRESHOLD: "${THRESHOLD}"}
    ask:
      description: "Stage a counted {{ results.a.count }} things."
      inputs:
        - name: THRESHOLD
          type: number
          min: 0
          max: 1
          help: Keep detections above this score.
        - name: LABEL
          type: choice
          choices: [car, truck]
          default: car
"""


def test_show_lists_the_questions_and_resume_set_answers_them(
    winslow_server: Server, tmp_path: Path
) -> None:
    (tmp_path / "asks.yaml").write_text(PIPELINE)
    winslow_server.cli("pipeline", "apply", str(tmp_path / "asks.yaml"))
    winslow_server.cli("project", "create", "q", "--pipeline", "asks", "--start")
    winslow_server.json("project", "wait", "q", "--state", "awaiting_input")

    shown = winslow_server.cli("project", "show", "q").stdout
    as_json = winslow_server.json("project", "show", "q")
    wrong = winslow_server.cli("project", "resume", "q", "--set", "THRESHOLD=2", check=False)
    plain = winslow_server.cli("project", "resume", "q", check=False)
    answered = winslow_server.json(
        "project", "resume", "q", "--set", "THRESHOLD=0.5", "--set", "LABEL=truck"
    )
    done = winslow_server.json("project", "wait", "q", "--timeout", "60")

    assert "gate 'b' waits for a person:" in shown
    assert "Stage a counted 7 things." in shown
    assert "THRESHOLD (number 0..1, required): Keep detections above this score." in shown
    assert "LABEL (choice car|truck, now 'car')" in shown
    assert "winslow project resume q --set THRESHOLD=..." in shown
    assert "inputs" not in as_json  # --json prints the API's project, as before
    assert wrong.returncode == 1
    assert "THRESHOLD: must be at most 1, got 2" in wrong.stderr
    assert plain.returncode == 1 and "THRESHOLD: an answer is required" in plain.stderr
    assert answered["variables"] == {"THRESHOLD": "0.5", "LABEL": "truck"}
    assert done["state"] == "succeeded"
    history = winslow_server.json("project", "history", "q")
    lines = [e["message"] for e in history["data"] if e["kind"] == "resume"]
    assert lines == [
        "answered gate 'b': THRESHOLD=0.5, LABEL=truck; resumed; let gated stage 'b' start"
    ]
