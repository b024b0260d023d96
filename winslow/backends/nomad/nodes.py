"""Translate a Nomad client node into Winslow's ``NodeInfo``: capacity, GPUs, and whether
it takes new stages (status, scheduling eligibility, drain). Pure, like ``status``."""

from __future__ import annotations

from winslow.backends.nomad.types import NomadDrainStrategy, NomadNode, NomadNodeResources
from winslow.backends.nomad.values import (
    attribute_text,
    int_or_none,
    mib_of,
    parse_rfc3339,
    short_id,
)
from winslow.core.resources import GpuInfo, NodeDrain, NodeInfo

_SHOWN_ATTRIBUTES = ("nomad.version", "os.name", "kernel.name", "cpu.arch")


def node_info(node: NomadNode) -> NodeInfo:
    """Our view of one Nomad client node: capacity, GPUs, and whether it takes work."""
    resources = node.get("NodeResources") or {}
    attributes = node.get("Attributes") or {}
    cpu = resources.get("Cpu") or {}
    cores = cpu.get("TotalCpuCores") or int_or_none(attributes.get("cpu.numcores"))
    cpus = float(cores) if cores else cpu.get("CpuShares", 0) / 1000
    gpus, driver_versions = _gpus(resources)
    info: dict[str, str] = {}
    for key in _SHOWN_ATTRIBUTES:
        if key in attributes:
            info[key] = attributes[key]
    for key, value in attributes.items():
        if key.startswith("driver.") and key.endswith(".version"):
            info[key] = value
    drivers = node.get("Drivers") or {}
    healthy = sorted(name for name, d in drivers.items() if d.get("Detected") and d.get("Healthy"))
    if healthy:
        info["drivers"] = ",".join(healthy)
    if driver_versions:
        info["gpu.driver_version"] = ",".join(sorted(driver_versions))
    if node.get("Datacenter"):
        info["datacenter"] = node.get("Datacenter", "")
    if node.get("NodePool"):
        info["node_pool"] = node.get("NodePool", "")
    return NodeInfo(
        name=node.get("Name") or short_id(node.get("ID")) or "?",
        cpus=cpus,
        memory_mb=(resources.get("Memory") or {}).get("MemoryMB", 0),
        gpus=tuple(gpus),
        status=node_state(node),
        attributes=info,
        eligible=node.get("SchedulingEligibility", "eligible") == "eligible",
        drain=node_drain(node.get("DrainStrategy")),
    )


def _gpus(resources: NomadNodeResources) -> tuple[list[GpuInfo], set[str]]:
    """The node's GPUs, numbered in Nomad's order, and their drivers' versions."""
    gpus: list[GpuInfo] = []
    driver_versions: set[str] = set()
    for device in resources.get("Devices") or []:
        if device.get("Type") != "gpu":
            continue
        device_attributes = device.get("Attributes") or {}
        memory = mib_of(device_attributes.get("memory"))
        version = device_attributes.get("driver_version")
        if version is not None:
            driver_versions.add(attribute_text(version))
        for instance in device.get("Instances") or []:
            gpus.append(
                GpuInfo(
                    index=len(gpus),
                    name=device.get("Name") or device.get("Vendor") or "gpu",
                    memory_mb=memory,
                    uuid=instance.get("ID"),
                    healthy=bool(instance.get("Healthy", True)),
                )
            )
    return gpus, driver_versions


def node_state(node: NomadNode) -> str:
    """``ready`` only when the node is up, eligible and not draining.

    Draining is read from ``DrainStrategy``: ``structs.Node`` has no ``Drain`` field any
    more (the encoder adds one for old clients, ``nodeExt``; we do not rely on it)."""
    if node.get("Status") != "ready":
        return "down"
    if node.get("DrainStrategy"):
        return "draining"
    if node.get("SchedulingEligibility", "eligible") != "eligible":
        return "ineligible"
    return "ready"


def node_drain(strategy: NomadDrainStrategy | None) -> NodeDrain | None:
    """The operator's drain of a node (``nomad node drain -enable -deadline``), or None.

    ``Deadline`` below 0 forces the drain now, 0 waits for the allocations to end, above
    0 stops what remains at ``ForceDeadline`` (structs.go ``DrainStrategy.DeadlineTime``).
    """
    if not strategy:
        return None
    deadline_ns = int(strategy.get("Deadline") or 0)
    return NodeDrain(
        started_at=parse_rfc3339(strategy.get("StartedAt")),
        deadline=parse_rfc3339(strategy.get("ForceDeadline")) if deadline_ns > 0 else None,
        forced=deadline_ns < 0,
        ignore_system_jobs=bool(strategy.get("IgnoreSystemJobs")),
    )
