"""Node telemetry on Nomad, from each client's host statistics (``GET /v1/client/stats``).

A Nomad client measures its host (``client/hoststats``) and serves it as ``HostStats``:
each core's busy share (``CPU[].Total``), memory (``Memory``, bytes), the space of every
mounted disk (``DiskStats``) and of the allocation directory (``AllocDirStats``), uptime,
and each device plugin's statistics (``DeviceStats``; the nvidia plugin's names are
``GPU utilization``, ``Memory state``, ``Temperature`` and ``Power usage``). It has no
network figures and no disk I/O counters at all, so on Nomad those figures stay unset
(None, never a made-up zero; the console leaves their charts out and says so); node
exporters or Nomad's own telemetry carry them.

Disk space is the allocation directory's filesystem, where stages keep their work and
inputs; an agent that does not report it falls back to its first disk. GPUs are numbered
as ``nodes.node_info`` numbers them (the order of the node's device instances), matched
by instance ID; a GPU the node did not list goes after them.

``host_sample`` is pure: the backend reads, this translates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TypedDict, cast

from winslow.backends.nomad.types import NomadDeviceGroupStats, NomadStatValue
from winslow.backends.nomad.values import mib_per_unit
from winslow.core.telemetry import GpuSample, NodeSample

_MIB = 1024 * 1024

GPU_UTILIZATION_STAT = "GPU utilization"
GPU_MEMORY_STAT = "Memory state"
GPU_TEMPERATURE_STAT = "Temperature"
GPU_POWER_STAT = "Power usage"
"""The nvidia device plugin's statistic names (nomad-device-nvidia ``stats.go``)."""


class NomadHostCpuStats(TypedDict, total=False):
    """``api.HostCPUStats``: one core, percentages since the client's previous look."""

    CPU: str
    User: float
    System: float
    Idle: float
    Total: float


class NomadHostMemoryStats(TypedDict, total=False):
    """``api.HostMemoryStats``, bytes."""

    Total: int
    Available: int
    Used: int
    Free: int


class NomadHostDiskStats(TypedDict, total=False):
    """``api.HostDiskStats``: one filesystem, bytes."""

    Device: str
    Mountpoint: str
    Size: int
    Used: int
    Available: int
    UsedPercent: float
    InodesUsedPercent: float


class NomadHostStats(TypedDict, total=False):
    """``api.HostStats``: ``GET /v1/client/stats``."""

    Memory: NomadHostMemoryStats | None
    CPU: list[NomadHostCpuStats] | None
    DiskStats: list[NomadHostDiskStats] | None
    AllocDirStats: NomadHostDiskStats | None
    DeviceStats: list[NomadDeviceGroupStats] | None
    Uptime: int
    Timestamp: int
    """Unix time in nanoseconds."""
    CPUTicksConsumed: float


def host_sample(
    node: str, stats: NomadHostStats, at: datetime, gpu_order: Mapping[str, int] | None = None
) -> NodeSample:
    """The ``NodeSample`` of node ``node`` from its ``HostStats``; ``gpu_order`` maps a
    GPU's instance ID to its index."""
    cpu = tuple(_core_busy(core) for core in stats.get("CPU") or [])
    memory = stats.get("Memory") or {}
    total = memory.get("Total")
    available = memory.get("Available")
    used: float | None = None
    if total is not None and available is not None:
        used = (total - available) / _MIB
    elif memory.get("Used") is not None:
        used = float(memory.get("Used") or 0) / _MIB
    disk = stats.get("AllocDirStats") or next(iter(stats.get("DiskStats") or []), None) or {}
    return NodeSample(
        node=node,
        at=at,
        cpu_percent=cpu,
        memory_used_mb=used,
        memory_total_mb=None if total is None else total / _MIB,
        disk_used_bytes=_float(disk.get("Used")),
        disk_total_bytes=_float(disk.get("Size")),
        gpus=_gpus(stats.get("DeviceStats") or [], gpu_order or {}),
    )


def _core_busy(core: NomadHostCpuStats) -> float:
    if core.get("Total") is not None:
        return float(core.get("Total") or 0.0)
    return max(0.0, 100.0 - float(core.get("Idle") or 0.0))


def _gpus(groups: list[NomadDeviceGroupStats], order: Mapping[str, int]) -> tuple[GpuSample, ...]:
    found: list[tuple[str, GpuSample]] = []
    for group in groups:
        if group.get("Type") != "gpu":
            continue
        for instance_id, instance in (group.get("InstanceStats") or {}).items():
            attributes = (instance.get("Stats") or {}).get("Attributes") or {}
            state = attributes.get(GPU_MEMORY_STAT) or instance.get("Summary") or {}
            factor = mib_per_unit(state.get("Unit") or "MiB") or 1.0
            used = _numerator(state)
            total = _denominator(state)
            found.append(
                (
                    instance_id,
                    GpuSample(
                        index=-1,
                        utilization_percent=_numerator(attributes.get(GPU_UTILIZATION_STAT)),
                        memory_used_mb=None if used is None else used * factor,
                        memory_total_mb=None if total is None else total * factor,
                        temperature_c=_numerator(attributes.get(GPU_TEMPERATURE_STAT)),
                        power_w=_numerator(attributes.get(GPU_POWER_STAT)),
                    ),
                )
            )
    known = sorted((order[i], g) for i, g in found if i in order)
    unknown = sorted((i, g) for i, g in found if i not in order)
    gpus = [replace(g, index=index) for index, g in known]
    start = max(order.values(), default=-1) + 1
    gpus += [replace(g, index=start + n) for n, (_, g) in enumerate(unknown)]
    return tuple(gpus)


def _numerator(value: NomadStatValue | None) -> float | None:
    return _number(value, ("IntNumeratorVal", "FloatNumeratorVal"))


def _denominator(value: NomadStatValue | None) -> float | None:
    return _number(value, ("IntDenominatorVal", "FloatDenominatorVal"))


def _number(value: NomadStatValue | None, keys: tuple[str, ...]) -> float | None:
    """A statistic's figure; None where the device said ``N/A`` or nothing."""
    if not value:
        return None
    fields = cast(Mapping[str, object], value)
    for key in keys:
        number = fields.get(key)
        if isinstance(number, int | float) and not isinstance(number, bool):
            return float(number)
    return None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
