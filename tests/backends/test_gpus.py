"""GPU detection: ``nvidia-smi``'s CSV parsed from samples, and the real thing where present."""

from __future__ import annotations

import shutil

import pytest

from winslow.backends.local.gpus import detect_gpus, parse_nvidia_smi_csv
from winslow.core.resources import GpuInfo

TWO_H100 = """\
0, NVIDIA H100 80GB HBM3, 81559, GPU-1b2c3d4e-0000-1111-2222-333344445555
1, NVIDIA H100 80GB HBM3, 81559, GPU-6f7a8b9c-0000-1111-2222-333344445555
"""


def test_two_gpus_parse_in_index_order():
    assert parse_nvidia_smi_csv(TWO_H100) == (
        GpuInfo(0, "NVIDIA H100 80GB HBM3", 81559, "GPU-1b2c3d4e-0000-1111-2222-333344445555"),
        GpuInfo(1, "NVIDIA H100 80GB HBM3", 81559, "GPU-6f7a8b9c-0000-1111-2222-333344445555"),
    )


def test_lines_out_of_order_and_blank_lines_are_handled():
    text = "\n3, Tesla T4, 15360, GPU-b\n\n1, NVIDIA GeForce RTX 4090, 24564, GPU-a\n"
    gpus = parse_nvidia_smi_csv(text)
    assert [(g.index, g.name, g.memory_mb) for g in gpus] == [
        (1, "NVIDIA GeForce RTX 4090", 24564),
        (3, "Tesla T4", 15360),
    ]


def test_a_gpu_without_readable_memory_is_kept_but_unhealthy():
    text = "0, NVIDIA A100-SXM4-40GB, 40960, GPU-a\n1, NVIDIA A100-SXM4-40GB, [N/A], GPU-b\n"
    gpus = parse_nvidia_smi_csv(text)
    assert gpus[0].healthy
    assert (gpus[1].index, gpus[1].memory_mb, gpus[1].healthy) == (1, 0, False)


def test_a_gpu_fallen_off_the_bus_is_unhealthy_and_hides_no_other():
    text = "0, [Unknown Error], [Unknown Error], [Unknown Error]\n1, NVIDIA L40S, 46068, GPU-c\n"
    gpus = parse_nvidia_smi_csv(text)
    assert [(g.index, g.healthy, g.uuid) for g in gpus] == [(0, False, None), (1, True, "GPU-c")]


@pytest.mark.parametrize(
    "text",
    ["", "No devices were found\n", "garbage without commas\n", "x, name, 100, uuid\n"],
    ids=["empty", "no devices", "no commas", "no index"],
)
def test_output_without_gpu_lines_gives_no_gpus(text):
    assert parse_nvidia_smi_csv(text) == ()


@pytest.mark.gpu
def test_detect_gpus_finds_the_machines_gpus():
    if shutil.which("nvidia-smi") is None:
        pytest.skip("nvidia-smi is not on PATH; this machine has no NVIDIA driver")
    gpus = detect_gpus()
    assert len(gpus) >= 1
    assert all(g.memory_mb > 0 and g.name for g in gpus if g.healthy)
    assert [g.index for g in gpus] == sorted(g.index for g in gpus)
