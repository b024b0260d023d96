"""Where each kind of object lives in Winslow's single bucket, as pure string functions.

The bucket holds these trees::

    resources/<path>                                  the resource pool, shared by all projects
    workspaces/<project_id>/<run_id>/manifests/<n>.json  version n of one run's workspace
    workspaces/<project_id>/<run_id>/checkpoint/manifests/<n>.json  its checkpoint n
    blobs/sha256/<ab>/<sha256>                        file contents, stored once by hash
    blobs/upload/<token>                              contents uploaded by a person (no hash)
    pending/<project_id>/<run_id>/<token>.json        blobs a stage-out is about to reference
    logs/<project_id>/<run_id>.log                    one run's combined output
    logs/<project_id>/<run_id>.series.json            its log-parser series, read at its end
    logs/<project_id>/<run_id>.end.json               how it ended, as its stage-out saw it

A workspace is a manifest (path → blob, size, mode); the manifest is the only thing
written per run, so handing a workspace to the next stage or redoing a stage copies no
data.

Paths passed in are already cleaned by ``winslow.core.paths.clean_relative_path``;
project IDs and run IDs are checked here because a slash or a negative number in them
would let one project's prefix cover another's. Prefixes always end in ``/`` so that
project ``ulm`` never matches ``ulm-2``'s objects. Every key built here is checked against
what object storage takes (``check_key``: at most 1,024 bytes, names of at most 255), so a
path too long is a ``ValidationError`` (422) before S3 is asked, not S3's refusal (502).
Names a person creates are checked once more (``check_new_path``): no invisible character
that could make a listing show one name for another.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from winslow import defaults
from winslow.errors import ValidationError

RESOURCES = "resources/"
"""Prefix of the resource pool."""

WORKSPACES = "workspaces/"
"""Prefix of all run workspaces."""

LOGS = "logs/"
"""Prefix of all run logs."""

LOG_SUFFIX = ".log"
"""Ending of a run's log object."""

SERIES_SUFFIX = ".series.json"
"""Ending of a run's log-parser series object."""

END_SUFFIX = ".end.json"
"""Ending of a run's end record, which stage-out writes after the log."""

BLOBS = "blobs/"
"""Prefix of all file contents referenced by manifests."""

PENDING = "pending/"
"""Prefix of the records of stage-outs in flight (garbage collection keeps what they name)."""

MANIFESTS = "manifests/"
"""Folder of a workspace's manifest versions, below the workspace prefix."""

_SHA256_HEX = frozenset("0123456789abcdef")


def resource_key(path: str) -> str:
    """Return the key of the resource pool file at ``path`` (``resources/<path>``)."""
    return check_key(RESOURCES + _require_path(path))


def resource_prefix(path: str = "") -> str:
    """Return the prefix of the resource pool folder at ``path``; ``""`` is the pool's root."""
    return check_key(RESOURCES + _as_folder(path))


def workspace_prefix(project_id: str, run_id: int) -> str:
    """Return ``workspaces/<project_id>/<run_id>/``, the folder of one run's outputs."""
    return f"{WORKSPACES}{_check_project(project_id)}/{_check_run(run_id)}/"


def workspace_key(project_id: str, run_id: int, path: str) -> str:
    """Return the key of the file at ``path`` in one run's workspace."""
    return check_key(workspace_prefix(project_id, run_id) + _require_path(path))


CHECKPOINT = "checkpoint/"
"""Folder below a run's workspace prefix where its checkpoints are published, as versions of
a workspace of their own: retention, project deletion and garbage collection treat them
as part of the run's workspace."""


def checkpoint_prefix(workspace: str) -> str:
    """Return the prefix of the checkpoints of the run whose workspace is at ``workspace``."""
    manifests_prefix(workspace)  # the same check: it must be a workspace prefix
    return workspace + CHECKPOINT


def manifests_prefix(workspace: str) -> str:
    """Return the folder of the manifest versions of the workspace at prefix ``workspace``."""
    if not workspace.startswith(WORKSPACES) or not workspace.endswith("/"):
        raise ValidationError(f"{workspace!r} is not a workspace prefix.")
    return workspace + MANIFESTS


