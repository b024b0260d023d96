"""Results, redos with overrides, series and usage from the `winslow` CLI, against a real
`winslow up`."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.fixtures.server import Server

pytestmark = pytest.mark.slow

PIPELINE = """
name: cli-train
variables:
  MODEL: {default: small}
stages:
  - name: train
    log_parsers:
      - name: epochs
        pattern: 'epoch=(?P<epoch>[0-9]+) loss=(?P<loss>[0-9.]+)'
    command:
      - sh
      - -c
      - "for e in 1 2 3; do echo epoch=$e loss=0.$((4-e)); done; echo WINSLOW_RESULT: model=$MODEL"
  - name: report
    command: ["sh", "-c", "echo reported"]
"""


def test_redo_with_overrides_only_this_stage_and_what_it_shows(
    winslow_server: Server, tmp_path: Path
) -> None:
    server = winslow_server
    (tmp_path / "p.yaml").write_text(PIPELINE)
    server.cli("pipeline", "apply", str(tmp_path / "p.yaml"))
    server.cli("project", "create", "cli-train", "-p", "cli-train", "--start")
    first = server.wait_for("cli-train", {"succeeded"})
    train = first["runs"][0]
    assert train["results"] == {"model": "small"}

    resumed = server.cli(
        "project",
        "resume",
        "cli-train",
        "--from",
        "train",
        "--only",
        "--var",
        "MODEL=large",
        "--cpus",
        "0.5",
        "--comment",
        "bigger model",
    )
    assert "resumed from stage 'train'" in resumed.stdout
    paused = server.wait_for("cli-train", {"paused"})
    redo = paused["runs"][-1]
    assert (redo["stage"], redo["results"], redo["cpus"]) == ("train", {"model": "large"}, 0.5)
    assert [r["stage"] for r in paused["runs"]].count("report") == 1  # it stopped after train

    shown = server.cli("project", "show", "cli-train").stdout
    assert f"run {redo['id']} (train): results model=large; for this run only: " in shown
    assert "MODEL=large" in shown and "'bigger model'" in shown
    assert f"run {train['id']} (train): results model=small" in shown

    points = list(
        csv.DictReader(
            io.StringIO(
                server.cli(
                    "project", "series", "cli-train", "--run", str(redo["id"]), "--csv"
                ).stdout
            )
        )
    )
    assert [(p["field"], p["value"]) for p in points if p["field"] == "loss"] == [
        ("loss", "0.3"),
        ("loss", "0.2"),
        ("loss", "0.1"),
    ]
    summary = server.cli("project", "series", "cli-train", "--stage", "train").stdout
    assert "epochs: 3 points; latest at" in summary and "loss=0.1" in summary

    usage = server.json("project", "usage", "cli-train", "--run", str(redo["id"]))
    assert usage["run"] == redo["id"] and isinstance(usage["samples"], list)

    refused = server.cli("project", "resume", "cli-train", "--var", "MODEL=x", check=False)
    assert refused.returncode != 0
    assert "say which stage with from_stage" in refused.stderr
