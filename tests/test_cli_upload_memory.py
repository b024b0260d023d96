"""The CLI's memory while it uploads a big file: a real `winslow resources upload` process,
a real `winslow up` and its SeaweedFS, the CLI's resident memory sampled with psutil.

The CLI sends ``TRANSFER_THREADS`` parts at once; issue 17 measured it at about 480 MB
for 1 GiB because each part was read whole and then copied again on its way to the
socket. The goal is at most ``threads`` parts plus 60 MB for the interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import psutil

from tests.fixtures.server import BIN, Server
from winslow import defaults
from winslow.storage.objects import choose_part_size

MIB = 1024 * 1024
ALLOWANCE = 60_000_000
"""What the CLI may hold besides its parts in flight: interpreter, imports, buffers."""


def write_distinct_mibs(path: Path, mibs: int) -> None:
    """``mibs`` MiB of one random MiB, each stamped with its number: no two parts alike."""
    block = bytearray(os.urandom(MIB))
    with path.open("wb") as handle:
        for n in range(mibs):
            block[:8] = n.to_bytes(8, "little")
            handle.write(block)


def peak_rss_of(command: list[str], env: dict[str, str], timeout: float = 180) -> tuple[int, str]:
    """Run ``command`` to its end, sampling its RSS; return the peak and its stdout."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watched = psutil.Process(process.pid)
    peak = 0
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
    assert process.returncode == 0, err.decode()
    return peak, out.decode()


def test_cli_upload_stays_within_its_parts_in_flight(
    winslow_server: Server, tmp_path: Path
) -> None:
    mibs = 192  # twelve parts: three rounds of four in flight
    local = tmp_path / "big.bin"
    write_distinct_mibs(local, mibs)
    part_size = choose_part_size(mibs * MIB)
    bound = defaults.TRANSFER_THREADS * part_size + ALLOWANCE

    peak, out = peak_rss_of(
        [str(BIN / "winslow"), "resources", "upload", str(local), "big.bin", "--json"],
        winslow_server.env,
    )

    assert json.loads(out)["size"] == mibs * MIB
    assert peak <= bound, f"the CLI peaked at {peak / 1e6:.0f} MB, over {bound / 1e6:.0f} MB"
