"""Redoing a stage whose workspace holds ``--size`` bytes, against a server-side copy.

A SeaweedFS (``weed mini``) starts in a temporary folder. A workspace of ``--size``
bytes in ``--files`` files (random, every MiB stamped, so no two MiB are alike) is
published as run 1 of a project the way a stage-out does (``snapshot`` +
``publish_snapshot`` with the node cache, which then holds its contents). Then the redo,
run 2, on the same node, as the runner does it:

- stage-in: ``materialize`` run 1's latest manifest into a fresh folder through the node
  cache. Split at the moment the manifest has been read (its event): the metadata part
  (list + get the manifest) and the local part (copying the files from the node cache
  into the stage's folder, which a copy-on-write file system makes nearly free);
- stage-out with nothing changed: ``snapshot`` (a stat per file, matched against
  stage-in's index, no hashing) and ``publish_snapshot`` to run 2's prefix.

Every request to S3 goes through a boto3 hook that sums the bytes of request bodies by
key, so "bytes written to S3 for unchanged files" is what went over the wire to
``blobs/``, cross-checked against the size of ``blobs/`` before and after.

Baseline, in the same run: a tool without manifests hands a workspace over by copying
its prefix in storage. The same files are uploaded once as plain objects under
``baseline/run1/`` (not timed); then every object is copied server-side, files
``TRANSFER_THREADS`` at a time, two ways: boto3's managed ``copy`` (UploadPartCopy in
parts of the size Winslow uploads with) and one CopyObject per file (up to 5 GiB). The
faster of the two is the baseline; both are printed. The local copy out of the node
cache has no counterpart there (such a tool would download the files instead), so it is
printed but kept out of the handoff.

Printed (JSON on stdout): every time, the bytes, the ratio baseline_copy_s /
winslow_handoff_s where the handoff is the metadata part of stage-in plus the whole
stage-out, and whether the targets are met: 0 bytes written to ``blobs/`` and 0 bytes
fetched, handoff below 1 s. Exit status 1 when one is missed.

    python bench/workspace_redo.py [--size 4G] [--files 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from boto3.s3.transfer import TransferConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    ByteMeter,
    EventClock,
    bucket_bytes,
    parse_size,
    seaweed_store,
    write_file,
)
from winslow import defaults  # noqa: E402
from winslow.storage import keys, workspaces  # noqa: E402
from winslow.storage.nodecache import NodeCache  # noqa: E402
from winslow.storage.objects import ObjectStore, choose_part_size  # noqa: E402
from winslow.storage.sync import materialize, publish_snapshot, snapshot  # noqa: E402

TARGET_HANDOFF_SECONDS = 1.0
PROJECT = "bench"
BASELINE_FROM = "baseline/run1/"
BASELINE_TO = "baseline/run2/"
BASELINE_TO_SINGLE = "baseline/run2-single/"
SINGLE_COPY_MAX_BYTES = 5 * 1024**3
"""Largest object one CopyObject may copy (S3's limit)."""


def is_blob(key: str) -> bool:
    return key.startswith(keys.BLOBS)


def is_metadata(key: str) -> bool:
    return not key.startswith(keys.BLOBS)


def make_workspace(folder: Path, size: int, files: int) -> list[Path]:
    """Write ``files`` files totalling ``size`` bytes into ``folder``; return them."""
    paths = []
    stamp = 0
    each = size // files
    for number in range(files):
        path = folder / "frames" / f"part-{number:02d}.bin"
        part = each if number < files - 1 else size - each * (files - 1)
        stamp = write_file(path, part, first_stamp=stamp)
        paths.append(path)
    return paths


def baseline_copies(store: ObjectStore, names: list[str], size_each: int) -> dict[str, float]:
    """Copy the objects of ``BASELINE_FROM`` server-side, two ways; return seconds of each.

    ``managed``: boto3's ``copy`` (UploadPartCopy in parts of the size Winslow uploads
    with, ``TRANSFER_THREADS`` at a time) to ``BASELINE_TO``; ``copy_object``: one
    CopyObject per file (S3 allows it up to 5 GiB) to ``BASELINE_TO_SINGLE``. Files are
    copied ``TRANSFER_THREADS`` at a time in both.
    """
    part = choose_part_size(size_each)
    config = TransferConfig(
        multipart_threshold=part,
        multipart_chunksize=part,
        max_concurrency=defaults.TRANSFER_THREADS,
        use_threads=True,
    )

    def managed(name: str) -> None:
        store.client.copy(
            {"Bucket": store.bucket, "Key": BASELINE_FROM + name},
            store.bucket,
            BASELINE_TO + name,
            Config=config,
        )

    def copy_object(name: str) -> None:
        store.client.copy_object(
            CopySource={"Bucket": store.bucket, "Key": BASELINE_FROM + name},
            Bucket=store.bucket,
            Key=BASELINE_TO_SINGLE + name,
        )

    ways = {"managed": managed}
    if size_each <= SINGLE_COPY_MAX_BYTES:
        ways["copy_object"] = copy_object
    seconds = {}
    for way, copy in ways.items():
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=defaults.TRANSFER_THREADS) as pool:
            for future in [pool.submit(copy, name) for name in names]:
                future.result()
        seconds[way] = time.perf_counter() - started
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4G", help="Workspace size, e.g. 512M, 4G (default 4G).")
    parser.add_argument("--files", type=int, default=4, help="Files it is split in (default 4).")
    args = parser.parse_args()
    size = parse_size(args.size)
    if size <= 0 or args.files < 1:
        parser.error("--size and --files must be positive")

    with tempfile.TemporaryDirectory(prefix="winslow-bench-redo-") as tmp:
        base = Path(tmp)
        node = base / "node"
        cache_root = node / "cache"
        run1 = node / "run1" / "workspace"
        run2 = node / "run2" / "workspace"
        started = time.perf_counter()
        local_files = make_workspace(run1, size, args.files)
        print(
            f"wrote {args.files} files, {size} bytes in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        names = [p.relative_to(run1).as_posix() for p in local_files]

        with seaweed_store(base / "s3") as store:
            meter = ByteMeter(store)

            def factory() -> ObjectStore:
                return store

            prefix1 = keys.workspace_prefix(PROJECT, 1)
            prefix2 = keys.workspace_prefix(PROJECT, 2)

            # Run 1's stage-out, as the runner does it: hash, upload, keep in the node cache.
            started = time.perf_counter()
            snap1 = snapshot(run1, EventClock())
            published1 = publish_snapshot(
                snap1, prefix1, factory, EventClock(), NodeCache(cache_root)
            )
            assert published1 is not None
            run1_stage_out_s = time.perf_counter() - started
            run1_uploaded = meter.sent_bytes(where=is_blob)
            print(f"run 1 stage-out: {run1_stage_out_s:.1f} s", file=sys.stderr)

            # The baseline's source: the same files as plain objects (not timed).
            for path, name in zip(local_files, names, strict=True):
                store.upload_file(path, BASELINE_FROM + name)

            # Redo, stage-in: a fresh process on the same node, so a fresh NodeCache.
            cache = NodeCache(cache_root)
            meter.reset()
            stage_in_events = EventClock()
            t0 = time.perf_counter()
            materialize(run2, [prefix1], factory, stage_in_events, cache)
            t1 = time.perf_counter()
            manifest_read = stage_in_events.first("workspace: version")
            stage_in_metadata_s = manifest_read - t0
            stage_in_local_s = t1 - manifest_read
            fetched_cache_counter = cache.downloaded_bytes
            fetched_blob_bytes = meter.received_bytes(is_blob)
            fetched_metadata_bytes = meter.received_bytes(is_metadata)
            stage_in_requests = dict(meter.requests)
            same_sizes = all(
                (run2 / name).stat().st_size == (run1 / name).stat().st_size for name in names
            )

            # Redo, stage-out with nothing changed.
            blobs_before = bucket_bytes(store, keys.BLOBS)
            meter.reset()
            stage_out_events = EventClock()
            t2 = time.perf_counter()
            snap2 = snapshot(run2, stage_out_events)
            t3 = time.perf_counter()
            published2 = publish_snapshot(snap2, prefix2, factory, stage_out_events, cache)
            t4 = time.perf_counter()
            assert published2 is not None
            snapshot_s = t3 - t2
            publish_s = t4 - t3
            written_blob_bytes = meter.sent_bytes(where=is_blob)
            written_metadata_bytes = meter.sent_bytes(where=is_metadata)
            stage_out_requests = dict(meter.requests)
            blobs_after = bucket_bytes(store, keys.BLOBS)
            version1 = workspaces.read_version(store, prefix1)
            version2 = workspaces.read_version(store, prefix2)
            assert version1 is not None and version2 is not None
            same_blobs = version1.manifest.blobs() == version2.manifest.blobs()

            # Baseline: hand the workspace over by a server-side copy of its prefix.
            meter.reset()
            baseline_ways = baseline_copies(
                store, names, max(p.stat().st_size for p in local_files)
            )
            baseline_requests = dict(meter.requests)
            baseline_client_bytes = meter.sent_bytes(where=lambda key: True)
            copied = bucket_bytes(store, BASELINE_TO)
            copied_single = bucket_bytes(store, BASELINE_TO_SINGLE)

    # The baseline is the faster way, so Winslow is not compared with a slow copy.
    baseline_way = min(baseline_ways, key=lambda way: baseline_ways[way])
    baseline_s = baseline_ways[baseline_way]

    handoff_s = stage_in_metadata_s + snapshot_s + publish_s
    winslow_total_s = stage_in_metadata_s + stage_in_local_s + snapshot_s + publish_s
    fetched = max(fetched_cache_counter, fetched_blob_bytes)
    target_met = (
        written_blob_bytes == 0
        and blobs_after == blobs_before
        and fetched == 0
        and handoff_s < TARGET_HANDOFF_SECONDS
    )
    result = {
        "size_bytes": size,
        "files": args.files,
        "baseline": (
            "server-side copy of the workspace as a plain prefix, same SeaweedFS: the faster "
            "of boto3's managed copy (UploadPartCopy) and one CopyObject per file"
        ),
        "run1_stage_out_s": round(run1_stage_out_s, 2),
        "run1_uploaded_blob_bytes": run1_uploaded,
        "redo_stage_in_metadata_s": round(stage_in_metadata_s, 4),
        "redo_stage_in_local_copy_s": round(stage_in_local_s, 3),
        "redo_stage_in_fetched_blob_bytes": fetched_blob_bytes,
        "redo_stage_in_fetched_node_cache_counter": fetched_cache_counter,
        "redo_stage_in_fetched_metadata_bytes": fetched_metadata_bytes,
        "redo_stage_in_requests": stage_in_requests,
        "redo_snapshot_s": round(snapshot_s, 4),
        "redo_snapshot_hashed_bytes": snap2.hashed_bytes,
        "redo_publish_s": round(publish_s, 4),
        "redo_written_blob_bytes": written_blob_bytes,
        "redo_written_metadata_bytes": written_metadata_bytes,
        "redo_published_uploaded_bytes": published2.uploaded_bytes,
        "redo_stage_out_requests": stage_out_requests,
        "blobs_bytes_before": blobs_before,
        "blobs_bytes_after": blobs_after,
        "redo_manifest_names_same_blobs": same_blobs,
        "redo_files_same_sizes": same_sizes,
        "winslow_handoff_s": round(handoff_s, 4),
        "winslow_handoff_plus_local_copy_s": round(winslow_total_s, 3),
        "baseline_managed_copy_s": round(baseline_ways["managed"], 3),
        "baseline_copy_object_s": (
            round(baseline_ways["copy_object"], 3) if "copy_object" in baseline_ways else None
        ),
        "baseline_used": baseline_way,
        "baseline_copy_s": round(baseline_s, 3),
        "baseline_requests": baseline_requests,
        "baseline_client_sent_bytes": baseline_client_bytes,
        "baseline_bytes_copied_in_storage_managed": copied,
        "baseline_bytes_copied_in_storage_copy_object": copied_single,
        "ratio_baseline_to_winslow_handoff": round(baseline_s / handoff_s, 1),
        "ratio_baseline_to_winslow_handoff_plus_local_copy": round(baseline_s / winslow_total_s, 2),
        "target_written_blob_bytes": 0,
        "target_handoff_below_s": TARGET_HANDOFF_SECONDS,
        "target_met": target_met,
    }
    print(json.dumps(result, indent=2))
    return 0 if target_met else 1


if __name__ == "__main__":
    sys.exit(main())
