"""Where a stage can run now: fit its request onto nodes given what runs there already.

Pure: the engine passes the nodes and the active runs' allocations. The answer is a
placement or a reason in words a person reads on the pending run ("needs 2 GPUs; node
local has 0"). A request no node could ever hold is told apart from one that has to wait,
and one that may run on the CPU does so only when no node has its GPUs at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from winslow.core.resources import GpuInfo, NodeInfo, ResourceRequest
from winslow.units import format_megabytes


@dataclass(frozen=True)
class Allocation:
    """What one active run holds on a node."""

    node: str
    cpus: float
    memory_mb: int
    gpu_indices: tuple[int, ...] = ()


@dataclass(frozen=True)
class Placement:
    node: str
    gpu_indices: tuple[int, ...]


@dataclass(frozen=True)
class NoFit:
    reason: str
    ever: bool
    """False when no node could hold the request even if it were idle."""


def _matching_gpus(
    request: ResourceRequest, gpus: Iterable[GpuInfo], *, healthy_only: bool = True
) -> list[GpuInfo]:
    pattern = re.compile(request.gpu.model) if request.gpu.model else None
    return [
        gpu
        for gpu in gpus
        if (gpu.healthy or not healthy_only)
        and (pattern is None or pattern.search(gpu.name))
        and (request.gpu.min_memory_mb is None or gpu.memory_mb >= request.gpu.min_memory_mb)
    ]


def _gpu_words(request: ResourceRequest) -> str:
    words = f"{request.gpu.count} GPU{'s' if request.gpu.count != 1 else ''}"
    if request.gpu.model:
        words += f" matching '{request.gpu.model}'"
    if request.gpu.min_memory_mb:
        words += f" with at least {format_megabytes(request.gpu.min_memory_mb)}"
    return words


def _capacity_problem(request: ResourceRequest, node: NodeInfo) -> str | None:
    if request.gpu.count > 0:
        # An unhealthy GPU may recover: the run waits for it rather than failing.
        usable = _matching_gpus(request, node.gpus, healthy_only=False)
        if len(usable) < request.gpu.count:
            return f"needs {_gpu_words(request)}; node {node.name} has {len(usable)}"
    if request.cpus > node.cpus:
        return f"needs {request.cpus:g} CPUs; node {node.name} has {node.cpus:g}"
    if request.memory_mb > node.memory_mb:
        return (
            f"needs {format_megabytes(request.memory_mb)} of memory; "
            f"node {node.name} has {format_megabytes(node.memory_mb)}"
        )
    return None


def place(
    request: ResourceRequest, nodes: Iterable[NodeInfo], allocations: Iterable[Allocation]
) -> Placement | NoFit:
    """Return the node (and GPUs) to run ``request`` on now, or why none fits.

    Among nodes that fit, the one with the fewest GPUs left over wins, so stages without
    GPUs do not crowd the GPU machines.
    """
    nodes = [node for node in nodes if node.status == "ready"]
    if not nodes:
        return NoFit("no node is ready to run stages", ever=True)
    allocations = list(allocations)
    capacity_problems: list[str] = []
    waiting: list[str] = []
    candidates: list[tuple[int, str, Placement]] = []
    for node in nodes:
        problem = _capacity_problem(request, node)
        if problem:
            capacity_problems.append(problem)
            continue
        mine = [a for a in allocations if a.node == node.name]
        free_cpus = node.cpus - sum(a.cpus for a in mine)
        free_memory = node.memory_mb - sum(a.memory_mb for a in mine)
        taken = {index for a in mine for index in a.gpu_indices}
        free_gpus = [g for g in _matching_gpus(request, node.gpus) if g.index not in taken]
        if request.gpu.count > len(free_gpus):
            waiting.append(
                f"waiting for {_gpu_words(request)}; {len(free_gpus)} free on node {node.name}"
            )
        elif request.cpus > free_cpus + 1e-9:
            waiting.append(
                f"waiting for {request.cpus:g} CPUs; {max(free_cpus, 0):g} free on node {node.name}"
            )
        elif request.memory_mb > free_memory:
            waiting.append(
                f"waiting for {format_megabytes(request.memory_mb)} of memory; "
                f"{format_megabytes(max(free_memory, 0))} free on node {node.name}"
            )
        else:
            chosen = tuple(g.index for g in free_gpus[: request.gpu.count])
            leftover = len(node.gpus) - len(taken) - len(chosen)
            candidates.append((leftover, node.name, Placement(node.name, chosen)))
    if candidates:
        return min(candidates)[2]
    if waiting:
        return NoFit(waiting[0], ever=True)
    return NoFit("; ".join(capacity_problems), ever=False)


def never_fits(request: ResourceRequest, nodes: Iterable[NodeInfo]) -> str | None:
    """Why no node the backend knows could ever hold ``request``, or None when one could.

    Every known node counts, whatever its status now: a node that is down or draining may
    come back. With no node known at all the answer is None, as one may join.
    """
    problems = [_capacity_problem(request, node) for node in nodes]
    if not problems or any(problem is None for problem in problems):
        return None
    return "; ".join(problem for problem in problems if problem)


def gpu_fallback(request: ResourceRequest, nodes: Iterable[NodeInfo]) -> str | None:
    """Why ``request`` runs without GPUs, or None when it keeps asking for them.

    Only a request that allows it (``cpu_fallback``) falls back, and only when at least one
    node is known and none of them, whatever its status or load, has the GPUs it asks
    for: a busy, down or draining GPU node may free up or come back, and the stage waits
    for it rather than running for days on CPUs. CPUs and memory play no part here; the
    request without GPUs is placed, or found never to fit, as any other.
    """
    if not request.gpu.cpu_fallback or request.gpu.count <= 0:
        return None
    nodes = list(nodes)
    if not nodes:
        return None
    counts = [len(_matching_gpus(request, node.gpus, healthy_only=False)) for node in nodes]
    if max(counts) >= request.gpu.count:
        return None
    if len(nodes) == 1:
        where = f"node {nodes[0].name} has {counts[0]}"
    else:
        where = f"{len(nodes)} nodes have at most {max(counts)}"
    return f"no node has {_gpu_words(request)} ({where}); running on the CPU as the stage allows"
