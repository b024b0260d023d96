"""GPU detection: ``nvidia-smi``'s CSV parsed from samples, NVML through a stand-in for
``pynvml`` with ``nvidia-smi`` as the fallback, and the real thing where present."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from winslow.backends.local.gpus import NVIDIA_SMI_QUERY, detect_gpus, parse_nvidia_smi_csv
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


class NvmlError(Exception):
    """pynvml's ``NVMLError``, whose subclasses say what went wrong."""


class FakeNvml:
    """Stands in for ``pynvml`` (a third-party binding): the cards NVML reports, each a
    dict of what it answers (memory in bytes, as NVML gives it) or the error reading it
    raises; what starting NVML or counting the cards raises; whether NVML was shut down."""

    def __init__(
        self,
        cards: list[dict | Exception],
        *,
        init_error: Exception | None = None,
        count_error: Exception | None = None,
    ):
        self.cards = cards
        self.init_error = init_error
        self.count_error = count_error
        self.shut_down = False

    def nvmlInit(self):
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self):
        self.shut_down = True

    def nvmlDeviceGetCount(self):
        if self.count_error is not None:
            raise self.count_error
        return len(self.cards)

    def nvmlDeviceGetHandleByIndex(self, index):
        return self.cards[index]

    def nvmlDeviceGetName(self, handle):
        return self._read(handle)["name"]

    def nvmlDeviceGetMemoryInfo(self, handle):
        total = self._read(handle)["total"]
        return SimpleNamespace(total=total, used=0, free=total)

    def nvmlDeviceGetUUID(self, handle):
        return self._read(handle)["uuid"]

    @staticmethod
    def _read(handle):
        # A card fallen off the bus still has a handle; reading anything of it fails.
        if isinstance(handle, Exception):
            raise handle
        return handle


H100 = {"name": "NVIDIA H100 80GB HBM3", "total": 81559 * 2**20, "uuid": "GPU-1b2c"}
# pynvml before 11.5 answers bytes, later releases str.
OLD_L40S = {"name": b"NVIDIA L40S", "total": 46068 * 2**20 + 123, "uuid": b"GPU-6f7a"}


@pytest.fixture
def nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Put an ``nvidia-smi`` on PATH that answers Winslow's query with the CSV given, or
    exits 9 as it does on a machine whose driver is not loaded (``None``)."""

    def install(csv: str | None) -> None:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        script = bin_dir / "nvidia-smi"
        if csv is None:
            body = "echo 'NVIDIA-SMI has failed because it could not communicate' >&2\nexit 9"
        else:
            query = " ".join(NVIDIA_SMI_QUERY)
            body = f'[ "$*" = "{query}" ] || exit 2\ncat <<\'CSV\'\n{csv}CSV'
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    return install


def test_nvml_gpus_come_in_index_order_with_names_memory_and_uuids(monkeypatch, nvidia_smi):
    nvml = FakeNvml([H100, OLD_L40S])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    nvidia_smi("0, Tesla T4, 15360, GPU-other\n")  # NVML answered, so this is never asked

    assert detect_gpus() == (
        GpuInfo(0, "NVIDIA H100 80GB HBM3", 81559, "GPU-1b2c"),
        GpuInfo(1, "NVIDIA L40S", 46068, "GPU-6f7a"),
    )
    assert nvml.shut_down


def test_a_gpu_nvml_cannot_read_is_kept_unhealthy_and_hides_no_other(monkeypatch, nvidia_smi):
    lost = NvmlError("GPU is lost")
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml([lost, H100, lost]))
    nvidia_smi(TWO_H100)

    gpus = detect_gpus()

    assert [(g.index, g.healthy, g.memory_mb) for g in gpus] == [
        (0, False, 0),
        (1, True, 81559),
        (2, False, 0),
    ]
    assert gpus[0].uuid is None


@pytest.mark.parametrize(
    "pynvml",
    [None, FakeNvml([H100], init_error=NvmlError("Driver Not Loaded"))],
    ids=["pynvml not installed", "nvml does not start"],
)
def test_without_nvml_the_gpus_are_read_from_nvidia_smi(monkeypatch, nvidia_smi, pynvml):
    # None in sys.modules makes `import pynvml` raise ImportError, as when it is absent.
    monkeypatch.setitem(sys.modules, "pynvml", pynvml)
    nvidia_smi(TWO_H100)

    gpus = detect_gpus()
    assert [g.index for g in gpus] == [0, 1]
    assert gpus == parse_nvidia_smi_csv(TWO_H100)


def test_nvml_failing_after_it_started_is_shut_down_and_nvidia_smi_asked(monkeypatch, nvidia_smi):
    nvml = FakeNvml([H100], count_error=NvmlError("Unknown Error"))
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    nvidia_smi(TWO_H100)

    assert [g.uuid for g in detect_gpus()] == [
        "GPU-1b2c3d4e-0000-1111-2222-333344445555",
        "GPU-6f7a8b9c-0000-1111-2222-333344445555",
    ]
    assert nvml.shut_down


def test_a_machine_where_neither_nvml_nor_nvidia_smi_answers_has_no_gpus(monkeypatch, nvidia_smi):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml([], init_error=NvmlError("No driver")))
    nvidia_smi(None)

    assert detect_gpus() == ()


@pytest.mark.gpu
def test_detect_gpus_finds_the_machines_gpus():
    if shutil.which("nvidia-smi") is None:
        pytest.skip("nvidia-smi is not on PATH; this machine has no NVIDIA driver")
    gpus = detect_gpus()
    assert len(gpus) >= 1
    assert all(g.memory_mb > 0 and g.name for g in gpus if g.healthy)
    assert [g.index for g in gpus] == sorted(g.index for g in gpus)
