"""A GPU stage that may run on the CPU (``gpu: {count: 1, fallback: cpu}``): it falls
back only where no node has a GPU at all, the history says so, and the stage sees no GPU;
where a GPU node exists it gets the GPU (or waits for it) and Nomad is asked for one.

The local backend runs on this machine as it is (no GPU here: a machine with one skips
that test) and, for the GPU cases, behind a stand-in ``nvidia-smi`` on ``PATH`` that
reports one card; the Nomad cases run on the stand-in, whose nodes can have GPUs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.winslow import Harness
from tests.nomad_standin import NomadStandin
from winslow.engine.reconcile import NO_NODE_TO_DECIDE
from winslow.engine.specs import resource_request
from winslow.errors import PipelineError
from winslow.pipeline.load import load_pipeline_text

pytestmark = pytest.mark.slow

FALLBACK_NOTE = "no node has 1 GPU"
CPU_NOTE = "running on the CPU as the stage allows"

PIPELINE = """
name: detector
stages:
  - name: detect
    command: ["sh", "-c", "env | grep '^CUDA_VISIBLE_DEVICES=' || echo CUDA_VISIBLE_DEVICES unset"]
    requirements: {gpu: {count: 1, fallback: cpu}}
"""


def history(winslow: Harness, project: str) -> list[str]:
    response = winslow.api.get(f"/api/v1/projects/{project}/history")
    assert response.status_code == 200, response.text
    return [event["message"] for event in response.json()["data"]]


def test_fallback_is_read_from_the_pipeline_and_only_cpu_is_accepted() -> None:
    stage = load_pipeline_text(PIPELINE).stage("detect")
    assert stage.requirements.gpu.fallback == "cpu"
    assert resource_request(stage).gpu.cpu_fallback is True
    plain = load_pipeline_text(PIPELINE.replace(", fallback: cpu", "")).stage("detect")
    assert resource_request(plain).gpu.cpu_fallback is False
    with pytest.raises(PipelineError, match=r"requirements\.gpu\.fallback"):
        load_pipeline_text(PIPELINE.replace("fallback: cpu", "fallback: tpu"))


# -- the local backend ------------------------------------------------------------------


def test_gpu_less_machine_runs_the_stage_on_the_cpu_and_says_so(winslow: Harness) -> None:
    if winslow.context.backend.nodes()[0].gpus:
        pytest.skip("this machine has a GPU; the stage would get it instead of falling back")
    winslow.apply_pipeline(PIPELINE)
    winslow.create("cpu-only", "detector", start=True)
    winslow.engine.run_until_idle()

    project = winslow.show("cpu-only")
    assert project["state"] == "succeeded", project
    (run,) = project["runs"]
    assert (run["state"], run["gpus"], run["gpu_indices"]) == ("succeeded", 0, [])
    # The stage was told it has no GPU, so its code takes its CPU path.
    assert "stdout | CUDA_VISIBLE_DEVICES=\n" in winslow.log("cpu-only", run["id"])
    said = [m for m in history(winslow, "cpu-only") if FALLBACK_NOTE in m]
    assert said == [
        f"run {run['id']} of 'detect' asked for 1 GPU: no node has 1 GPU "
        f"(node local has 0); {CPU_NOTE}"
    ]


FAKE_NVIDIA_SMI = """#!/bin/sh
# One card, answered only to the detection query; anything else finds no driver.
case "$*" in
  *--query-gpu=index,name,memory.total,uuid*)
    echo "0, NVIDIA GeForce RTX 4090, 24564, GPU-4090-0000"; exit 0;;
esac
exit 9
"""


@pytest.fixture
def one_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in ``nvidia-smi`` on ``PATH`` that reports one GPU (set before the
    ``winslow`` fixture asks for it: the local backend reads it on first use)."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(FAKE_NVIDIA_SMI)
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_stage_waits_for_a_busy_gpu_instead_of_falling_back(
    one_gpu: None, winslow: Harness, tmp_path: Path
) -> None:
    assert [g.name for g in winslow.context.backend.nodes()[0].gpus] == ["NVIDIA GeForce RTX 4090"]
    release = tmp_path / "release"
    winslow.apply_pipeline(f"""
name: holder
stages:
  - name: hold
    command: ["sh", "-c", "while [ ! -f {release} ]; do sleep 0.1; done"]
    requirements: {{gpu: {{count: 1}}}}
