"""Garbage collection of workspace contents: mark what manifests use, sweep the rest.

Contents are shared by every manifest that names them, so deleting a project or a run
deletes its manifests only; the contents go here, once nothing names them any more.

Mark: every blob named by a manifest of any workspace, or by the record of a stage-out
in flight (``pending/``, written before it uploads or relies on a blob). Sweep: every
other blob older than the grace period. The grace period covers writers that began
before the mark (an upload into a workspace, a stage-out between its pending record and
its manifest); right before deleting, the pending records are read again, so a
stage-out that started during the sweep keeps what it names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from winslow import defaults
from winslow.storage import keys, workspaces
from winslow.storage.manifest import from_json
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

    @property
    def removable_bytes(self) -> int:
        return sum(size for _, size in self.removable)


def _pending_blobs(
    store: ObjectStore, now: datetime, max_age: timedelta, stale: list[str] | None = None
) -> set[str]:
    blobs: set[str] = set()
    for entry in store.list(keys.PENDING, recursive=True):
        if entry.is_dir:
            continue
        key = keys.PENDING + entry.path
        created, named = workspaces.read_pending(store, key)
        when = created or entry.modified
        if when is not None and now - when > max_age:
            if stale is not None:
                stale.append(key)
            continue
        blobs |= named
    return blobs


def collect(
    store: ObjectStore,
    *,
    dry_run: bool = True,
    grace_seconds: float = defaults.GC_GRACE_SECONDS,
    pending_max_age_seconds: float = defaults.PENDING_MAX_AGE_SECONDS,
    now: datetime | None = None,
) -> GcReport:
    """Mark and sweep the blobs of ``store``; with ``dry_run`` only report what would go."""
    now = now or datetime.now(UTC)
    grace = timedelta(seconds=grace_seconds)
    max_age = timedelta(seconds=pending_max_age_seconds)
    report = GcReport(dry_run=dry_run)
    stale: list[str] = []
    referenced = _pending_blobs(store, now, max_age, stale)
    report.stale_pending = len(stale)
    for entry in store.list(keys.WORKSPACES, recursive=True):
        key = keys.WORKSPACES + entry.path
        if entry.is_dir or f"/{keys.MANIFESTS}" not in key or keys.manifest_version(key) is None:
            continue
        # A damaged manifest raises here and stops the collection: guessing what it
        # named could delete contents someone still needs.
        manifest = from_json(store.get_bytes(key), keys.describe_key(key))
        referenced |= manifest.blobs()
        report.manifests += 1
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
    if dry_run or not report.removable:
        return report
    # Stage-outs that began while we marked: what they are about to use stays.
    late = _pending_blobs(store, datetime.now(UTC), max_age)
    doomed = [(key, size) for key, size in report.removable if key not in late]
    report.removable = doomed
    store.delete_keys([key for key, _ in doomed])
    report.removed = len(doomed)
    report.removed_bytes = sum(size for _, size in doomed)
    store.delete_keys(stale)
    log.info(
        "gc: removed %d unreferenced blobs (%d bytes), %d stale pending records",
        report.removed,
        report.removed_bytes,
        len(stale),
    )
    return report
