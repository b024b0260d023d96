"""Garbage collection: what no manifest references goes, everything still referenced stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.workspaces import put_workspace, read_workspace
from winslow.storage import keys, workspaces
from winslow.storage.gc import collect


def blob_keys(store) -> set[str]:
    return {keys.BLOBS + e.path for e in store.list(keys.BLOBS, recursive=True) if not e.is_dir}


@pytest.fixture
def three_projects(object_store):
    """Project a (two runs sharing content), b (deleted later), c (one run)."""
    put_workspace(object_store, "workspaces/a/1/", {"video.bin": b"V" * 1000, "a1.txt": b"a1"})
    put_workspace(object_store, "workspaces/a/2/", {"video.bin": b"V" * 1000, "a2.txt": b"a2"})
    put_workspace(object_store, "workspaces/b/1/", {"video.bin": b"V" * 1000, "b.txt": b"only b"})
    put_workspace(object_store, "workspaces/c/1/", {"c.txt": b"c"})
    return object_store


def test_gc_keeps_everything_still_referenced(three_projects):
    store = three_projects
    before = blob_keys(store)
    report = collect(store, dry_run=False, grace_seconds=0)
    assert report.removed == 0 and report.removable == []
    assert blob_keys(store) == before
    assert report.manifests == 4
    assert report.referenced == len(before) == 5  # video (once), a1, a2, b, c
    for prefix in ("workspaces/a/1/", "workspaces/a/2/", "workspaces/b/1/", "workspaces/c/1/"):
        assert read_workspace(store, prefix)  # every file still readable


def test_deleting_a_project_frees_only_what_no_other_manifest_uses(three_projects):
    store = three_projects
    b_manifest = workspaces.read_version(store, "workspaces/b/1/").manifest
    only_b = b_manifest.files["b.txt"].blob
    shared = b_manifest.files["video.bin"].blob
    for prefix in keys.project_prefixes("b"):
        store.delete_prefix(prefix)

    dry = collect(store, dry_run=True, grace_seconds=0)
    assert [key for key, _ in dry.removable] == [only_b]
    assert dry.removable_bytes == len(b"only b")
    assert store.exists(only_b)  # a dry run removes nothing

    done = collect(store, dry_run=False, grace_seconds=0)
    assert (done.removed, done.removed_bytes) == (1, len(b"only b"))
    assert not store.exists(only_b)
    assert store.exists(shared)  # project a still uses the video
    assert read_workspace(store, "workspaces/a/1/")["video.bin"] == b"V" * 1000


def test_young_contents_stay_during_the_grace_period(three_projects):
    store = three_projects
    for prefix in keys.project_prefixes("c"):
        store.delete_prefix(prefix)
    report = collect(store, dry_run=False, grace_seconds=3600)
    assert report.removed == 0 and report.kept_young == 1
    later = collect(
        store, dry_run=True, grace_seconds=3600, now=datetime.now(UTC) + timedelta(hours=2)
    )
    assert len(later.removable) == 1


def test_contents_a_stage_out_in_flight_will_reference_stay(three_projects):
    store = three_projects
    c_blob = workspaces.read_version(store, "workspaces/c/1/").manifest.files["c.txt"].blob
    # Run 2 of c is between its uploads and its manifest when run 1 is deleted.
    pending = workspaces.record_pending(store, "workspaces/c/2/", {c_blob})
    store.delete_prefix("workspaces/c/1/")
    assert collect(store, dry_run=False, grace_seconds=0).removed == 0
    assert store.exists(c_blob)

    # Once its manifest is written the record goes, and the manifest keeps the content.
    put_workspace(store, "workspaces/c/2/", {"c.txt": b"c"})
    workspaces.clear_pending(store, pending)
    assert collect(store, dry_run=False, grace_seconds=0).removed == 0
    assert read_workspace(store, "workspaces/c/2/") == {"c.txt": b"c"}

    # A record left by a stage-out that died a week ago protects nothing and is dropped.
    workspaces.record_pending(store, "workspaces/c/3/", {"blobs/sha256/00/" + "0" * 64})
    store.delete_prefix("workspaces/c/")
    report = collect(
        store, dry_run=False, grace_seconds=0, now=datetime.now(UTC) + timedelta(days=8)
    )
    assert report.stale_pending == 1 and report.removed == 1
    assert store.list(keys.PENDING, recursive=True) == []


def test_a_damaged_manifest_stops_the_collection_before_anything_goes(three_projects):
    store = three_projects
    store.put_bytes(keys.manifest_key("workspaces/c/1/", 2), b"{not json")
    store.delete_prefix("workspaces/b/")
    with pytest.raises(Exception, match="damaged"):
        collect(store, dry_run=False, grace_seconds=0)
    assert len(blob_keys(store)) == 5