""")
    winslow.apply_pipeline(PIPELINE)
    winslow.create("holder", "holder", start=True)
    holding = winslow.wait_until_running("holder")
    assert holding["gpu_indices"] == [0]

    winslow.create("patient", "detector", start=True)
    winslow.engine.reconcile_once()
    winslow.engine.reconcile_once()
    (waiting,) = winslow.show("patient")["runs"]
    assert (waiting["state"], waiting["gpus"]) == ("pending", 1)
    assert waiting["reason"] == "waiting for 1 GPU; 0 free on node local"
    assert not [m for m in history(winslow, "patient") if FALLBACK_NOTE in m]

    release.touch()
    winslow.engine.run_until_idle()
    (run,) = winslow.show("patient")["runs"]
    assert (run["state"], run["gpus"], run["gpu_indices"]) == ("succeeded", 1, [0])
    assert "stdout | CUDA_VISIBLE_DEVICES=0\n" in winslow.log("patient", run["id"])
    assert not [m for m in history(winslow, "patient") if FALLBACK_NOTE in m]


# -- Nomad (the stand-in) ---------------------------------------------------------------


def main_task(nomad_standin: Any, job_id: str) -> dict[str, Any]:
    job = httpx.get(f"{nomad_standin.address}/v1/job/{job_id}", timeout=10).json()
    (group,) = job["TaskGroups"]
    return next(task for task in group["Tasks"] if task["Name"] == "main")


def test_nomad_cluster_without_gpus_gets_a_job_that_asks_for_none(
    winslow_on_nomad: Harness, nomad_standin: Any
) -> None:
    winslow = winslow_on_nomad
    winslow.apply_pipeline(PIPELINE)
    winslow.create("cpu-cluster", "detector", start=True)
    winslow.engine.run_until_idle(timeout=120)

    project = winslow.show("cpu-cluster")
    assert project["state"] == "succeeded", project
    (run,) = project["runs"]
    assert (run["node"], run["gpus"]) == ("standin-1", 0)
    assert not main_task(nomad_standin, run["job_id"])["Resources"].get("Devices")
    assert "stdout | CUDA_VISIBLE_DEVICES=\n" in winslow.log("cpu-cluster", run["id"])
    said = [m for m in history(winslow, "cpu-cluster") if FALLBACK_NOTE in m]
    assert said == [
        f"run {run['id']} of 'detect' asked for 1 GPU: no node has 1 GPU "
        f"(node standin-1 has 0); {CPU_NOTE}"
    ]


def test_nomad_cluster_with_a_gpu_node_gets_the_usual_device_request(
    winslow_on_nomad: Harness, nomad_standin: Any
) -> None:
    winslow = winslow_on_nomad
    nomad_standin.add_node("gpu-1", cpu_mhz=4000, gpus=[("Tesla V100", 16384)])
    winslow.apply_pipeline(PIPELINE)
    winslow.create("gpu-cluster", "detector", start=True)
    winslow.engine.run_until_idle(timeout=120)

    project = winslow.show("gpu-cluster")
    assert project["state"] == "succeeded", project
    (run,) = project["runs"]
    assert (run["node"], run["gpus"]) == ("gpu-1", 1)
    devices = main_task(nomad_standin, run["job_id"])["Resources"]["Devices"]
    assert [(d["Name"], d["Count"]) for d in devices] == [("nvidia/gpu", 1)]
    assert "stdout | CUDA_VISIBLE_DEVICES=GPU-" in winslow.log("gpu-cluster", run["id"])
    assert not [m for m in history(winslow, "gpu-cluster") if FALLBACK_NOTE in m]


class TestClusterWithoutNodesYet:
    @pytest.fixture
    def nomad_standin(self) -> Iterator[NomadStandin]:
        """A stand-in with no node at all, as a cluster whose clients have not joined."""
        standin = NomadStandin()
        standin.start()
        try:
            yield standin
        finally:
            standin.stop()

    def test_stage_waits_for_a_node_before_choosing_gpu_or_cpu(
        self, winslow_on_nomad: Harness, nomad_standin: NomadStandin
    ) -> None:
        winslow = winslow_on_nomad
        winslow.apply_pipeline(PIPELINE)
        winslow.create("early", "detector", start=True)
        winslow.engine.run_until_idle(timeout=60)
        (run,) = winslow.show("early")["runs"]
        assert (run["state"], run["job_id"] in nomad_jobs(nomad_standin)) == ("pending", False)
        assert run["reason"] == NO_NODE_TO_DECIDE

        nomad_standin.add_node("standin-1", cpu_mhz=16000, memory_mb=32768)
        winslow.engine.reconcile_once(full=True)
        winslow.engine.run_until_idle(timeout=120)
        (run,) = winslow.show("early")["runs"]
        assert (run["state"], run["node"], run["gpus"]) == ("succeeded", "standin-1", 0)
        assert not main_task(nomad_standin, run["job_id"])["Resources"].get("Devices")


def nomad_jobs(nomad_standin: NomadStandin) -> list[str]:
    answer = httpx.get(f"{nomad_standin.address}/v1/jobs", timeout=10).json()
    return [job["ID"] for job in answer]
