"""``GET /api/v1/nodes/live`` and the nodes page on a Nomad cluster (the stand-in): each
node's GPUs with what they do now, what is free, and nothing made up where nothing was
measured."""

from __future__ import annotations

import pytest

from tests.fixtures.winslow import Harness

pytestmark = pytest.mark.slow


def test_gpus_are_listed_free_with_their_latest_figures(
    winslow_on_nomad: Harness, nomad_standin
) -> None:
    nomad_standin.add_node("gpu-1", gpus=[("Tesla V100", 16384), ("Tesla V100", 16384)])
    body = winslow_on_nomad.api.get("/api/v1/nodes/live").json()
    nodes = {n["name"]: n for n in body["data"]}
    gpu_node = nodes["gpu-1"]
    assert (gpu_node["gpus_total"], gpu_node["gpus_free"], gpu_node["gpus_held"]) == (2, 2, 0)
    assert (body["gpus_total"], body["gpus_free"], body["runs"]) == (2, 2, 0)
    # Not sampled yet: no figure, rather than a zero that would read as idle.
    assert gpu_node["measured_at"] is None and gpu_node["cpu_percent"] is None
    assert [g["utilization_percent"] for g in gpu_node["gpus"]] == [None, None]

    assert winslow_on_nomad.context.engine.telemetry.sample_once() == 2
    gpu_node = {
        n["name"]: n for n in winslow_on_nomad.api.get("/api/v1/nodes/live").json()["data"]
    }["gpu-1"]
    assert gpu_node["measured_at"] is not None
    assert [(g["index"], g["name"], g["free"], g["runs"]) for g in gpu_node["gpus"]] == [
        (0, "Tesla V100", True, []),
        (1, "Tesla V100", True, []),
    ]
    assert gpu_node["cpu_percent"] is not None
    # The figures are the latest sample's, as the telemetry API serves it.
    [point] = winslow_on_nomad.api.get("/api/v1/nodes/gpu-1/telemetry").json()["samples"]
    assert [g["utilization_percent"] for g in gpu_node["gpus"]] == [
        next((s["utilization_percent"] for s in point["gpus"] if s["index"] == i), None)
        for i in (0, 1)
    ]
    assert gpu_node["cpus_free"] == gpu_node["cpus"] and gpu_node["memory_held_mb"] == 0

    session = winslow_on_nomad.api.post("/api/v1/session", json={"token": winslow_on_nomad.token})
    assert session.status_code == 200, session.text
    page = winslow_on_nomad.api.get("/nodes").text
    assert 'aria-label="GPUs of gpu-1"' in page
    assert "2 of 2 free" in page and 'id="node-gpu-1"' in page
