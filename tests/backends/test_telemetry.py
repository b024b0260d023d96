"""Node telemetry from the backends: this machine through the local backend (psutil,
NVML or ``nvidia-smi``), and Nomad clients' host statistics through the stand-in."""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime

import httpx
import psutil
import pytest

from tests.backends.test_contract import nomad_config
from tests.nomad_api.shapes import assert_shape, sample, table_extras
from winslow.backends.local.telemetry import HostSampler, parse_nvidia_smi_stats
from winslow.backends.nomad.backend import NomadBackend
from winslow.backends.nomad.telemetry import host_sample
from winslow.core.telemetry import GpuSample

NOW = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)

# Recorded from `nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total,
# temperature.gpu,power.draw --format=csv,noheader,nounits` on a two-card workstation whose
# second card (a consumer card) has no power sensor.
NVIDIA_SMI_STATS = """\
0, 97, 20113, 24576, 71, 287.45
1, 0, 3, 11264, 34, [N/A]
"""


def test_nvidia_smi_figures_parse_and_a_missing_sensor_is_unknown():
    assert parse_nvidia_smi_stats(NVIDIA_SMI_STATS) == (
        GpuSample(0, 97.0, 20113.0, 24576.0, 71.0, 287.45),
        GpuSample(1, 0.0, 3.0, 11264.0, 34.0, None),
    )


def test_nvidia_smi_lines_that_do_not_parse_hide_no_other_gpu():
    text = (
        "0, 50, 1, 2, 40, 100.0\n[Unknown Error]\nx, 1, 2, 3, 4, 5\n\n"
        "2, [N/A], [N/A], 16384, [N/A], [N/A]\n"
    )
    gpus = parse_nvidia_smi_stats(text)
    assert [g.index for g in gpus] == [0, 2]
    assert gpus[1] == GpuSample(2, None, None, 16384.0, None, None)


def test_this_machine_samples_every_core_its_memory_disk_and_rates(tmp_path):
    sampler = HostSampler("here", tmp_path)
    first = sampler.sample(NOW)
    assert len(first.cpu_percent) == psutil.cpu_count()
    assert all(0.0 <= busy <= 100.0 for busy in first.cpu_percent)
    assert first.memory_total_mb is not None and first.memory_total_mb > 0
    assert 0 < (first.memory_used_mb or 0) <= first.memory_total_mb
    assert (first.disk_total_bytes or 0) >= (first.disk_used_bytes or 0) > 0
    assert first.net_rx_bps is None  # a rate needs two readings
    time.sleep(0.3)
    second = sampler.sample(NOW)
    for figure in (second.net_rx_bps, second.net_tx_bps):
        assert figure is not None and figure >= 0
    if psutil.disk_io_counters() is not None:
        assert second.disk_read_bps is not None and second.disk_read_bps >= 0


@pytest.mark.skipif(
    shutil.which("nvidia-smi") is None and not os.path.exists("/dev/nvidiactl"),
    reason="no NVIDIA GPU on this machine",
)
def test_this_machines_gpus_report_plausible_figures(tmp_path):
    gpus = HostSampler("here", tmp_path).sample(NOW).gpus
    assert gpus, "nvidia-smi is here, but no GPU was sampled"
    for gpu in gpus:
        assert gpu.utilization_percent is not None and 0 <= gpu.utilization_percent <= 100
        assert gpu.memory_total_mb is not None and gpu.memory_total_mb > 0
        assert gpu.temperature_c is None or 0 < gpu.temperature_c < 120


def test_the_local_backend_reports_its_one_node(tmp_path, object_store):
    from winslow.backends.local import LocalBackend

    backend = LocalBackend(tmp_path / "local", object_store.cfg, node_name="bench-7")
    [first] = backend.node_stats(NOW)
    [second] = backend.node_stats(NOW)
    assert (first.node, len(first.cpu_percent)) == ("bench-7", psutil.cpu_count())
    assert first.net_rx_bps is None and second.net_rx_bps is not None


# The "Read Stats" sample of Nomad's client API docs (api-docs/client), one core shown,
# with an nvidia plugin's device statistics as the plugin reports them.
HOST_STATS = {
    "AllocDirStats": {
        "Available": 142943150080,
        "Device": "",
        "InodesUsedPercent": 0.05985202835317236,
        "Mountpoint": "",
        "Size": 249783500800,
        "Used": 106578206720,
        "UsedPercent": 42.67,
    },
    "CPU": [{"CPU": "cpu0", "Idle": 80, "System": 11.88, "Total": 20, "User": 8.11}],
    "CPUTicksConsumed": 2360.03,
    "DiskStats": [
        {
            "Available": 1,
            "Device": "/dev/disk1",
            "InodesUsedPercent": 0.1,
            "Mountpoint": "/",
            "Size": 2,
            "Used": 1,
            "UsedPercent": 50.0,
        }
    ],
    "Memory": {
        "Available": 6232244224,
        "Free": 470618112,
        "Total": 17179869184,
        "Used": 10947624960,
    },
    "Timestamp": 1495743032992498200,
    "Uptime": 193520,
    "DeviceStats": [
        {
            "Vendor": "nvidia",
            "Type": "gpu",
            "Name": "Tesla V100",
            "InstanceStats": {
                "GPU-b": {
                    "Stats": {
                        "Attributes": {
                            "GPU utilization": {"IntNumeratorVal": 35, "Unit": "%"},
                            "Memory state": {
                                "IntNumeratorVal": 1024,
                                "IntDenominatorVal": 16384,
                                "Unit": "MiB",
                            },
                            "Temperature": {"IntNumeratorVal": 61, "Unit": "C"},
                            "Power usage": {
                                "IntNumeratorVal": 120,
                                "IntDenominatorVal": 300,
                                "Unit": "W",
                            },
                        }
                    },
                    "Summary": {"IntNumeratorVal": 1024, "IntDenominatorVal": 16384, "Unit": "MiB"},
                },
                "GPU-a": {
                    "Stats": {"Attributes": {"GPU utilization": {"StringVal": "N/A", "Unit": "%"}}}
                },
            },
        }
    ],
}


