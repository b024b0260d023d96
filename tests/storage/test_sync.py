"""Stage-in and stage-out by manifest against a real SeaweedFS (and moto, ``ANY_S3``).

What a user pays for and relies on: a redo or a continuing run uploads only what its
stage changed, every file comes back byte for byte (links and modes too), damaged
content is refused, and a stage-out that loses its storage half way publishes nothing
until it can publish everything.
"""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.ports import pick_ports
from tests.fixtures.s3 import ANY_S3
from tests.fixtures.workspaces import put_workspace, read_workspace
from winslow.errors import StorageError
from winslow.node.jobfiles import storage_env
from winslow.storage import keys, workspaces
from winslow.storage.manifest import Manifest
from winslow.storage.nodecache import NodeCache
from winslow.storage.objects import ObjectStore
from winslow.storage.seaweed import SeaweedServer, find_weed
from winslow.storage.sync import index_path, materialize, publish_snapshot, snapshot

MIB = 1024 * 1024
WINSLOW = Path(sys.executable).with_name("winslow")


def write_files(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def read_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


def publish(workspace: Path, prefix: str, store: ObjectStore, cache: NodeCache | None = None):
    """Stage-out as the CLI does it: snapshot, then publish; return both results."""
    events: list[str] = []
    snap = snapshot(workspace, events.append)
    published = publish_snapshot(snap, prefix, lambda: store, events.append, cache)
    return snap, published


def stage_in(workspace: Path, sources: list[str], store: ObjectStore, cache=None) -> int:
    return materialize(workspace, sources, lambda: store, lambda _: None, cache)


def latest(store: ObjectStore, prefix: str) -> Manifest:
    version = workspaces.read_version(store, prefix)
    assert version is not None, f"no version of {prefix}"
    return version.manifest


def blob_keys(store: ObjectStore) -> set[str]:
    return {keys.BLOBS + e.path for e in store.list(keys.BLOBS, recursive=True)}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------
# Only what changed is uploaded


@ANY_S3
def test_a_continuing_run_uploads_only_what_its_stage_changed(object_store, tmp_path):
    big = os.urandom(20 * MIB)
    first = {"big.bin": big, "a.txt": b"a" * 100, "b.txt": b"b" * 200, "sub/c.txt": b"c" * 300}
    write_files(tmp_path / "run1", first)
    snap1, pub1 = publish(tmp_path / "run1", "workspaces/p/1/", object_store)
    assert (pub1.version, pub1.files, pub1.uploaded_files) == (1, 4, 4)
    assert pub1.uploaded_bytes == pub1.total_bytes == snap1.hashed_bytes == len(big) + 600
    assert len(blob_keys(object_store)) == 4

    # The next run starts from run 1's workspace, changes one small file and adds one.
    cache = NodeCache(tmp_path / "cache")
    run2 = tmp_path / "run2"
    assert stage_in(run2, ["workspaces/p/1/"], object_store, cache) == 4
    (run2 / "a.txt").write_bytes(b"A, changed by run 2")
    (run2 / "new.txt").write_bytes(b"new in run 2")
    snap2, pub2 = publish(run2, "workspaces/p/2/", object_store, cache)

    changed = len(b"A, changed by run 2") + len(b"new in run 2")
    assert snap2.hashed_bytes == changed  # the 20 MB file was not even read again
    assert (pub2.uploaded_files, pub2.uploaded_bytes) == (2, changed)
    assert pub2.total_bytes == len(big) + 600 - 100 + changed
    v1, v2 = latest(object_store, "workspaces/p/1/"), latest(object_store, "workspaces/p/2/")
    assert v2.files["big.bin"].blob == v1.files["big.bin"].blob == keys.blob_key(sha(big))
    assert v2.files["b.txt"] == v1.files["b.txt"]
    assert v2.files["a.txt"].blob == keys.blob_key(sha(b"A, changed by run 2"))
    assert len(blob_keys(object_store)) == 6
    assert read_workspace(object_store, "workspaces/p/1/") == first  # run 1 is untouched

    # Three redos of run 2, each from run 1 and each changing another small file.
    fetched = cache.downloaded_bytes
    for run, path in ((3, "a.txt"), (4, "b.txt"), (5, "sub/c.txt")):
        workspace = tmp_path / f"run{run}"
        stage_in(workspace, ["workspaces/p/1/"], object_store, cache)
        data = f"{path} changed by run {run}".encode()
        (workspace / path).write_bytes(data)
        before = blob_keys(object_store)

        snap, pub = publish(workspace, f"workspaces/p/{run}/", object_store, cache)

        assert snap.hashed_bytes == len(data)
        assert (pub.uploaded_files, pub.uploaded_bytes) == (1, len(data))
        assert blob_keys(object_store) - before == {keys.blob_key(sha(data))}
        assert read_workspace(object_store, f"workspaces/p/{run}/") == {**first, path: data}
    assert len(blob_keys(object_store)) == 9
    assert cache.downloaded_bytes == fetched  # the redos fetched nothing: all node cache hits


@ANY_S3
def test_an_unchanged_workspace_publishes_without_uploading(object_store, tmp_path):
    files = {"model.pt": os.urandom(MIB), "cfg/params.yaml": b"lr: 0.1\n", "log.txt": b""}
    put_workspace(object_store, "workspaces/p/1/", files)
    before = blob_keys(object_store)

    stage_in(tmp_path / "run2", ["workspaces/p/1/"], object_store)
    snap, pub = publish(tmp_path / "run2", "workspaces/p/2/", object_store)

    assert snap.hashed_bytes == 0
    assert (pub.files, pub.uploaded_files, pub.uploaded_bytes) == (3, 0, 0)
    assert (
        latest(object_store, "workspaces/p/2/").files
        == latest(object_store, "workspaces/p/1/").files
    )
    assert blob_keys(object_store) == before

    # Without stage-in's index every file is hashed again, but storage has each already.
    index_path(tmp_path / "run2").unlink()
    snap, pub = publish(tmp_path / "run2", "workspaces/p/3/", object_store)
    assert snap.hashed_bytes == MIB + len(b"lr: 0.1\n")
    assert (pub.uploaded_files, pub.uploaded_bytes) == (0, 0)
    assert blob_keys(object_store) == before


@ANY_S3
def test_two_files_with_the_same_content_upload_once(object_store, tmp_path):
    data = os.urandom(MIB)
    write_files(tmp_path / "ws", {"cam1/frame.raw": data, "cam2/frame.raw": data, "x": b"x"})

    _, pub = publish(tmp_path / "ws", "workspaces/p/1/", object_store)

    assert (pub.files, pub.uploaded_files, pub.uploaded_bytes) == (3, 2, MIB + 1)
    files = latest(object_store, "workspaces/p/1/").files
    assert files["cam1/frame.raw"].blob == files["cam2/frame.raw"].blob
    assert blob_keys(object_store) == {keys.blob_key(sha(data)), keys.blob_key(sha(b"x"))}


# ---------------------------------------------------------------------------------------
# What comes back


@ANY_S3
def test_links_and_modes_survive_a_round_trip(object_store, tmp_path):
    source = tmp_path / "run1"
    write_files(source, {"bin/run.sh": b"#!/bin/sh\necho hi\n", "data/a.txt": b"a"})
    (source / "bin" / "run.sh").chmod(0o755)
    (source / "data" / "a.txt").chmod(0o644)
    (source / "latest").symlink_to("data/a.txt")
    (source / "datadir").symlink_to("data")  # a link to a folder is kept as a link
    (source / "bin" / "dangling").symlink_to("../nowhere/x")
    (source / "abs").symlink_to("/etc/hostname")
    _, pub = publish(source, "workspaces/p/1/", object_store)
    assert pub.files == 6

    files = latest(object_store, "workspaces/p/1/").files
    assert files["latest"].link == "data/a.txt" and files["latest"].blob == ""
    assert "datadir/a.txt" not in files

    for name, cache in (("plain", None), ("cached", NodeCache(tmp_path / "cache"))):
        target = tmp_path / name
        stage_in(target, ["workspaces/p/1/"], object_store, cache)
        assert os.readlink(target / "latest") == "data/a.txt"
        assert os.readlink(target / "datadir") == "data"
        assert os.readlink(target / "bin" / "dangling") == "../nowhere/x"
        assert os.readlink(target / "abs") == "/etc/hostname"
        run_mode = stat.S_IMODE((target / "bin" / "run.sh").stat().st_mode)
        assert run_mode & 0o111 == 0o111, oct(run_mode)
        assert stat.S_IMODE((target / "data" / "a.txt").stat().st_mode) & 0o111 == 0
        assert (target / "bin" / "run.sh").read_bytes() == b"#!/bin/sh\necho hi\n"
        assert (target / "latest").read_bytes() == b"a"  # resolves inside the workspace

    # Published again unchanged, links and modes are the same records.
    _, again = publish(tmp_path / "cached", "workspaces/p/2/", object_store)
    assert again.uploaded_bytes == 0
    assert latest(object_store, "workspaces/p/2/").files == files


@ANY_S3
def test_damaged_content_is_refused_naming_the_file(object_store, tmp_path):
    frames = b"frames" * 1000
    put_workspace(object_store, "workspaces/p/1/", {"good.txt": b"good", "data/f.bin": frames})
    record = latest(object_store, "workspaces/p/1/").files["data/f.bin"]
    object_store.put_bytes(record.blob, b"X" * len(frames))  # same size, other bytes

    with pytest.raises(StorageError, match=r"'data/f\.bin'") as plain:
        stage_in(tmp_path / "plain", ["workspaces/p/1/"], object_store)
    assert "damaged" in plain.value.message
    assert not (tmp_path / "plain" / "data" / "f.bin").exists()

    cache = NodeCache(tmp_path / "cache")
    with pytest.raises(StorageError, match=r"'data/f\.bin'") as cached:
        stage_in(tmp_path / "cached", ["workspaces/p/1/"], object_store, cache)
    assert "damaged" in cached.value.message
    assert not (tmp_path / "cached" / "data" / "f.bin").exists()
    assert not (tmp_path / "cache" / "blobs" / record.sha256).exists()
    assert [e for e in cache.entries() if e.path.name == record.sha256] == []
    assert list((tmp_path / "cache").rglob("*.part")) == []


# ---------------------------------------------------------------------------------------
# Versions


@ANY_S3
def test_a_second_version_never_overwrites_the_first(object_store):
    prefix = "workspaces/p/7/"
    assert put_workspace(object_store, prefix, {"a.txt": b"first"}) == 1
    first_key = keys.manifest_key(prefix, 1)
    first_bytes = object_store.get_bytes(first_key)

    assert put_workspace(object_store, prefix, {"a.txt": b"second", "b.txt": b"b"}) == 2

    assert workspaces.version_numbers(object_store, prefix) == [1, 2]
    assert object_store.get_bytes(first_key) == first_bytes
    one = workspaces.read_version(object_store, prefix, 1)
    assert sorted(one.manifest.files) == ["a.txt"]
    assert object_store.get_bytes(one.manifest.files["a.txt"].blob) == b"first"
    assert read_workspace(object_store, prefix) == {"a.txt": b"second", "b.txt": b"b"}


@ANY_S3
def test_concurrent_publishes_each_get_their_own_version(object_store):
    prefix = "workspaces/p/8/"
    count = 6
    barrier = threading.Barrier(count)
    numbers: list[int] = []
    errors: list[BaseException] = []

    def publish_one(i: int) -> None:
        manifest = Manifest(files={}, created=workspaces.now_iso(), note=f"writer {i}")
        barrier.wait()
        try:
            # one client, as a node's threads share it; each writer races the others
            numbers.append(workspaces.publish(object_store, prefix, manifest))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publish_one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert sorted(numbers) == list(range(1, count + 1))
    notes = {workspaces.read_version(object_store, prefix, n).manifest.note for n in range(1, 7)}
    assert notes == {f"writer {i}" for i in range(count)}  # none replaced another


# ---------------------------------------------------------------------------------------
# Storage dies during stage-out


def manifest_keys(store: ObjectStore, prefix: str) -> list[str]:
    return [e.path for e in store.list(keys.manifests_prefix(prefix), recursive=True)]


@pytest.mark.slow
def test_stage_out_with_storage_killed_half_way_publishes_nothing_then_completes(tmp_path):
    try:
        find_weed()
    except StorageError as exc:
        pytest.skip(str(exc))
    port = pick_ports(1)[0]
    server = SeaweedServer(tmp_path / "s3", port, bucket="atomic")
    try:
        cfg = server.start()
        store = ObjectStore(cfg)
        store.ensure_bucket()
        first = {"a.txt": b"run 1", "frames/f1.bin": os.urandom(300_000)}
        put_workspace(store, "workspaces/p/1/", first)
        first_blobs = blob_keys(store)

        workspace = tmp_path / "ws"
        files = {f"small/{i:04d}.txt": f"file {i} ".encode() * (i + 1) for i in range(600)}
        files |= {f"big/{i}.bin": os.urandom(2 * MIB) for i in range(3)}
        write_files(workspace, files)
        all_blobs = first_blobs | {keys.blob_key(sha(d)) for d in files.values()}
        argv = [
            str(WINSLOW),
            "stage-out",
            "--workspace",
            str(workspace),
            "--prefix",
            "workspaces/p/2/",
            "--retry-delays",
            "0.2,0.2",
        ]
        env = {**os.environ, **storage_env(cfg)}
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while len(blob_keys(store)) < len(first_blobs) + 20:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "stage-out uploaded nothing"
                time.sleep(0.02)
            assert manifest_keys(store, "workspaces/p/2/") == []
            at_kill = len(blob_keys(store))
            os.kill(server.pid, signal.SIGKILL)  # storage gone half way through the upload
            _, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        server.stop()
        assert at_kill < len(all_blobs), "the upload was complete before the kill"

        # Storage was down until stage-out gave up: it says so and keeps the files.
        assert proc.returncode == 1, stderr.decode()
        message = stderr.decode()
        assert "error: stage-out gave up: could not publish the workspace to workspaces/p/2/" in (
            message
        )
        assert "its files stay on the node" in message
        assert "attempt #1/3 failed; will retry" in message
        assert read_files(workspace) == files

        # Restarted on the same data and port, as `winslow up` after a crash.
        server = SeaweedServer(tmp_path / "s3", port, bucket="atomic")
        assert server.start() == cfg
        store = ObjectStore(cfg)
        # Run 1 is intact; run 2 has no version at all, not a partial one.
        assert read_workspace(store, "workspaces/p/1/") == first
        assert manifest_keys(store, "workspaces/p/2/") == []
        assert workspaces.read_version(store, "workspaces/p/2/") is None
        # What did arrive is named by a pending record, so garbage collection keeps it.
        pending = store.list(keys.PENDING + "p/2/", recursive=True)
        assert pending, "no pending record for the stage-out in flight"
        named: set[str] = set()
        for entry in pending:
            named |= workspaces.read_pending(store, f"{keys.PENDING}p/2/{entry.path}")[1]
        assert blob_keys(store) - first_blobs <= named

        again = subprocess.run(argv, env={**os.environ, **storage_env(cfg)}, capture_output=True)
        assert again.returncode == 0, again.stderr.decode()

        version = workspaces.read_version(store, "workspaces/p/2/")
        assert version is not None and version.number == 1
        for record in version.manifest.files.values():
            assert store.exists(record.blob), record.path
        assert read_workspace(store, "workspaces/p/2/") == files
        assert blob_keys(store) == all_blobs
        assert read_workspace(store, "workspaces/p/1/") == first
    finally:
        server.stop()
