"""Garbage collection: what no manifest references goes, everything still referenced stays."""

from __future__ import annotations

import time
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


# -- leftovers of retried stage-outs and abandoned uploads ---------------------------------


def test_pending_records_whose_retry_published_are_removed(three_projects):
    store = three_projects
    c_blob = workspaces.read_version(store, "workspaces/c/1/").manifest.files["c.txt"].blob
    # Attempt 1 of run 5's stage-out recorded its blobs and died; attempt 2 recorded
    # again, published, and cleared only its own record.
    left = workspaces.record_pending(store, "workspaces/c/5/", {c_blob})
    put_workspace(store, "workspaces/c/5/", {"c.txt": b"c"})
    # Run 6's stage-out is between its record and its manifest: it must stay.
    in_flight = workspaces.record_pending(store, "workspaces/c/6/", {c_blob})
    # Run 7 published before this record was written (a later stage-out still in flight).
    put_workspace(store, "workspaces/c/7/", {"c.txt": b"c"})
    later = workspaces.record_pending(store, "workspaces/c/7/", {c_blob})

    dry = collect(store, dry_run=True, grace_seconds=0)
    assert dry.finished_pending == 1
    assert store.exists(left)  # a dry run removes nothing

    done = collect(store, dry_run=False, grace_seconds=0)
    assert done.finished_pending == 1 and done.removed == 0
    assert not store.exists(left)
    assert store.exists(in_flight) and store.exists(later)
    assert read_workspace(store, "workspaces/c/5/") == {"c.txt": b"c"}


def test_a_record_naming_more_than_the_version_stays(three_projects):
    store = three_projects
    c_blob = workspaces.read_version(store, "workspaces/c/1/").manifest.files["c.txt"].blob
    extra = keys.blob_key("e" * 64)
    record = workspaces.record_pending(store, "workspaces/c/5/", {c_blob, extra})
    put_workspace(store, "workspaces/c/5/", {"c.txt": b"c"})
    assert collect(store, dry_run=False, grace_seconds=0).finished_pending == 0
    assert store.exists(record)


def _begin(store, key: str, part: bytes | None = None) -> str:
    upload_id = store.create_multipart(key)
    if part is not None:
        store.client.upload_part(
            Bucket=store.bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=part
        )
    return upload_id


def _unfinished(store) -> set[tuple[str, str]]:
    return {(u.key, u.upload_id) for u in store.multipart_uploads()}


def test_abandoned_uploads_are_aborted_and_active_ones_stay(object_store):
    """Real SeaweedFS: ListMultipartUploads and ListParts drive it, AbortMultipartUpload ends it."""
    store = object_store
    put_workspace(store, "workspaces/a/1/", {"a.txt": b"a"})
    resource = _begin(store, "resources/videos/big.mp4", b"first part")
    blob = _begin(store, keys.blob_key("f" * 64))
    fix = _begin(store, keys.upload_blob_key("abc123"), b"x")
    assert _unfinished(store) == {
        ("resources/videos/big.mp4", resource),
        (keys.blob_key("f" * 64), blob),
        (keys.upload_blob_key("abc123"), fix),
    }

    young = collect(store, dry_run=False, grace_seconds=0)
    assert (young.uploads_active, young.uploads_abandoned, young.uploads_aborted) == (3, [], 0)
    assert len(_unfinished(store)) == 3

    tomorrow = datetime.now(UTC) + timedelta(hours=25)
    dry = collect(store, dry_run=True, now=tomorrow)
    assert sorted(key for key, _ in dry.uploads_abandoned) == sorted(
        ["resources/videos/big.mp4", keys.blob_key("f" * 64), keys.upload_blob_key("abc123")]
    )
    assert len(_unfinished(store)) == 3  # a dry run aborts nothing

    done = collect(store, dry_run=False, now=tomorrow, multipart_grace_seconds=24 * 3600)
    assert done.uploads_aborted == 3 and _unfinished(store) == set()
    assert read_workspace(store, "workspaces/a/1/") == {"a.txt": b"a"}
    assert not store.exists("resources/videos/big.mp4")


def test_an_upload_still_being_resumed_stays_within_its_grace(object_store):
    """Begun longer ago than the grace period, but a part arrived within it: the person
    (or the console, resuming) is still at it. With a grace of 2 s, 3 s after it began."""
    store = object_store
    upload_id = _begin(store, "resources/resumed.bin")
    time.sleep(3)
    store.client.upload_part(
        Bucket=store.bucket,
        Key="resources/resumed.bin",
        UploadId=upload_id,
        PartNumber=1,
        Body=b"part one",
    )
    (initiated,) = [u.initiated for u in store.multipart_uploads()]
    (part,) = store.list_parts("resources/resumed.bin", upload_id)
    now = part["LastModified"] + timedelta(seconds=1)
    assert now - initiated > timedelta(seconds=2)  # began before the grace period

    report = collect(store, dry_run=False, now=now, multipart_grace_seconds=2)
    assert report.uploads_active == 1 and report.uploads_aborted == 0
    assert _unfinished(store) == {("resources/resumed.bin", upload_id)}

    later = collect(store, dry_run=False, now=now + timedelta(seconds=3), multipart_grace_seconds=2)
    assert later.uploads_aborted == 1 and _unfinished(store) == set()
