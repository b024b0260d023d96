"""What each node holds and has free, and what runs where: the nodes page's figures.

Two kinds of figure sit side by side, because a person needs both: what Winslow's stages
*hold* of a node (the CPUs, memory and GPUs their runs asked for, which decides whether
another stage fits) and what the node *uses* as measured (its latest telemetry sample:
busy cores, memory, each GPU's utilisation). A stage holding a GPU at 3 % utilisation is
the waste this page is there to show. Pure: nodes, runs and samples in, figures out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from winslow.core.models import Run
from winslow.core.resources import GpuInfo, NodeInfo
from winslow.core.telemetry import GpuSample, NodeSample


@dataclass(frozen=True)
class GpuLoad:
    """One GPU: what it is, which runs hold it, what it does now (None: not measured)."""

    gpu: GpuInfo
    runs: tuple[int, ...]
    """IDs of the active runs that hold it; empty when it is free."""
    sample: GpuSample | None

    @property
    def free(self) -> bool:
        return not self.runs and self.gpu.healthy


@dataclass(frozen=True)
class NodeLoad:
    """One node with its runs, what they hold, what is left, and what it uses now."""

    node: NodeInfo
    runs: tuple[Run, ...]
    """The active runs placed on this node, oldest first."""
    gpus: tuple[GpuLoad, ...]
    cpus_held: float
    memory_held_mb: int
    sample: NodeSample | None

    @property
    def cpus_free(self) -> float:
        return max(self.node.cpus - self.cpus_held, 0.0)

    @property
    def memory_free_mb(self) -> int:
        return max(self.node.memory_mb - self.memory_held_mb, 0)

    @property
    def gpus_unnamed(self) -> int:
        """GPUs that runs hold without saying which: a scheduler that is not Winslow's
        (Nomad) picks the devices, so only their count is known."""
        return sum(r.gpus for r in self.runs if not r.gpu_indices)

    @property
    def gpus_held(self) -> int:
        return sum(1 for g in self.gpus if g.runs) + self.gpus_unnamed

    @property
    def gpus_free(self) -> int:
        return max(sum(1 for g in self.gpus if g.free) - self.gpus_unnamed, 0)


def node_loads(
    nodes: Iterable[NodeInfo], active: Iterable[Run], samples: Mapping[str, NodeSample]
) -> list[NodeLoad]:
    """Each node of ``nodes`` with the ``active`` runs placed on it and its latest sample
    in ``samples`` (by node name), in the order of ``nodes``."""
    by_node: dict[str, list[Run]] = {}
    for run in active:
        if run.node is not None:
            by_node.setdefault(run.node, []).append(run)
    loads = []
    for node in nodes:
        runs = sorted(by_node.get(node.name, []), key=lambda r: r.id)
        sample = samples.get(node.name)
        measured = {g.index: g for g in sample.gpus} if sample is not None else {}
        gpus = tuple(
            GpuLoad(
                gpu=gpu,
                runs=tuple(r.id for r in runs if gpu.index in r.gpu_indices),
                sample=measured.get(gpu.index),
            )
            for gpu in node.gpus
        )
        loads.append(
            NodeLoad(
                node=node,
                runs=tuple(runs),
                gpus=gpus,
                cpus_held=sum(r.cpus for r in runs),
                memory_held_mb=sum(r.memory_mb for r in runs),
                sample=sample,
            )
        )
    return loads