def test_host_stats_translate_into_a_sample_without_network_or_disk_io():
    got = host_sample("gpu-1", HOST_STATS, NOW, {"GPU-a": 0, "GPU-b": 1})
    assert got.cpu_percent == (20.0,)
    assert got.memory_total_mb == 16384.0
    assert got.memory_used_mb == pytest.approx((17179869184 - 6232244224) / 2**20)
    assert (got.disk_used_bytes, got.disk_total_bytes) == (106578206720.0, 249783500800.0)
    # Nomad's host statistics have no network and no disk I/O figures.
    assert (got.net_rx_bps, got.net_tx_bps, got.disk_read_bps, got.disk_write_bps) == (None,) * 4
    assert got.gpus == (
        GpuSample(0, None, None, None, None, None),
        GpuSample(1, 35.0, 1024.0, 16384.0, 61.0, 120.0),
    )


def test_nomad_nodes_report_their_host_stats_through_the_standin(nomad_standin, object_store):
    nomad_standin.add_node("gpu-1", cpu_mhz=8000, memory_mb=65536, gpus=[("Tesla V100", 16384)] * 2)
    nomad_standin.add_node("gone")
    nomad_standin.kill_node("gone")
    backend = NomadBackend(nomad_config(nomad_standin.address, None, object_store))
    [gpu_node] = [n for n in backend.nodes() if n.name == "gpu-1"]
    nomad_standin.set_gpu_usage(gpu_node.gpus[1].uuid, 80, 4000)

    samples = {s.node: s for s in backend.node_stats(NOW)}
    assert "gone" not in samples  # down: no client answers for it
    got = samples["gpu-1"]
    assert got.at == NOW
    assert len(got.cpu_percent) == 8
    assert got.memory_total_mb == 65536.0
    assert got.disk_total_bytes is not None and got.disk_total_bytes > 0
    assert got.net_rx_bps is None
    assert [
        (g.index, g.utilization_percent, g.memory_used_mb, g.memory_total_mb) for g in got.gpus
    ] == [
        (0, 0.0, 0.0, 16384.0),
        (1, 80.0, 4000.0, 16384.0),
    ]


STATS_EXTRAS = {"$.DeviceStats[].InstanceStats.*.Summary": {"IntDenominatorVal"}}
"""The nvidia plugin's summary (its memory state) has the total the sample's plugin lacks."""


def test_the_standin_answers_client_stats_in_the_documented_shape(nomad_standin):
    node_id = nomad_standin.add_node("gpu-1", gpus=[("Tesla T4", 15360)])
    with httpx.Client(base_url=nomad_standin.address) as http:
        ok = http.get("/v1/client/stats", params={"node_id": node_id})
        assert ok.status_code == 200
        assert_shape(sample("client_stats_response.json"), ok.json(), table_extras(STATS_EXTRAS))
        assert len(ok.json()["CPU"]) == 16  # the node's 16 000 MHz, 1000 MHz a core
        unknown = http.get("/v1/client/stats", params={"node_id": "0" * 36})
        assert (unknown.status_code, unknown.text) == (404, f'Unknown node "{"0" * 36}"')
        assert http.get("/v1/client/stats").status_code == 500


class FakeNvml:
    """Stands in for ``pynvml`` (a third-party binding) with one card whose temperature
    sensor is missing, answering in NVML's units: bytes and milliwatts."""

    class NVMLError(Exception):
        pass

    def nvmlInit(self):
        pass

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, index):
        return f"handle-{index}"

    def nvmlDeviceGetUtilizationRates(self, handle):
        return type("Rates", (), {"gpu": 42, "memory": 7})()

    def nvmlDeviceGetMemoryInfo(self, handle):
        return type("Memory", (), {"used": 2 * 2**30, "total": 80 * 2**30})()

    def nvmlDeviceGetTemperature(self, handle, sensor):
        raise self.NVMLError("Not Supported")

    def nvmlDeviceGetPowerUsage(self, handle):
        return 250_500


def test_nvml_figures_come_in_mib_and_watts_and_a_missing_sensor_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pynvml", FakeNvml())
    [gpu] = HostSampler("here", tmp_path).sample(NOW).gpus
    assert gpu == GpuSample(0, 42.0, 2048.0, 81920.0, None, 250.5)
