"""Moving a workspace between a node's disk and object storage, by manifest.

``materialize`` writes the files of earlier workspaces into a stage's folder before it
runs; ``snapshot`` + ``publish_snapshot`` store what the stage left after it ran. Only
content storage does not hold yet is uploaded: a file the stage did not touch keeps the
blob it came from (stage-in records every file it wrote, with its inode, size and times,
in an index beside the workspace, so such a file is not even read again), and a file
whose hash is already stored is not sent twice. The manifest is written last and
conditionally, so a stage-out that dies half way leaves the previous state intact.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from winslow import defaults
from winslow.atomic import write_text_atomic
from winslow.core.paths import clean_relative_path
from winslow.errors import StorageError, ValidationError
from winslow.storage import keys, workspaces
from winslow.storage.manifest import (
    FileRecord,
    Manifest,
    file_mode,
    iso_time,
    merge,
    parse_time,
)
from winslow.storage.nodecache import NodeCache, clone_or_copy, sha256_file
from winslow.storage.objects import ObjectStore
from winslow.units import counted, format_bytes

log = logging.getLogger(__name__)

Event = Callable[[str], None]
StoreFactory = Callable[[], ObjectStore]


@dataclass
class Snapshot:
    """A workspace folder as found after the stage: its records and where each file is."""

    workspace: Path
    records: dict[str, FileRecord] = field(default_factory=dict)
    local: dict[str, Path] = field(default_factory=dict)
    """Files whose content may need uploading (hashed now, not known from stage-in)."""
    known: set[str] = field(default_factory=set)
    """Blobs stage-in brought here from published manifests: stored already."""
    hashed_bytes: int = 0
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Published:
    """What ``publish_snapshot`` did."""

    version: int
    files: int
    total_bytes: int
    uploaded_files: int
    uploaded_bytes: int


def index_path(workspace: Path) -> Path:
    """Where stage-in leaves the index of the files it wrote (beside, not in, the workspace)."""
    return workspace.with_name(f".{workspace.name}.index.json")


def stat_key(st: os.stat_result) -> list[int]:
    """What tells a file unchanged since it was recorded: size, times and inode."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


# ---------------------------------------------------------------------------------------
# Stage-in


def materialize(
    workspace: Path,
    sources: Sequence[str],
    store: StoreFactory,
    event: Event,
    cache: NodeCache | None = None,
) -> int:
    """Write the latest versions of workspaces ``sources`` (in order) into ``workspace``.

    Return the number of files written. Contents come through ``cache`` when given (a
    second stage on this node fetches nothing), else straight from storage; every file
    is checked against its hash where the manifest has one.
    """
    workspace.mkdir(parents=True, exist_ok=True)
    manifests: list[Manifest] = []
    for prefix in sources:
        version = workspaces.read_version(store(), prefix)
        if version is None:
            event(f"workspace: {keys.describe_key(prefix)} is empty (its stage wrote nothing)")
            continue
        manifest = version.manifest
        event(
            f"workspace: version {version.number} of {keys.describe_key(prefix)}: "
            f"{counted(len(manifest.files), 'file')}, {format_bytes(manifest.total_size)}"
        )
        manifests.append(manifest)
    files = merge(manifests)
    index: dict[str, dict[str, object]] = {}
    # Files are readable and writable as the umask allows new files to be (stage-in runs
    # with umask 0 where the stage may be another user), plus the bits the manifest keeps.
    umask = os.umask(0o022)
    os.umask(umask)
    base_mode = 0o666 & ~umask

    def place(record: FileRecord) -> None:
        target = workspace / record.path
        if record.link is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            os.symlink(record.link, target)
            return
        if cache is not None:
            try:
                cached, _hit = cache.blob(
                    store(), record.blob, size=record.size, sha256=record.sha256
                )
            except StorageError as exc:
                # The cache knows only the blob's key; the person needs the file's name.
                raise StorageError(f"'{record.path}': {exc.message}") from exc
            clone_or_copy(cached, target, record.mode | base_mode)
        else:
            store().download_file(record.blob, target)
            if record.sha256 is not None and sha256_file(target) != record.sha256:
                target.unlink(missing_ok=True)
                raise StorageError(
                    f"Stored content {record.blob} for '{record.path}' does not match its "
                    "hash; it is damaged in object storage."
                )
            target.chmod(record.mode | base_mode)
        _give_back_time(target, record)
        index[record.path] = {
            "stat": stat_key(target.stat()),
            "blob": record.blob,
            "sha256": record.sha256,
        }

    fetched_before = cache.downloaded_bytes if cache is not None else 0
    with ThreadPoolExecutor(max_workers=defaults.TRANSFER_THREADS) as pool:
        for future in [pool.submit(place, record) for record in files.values()]:
            future.result()
    write_text_atomic(index_path(workspace), json.dumps(index))
    if files:
        fetched = (cache.downloaded_bytes - fetched_before) if cache is not None else None
        how = (
            ""
            if fetched is None
            else f", {format_bytes(fetched)} fetched, the rest from the node cache"
        )
        event(f"workspace: {counted(len(files), 'file')} in place{how}")
    return len(files)


