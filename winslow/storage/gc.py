"""Garbage collection of workspace contents: mark what manifests use, sweep the rest.

Contents are shared by every manifest that names them, so deleting a project or a run
deletes its manifests only; the contents go here, once nothing names them any more.

Mark: every blob named by a manifest of any workspace, or by the record of a stage-out
in flight (``pending/``, written before it uploads or relies on a blob). Sweep: every
other blob older than the grace period. The grace period covers writers that began
before the mark (an upload into a workspace, a stage-out between its pending record and
its manifest); right before deleting, the pending records are read again, so a
stage-out that started during the sweep keeps what it names.

Two more kinds of leftovers go in the same pass. A pending record whose stage-out failed
and was then tried again stays behind when the retry publishes under a record of its own;
once a version of its workspace written after it names every blob it names, it protects
nothing and is removed. A multipart upload nobody finishes (a person who gave up on a
resource upload, a stage-out killed half way) keeps its parts in storage, invisible and
counted by nobody; one that saw no new part for ``multipart_grace_seconds`` is aborted.
Which uploads are resumed lives only with their clients (the console's browser storage,
the CLI's cache), so activity is the sign of life: an upload a person is still resuming
has stored a part within the grace period, or was begun within it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from winslow import defaults
from winslow.errors import NotFoundError
from winslow.storage import keys, workspaces
from winslow.storage.manifest import from_json, parse_time
from winslow.storage.objects import ObjectStore

log = logging.getLogger(__name__)


@dataclass
class GcReport:
    """What a collection found and did (or, dry, would do)."""

    dry_run: bool
    manifests: int = 0
    referenced: int = 0
    """Distinct blobs named by a manifest or a pending record."""
    blobs: int = 0
    blob_bytes: int = 0
    kept_young: int = 0
    """Unreferenced blobs left alone because they are younger than the grace period."""
    removable: list[tuple[str, int]] = field(default_factory=list)
    """Blobs that go (or would go), with their sizes."""
    removed: int = 0
    removed_bytes: int = 0
    stale_pending: int = 0
    """Pending records older than their maximum age (a stage-out that died long ago)."""
    finished_pending: int = 0
    """Pending records of stage-outs whose retry published: removed (or, dry, would be)."""
    uploads_active: int = 0
    """Unfinished multipart uploads left alone: begun or added to within the grace period."""
    uploads_abandoned: list[tuple[str, str]] = field(default_factory=list)
    """Unfinished uploads that are (or, dry, would be) aborted: key and upload ID."""
    uploads_aborted: int = 0

    @property
    def removable_bytes(self) -> int:
        return sum(size for _, size in self.removable)


@dataclass(frozen=True)
class PendingRecord:
    """One ``pending/`` record: the workspace its stage-out publishes, when, and the blobs."""

    key: str
    workspace: str
    created: datetime | None
    blobs: frozenset[str]


def _pending_records(store: ObjectStore) -> list[PendingRecord]:
    records = []
    for entry in store.list(keys.PENDING, recursive=True):
        if entry.is_dir:
            continue
        key = keys.PENDING + entry.path
        created, named = workspaces.read_pending(store, key)
        # ``pending_key`` puts the record beside its workspace's path: the folder it is in.
        workspace = keys.WORKSPACES + entry.path.rsplit("/", 1)[0] + "/"
        records.append(PendingRecord(key, workspace, created or entry.modified, frozenset(named)))
    return records


def _pending_blobs(
    store: ObjectStore, now: datetime, max_age: timedelta, stale: list[str] | None = None
) -> set[str]:
    blobs: set[str] = set()
    for record in _pending_records(store):
        if record.created is not None and now - record.created > max_age:
            if stale is not None:
                stale.append(record.key)
            continue
        blobs |= record.blobs
    return blobs


def _manifest_workspace(key: str) -> str | None:
    """``workspaces/p/4/`` for ``workspaces/p/4/manifests/00000002.json`` (a checkpoint's
    workspace likewise), None for a key that is no manifest."""
    folder, manifests, name = key.rsplit("/", 2) if key.count("/") >= 2 else ("", "", key)
    if manifests + "/" != keys.MANIFESTS or keys.manifest_version(name) is None:
        return None
    return folder + "/"


def _mark_manifests(
    store: ObjectStore, report: GcReport, waiting: dict[str, list[PendingRecord]]
) -> tuple[set[str], set[str]]:
    """Read every manifest: return the blobs they name, and the keys of the records in
    ``waiting`` (by workspace) that a version written after them makes needless."""
    referenced: set[str] = set()
    finished: set[str] = set()
    for entry in store.list(keys.WORKSPACES, recursive=True):
        key = keys.WORKSPACES + entry.path
        workspace = None if entry.is_dir else _manifest_workspace(key)
        if workspace is None:
            continue
        # A damaged manifest raises here and stops the collection: guessing what it
        # named could delete contents someone still needs.
        manifest = from_json(store.get_bytes(key), keys.describe_key(key))
        named = manifest.blobs()
        referenced |= named
        report.manifests += 1
        written = parse_time(manifest.created)
        for record in waiting.get(workspace, ()):
            after = written is not None and record.created is not None and written >= record.created
            if after and record.blobs <= named:
                finished.add(record.key)
    return referenced, finished


def _abandoned_uploads(
    store: ObjectStore, report: GcReport, now: datetime, grace: timedelta
) -> None:
    """Sort the bucket's unfinished uploads into active and abandoned (by last activity)."""
    for upload in store.multipart_uploads():
        latest = upload.initiated
        if latest is None or now - latest < grace:
            report.uploads_active += 1
            continue
        try:
            parts = store.list_parts(upload.key, upload.upload_id)
        except NotFoundError:
            continue  # completed or aborted meanwhile
        stamps = [part["LastModified"] for part in parts if part["LastModified"] is not None]
        latest = max([latest, *stamps])
        if now - latest < grace:
            report.uploads_active += 1
        else:
            report.uploads_abandoned.append((upload.key, upload.upload_id))


