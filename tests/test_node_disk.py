"""A node's disk stays bounded: published workspaces leave the job folders for the cache.

Real parts: the local backend's runner processes, SeaweedFS, SQLite. Each project makes
a sizable workspace of its own (random bytes, so nothing is shared), then a second stage
reads it back with an input from the pool; the node's bytes (job folders and cache,
each inode once) are measured after every project.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.winslow import Harness, _serve, build_context
from winslow.backends.local.backend import LocalBackend
from winslow.storage.objects import ObjectStore

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
WORKSPACE = 6 * MIB
"""What the first stage of every project writes."""
CAP = 16 * MIB
"""The node cache's cap: room for two workspaces and a half."""
SLACK = 1 * MIB
"""Logs, job records and the cache's lock files."""

PIPELINE = f"""
name: sizable
stages:
  - name: make
    command: ["sh", "-c", "head -c {WORKSPACE} /dev/urandom > big.bin; echo made > note.txt"]
  - name: use
    command:
      - sh
      - -c
      - >-
        test "$(wc -c < big.bin)" -eq {WORKSPACE} &&
        test "$(wc -c < "$WINSLOW_INPUTS/clips/a.bin")" -eq 1024 &&
        sha256sum big.bin > checked.txt
    inputs: [clips/a.bin]
"""


@pytest.fixture
def small_node(tmp_path: Path, object_store: ObjectStore, database_url: str) -> Iterator[Harness]:
    """A Winslow whose local node caches at most ``CAP`` bytes."""
    data_dir = tmp_path / "winslow"
    backend = LocalBackend(
        data_dir / "local",
        object_store.cfg,
        container_engine=False,
        kill_grace_seconds=2,
        cache_max_bytes=CAP,
    )
    yield from _serve(
        build_context(data_dir, object_store, database_url, backend=backend), tmp_path
    )


def node_bytes(root: Path) -> int:
    """Bytes of the regular files below ``root``, each inode counted once (a hard link
    between a job folder and the cache is one copy on disk)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            st = (Path(dirpath) / name).lstat()
            if (st.st_dev, st.st_ino) not in seen and not os.path.islink(Path(dirpath) / name):
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def test_many_runs_keep_the_node_under_its_cache_cap(small_node: Harness) -> None:
    winslow = small_node
    local = winslow.data_dir / "local"
    winslow.context.objects.put_bytes("resources/clips/a.bin", os.urandom(1024))
    winslow.apply_pipeline(PIPELINE)
    peak = 0
    for number in range(6):
        name = f"p{number}"
        winslow.create(name, "sizable", start=True)
        winslow.engine.run_until_idle(timeout=120)
        project = winslow.show(name)
        assert project["state"] == "succeeded", project
        peak = max(peak, node_bytes(local))
        assert node_bytes(local) <= CAP + WORKSPACE + SLACK, (name, node_bytes(local))
    # Six projects wrote 72 MiB of workspaces (make's, and use's copy of it).
    assert peak <= CAP + WORKSPACE + SLACK

    # What the engine reads on the node stays: every job's log and status.
    make, use = winslow.show("p5")["runs"]
    for run in (make, use):
        job = local / "jobs" / run["job_id"]
        assert (job / "status.json").is_file() and (job / "log.txt").is_file()
        assert not (job / "workspace" / "big.bin").exists()  # published, so freed
        assert not (job / "inputs").exists()
    assert "input clips/a.bin: " in winslow.log("p5", use["id"])
