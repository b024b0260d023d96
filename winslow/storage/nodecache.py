"""The node cache: each node keeps what its stages fetched, so nothing is fetched twice.

Two kinds of entries, one size cap, least recently used first out:

- ``blobs/<name>``: workspace contents, named by their SHA-256 (checked against it on
  arrival) or, for a person's upload whose hash is unknown, by its key (checked by size
  and ETag, like a resource);
- ``resources/<path>``: resource pool files, with the ETag they were fetched at in
  ``etags/<path>`` (a second tree, so no pool name can collide with a sidecar).

A third tree, ``stages/`` (``STAGE_CACHE``), is the stages' own: handed to each stage as
``WINSLOW_CACHE_DIR`` for what it keeps between its runs on this node (a TensorRT engine
built for this GPU, downloaded weights). It holds no entries: Winslow never evicts,
uploads or reads it, and the cap does not count it.
A file only counts once it is complete and checked: it is fetched to a temporary name,
verified, made read-only and stamped with ``VERIFIED_MTIME_NS`` before it gets its real
name. Every later use checks size and stamp again, so a file that was changed in place
(through a hard link, by a stage running as root) is fetched anew instead of handed to
the next stage. One ``flock`` per entry keeps two stage-ins from fetching the same file
at once and keeps eviction away from an entry being used. Entries reach stages as hard
links (inputs) or copies (workspaces, which stages may change); replacing or evicting an
entry unlinks the name, never the inode, so a running stage keeps what it started with.

A workspace, once published, is freed on the node (``release_published``): each published
file becomes the cache entry of its content by a hard link (its bytes move, they are not
copied) and its name in the job's folder goes, so the cap bounds the workspaces of ended
runs too. The next stage on this node still finds them here; one on another node fetches
them from storage, where they are.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from winslow.errors import StorageError

if TYPE_CHECKING:
    from winslow.storage.manifest import FileRecord
    from winslow.storage.objects import ObjectEntry, ObjectStore

log = logging.getLogger(__name__)

VERIFIED_MTIME_NS = 946_684_800 * 1_000_000_000
"""Modification time (2000-01-01) given to every checked entry; any write changes it."""

HASH_CHUNK_BYTES = 4 * 1024 * 1024

_FICLONE = 0x40049409
"""ioctl number of FICLONE: a copy-on-write copy where the file system can (btrfs, XFS)."""


@dataclass(frozen=True)
class CacheEntry:
    """A file in the cache, for eviction: where it is, its size, when it was last used."""

    path: Path
    size: int
    used_ns: int


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


STAGE_CACHE = "stages"
"""The folder of the node cache that stages keep their own files in (``WINSLOW_CACHE_DIR``)."""


class NodeCache:
    """The cache folder ``root`` of one node, shared by every stage-in and stage-out on it.

    ``max_bytes`` caps the total size of its entries (0: no cap); after each fetch the
    least recently used entries go until the rest fits. The entry just fetched stays even
    when it alone is larger than the cap.
    """

    def __init__(self, root: Path, max_bytes: int = 0) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.downloaded_bytes = 0
        """Bytes this instance fetched from storage (0 when everything was a hit)."""
        self._total: int | None = None
        """The cache's size as of this instance's last walk plus what it added since; a
        walk (a stat of every entry) happens only when this says the cap may be passed, not
        after every one of a workspace's thousands of files."""

    # -- workspace contents -------------------------------------------------------------

    def blob(
        self, store: ObjectStore, key: str, *, size: int, sha256: str | None
    ) -> tuple[Path, bool]:
        """Return the cached copy of blob ``key`` and whether it was already there.

        With ``sha256`` the content is checked against it; without, against the size and
        the object's ETag (as a resource is).
        """
        if sha256 is None:
            entry = store.head(key)
            if entry.size != size:
                raise StorageError(
                    f"Stored content {key} is {entry.size} bytes, but the workspace says "
                    f"{size}; it was changed behind Winslow's back."
                )
            return self._fetch_by_etag(
                store, key, "blobs", "upload-" + key.rsplit("/", 1)[-1], entry
            )
        target = self.root / "blobs" / sha256
        with self._locked(target):
            if self._is_good(target, size):
                self._touch(target)
                return target, True
            temp = self._temp_for(target)
            try:
                store.download_file(key, temp)
                got = sha256_file(temp)
                if got != sha256:
                    raise StorageError(
                        f"Stored content {key} does not match its hash (got {got[:12]}…); "
                        "it is damaged in object storage."
                    )
                self._seal(temp, target)
            finally:
                temp.unlink(missing_ok=True)
            self.downloaded_bytes += size
        self._added(size)
        self.evict(keep=target)
        return target, False

    def adopt(self, source: Path, sha256: str) -> None:
        """Add a file a stage-out just published (by hash) so the next stage finds it here.

        The stage has ended, so its file can become the entry by a hard link; where that
        is impossible the file is copied. Best effort: a failure only costs a later fetch.
        """
        target = self.root / "blobs" / sha256
        try:
            with self._locked(target):
                if self._is_good(target, source.stat().st_size):
                    self._touch(target)
                    return
                temp = self._temp_for(target)
                try:
                    try:
                        os.link(source, temp)
                    except OSError:
                        shutil.copyfile(source, temp)
                    self._seal(temp, target)
                finally:
                    temp.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("node cache: could not keep %s: %s", source, exc)
            return
        self._added(target.stat().st_size)
        self.evict(keep=target)

    # -- resource pool files --------------------------------------------------------------

    def resource(
        self, store: ObjectStore, key: str, path: str, entry: ObjectEntry
    ) -> tuple[Path, bool]:
        """Return the cached copy of pool file ``path`` and whether it was already there.

        ``entry`` is what HeadObject says of ``key`` now; a hit needs the same ETag and
        size.
        """
        return self._fetch_by_etag(store, key, "resources", path, entry)

    def _fetch_by_etag(
        self, store: ObjectStore, key: str, tree: str, name: str, entry: ObjectEntry
    ) -> tuple[Path, bool]:
        target = self.root / tree / name
        etag_file = self.root / "etags" / tree / name
        with self._locked(target):
            if (
                entry.etag
                and _read_text(etag_file) == entry.etag
                and self._is_good(target, entry.size)
            ):
                self._touch(target)
                return target, True
            # Drop the old ETag first: a crash between the file's replace and the new ETag
            # then costs a fetch, never a stale hit.
            etag_file.unlink(missing_ok=True)
            temp = self._temp_for(target)
            try:
                store.download_file(key, temp)
                _check_download(temp, key, entry)
                self._seal(temp, target)
            finally:
                temp.unlink(missing_ok=True)
            if entry.etag:
                etag_file.parent.mkdir(parents=True, exist_ok=True)
                etag_temp = self._temp_for(etag_file)
                etag_temp.write_text(entry.etag, encoding="utf-8")
                os.replace(etag_temp, etag_file)
            self.downloaded_bytes += entry.size
        self._added(entry.size)
        self.evict(keep=target)
        return target, False

    # -- size cap ---------------------------------------------------------------------------

    def entries(self) -> list[CacheEntry]:
        """Every complete entry, least recently used first."""
        found: list[CacheEntry] = []
        for tree in ("blobs", "resources"):
            base = self.root / tree
            for dirpath, _dirs, files in os.walk(base):
                for name in files:
                    if name.startswith(".") and name.endswith(".part"):
                        continue
                    path = Path(dirpath) / name
                    try:
                        st = path.lstat()
                    except FileNotFoundError:
                        continue
                    found.append(CacheEntry(path, st.st_size, st.st_atime_ns))
        return sorted(found, key=lambda e: e.used_ns)

    def usage(self) -> int:
        """Total bytes of the complete entries."""
        return sum(entry.size for entry in self.entries())

    def evict(self, keep: Path | None = None) -> int:
        """Remove least recently used entries until the cache fits its cap; return bytes freed.

        Entries another stage-in holds the lock of are skipped, as is ``keep``.
        """
        if not self.max_bytes or (self._total is not None and self._total <= self.max_bytes):
            return 0
        entries = self.entries()
        total = sum(entry.size for entry in entries)
        freed = 0
        for entry in entries:
            if total - freed <= self.max_bytes:
                break
            if keep is not None and entry.path == keep:
                continue
            relative = entry.path.relative_to(self.root)
            with self._locked(entry.path, wait=False) as locked:
                if not locked:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    entry.path.unlink()
                    (self.root / "etags" / relative).unlink(missing_ok=True)
                    freed += entry.size
                    log.info("node cache: evicted %s (%d bytes)", relative, entry.size)
        self._total = total - freed
        return freed

    def _added(self, size: int) -> None:
        if self._total is not None:
            self._total += size

    # -- helpers ----------------------------------------------------------------------------

    def _is_good(self, path: Path, size: int) -> bool:
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        if st.st_size == size and st.st_mtime_ns == VERIFIED_MTIME_NS:
            return True
        log.warning("node cache: %s was changed after it was checked; fetching it again", path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return False

    def _seal(self, temp: Path, target: Path) -> None:
        temp.chmod(0o444)
        now = time.time_ns()
        os.utime(temp, ns=(now, VERIFIED_MTIME_NS))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)

    def _touch(self, path: Path) -> None:
        with contextlib.suppress(OSError):
            os.utime(path, ns=(time.time_ns(), VERIFIED_MTIME_NS))

    def _temp_for(self, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")

    @contextlib.contextmanager
    def _locked(self, entry: Path, *, wait: bool = True) -> Iterator[bool]:
        """Hold the lock of the entry at ``entry``; with ``wait=False`` yield False if taken."""
        locks = self.root / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        name = entry.relative_to(self.root).as_posix()
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]
        with (locks / f"{digest}.lock").open("a") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def release_published(
    workspace: Path, records: Mapping[str, FileRecord], cache: NodeCache | None
) -> int:
    """Free the node's copy of ``workspace``, just published as ``records``; return the
    number of files whose names went.

    Only what was published goes: a file stage-out skipped (a name storage cannot hold, a
    socket) has no other copy and stays, as does anything not in ``records`` (the stage's
    checkpoints). A regular file with a hash becomes the cache entry of its content first
    (``NodeCache.adopt``: a hard link, a copy across devices); a file that is no longer
    what was published (size or type changed) stays. Emptied folders go, ``workspace``
    itself stays. Afterwards the cache is trimmed to its cap. Best effort: a name that
    cannot be removed (a container stage's root-owned folder) is logged and kept.
    """
    removed = 0
    kept: list[str] = []
    for path, record in records.items():
        local = workspace / path
        try:
            st = local.lstat()
        except OSError:
            continue
        if record.link is None:
            if not stat.S_ISREG(st.st_mode) or st.st_size != record.size:
                continue
            if cache is not None and record.sha256:
                cache.adopt(local, record.sha256)
        elif not stat.S_ISLNK(st.st_mode):
            continue
        try:
            local.unlink()
        except OSError as exc:
            kept.append(f"{path} ({exc.strerror})")
            continue
        removed += 1
    if kept:
        log.warning(
            "workspace %s: %d published files could not be freed, e.g. %s",
            workspace,
            len(kept),
            ", ".join(kept[:3]),
        )
    for dirpath, _dirs, _files in os.walk(workspace, topdown=False):
        if Path(dirpath) != workspace:
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)  # only succeeds when empty
    if cache is not None:
        cache.evict()
    log.info("workspace %s: published, %d files freed on this node", workspace, removed)
    return removed


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target``; copy where a link is impossible (another device)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def clone_or_copy(source: Path, target: Path, mode: int) -> None:
    """Give ``target`` its own copy of ``source`` (copy-on-write where possible), mode ``mode``.

    Workspace files are copies, not links: a stage may change them in place, and that
    must not reach the cache or another run's workspace.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        with source.open("rb") as src, temp.open("wb") as dst:
            try:
                fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY):
                    raise
                shutil.copyfileobj(src, dst, HASH_CHUNK_BYTES)
        temp.chmod(mode)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def _check_download(path: Path, key: str, entry: ObjectEntry) -> None:
    """Refuse a fetched file whose size, or MD5 where the ETag is one, is not the object's."""
    size = path.stat().st_size
    if size != entry.size:
        raise StorageError(f"Fetched {size} of {entry.size} bytes of {key}; fetching again.")
    etag = entry.etag or ""
    if len(etag) == 32 and "-" not in etag:
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
        if digest.hexdigest() != etag.lower():
            raise StorageError(f"Fetched {key} does not match its ETag; fetching again.")


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
