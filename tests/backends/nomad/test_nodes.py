"""A Nomad client node in Winslow's words (``backends/nomad/nodes.py``): capacity, GPUs,
and whether it takes new stages, read from Nomad's documented node sample."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.nomad_api import SAMPLES
from winslow.backends.nomad.nodes import node_drain, node_info, node_state
from winslow.core.resources import GpuInfo, NodeDrain

# How Nomad encodes a draining node (nomad node drain -enable -deadline 1h):
# Node.UpdateDrain sets DrainStrategy (its DrainSpec inlined, ForceDeadline = StartedAt +
# Deadline) and makes the node ineligible (state_store.go updateNodeDrainImpl); the
# encoder adds the legacy Drain flag (jsonhandles nodeExt).
DRAINING = {
    "Drain": True,
    "DrainStrategy": {
        "Deadline": 3_600_000_000_000,
        "IgnoreSystemJobs": False,
        "ForceDeadline": "2026-12-03T14:02:10.123456789Z",
        "StartedAt": "2026-12-03T13:02:10.123456789Z",
    },
    "SchedulingEligibility": "ineligible",
}


def gpu_node(**fields) -> dict:
    node = json.loads((SAMPLES / "node_read_response.json").read_text())
    node["NodeResources"]["Devices"].append(
        {
            "Vendor": "nvidia",
            "Type": "gpu",
            "Name": "Tesla T4",
            "Attributes": {
                "memory": {"Int": 15360, "Unit": "MiB"},
                "driver_version": {"String": "550.54.15"},
            },
            "Instances": [
                {"ID": "GPU-aaaa", "Healthy": True, "HealthDescription": ""},
                {"ID": "GPU-bbbb", "Healthy": False, "HealthDescription": "Xid 79"},
            ],
        }
    )
    node.update(fields)
    return node


def test_documented_node_has_no_gpus_but_its_capacity_and_drivers():
    node = json.loads((SAMPLES / "node_read_response.json").read_text())
    info = node_info(node)
    assert (info.name, info.cpus, info.memory_mb, info.status) == ("mew", 8.0, 15803, "ready")
    assert info.gpus == ()  # its devices are "skeleton" ones
    assert info.attributes["driver.docker.version"] == "18.09.6"
    assert info.attributes["drivers"] == "docker,raw_exec"
    assert info.attributes["nomad.version"] == "1.1.0"
    assert info.attributes["datacenter"] == "dc1"


def test_gpu_devices_become_one_gpu_each():
    info = node_info(gpu_node())
    assert info.gpus == (
        GpuInfo(0, "Tesla T4", 15360, "GPU-aaaa", True),
        GpuInfo(1, "Tesla T4", 15360, "GPU-bbbb", False),
    )
    assert info.attributes["gpu.driver_version"] == "550.54.15"


def test_cpus_fall_back_to_compute_shares_without_core_counts():
    node = gpu_node(Attributes={}, NodeResources={"Cpu": {"CpuShares": 4000}, "Memory": {}})
    assert node_info(node).cpus == 4.0


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({}, "ready"),
        ({"Status": "down"}, "down"),
        ({"Status": "initializing"}, "down"),
        (DRAINING, "draining"),
        ({"SchedulingEligibility": "ineligible"}, "ineligible"),
    ],
    ids=["ready", "down", "initializing", "draining", "ineligible"],
)
def test_node_takes_work_only_when_ready_eligible_and_not_draining(fields, state):
    assert node_state(gpu_node(**fields)) == state


def test_node_drained_by_its_operator_says_since_when_and_until_when():
    info = node_info(gpu_node(**DRAINING))
    assert (info.status, info.eligible) == ("draining", False)
    assert info.drain == NodeDrain(
        started_at=datetime(2026, 12, 3, 13, 2, 10, 123456, tzinfo=UTC),
        deadline=datetime(2026, 12, 3, 14, 2, 10, 123456, tzinfo=UTC),
    )
    assert info.drain.describe() == (
        "draining since 2026-12-03 13:02 UTC, stages stopped at 2026-12-03 14:02 UTC"
    )


def test_drain_without_deadline_and_forced_drain():
    """Deadline 0 waits for the allocations, below 0 forces (DrainStrategy.DeadlineTime);
    ForceDeadline is Go's zero time then."""
    started = "2026-12-03T13:02:10Z"
    zero = "0001-01-01T00:00:00Z"
    patient = node_drain({"Deadline": 0, "ForceDeadline": zero, "StartedAt": started})
    forced = node_drain({"Deadline": -1, "ForceDeadline": zero, "StartedAt": started})
    assert patient is not None and forced is not None
    assert (patient.deadline, patient.forced) == (None, False)
    assert (
        patient.describe()
        == "draining since 2026-12-03 13:02 UTC, no deadline: stages finish first"
    )
    assert forced.forced and forced.describe().endswith("stages stopped at once")
    assert node_drain(None) is None


def test_ineligible_node_that_does_not_drain():
    info = node_info(gpu_node(SchedulingEligibility="ineligible"))
    assert (info.status, info.eligible, info.drain) == ("ineligible", False, None)
    assert node_info(gpu_node()).eligible