def _give_back_time(target: Path, record: FileRecord) -> None:
    """Set ``target``'s time to the one its manifest keeps: an unchanged file carries the
    time of the stage that wrote it into the next stage's workspace and version."""
    written = parse_time(record.modified) if record.modified else None
    if written is not None:
        os.utime(target, (written.timestamp(), written.timestamp()))


# ---------------------------------------------------------------------------------------
# Stage-out


def snapshot(
    workspace: Path, event: Event, exclude: Callable[[str], bool] | None = None
) -> Snapshot:
    """Describe ``workspace`` as a manifest would, hashing only what stage-in did not write.

    Paths for which ``exclude`` is true are left out (a stage's checkpoints, which are
    published on their own).
    """
    snap = Snapshot(workspace)
    if not workspace.is_dir():
        return snap
    index = read_index(workspace)
    for dirpath, dirnames, filenames in os.walk(workspace):
        here = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = here / name
            relative = path.relative_to(workspace).as_posix()
            if exclude is not None and exclude(relative):
                continue
            st = path.lstat()
            if stat.S_ISDIR(st.st_mode):
                continue
            try:
                clean = clean_relative_path(relative)
            except ValidationError as exc:
                snap.skipped.append(relative)
                event(f"stage-out: skipped {relative!r}: {exc.message}")
                continue
            if stat.S_ISLNK(st.st_mode):
                snap.records[clean] = FileRecord(path=clean, link=os.readlink(path))
                continue
            if not stat.S_ISREG(st.st_mode):
                snap.skipped.append(relative)
                event(f"stage-out: skipped {relative!r}: not a regular file")
                continue
            known = index.get(clean)
            if known is not None and known.get("stat") == stat_key(st):
                blob = str(known["blob"])
                sha = known.get("sha256")
                snap.records[clean] = FileRecord(
                    path=clean,
                    size=st.st_size,
                    mode=file_mode(st.st_mode),
                    blob=blob,
                    sha256=str(sha) if sha else None,
                    modified=iso_time(st.st_mtime),
                )
                snap.known.add(blob)
                continue
            digest = sha256_file(path)
            snap.hashed_bytes += st.st_size
            snap.records[clean] = FileRecord(
                path=clean,
                size=st.st_size,
                mode=file_mode(st.st_mode),
                blob=keys.blob_key(digest),
                sha256=digest,
                modified=iso_time(st.st_mtime),
            )
            snap.local[clean] = path
    return snap


def publish_snapshot(
    snap: Snapshot,
    prefix: str,
    store: StoreFactory,
    event: Event,
    cache: NodeCache | None = None,
    *,
    what: str = "stage-out",
) -> Published | None:
    """Upload the contents storage lacks, then write the manifest; None if nothing to publish.

    Safe to call again after a failure: blobs already sent are found and not sent again,
    and the manifest is only written once every blob it names is stored. ``what`` names
    the publisher in the manifest's ``origin`` and in the event.
    """
    if not snap.records:
        return None
    blobs = {record.blob for record in snap.records.values() if record.blob}
    pending = workspaces.record_pending(store(), prefix, blobs)
    # One upload per new content, even when several files share it.
    new: dict[str, tuple[Path, int]] = {}
    for path, local in snap.local.items():
        record = snap.records[path]
        if record.blob not in snap.known:
            new.setdefault(record.blob, (local, record.size))
    uploaded: list[int] = []

    def send(blob: str, local: Path, size: int) -> None:
        if workspaces.has_blob(store(), blob):
            return
        store().upload_file(local, blob)
        uploaded.append(size)

    with ThreadPoolExecutor(max_workers=defaults.TRANSFER_THREADS) as pool:
        for future in [pool.submit(send, blob, *where) for blob, where in new.items()]:
            future.result()
    manifest = Manifest(files=snap.records, created=workspaces.now_iso(), origin=what)
    version = workspaces.publish(store(), prefix, manifest)
    try:
        workspaces.clear_pending(store(), pending)
    except StorageError as exc:
        # The manifest is written; a leftover record only delays garbage collection.
        log.warning("workspace %s: could not drop pending record %s: %s", prefix, pending, exc)
    if cache is not None:
        for path, local in snap.local.items():
            record = snap.records[path]
            if record.sha256:
                cache.adopt(local, record.sha256)
    result = Published(
        version=version,
        files=len(snap.records),
        total_bytes=manifest.total_size,
        uploaded_files=len(uploaded),
        uploaded_bytes=sum(uploaded),
    )
    event(
        f"{what}: published version {version} of {keys.describe_key(prefix)}: "
        f"{counted(result.files, 'file')}, {format_bytes(result.total_bytes)}; "
        f"uploaded {result.uploaded_files} new ({format_bytes(result.uploaded_bytes)}), "
        "the rest was stored already"
    )
    return result


def read_index(workspace: Path) -> dict[str, dict[str, object]]:
    """Return stage-in's index of the files it wrote: path → stat key, blob, sha256."""
    try:
        data = json.loads(index_path(workspace).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