def manifest_key(workspace: str, version: int) -> str:
    """Return the key of version ``version`` (1, 2, ...) of the workspace at ``workspace``."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValidationError(f"Manifest version {version!r} must be a positive integer.")
    return f"{manifests_prefix(workspace)}{version:08d}.json"


def manifest_version(key: str) -> int | None:
    """Return the version of a manifest key, or None for a key that is not one."""
    name = key.rsplit("/", 1)[-1]
    stem, dot, ext = name.partition(".")
    if ext != "json" or not dot or not stem.isdigit() or len(stem) != 8:
        return None
    return int(stem) or None


def blob_key(sha256: str) -> str:
    """Return ``blobs/sha256/<first two>/<sha256>``, where content with that hash lives."""
    if len(sha256) != 64 or not set(sha256) <= _SHA256_HEX:
        raise ValidationError(f"{sha256!r} is not a lowercase hex SHA-256.")
    return f"{BLOBS}sha256/{sha256[:2]}/{sha256}"


def upload_blob_key(token: str) -> str:
    """Return the key of content a person uploads into a workspace (its hash is unknown)."""
    if not token or not token.isalnum():
        raise ValidationError(f"Upload token {token!r} must be letters and digits.")
    return f"{BLOBS}upload/{token}"


def pending_key(workspace: str, token: str) -> str:
    """Return the key of a stage-out's in-flight record for the workspace at ``workspace``."""
    if not workspace.startswith(WORKSPACES) or not token.isalnum():
        raise ValidationError(f"Cannot name a pending record for {workspace!r}, {token!r}.")
    return f"{PENDING}{workspace[len(WORKSPACES) :]}{token}.json"


def log_key(project_id: str, run_id: int) -> str:
    """Return ``logs/<project_id>/<run_id>.log``, the key of one run's log."""
    return f"{LOGS}{_check_project(project_id)}/{_check_run(run_id)}{LOG_SUFFIX}"


def series_key(project_id: str, run_id: int) -> str:
    """Return ``logs/<project_id>/<run_id>.series.json``, where one run's series are kept."""
    return f"{LOGS}{_check_project(project_id)}/{_check_run(run_id)}{SERIES_SUFFIX}"


def end_key(log_key: str) -> str | None:
    """Return the key of the end record beside the run log at ``log_key``
    (``logs/<project_id>/<run_id>.end.json``); None when ``log_key`` is no run's log."""
    if not log_key.startswith(LOGS) or not log_key.endswith(LOG_SUFFIX):
        return None
    return log_key[: -len(LOG_SUFFIX)] + END_SUFFIX


def project_prefixes(project_id: str) -> tuple[str, ...]:
    """Return every prefix holding objects of ``project_id``, for deleting the project."""
    project = _check_project(project_id)
    return (f"{WORKSPACES}{project}/", f"{LOGS}{project}/", f"{PENDING}{project}/")


def describe_key(key: str) -> str:
    """Return a person's words for what ``key`` holds, for error messages.

    ``resources/a/b.mp4`` → ``file 'a/b.mp4' in the resource pool``;
    ``workspaces/ulm/41/out.json`` → ``file 'out.json' in run 41 of project 'ulm'``;
    ``logs/ulm/41.log`` → ``log of run 41 of project 'ulm'``. Anything else is
    ``object '<key>'``.
    """
    if key.startswith(RESOURCES):
        rest = key[len(RESOURCES) :]
        if not rest:
            return "the resource pool"
        if rest.endswith("/"):
            return f"folder '{rest.rstrip('/')}' in the resource pool"
        return f"file '{rest}' in the resource pool"
    if key.startswith(WORKSPACES):
        parts = key[len(WORKSPACES) :].split("/", 2)
        if len(parts) == 3 and parts[1].isdigit():
            project, run, rest = parts
            where = f"run {run} of project '{project}'"
            if rest.startswith(MANIFESTS):
                version = manifest_version(rest)
                if version is not None:
                    return f"workspace version {version} of {where}"
            if rest == CHECKPOINT:
                return f"checkpoints of {where}"
            if rest.startswith(CHECKPOINT + MANIFESTS):
                version = manifest_version(rest)
                if version is not None:
                    return f"checkpoint {version} of {where}"
            if not rest or rest.endswith("/"):
                folder = rest.rstrip("/")
                return f"folder '{folder}' in {where}" if folder else f"workspace of {where}"
            return f"file '{rest}' in {where}"
    if key.startswith(BLOBS):
        return f"stored content '{key[len(BLOBS) :]}'"
    for suffix, what in ((LOG_SUFFIX, "log"), (END_SUFFIX, "end record")):
        if key.startswith(LOGS) and key.endswith(suffix):
            parts = key[len(LOGS) : -len(suffix)].split("/")
            if len(parts) == 2 and parts[1].isdigit():
                return f"{what} of run {parts[1]} of project '{parts[0]}'"
    return f"object '{key}'"


_PROJECT_BY_ID = re.compile(r"project '([0-9a-f]{12})'")
"""How ``describe_key`` names a project (keys hold its id: names change, ids do not)."""