def collect(
    store: ObjectStore,
    *,
    dry_run: bool = True,
    grace_seconds: float = defaults.GC_GRACE_SECONDS,
    pending_max_age_seconds: float = defaults.PENDING_MAX_AGE_SECONDS,
    multipart_grace_seconds: float = defaults.MULTIPART_GRACE_SECONDS,
    now: datetime | None = None,
) -> GcReport:
    """Mark and sweep the blobs of ``store``, drop needless pending records and abort
    abandoned uploads; with ``dry_run`` only report what would go."""
    now = now or datetime.now(UTC)
    grace = timedelta(seconds=grace_seconds)
    max_age = timedelta(seconds=pending_max_age_seconds)
    report = GcReport(dry_run=dry_run)
    stale: list[str] = []
    waiting: dict[str, list[PendingRecord]] = {}
    referenced: set[str] = set()
    for record in _pending_records(store):
        if record.created is not None and now - record.created > max_age:
            stale.append(record.key)
            continue
        referenced |= record.blobs
        waiting.setdefault(record.workspace, []).append(record)
    report.stale_pending = len(stale)
    named, finished = _mark_manifests(store, report, waiting)
    referenced |= named
    report.finished_pending = len(finished)
    report.referenced = len(referenced)
    for entry in store.list(keys.BLOBS, recursive=True):
        if entry.is_dir:
            continue
        key = keys.BLOBS + entry.path
        report.blobs += 1
        report.blob_bytes += entry.size
        if key in referenced:
            continue
        if entry.modified is None or now - entry.modified < grace:
            report.kept_young += 1
            continue
        report.removable.append((key, entry.size))
    _abandoned_uploads(store, report, now, timedelta(seconds=multipart_grace_seconds))
    if not dry_run:
        _sweep(store, report, stale, sorted(finished), max_age)
    return report


def _sweep(
    store: ObjectStore,
    report: GcReport,
    stale: list[str],
    finished: list[str],
    max_age: timedelta,
) -> None:
    """Delete what ``collect`` found, after a last look at the pending records."""
    if report.removable:
        # Stage-outs that began while we marked: what they are about to use stays.
        late = _pending_blobs(store, datetime.now(UTC), max_age)
        report.removable = [(key, size) for key, size in report.removable if key not in late]
        store.delete_keys([key for key, _ in report.removable])
        report.removed = len(report.removable)
        report.removed_bytes = report.removable_bytes
    store.delete_keys([*stale, *finished])
    for key, upload_id in report.uploads_abandoned:
        try:
            store.abort_multipart(key, upload_id)
        except NotFoundError:
            continue  # completed or aborted meanwhile
        report.uploads_aborted += 1
        log.info("gc: aborted the abandoned upload %s of %s", upload_id, keys.describe_key(key))
    log.info(
        "gc: removed %d unreferenced blobs (%d bytes), %d stale and %d finished pending "
        "records; aborted %d abandoned uploads",
        report.removed,
        report.removed_bytes,
        len(stale),
        len(finished),
        report.uploads_aborted,
    )
