"""What each node holds, has free and uses now, and which run holds which GPU."""

from __future__ import annotations

from datetime import UTC, datetime

from winslow.core.models import Run
from winslow.core.node_load import node_loads
from winslow.core.resources import GpuInfo, NodeInfo
from winslow.core.states import StageRunState
from winslow.core.telemetry import GpuSample, NodeSample

AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def run(run_id: int, node: str | None, gpus: tuple[int, ...] = (), cpus: float = 1.0) -> Run:
    return Run(
        id=run_id,
        project_id="p",
        stage=f"s{run_id}",
        attempt=1,
        state=StageRunState.RUNNING,
        created_at=AT,
        node=node,
        gpu_indices=gpus,
        cpus=cpus,
        memory_mb=1024,
        gpus=len(gpus),
    )


def test_runs_hold_their_gpus_and_the_rest_is_free() -> None:
    gpus = (
        GpuInfo(0, "A100", 40960),
        GpuInfo(1, "A100", 40960),
        GpuInfo(2, "A100", 40960, healthy=False),
    )
    nodes = [NodeInfo("gpu-1", cpus=32, memory_mb=131072, gpus=gpus), NodeInfo("cpu-1", 8, 16384)]
    sample = NodeSample(
        "gpu-1", AT, cpu_percent=(50.0, 100.0), gpus=(GpuSample(0, utilization_percent=3.0),)
    )
    active = [run(7, "gpu-1", (0,), cpus=4), run(3, "gpu-1", (1,), cpus=2.5), run(9, None)]

    gpu_node, cpu_node = node_loads(nodes, active, {"gpu-1": sample})

    assert [r.id for r in gpu_node.runs] == [3, 7]  # oldest first; the unplaced run nowhere
    assert [g.runs for g in gpu_node.gpus] == [(7,), (3,), ()]
    assert (gpu_node.gpus_held, gpu_node.gpus_free) == (2, 0)  # GPU 2 is unhealthy: not free
    assert (gpu_node.cpus_held, gpu_node.cpus_free) == (6.5, 25.5)
    assert (gpu_node.memory_held_mb, gpu_node.memory_free_mb) == (2048, 131072 - 2048)
    assert gpu_node.gpus[0].sample == GpuSample(0, utilization_percent=3.0)
    assert gpu_node.gpus[1].sample is None  # not measured: unknown, not zero
    assert gpu_node.sample is not None and gpu_node.sample.cpu_mean == 75.0
    assert (cpu_node.runs, cpu_node.sample, cpu_node.cpus_free) == ((), None, 8)


def test_an_overbooked_node_has_nothing_free_not_less_than_nothing() -> None:
    (load,) = node_loads([NodeInfo("small", 2, 1024)], [run(1, "small", cpus=3)], {})
    assert (load.cpus_free, load.memory_free_mb) == (0.0, 0)


def test_gpus_held_without_indices_count_against_the_free_ones() -> None:
    """Nomad picks a job's devices itself: the run knows how many GPUs it has, not which."""
    gpus = tuple(GpuInfo(i, "T4", 16384) for i in range(3))
    nomad_run = run(4, "gpu-2")
    nomad_run = Run(**{**nomad_run.__dict__, "gpus": 2})
    (load,) = node_loads([NodeInfo("gpu-2", 8, 32768, gpus=gpus)], [nomad_run], {})
    assert (load.gpus_unnamed, load.gpus_held, load.gpus_free) == (2, 2, 1)
    assert all(not g.runs for g in load.gpus)  # which ones is not known, so none is named
