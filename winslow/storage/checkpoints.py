"""Checkpoints of a long stage: publish the folder it keeps its state in, find the latest.

A stage that runs for days writes its state into ``.winslow/checkpoint/`` of its
workspace; the node publishes that folder now and then as a version of a workspace of its
own, at the run's checkpoint prefix (``keys.checkpoint_prefix``), with the code stage-out
uses (``sync.publish_snapshot``): only content storage lacks is uploaded, and the manifest
is written last and conditionally, so a checkpoint half uploaded is never the latest. A
retry after ``lost`` lists that prefix as a workspace source, and stage-in restores it.

The stage goes on writing while the node publishes, so a changed file is first copied
aside and kept only if it did not change during the copy; the copy is hashed and
uploaded, so a blob's name always matches its bytes. A file that changed meanwhile makes
the whole checkpoint wait for the next try: half of an old state and half of a new one
is no state at all.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from winslow.core.paths import clean_relative_path
from winslow.errors import ValidationError, WinslowError
from winslow.storage import keys, workspaces
from winslow.storage.manifest import FileRecord, file_mode
from winslow.storage.nodecache import sha256_file
from winslow.storage.objects import ObjectStore
from winslow.storage.sync import Snapshot, publish_snapshot, read_index, stat_key

CHECKPOINT_FOLDER = ".winslow/checkpoint"
"""Where in its workspace a stage keeps the state it resumes from."""

REQUEST_FILE = ".winslow/checkpoint.request"
"""A stage (or ``winslow checkpoint``) writes a token here to ask for a publish now."""

ANSWER_FILE = ".winslow/checkpoint.published"
"""The node answers a request here: JSON with the token, the version and any error."""

RESUMED_FILE = ".winslow/checkpoint.resumed"
"""Stage-in leaves ``Checkpoint.label`` here when it restored a checkpoint: what
``WINSLOW_RESUMED_FROM`` holds, for a stage whose environment Winslow does not set."""

PUBLISHER = "checkpoint"
"""The ``origin`` of a checkpoint's manifest, and how its events begin."""


def is_checkpoint_path(path: str) -> bool:
    """True for the checkpoint folder, what is in it, and its request and answer files:
    they are published as checkpoints, never as part of the workspace."""
    return path == CHECKPOINT_FOLDER or path.startswith(
        (CHECKPOINT_FOLDER + "/", CHECKPOINT_FOLDER + ".")
    )


class CheckpointChangedError(WinslowError):
    """A checkpoint file changed while the node copied it; the publish waits for a next try."""

    code = "checkpoint_changed"


@dataclass(frozen=True)
class Checkpoint:
    """One published checkpoint: where, which version, when it was written."""

    prefix: str
    version: int
    created: str
    files: int

    @property
    def label(self) -> str:
        """What a resumed stage finds in ``WINSLOW_RESUMED_FROM``: ``<run>/<version>@<time>``,
        e.g. ``41/3@2026-12-03T05:00:00.000Z`` (run 41's third checkpoint, written then)."""
        run = self.prefix.rstrip("/").split("/")[-2]
        return f"{run}/{self.version}@{self.created}"


def resumed_from(workspace: Path) -> str | None:
    """The label stage-in left in ``workspace`` (``RESUMED_FILE``); None when it restored none."""
    try:
        return (workspace / RESUMED_FILE).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def find_latest(store: ObjectStore, prefixes: Sequence[str]) -> Checkpoint | None:
    """Return the latest checkpoint of the first of ``prefixes`` that has one; None if none."""
    for prefix in prefixes:
        version = workspaces.read_version(store, prefix)
        if version is not None:
            manifest = version.manifest
            return Checkpoint(prefix, version.number, manifest.created, len(manifest.files))
    return None


