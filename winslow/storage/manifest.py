"""A workspace as data: which path holds which content, with no I/O.

A run's workspace is a ``Manifest``: every file's path, size, mode and the key of the
blob holding its bytes (``blobs/sha256/...``, stored once whatever number of runs hold
it). Symlinks are kept as their target. The manifest is what a stage-out publishes and
what the next stage starts from, so handing over a workspace costs its metadata, never
its data. Stored as JSON; ``format`` lets a later Winslow read older manifests.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from winslow.core.paths import clean_relative_path
from winslow.errors import ValidationError

FORMAT = 1
"""Version of the manifest's JSON layout."""

DEFAULT_FILE_MODE = 0o644
"""Mode of a file whose manifest entry says none (an uploaded fix)."""


@dataclass(frozen=True)
class FileRecord:
    """One file (or symlink) of a workspace."""

    path: str
    size: int = 0
    mode: int = DEFAULT_FILE_MODE
    """Permission bits only (``0o755`` for an executable); never set-uid and the like."""
    blob: str = ""
    """Key of the object holding the bytes; empty for a symlink."""
    sha256: str | None = None
    """Hash of the bytes when known (stage-out always knows; an upload through a browser
    does not)."""
    link: str | None = None
    """Target of a symlink, as the stage wrote it."""
    modified: str | None = None
    """When the file was last written (UTC, ISO 8601, milliseconds): at stage-out its
    modification time, for an upload the upload's; carried with the file into later
    stages and versions. None in manifests written before Winslow kept it."""

    @property
    def is_link(self) -> bool:
        return self.link is not None


@dataclass(frozen=True)
class Manifest:
    """One version of a workspace."""

    files: Mapping[str, FileRecord] = field(default_factory=dict)
    created: str = ""
    """UTC time it was written, ISO 8601."""
    origin: str = "stage-out"
    """What wrote it: ``stage-out``, ``upload`` (a person's fix) or ``empty``."""
    note: str = ""
    """A person's words about this version (what an upload changed)."""

    @property
    def total_size(self) -> int:
        return sum(record.size for record in self.files.values())

    def blobs(self) -> set[str]:
        """Every blob key this version references."""
        return {record.blob for record in self.files.values() if record.blob}

    def with_file(self, record: FileRecord, *, created: str, origin: str, note: str) -> Manifest:
        """Return a new version where ``record`` replaces (or adds) the file at its path.

        A file may not replace a folder, nor sit below a file, or the workspace could not
        be written to disk.
        """
        path = record.path
        if any(other.startswith(path + "/") for other in self.files):
            raise ValidationError(f"'{path}' is a folder in this workspace; pick another name.")
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in self.files:
                raise ValidationError(
                    f"'{parent}' is a file in this workspace, so '{path}' cannot be below it."
                )
        files = dict(self.files)
        files[path] = record
        return Manifest(files=files, created=created, origin=origin, note=note)

    def folder(self, path: str) -> tuple[list[FileRecord], list[str]]:
        """Return the files directly in folder ``path`` ("" is the root) and its subfolders."""
        base = f"{path}/" if path else ""
        files: list[FileRecord] = []
        folders: set[str] = set()
        for name, record in self.files.items():
            if not name.startswith(base):
                continue
            rest = name[len(base) :]
            head, slash, _ = rest.partition("/")
            if slash:
                folders.add(base + head)
            else:
                files.append(record)
        return sorted(files, key=lambda r: r.path), sorted(folders)

    def below(self, path: str) -> list[FileRecord]:
        """Every file at or below ``path`` ("" is everything), sorted by path."""
        base = f"{path}/" if path else ""
        return sorted(
            (
                r
                for name, r in self.files.items()
                if not path or name == path or name.startswith(base)
            ),
            key=lambda r: r.path,
        )


def merge(manifests: Iterable[Manifest]) -> dict[str, FileRecord]:
    """Return the files of ``manifests`` applied in order: later ones win a shared path.

    This is how a ``continue`` stage that needs several stages starts: as if their
    workspaces were unpacked in the order of its ``needs``. A path that is a file in one
    and a folder in a later one keeps the later.
    """
    files: dict[str, FileRecord] = {}
    for manifest in manifests:
        for path, record in manifest.files.items():
            for other in [p for p in files if p.startswith(path + "/")]:
                del files[other]
            parts = path.split("/")
            for depth in range(1, len(parts)):
                files.pop("/".join(parts[:depth]), None)
            files[path] = record
    return files


def iso_time(seconds: float) -> str:
    """``seconds`` since the epoch as a manifest writes times (UTC, ISO 8601, milliseconds)."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime | None:
    """A time written as ``iso_time`` writes it; None for anything else."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def file_mode(st_mode: int) -> int:
    """Return the permission bits a manifest keeps of a file's ``st_mode``."""
    return stat.S_IMODE(st_mode) & 0o777


def to_json(manifest: Manifest) -> bytes:
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(manifest.files):
        record = manifest.files[path]
        if record.link is not None:
            files[path] = {"link": record.link}
            continue
        entry: dict[str, Any] = {"size": record.size, "mode": record.mode, "blob": record.blob}
        if record.sha256:
            entry["sha256"] = record.sha256
        if record.modified:
            entry["modified"] = record.modified
        files[path] = entry
    document = {
        "format": FORMAT,
        "created": manifest.created,
        "origin": manifest.origin,
        "note": manifest.note,
        "files": files,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def from_json(data: bytes, where: str = "manifest") -> Manifest:
    """Parse a stored manifest; ``ValidationError`` naming ``where`` if it is not one."""
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError(f"format {document.get('format')!r} is not {FORMAT}")
        raw_files = document["files"]
        if not isinstance(raw_files, dict):
            raise ValueError("'files' is not a map")
        files: dict[str, FileRecord] = {}
        for path, entry in raw_files.items():
            clean = clean_relative_path(path)
            if clean != path:
                raise ValueError(f"path {path!r} is not in clean form")
            if "link" in entry:
                files[path] = FileRecord(path=path, link=str(entry["link"]))
                continue
            files[path] = FileRecord(
                path=path,
                size=int(entry["size"]),
                mode=int(entry.get("mode", DEFAULT_FILE_MODE)) & 0o777,
                blob=str(entry["blob"]),
                sha256=entry.get("sha256"),
                modified=str(entry["modified"]) if entry.get("modified") else None,
            )
        return Manifest(
            files=files,
            created=str(document.get("created", "")),
            origin=str(document.get("origin", "stage-out")),
            note=str(document.get("note", "")),
        )
    except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
        raise ValidationError(f"The {where} is damaged and cannot be read: {exc}") from exc
