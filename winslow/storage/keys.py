"""Where each kind of object lives in Winslow's single bucket, as pure string functions.

The bucket holds these trees::

    resources/<path>                                  the resource pool, shared by all projects
    workspaces/<project_id>/<run_id>/manifests/<n>.json  version n of one run's workspace
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
project ``ulm`` never matches ``ulm-2``'s objects.
"""

from __future__ import annotations

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
    return RESOURCES + _require_path(path)


def resource_prefix(path: str = "") -> str:
    """Return the prefix of the resource pool folder at ``path``; ``""`` is the pool's root."""
    return RESOURCES + _as_folder(path)


def workspace_prefix(project_id: str, run_id: int) -> str:
    """Return ``workspaces/<project_id>/<run_id>/``, the folder of one run's outputs."""
    return f"{WORKSPACES}{_check_project(project_id)}/{_check_run(run_id)}/"


def workspace_key(project_id: str, run_id: int, path: str) -> str:
    """Return the key of the file at ``path`` in one run's workspace."""
    return workspace_prefix(project_id, run_id) + _require_path(path)


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