class CheckpointPublisher:
    """Publishes a workspace's checkpoint folder to ``prefix`` whenever it changed.

    What stage-in restored counts as known (its index), so a resumed stage uploads only
    what it changed since. Not thread-safe: one caller at a time.
    """

    def __init__(
        self,
        workspace: Path,
        prefix: str,
        staging: Path,
        store: Callable[[], ObjectStore],
        event: Callable[[str], None],
    ) -> None:
        self.workspace = workspace
        self.prefix = prefix
        self.staging = staging
        self.store = store
        self.event = event
        self.version: int | None = None
        """The version this publisher last wrote; None before its first."""
        self._seen: dict[str, tuple[list[int], FileRecord]] = {}
        self._published: dict[str, FileRecord] | None = None
        for path, entry in read_index(workspace).items():
            if is_checkpoint_path(path) and entry.get("blob"):
                record = FileRecord(
                    path=path,
                    size=int(_as_list(entry.get("stat"))[0] or 0),
                    blob=str(entry["blob"]),
                    sha256=str(entry["sha256"]) if entry.get("sha256") else None,
                )
                self._seen[path] = (_as_list(entry.get("stat")), record)

    def publish(self) -> int | None:
        """Publish the folder if it changed since the last time; return the version now latest.

        None when there is nothing to publish yet. Raises ``CheckpointChangedError`` when
        a file changed while it was copied, ``StorageError`` or ``OSError`` when the
        transfer failed; the next call tries again from scratch.
        """
        self.staging.mkdir(parents=True, exist_ok=True)
        try:
            snap, seen = self._snapshot()
            if not snap.records:
                return self.version
            if self._published is not None and dict(snap.records) == self._published:
                return self.version
            published = publish_snapshot(snap, self.prefix, self.store, self.event, what=PUBLISHER)
        finally:
            for leftover in self.staging.iterdir():
                with contextlib.suppress(OSError):
                    leftover.unlink()
        if published is not None:
            self.version = published.version
        self._seen = seen
        self._published = dict(snap.records)
        return self.version

    def _snapshot(self) -> tuple[Snapshot, dict[str, tuple[list[int], FileRecord]]]:
        snap = Snapshot(self.staging)
        seen: dict[str, tuple[list[int], FileRecord]] = {}
        folder = self.workspace / CHECKPOINT_FOLDER
        if not folder.is_dir():
            return snap, seen
        for dirpath, _dirnames, filenames in os.walk(folder):
            for name in sorted(filenames):
                path = Path(dirpath) / name
                relative = path.relative_to(self.workspace).as_posix()
                try:
                    clean = clean_relative_path(relative)
                except ValidationError as exc:
                    self.event(f"{PUBLISHER}: skipped {relative!r}: {exc.message}")
                    continue
                st = path.lstat()
                if stat.S_ISLNK(st.st_mode):
                    snap.records[clean] = FileRecord(path=clean, link=os.readlink(path))
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                before = self._seen.get(clean)
                if before is not None and before[0] == stat_key(st):
                    known = before[1]
                    record = FileRecord(
                        clean, known.size, file_mode(st.st_mode), known.blob, known.sha256
                    )
                    snap.known.add(record.blob)
                else:
                    record = self._copy(path, clean, st)
                    snap.local[clean] = self.staging / str(record.sha256)
                snap.records[clean] = record
                seen[clean] = (stat_key(st), record)
        return snap, seen

    def _copy(self, path: Path, clean: str, st: os.stat_result) -> FileRecord:
        """Copy ``path`` aside, unchanged or not at all; return its record."""
        temporary = self.staging / f".copy-{os.getpid()}"
        shutil.copyfile(path, temporary)
        if stat_key(path.lstat()) != stat_key(st):
            temporary.unlink(missing_ok=True)
            raise CheckpointChangedError(
                f"'{clean}' changed while it was copied; the checkpoint waits for the next try. "
                "Write checkpoint files whole (to a temporary name, then rename), or run "
                "`winslow checkpoint` when they are complete."
            )
        digest = sha256_file(temporary)
        os.replace(temporary, self.staging / digest)
        return FileRecord(
            path=clean,
            size=st.st_size,
            mode=file_mode(st.st_mode),
            blob=keys.blob_key(digest),
            sha256=digest,
        )


def _as_list(value: object) -> list[int]:
    return [int(v) for v in value] if isinstance(value, list) else [0]
