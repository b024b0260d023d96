"""The node cache against a real SeaweedFS: hits, the size cap, changed entries, failures."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from winslow.errors import NotFoundError, StorageError
from winslow.node.stagetools import stage_in
from winslow.storage import keys
from winslow.storage.nodecache import VERIFIED_MTIME_NS, NodeCache

MIB = 1024 * 1024


def put_resource(store, path: str, data: bytes):
    """Put ``data`` in the pool at ``path``; return its key and what HeadObject says of it."""
    key = keys.resource_key(path)
    store.put_bytes(key, data)
    return key, store.head(key)


def put_blob(store, data: bytes) -> tuple[str, str]:
    sha = hashlib.sha256(data).hexdigest()
    key = keys.blob_key(sha)
    store.put_bytes(key, data)
    return key, sha


def part_files(root):
    return sorted(p.name for p in root.rglob("*.part"))


# ---------------------------------------------------------------------------------------
# Hits


def test_second_blob_and_resource_fetch_is_a_hit(object_store, tmp_path):
    cache = NodeCache(tmp_path / "cache")
    data = os.urandom(300_000)
    blob, sha = put_blob(object_store, data)
    key, entry = put_resource(object_store, "videos/cam1.mp4", data[:1000])

    first, hit = cache.blob(object_store, blob, size=len(data), sha256=sha)
    assert (hit, cache.downloaded_bytes) == (False, len(data))
    again, hit = cache.blob(object_store, blob, size=len(data), sha256=sha)
    assert (again, hit, cache.downloaded_bytes) == (first, True, len(data))
    assert again.read_bytes() == data
    assert again.stat().st_mtime_ns == VERIFIED_MTIME_NS
    assert again.stat().st_mode & 0o222 == 0  # read-only, so a stage cannot write by mistake

    path, hit = cache.resource(object_store, key, "videos/cam1.mp4", entry)
    assert (hit, cache.downloaded_bytes) == (False, len(data) + 1000)
    path_again, hit = cache.resource(object_store, key, "videos/cam1.mp4", entry)
    assert (path_again, hit, cache.downloaded_bytes) == (path, True, len(data) + 1000)
    assert path == tmp_path / "cache" / "resources" / "videos" / "cam1.mp4"

    # another stage-in on this node (a new instance on the same folder) fetches nothing
    other = NodeCache(tmp_path / "cache")
    assert other.blob(object_store, blob, size=len(data), sha256=sha) == (first, True)
    assert other.resource(object_store, key, "videos/cam1.mp4", entry) == (path, True)
    assert other.downloaded_bytes == 0


def test_a_changed_resource_is_fetched_again(object_store, tmp_path):
    cache = NodeCache(tmp_path / "cache")
    key, old = put_resource(object_store, "labels.csv", b"old labels")
    cache.resource(object_store, key, "labels.csv", old)
    _, new = put_resource(object_store, "labels.csv", b"new labels")

    path, hit = cache.resource(object_store, key, "labels.csv", new)

    assert not hit
    assert path.read_bytes() == b"new labels"
    assert cache.downloaded_bytes == 20


def test_an_upload_blob_without_hash_is_cached_by_etag(object_store, tmp_path):
    cache = NodeCache(tmp_path / "cache")
    key = keys.upload_blob_key("tok42")
    object_store.put_bytes(key, b"a person's fix")

    path, hit = cache.blob(object_store, key, size=14, sha256=None)
    assert not hit
    assert path.read_bytes() == b"a person's fix"
    assert cache.blob(object_store, key, size=14, sha256=None) == (path, True)
    with pytest.raises(StorageError, match="is 14 bytes, but the workspace says 99"):
        cache.blob(object_store, key, size=99, sha256=None)


def test_stage_in_of_the_same_resource_twice_links_the_cached_copy(object_store, tmp_path):
    data = os.urandom(5 * MIB)
    put_resource(object_store, "videos/road.mp4", data)
    cache_dir = tmp_path / "cache"
    events: list[str] = []

    for job in ("job1", "job2"):
        stage_in(
            tmp_path / job / "workspace",
            tmp_path / job / "inputs",
            sources=[],
            input_paths=["videos/road.mp4"],
            store=lambda: object_store,
            event=events.append,
            cache_dir=cache_dir,
        )

    inputs = [line for line in events if line.startswith("input ")]
    assert inputs == [
        "input videos/road.mp4: downloaded (5.0 MiB)",
        "input videos/road.mp4: node cache hit (5.0 MiB)",
    ]
    cached = cache_dir / "resources" / "videos" / "road.mp4"
    first = tmp_path / "job1" / "inputs" / "videos" / "road.mp4"
    second = tmp_path / "job2" / "inputs" / "videos" / "road.mp4"
    assert first.stat().st_ino == second.stat().st_ino == cached.stat().st_ino
    assert second.read_bytes() == data


# ---------------------------------------------------------------------------------------
# Size cap


def test_the_least_recently_used_entry_goes_first(object_store, tmp_path):
    cache = NodeCache(tmp_path / "cache", max_bytes=4 * MIB)
    fetched = {}
    for name in ("one", "two", "three", "four", "five", "huge"):
        size = 5 * MIB if name == "huge" else MIB
        key, entry = put_resource(object_store, f"r/{name}", os.urandom(size))
        fetched[name] = (key, entry)

    def use(name):
        key, entry = fetched[name]
        path, hit = cache.resource(object_store, key, f"r/{name}", entry)
        time.sleep(0.01)  # distinct use times, whatever the clock's granularity
        return path, hit

    for name in ("one", "two", "three", "four"):
        use(name)
    assert cache.usage() == 4 * MIB  # exactly at the cap: nothing went
    assert use("one")[1]  # used again: now the most recent

    use("five")

    present = {e.path.name for e in cache.entries()}
    assert present == {"one", "three", "four", "five"}  # 'two' was the least recently used
    assert cache.usage() <= 4 * MIB
    assert not (tmp_path / "cache" / "etags" / "resources" / "r" / "two").exists()
    assert use("one")[1] and not use("two")[1]  # the evicted one is fetched again

    huge, hit = use("huge")
    assert not hit
    assert [e.path for e in cache.entries()] == [huge]  # alone above the cap, it stays
    assert huge.stat().st_size == 5 * MIB
    assert use("huge")[1]


def test_eviction_skips_an_entry_another_stage_in_holds(object_store, tmp_path):
    cache = NodeCache(tmp_path / "cache", max_bytes=2 * MIB)
    fetched = {
        name: put_resource(object_store, name, os.urandom(MIB)) for name in ("old", "mid", "new")
    }

    def use(name):
        path, _ = cache.resource(object_store, fetched[name][0], name, fetched[name][1])
        time.sleep(0.01)
        return path

    old = use("old")
    mid = use("mid")

    # Another stage-in on this node (another process, here a second instance) holds the
    # lock of the least recently used entry, as it does while it checks or fetches it.
    with NodeCache(tmp_path / "cache")._locked(old):
        new = use("new")

    assert old.exists()  # skipped though least recently used
    assert not mid.exists()
    assert new.exists()
    assert cache.usage() == 2 * MIB


# ---------------------------------------------------------------------------------------
# Entries changed in place


@pytest.mark.parametrize("kind", ["resource", "blob"])
def test_an_entry_changed_in_place_is_fetched_again(object_store, tmp_path, kind):
    cache = NodeCache(tmp_path / "cache")
    data = b"the real frames " * 1000
    if kind == "resource":
        key, entry = put_resource(object_store, "frames.bin", data)

        def fetch():
            return cache.resource(object_store, key, "frames.bin", entry)
    else:
        key, sha = put_blob(object_store, data)

        def fetch():
            return cache.blob(object_store, key, size=len(data), sha256=sha)

    cached, _ = fetch()
    # A stage running as root writes through its hard link to the entry, keeping the size.
    link = tmp_path / "job" / "inputs" / "frames.bin"
    link.parent.mkdir(parents=True)
    os.link(cached, link)
    link.chmod(0o644)
    link.write_bytes(b"X" * len(data))
    assert cached.read_bytes() != data  # the cache's name sees the damage

    again, hit = fetch()

    assert not hit
    assert again.read_bytes() == data
    assert again.stat().st_mtime_ns == VERIFIED_MTIME_NS
    assert link.read_bytes() == b"X" * len(data)  # the stage keeps what it wrote
    assert cache.downloaded_bytes == 2 * len(data)
    assert fetch()[1]


# ---------------------------------------------------------------------------------------
# Failed and concurrent fetches


def test_a_download_failing_half_way_leaves_no_entry(object_store, tmp_path, monkeypatch):
    cache = NodeCache(tmp_path / "cache")
    data = os.urandom(MIB)
    key, entry = put_resource(object_store, "videos/cut.mp4", data)
    real_download = object_store.download_file

    def half_then_fail(key, local, progress=None):
        local.write_bytes(data[: len(data) // 2])
        raise StorageError("Object storage at http://127.0.0.1 does not answer")

    monkeypatch.setattr(object_store, "download_file", half_then_fail)
    with pytest.raises(StorageError, match="does not answer"):
        cache.resource(object_store, key, "videos/cut.mp4", entry)

    assert cache.entries() == []
    assert cache.usage() == 0
    assert part_files(tmp_path / "cache") == []
    assert not (tmp_path / "cache" / "etags" / "resources" / "videos" / "cut.mp4").exists()
    assert cache.downloaded_bytes == 0

    monkeypatch.setattr(object_store, "download_file", real_download)
    path, hit = cache.resource(object_store, key, "videos/cut.mp4", entry)
    assert not hit
    assert path.read_bytes() == data


def test_a_blob_that_vanished_leaves_no_entry(object_store, tmp_path):
    cache = NodeCache(tmp_path / "cache")
    data = b"gone soon"
    key, sha = put_blob(object_store, data)
    object_store.delete(key)

    with pytest.raises(NotFoundError):
        cache.blob(object_store, key, size=len(data), sha256=sha)

    assert cache.entries() == []
    assert part_files(tmp_path / "cache") == []
    assert not (tmp_path / "cache" / "blobs" / sha).exists()


def test_two_stage_ins_fetching_the_same_file_download_it_once(object_store, tmp_path, monkeypatch):
    data = os.urandom(2 * MIB)
    key, entry = put_resource(object_store, "models/yolo.pt", data)
    real_download = object_store.download_file
    started = threading.Event()
    downloads = []

    def slow_download(key, local, progress=None):
        downloads.append(key)
        started.set()
        time.sleep(0.3)  # long enough for the other stage-in to arrive meanwhile
        real_download(key, local, progress)

    monkeypatch.setattr(object_store, "download_file", slow_download)
    caches = [NodeCache(tmp_path / "cache"), NodeCache(tmp_path / "cache")]
    results = [None, None]

    def fetch(i):
        results[i] = caches[i].resource(object_store, key, "models/yolo.pt", entry)

    first = threading.Thread(target=fetch, args=(0,))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=fetch, args=(1,))
    second.start()
    first.join(30)
    second.join(30)

    assert downloads == [key]
    assert sum(c.downloaded_bytes for c in caches) == len(data)
    assert [hit for _, hit in results] == [False, True]
    assert results[0][0] == results[1][0]
    assert results[1][0].read_bytes() == data


# ---------------------------------------------------------------------------------------
# Published workspaces leave the job folder for the cache


def test_a_published_workspace_moves_into_the_cache(object_store, tmp_path):
    from winslow.node.stagetools import publish_workspace

    cache_dir = tmp_path / "cache"
    workspace = tmp_path / "job1" / "workspace"
    (workspace / "out").mkdir(parents=True)
    video = os.urandom(2 * MIB)
    (workspace / "out" / "tracks.bin").write_bytes(video)
    (workspace / "note.txt").write_text("made")
    os.symlink("out/tracks.bin", workspace / "latest")
    (workspace / ".winslow" / "checkpoint").mkdir(parents=True)
    (workspace / ".winslow" / "checkpoint" / "state").write_text("frame 12")  # not a result
    os.mkfifo(workspace / "pipe")  # stage-out skips it: it has no other copy
    inode = (workspace / "out" / "tracks.bin").stat().st_ino

    files = publish_workspace(
        workspace,
        "workspaces/p/1/",
        lambda: object_store,
        print,
        cache_dir=cache_dir,
        cache_max_bytes=100 * MIB,
    )

    assert files == 3
    left = sorted(p.relative_to(workspace).as_posix() for p in workspace.rglob("*"))
    assert left == [".winslow", ".winslow/checkpoint", ".winslow/checkpoint/state", "pipe"]
    cached = cache_dir / "blobs" / hashlib.sha256(video).hexdigest()
    assert cached.stat().st_ino == inode  # moved by a hard link, not copied
    assert cached.read_bytes() == video

    # The next stage on this node takes the workspace from the cache: nothing is fetched.
    events: list[str] = []
    stage_in(
        tmp_path / "job2" / "workspace",
        tmp_path / "job2" / "inputs",
        sources=["workspaces/p/1/"],
        input_paths=[],
        store=lambda: object_store,
        event=events.append,
        cache_dir=cache_dir,
    )
    assert "workspace: 3 files in place, 0 B fetched, the rest from the node cache" in events
    assert (tmp_path / "job2" / "workspace" / "out" / "tracks.bin").read_bytes() == video


def test_a_workspace_that_could_not_be_published_stays(object_store, tmp_path):
    from winslow.node.stagetools import publish_workspace

    workspace = tmp_path / "job1" / "workspace"
    workspace.mkdir(parents=True)
    (workspace / "only-copy.txt").write_text("precious")

    def no_storage():
        raise StorageError("object storage is down")

    with pytest.raises(StorageError):
        publish_workspace(
            workspace, "workspaces/p/1/", no_storage, print, cache_dir=tmp_path / "cache", delays=()
        )
    assert (workspace / "only-copy.txt").read_text() == "precious"


def test_freeing_a_workspace_keeps_the_cache_under_its_cap(object_store, tmp_path):
    from winslow.node.stagetools import publish_workspace

    cache_dir = tmp_path / "cache"
    for run in range(1, 6):
        workspace = tmp_path / f"job{run}" / "workspace"
        workspace.mkdir(parents=True)
        (workspace / "frames.bin").write_bytes(os.urandom(MIB))
        publish_workspace(
            workspace,
            f"workspaces/p/{run}/",
            lambda: object_store,
            print,
            cache_dir=cache_dir,
            cache_max_bytes=int(2.5 * MIB),
        )
        assert list(workspace.iterdir()) == []
        assert NodeCache(cache_dir).usage() <= 2.5 * MIB