def name_projects(words: str, name_of: Callable[[str], str | None]) -> str:
    """Return ``words`` with every ``project '<id>'`` that ``describe_key`` wrote naming
    the project by its name, as ``name_of(id)`` gives it: "run 4 of project 'flow'", not
    "run 4 of project '990e8f025390'". Ids ``name_of`` does not know (None) stay."""

    def named(found: re.Match[str]) -> str:
        name = name_of(found.group(1))
        return f"project '{name}'" if name else found.group(0)

    return _PROJECT_BY_ID.sub(named, words)


_REFUSED_CATEGORIES: dict[str, str] = {
    "Cc": "a control character",
    "Cs": "half of a UTF-16 surrogate pair, which is not text",
}
"""Characters no key may hold, by Unicode category, in words."""

_INVISIBLE_CATEGORIES: dict[str, str] = {
    "Cf": "an invisible formatting character (right-to-left or zero-width)",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
"""Characters a new name may not hold: they are invisible or reorder the text around them
(U+202E RIGHT-TO-LEFT OVERRIDE shows ``gpj.exe`` as ``exe.jpg``), so a listing could show
one name for another."""


def check_key(key: str) -> str:
    """Return ``key`` if object storage can hold it; raise ``ValidationError`` saying why not.

    Refused: keys over ``defaults.MAX_KEY_BYTES`` bytes of UTF-8 (S3's limit), a name (the
    text between slashes) over ``defaults.MAX_NAME_BYTES`` bytes, empty, ``.`` or ``..``
    names inside the key, backslashes, control characters and unpaired surrogates. A
    prefix's trailing ``/`` is allowed.
    """
    _refuse_characters(key, _REFUSED_CATEGORIES)
    if "\\" in key:
        raise ValidationError(f"{_cut(key)} contains a backslash; use '/' between names.")
    size = len(key.encode("utf-8"))
    if size > defaults.MAX_KEY_BYTES:
        raise ValidationError(
            f"The path is too long: object storage would need a key of {size} bytes for "
            f"{_cut(key)}, and takes at most {defaults.MAX_KEY_BYTES} (UTF-8). Shorten the path."
        )
    names = key.split("/")
    for position, name in enumerate(names):
        if name in (".", "..") or (not name and position < len(names) - 1):
            raise ValidationError(
                f"{_cut(key)} has an empty, '.' or '..' name in it; give a plain path."
            )
        length = len(name.encode("utf-8"))
        if length > defaults.MAX_NAME_BYTES:
            raise ValidationError(
                f"The name {_cut(name)} is {length} bytes long; a file or folder name may have "
                f"at most {defaults.MAX_NAME_BYTES} bytes (UTF-8). Shorten it."
            )
    return key


def check_new_path(path: str) -> str:
    """Return ``path`` if a new file may be created under it, else raise ``ValidationError``.

    Besides what ``check_key`` refuses, a new name may not hold invisible characters: bidi
    controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F), zero-width ones (U+200B-U+200D,
    U+2060, U+FEFF), other formatting characters, and line or paragraph separators.
    """
    _refuse_characters(path, {**_REFUSED_CATEGORIES, **_INVISIBLE_CATEGORIES})
    return path


def _refuse_characters(text: str, categories: dict[str, str]) -> None:
    for char in text:
        what = categories.get(unicodedata.category(char))
        if what is not None:
            name = unicodedata.name(char, "")
            named = f"U+{ord(char):04X} {name}".rstrip()
            raise ValidationError(
                f"The path {_cut(text)} contains {named}, {what}; rename it without that character."
            )


def _cut(text: str, keep: int = 60) -> str:
    """``text`` quoted for a message, its middle cut when long; ``repr`` escapes what is
    invisible, and an unpaired surrogate, which no JSON answer could carry."""
    shown = text if len(text) <= keep else f"{text[: keep // 2]}…{text[-keep // 2 :]}"
    return repr(shown)


def _require_path(path: str) -> str:
    if not path or path.startswith("/") or path.endswith("/"):
        raise ValidationError(f"Path {path!r} does not name a file; give it as 'folder/file'.")
    return path


def _as_folder(path: str) -> str:
    if path.startswith("/"):
        raise ValidationError(f"Path {path!r} is absolute; give it relative to the pool.")
    path = path.strip("/")
    return f"{path}/" if path else ""


def _check_project(project_id: str) -> str:
    if not project_id or "/" in project_id or project_id in (".", ".."):
        raise ValidationError(f"Project ID {project_id!r} is not usable in a storage key.")
    return project_id


def _check_run(run_id: int) -> int:
    if isinstance(run_id, bool) or not isinstance(run_id, int) or run_id < 0:
        raise ValidationError(f"Run ID {run_id!r} must be a non-negative integer.")
    return run_id
