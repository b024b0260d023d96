"""`winslow pipeline import` as a person runs it: YAML on stdout, warnings on stderr."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.server import BIN, Server
from winslow.pipeline.load import load_pipeline_file

FIRST_WINSLOW = """
name: "Old Pipeline"
stages:
  - Worker:
      id: "a-id"
      name: "detect"
      image: {name: "hello-world"}
      requirements:
        megabytesOfRam: 5120
        gpu: {count: 1, vendor: "nvidia"}
      logParsers:
        - {matcher: "loss=(.*)", destination: "loss.csv", type: "regex-matcher/csv"}
      nextStages: ["x-id"]
  - XorGateway:
      id: "x-id"
      name: "Pick"
      conditions: ['{"==": [1, 1]}']
      nextStages: ["b-id"]
  - Worker:
      id: "b-id"
      name: "report"
      image: {name: "hello-world"}
"""


def winslow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "winslow"), *args], text=True, capture_output=True, timeout=60)


def test_import_prints_yaml_and_warns_on_stderr(tmp_path: Path) -> None:
    old = tmp_path / "old.yml"
    old.write_text(FIRST_WINSLOW)
    result = winslow("pipeline", "import", str(old))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"# Converted from {old} (a first-Winslow pipeline)")
    warnings = result.stderr.strip().splitlines()
    assert warnings[0].startswith("warning: the pipeline 'Old Pipeline' is named 'Old-Pipeline'")
    assert any(
        w.startswith("warning: stage 'detect': logParsers became log_parsers loss")
        for w in warnings
    )
    assert any(w.startswith("warning: XOR gateway 'Pick'") for w in warnings)
    assert len(warnings) == 3

    out = tmp_path / "new.yaml"
    written = winslow("pipeline", "import", str(old), "--output", str(out))
    assert written.returncode == 0, written.stderr
    assert written.stdout == ""
    assert out.read_text() == result.stdout
    pipeline = load_pipeline_file(out)
    assert pipeline.stage("detect").requirements.gpu.count == 1
    assert pipeline.needs_of("report") == ["detect"]


def test_import_of_a_broken_file_says_why_and_exits_1(tmp_path: Path) -> None:
    old = tmp_path / "old.yml"
    old.write_text("stages:\n  - Worker: {name: a, image: {name: i}, nextStages: [gone]}\n")
    result = winslow("pipeline", "import", str(old))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"error: {old}: Worker 'a': nextStages names unknown stage id 'gone'; the ids are: none"
    )


@pytest.mark.slow
def test_import_apply_creates_the_pipeline(winslow_server: Server, tmp_path: Path) -> None:
    old = tmp_path / "old.yml"
    old.write_text(FIRST_WINSLOW)
    winslow_server.cli("pipeline", "import", str(old), "--apply")
    listed = winslow_server.json("pipeline", "list")["data"]
    assert [(p["name"], p["stages"]) for p in listed] == [("Old-Pipeline", ["detect", "report"])]
