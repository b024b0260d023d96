"""Fitting stages onto nodes, and the words when they do not fit."""

from __future__ import annotations

from winslow.core.placement import Allocation, NoFit, Placement, gpu_fallback, never_fits, place
from winslow.core.resources import GpuInfo, GpuRequest, NodeInfo, ResourceRequest

CPU_NODE = NodeInfo("local", cpus=2, memory_mb=8000)
GPU_NODE = NodeInfo(
    "gpu-1",
    cpus=16,
    memory_mb=64000,
    gpus=(GpuInfo(0, "NVIDIA H100", 80000), GpuInfo(1, "NVIDIA H100", 80000)),
)


def test_more_gpus_than_the_node_has_says_so() -> None:
    verdict = place(ResourceRequest(gpu=GpuRequest(count=2)), [CPU_NODE], [])
    assert verdict == NoFit("needs 2 GPUs; node local has 0", ever=False)


def test_gpus_are_given_out_exactly_once() -> None:
    request = ResourceRequest(gpu=GpuRequest(count=1))
    first = place(request, [GPU_NODE], [])
    assert first == Placement("gpu-1", (0,))
    second = place(request, [GPU_NODE], [Allocation("gpu-1", 1, 512, (0,))])
    assert second == Placement("gpu-1", (1,))
    third = place(
        request, [GPU_NODE], [Allocation("gpu-1", 1, 512, (0,)), Allocation("gpu-1", 1, 512, (1,))]
    )
    assert isinstance(third, NoFit) and third.ever
    assert third.reason == "waiting for 1 GPU; 0 free on node gpu-1"


def test_model_pattern_and_memory_constraints() -> None:
    request = ResourceRequest(gpu=GpuRequest(count=1, model="A100"))
    verdict = place(request, [GPU_NODE], [])
    assert verdict == NoFit("needs 1 GPU matching 'A100'; node gpu-1 has 0", ever=False)
    big = ResourceRequest(gpu=GpuRequest(count=1, min_memory_mb=100_000))
    assert isinstance(place(big, [GPU_NODE], []), NoFit)


def test_cpu_bound_waits_for_free_cpus() -> None:
    verdict = place(ResourceRequest(cpus=2), [CPU_NODE], [Allocation("local", 1, 100)])
    assert verdict == NoFit("waiting for 2 CPUs; 1 free on node local", ever=True)


def test_cpu_only_stage_prefers_the_node_without_gpus() -> None:
    assert place(ResourceRequest(cpus=1), [GPU_NODE, CPU_NODE], []) == Placement("local", ())


def test_unhealthy_gpu_makes_the_run_wait_not_fail() -> None:
    sick = NodeInfo(
        "gpu-2", cpus=8, memory_mb=32000, gpus=(GpuInfo(0, "NVIDIA H100", 80000, healthy=False),)
    )
    verdict = place(ResourceRequest(gpu=GpuRequest(count=1)), [sick], [])
    # A GPU that stopped answering may come back; only a GPU the node lacks is never.
    assert verdict == NoFit("waiting for 1 GPU; 0 free on node gpu-2", ever=True)


def test_never_fits_counts_every_known_node_even_one_that_is_down() -> None:
    request = ResourceRequest(gpu=GpuRequest(count=1, model="H100"))
    down = NodeInfo("gpu-1", 16, 64000, GPU_NODE.gpus, status="down")
    # Only a CPU node is ready now, but the GPU node may come back: it can still fit.
    assert never_fits(request, [CPU_NODE, down]) is None
    assert never_fits(request, [CPU_NODE]) == "needs 1 GPU matching 'H100'; node local has 0"
    assert never_fits(request, []) is None  # no node known yet: one may join


# -- a GPU stage that may run on the CPU ------------------------------------------------

MAY_FALL_BACK = ResourceRequest(gpu=GpuRequest(count=1, cpu_fallback=True))


def test_fallback_is_taken_when_no_node_has_a_gpu() -> None:
    reason = gpu_fallback(MAY_FALL_BACK, [CPU_NODE])
    assert reason == "no node has 1 GPU (node local has 0); running on the CPU as the stage allows"


def test_fallback_counts_every_node_and_names_the_most_gpus_any_has() -> None:
    one_a100 = NodeInfo("gpu-2", cpus=8, memory_mb=32000, gpus=(GpuInfo(0, "NVIDIA A100", 40000),))
    two = ResourceRequest(gpu=GpuRequest(count=2, cpu_fallback=True))
    assert gpu_fallback(two, [CPU_NODE, one_a100]) == (
        "no node has 2 GPUs (2 nodes have at most 1); running on the CPU as the stage allows"
    )
    # A node with GPUs, but none that the stage's model pattern accepts, is no GPU node.
    h100 = ResourceRequest(gpu=GpuRequest(count=1, model="H100", cpu_fallback=True))
    assert gpu_fallback(h100, [one_a100]) == (
        "no node has 1 GPU matching 'H100' (node gpu-2 has 0); "
        "running on the CPU as the stage allows"
    )


def test_fallback_is_not_taken_while_the_gpu_nodes_are_busy_down_or_draining() -> None:
    busy = [Allocation("gpu-1", 1, 512, (0,)), Allocation("gpu-1", 1, 512, (1,))]
    assert isinstance(place(MAY_FALL_BACK, [CPU_NODE, GPU_NODE], busy), NoFit)
    assert gpu_fallback(MAY_FALL_BACK, [CPU_NODE, GPU_NODE]) is None
    for status in ("down", "draining", "ineligible"):
        away = NodeInfo("gpu-1", 16, 64000, gpus=GPU_NODE.gpus, status=status)
        assert gpu_fallback(MAY_FALL_BACK, [CPU_NODE, away]) is None, status
    sick = NodeInfo("gpu-1", 16, 64000, gpus=(GpuInfo(0, "NVIDIA H100", 80000, healthy=False),))
    assert gpu_fallback(MAY_FALL_BACK, [CPU_NODE, sick]) is None  # it may recover


def test_fallback_waits_for_a_node_when_none_is_known() -> None:
    assert gpu_fallback(MAY_FALL_BACK, []) is None


def test_without_fallback_a_gpu_stage_still_never_fits_a_cpu_machine() -> None:
    request = ResourceRequest(gpu=GpuRequest(count=1))
    assert gpu_fallback(request, [CPU_NODE]) is None
    assert never_fits(request, [CPU_NODE]) == "needs 1 GPU; node local has 0"
    assert place(request, [CPU_NODE], []) == NoFit("needs 1 GPU; node local has 0", ever=False)


def test_a_stage_asking_for_no_gpu_never_falls_back() -> None:
    request = ResourceRequest(gpu=GpuRequest(count=0, cpu_fallback=True))
    assert gpu_fallback(request, [CPU_NODE]) is None
