"""Stages with ``image:`` run in real docker containers, seeing their workspace and inputs."""

from __future__ import annotations

import subprocess

import pytest

from tests.fixtures.winslow import Harness
from tests.fixtures.workspaces import read_workspace

pytestmark = [pytest.mark.slow, pytest.mark.containers]


def pipeline(image: str) -> str:
    return f"""
name: boxed
variables:
  CLIP: {{default: clips/a.txt}}
stages:
  - name: inside
    image: {image}
    command:
      - sh
      - -c
      - >-
        cat $WINSLOW_INPUTS/${{CLIP}} > seen.txt; pwd;
        echo run=$WINSLOW_RUN gpus=[$NVIDIA_VISIBLE_DEVICES]; echo err >&2;
        echo kept > $WINSLOW_CACHE_DIR/engine
    inputs: ["${{CLIP}}"]
  - name: after
    image: {image}
    command: ["sh", "-c", "cat seen.txt $WINSLOW_CACHE_DIR/engine; echo more >> seen.txt; $SLEEP"]
    env: {{SLEEP: "true"}}
"""


def test_image_stage_runs_in_a_container_with_workspace_and_inputs(
    winslow: Harness, stage_image: str
) -> None:
    winslow.context.objects.put_bytes("resources/clips/a.txt", b"from the pool\n")
    winslow.apply_pipeline(pipeline(stage_image))
    winslow.create("boxed", "boxed", start=True)
    winslow.engine.run_until_idle(timeout=120)
    project = winslow.show("boxed")
    assert project["state"] == "succeeded", project
    inside, after = project["runs"]
    log = winslow.log("boxed", inside["id"])
    assert "stdout | /workspace" in log
    assert f"stdout | run={inside['id']} gpus=[void]" in log
    assert "stderr | err" in log
    # The node's stage cache outlives the container: the next stage found what it kept.
    assert "stdout | kept" in winslow.log("boxed", after["id"])
    workspace = after["workspace"]
    assert (
        read_workspace(winslow.context.objects, workspace)["seen.txt"] == b"from the pool\nmore\n"
    )


def test_killing_an_image_stage_stops_its_container(winslow: Harness, stage_image: str) -> None:
    winslow.context.objects.put_bytes("resources/clips/a.txt", b"x\n")
    winslow.apply_pipeline(
        pipeline(stage_image).replace("cat $WINSLOW_INPUTS/${CLIP} > seen.txt;", "sleep 60;")
    )
    winslow.create("stuck", "boxed", start=True)
    winslow.wait_until_running("stuck")
    job = winslow.show("stuck")["runs"][0]["job_id"]
    winslow.command("stuck", "kill")
    winslow.engine.run_until_idle(timeout=60)
    assert winslow.show("stuck")["runs"][0]["state"] == "cancelled"
    running = subprocess.run(
        ["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True, check=True
    ).stdout
    assert job not in running


def test_a_redo_with_another_image_runs_in_it_for_that_run_only(
    winslow: Harness, stage_image: str, tmp_path
) -> None:
    # A second image: the first plus a marker file, made without a build (no registry here).
    marker = tmp_path / "version"
    marker.write_text("v2\n")
    name = f"winslow-test-marker-{tmp_path.name}"
    subprocess.run(["docker", "create", "--name", name, stage_image, "true"], check=True)
    try:
        subprocess.run(["docker", "cp", str(marker), f"{name}:/version"], check=True)
        subprocess.run(["docker", "commit", name, f"{stage_image}-v2"], check=True)
    finally:
        subprocess.run(["docker", "rm", "-f", name], check=False, capture_output=True)
    winslow.apply_pipeline(f"""
name: images
stages:
  - name: detect
    image: {stage_image}
    command: ["sh", "-c", "cat /version 2>/dev/null || echo no marker"]
""")
    winslow.create("images", "images", start=True)
    winslow.engine.run_until_idle(timeout=120)
    first = winslow.show("images")["runs"][0]
    winslow.command(
        "images",
        "resume",
        {"from_stage": "detect", "overrides": {"image": f"{stage_image}-v2", "comment": "v2"}},
    )
    winslow.engine.run_until_idle(timeout=120)
    project = winslow.show("images")
    assert project["state"] == "succeeded", project
    redo = project["runs"][-1]
    assert redo["image"] == f"{stage_image}-v2"
    assert "stdout | v2" in winslow.log("images", redo["id"])
    assert "stdout | no marker" in winslow.log("images", first["id"])
    assert project["runs"][0]["image"] is None  # the earlier run ran the stage's image
