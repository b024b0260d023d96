"""Where each kind of object lives in Winslow's single bucket, as pure string functions.

The bucket holds three trees::

    resources/<path>                          the resource pool, shared by all projects
    workspaces/<project_id>/<run_id>/<path>   what one run of one stage wrote
    logs/<project_id>/<run_id>.log            one run's combined output

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


def log_key(project_id: str, run_id: int) -> str:
    """Return ``logs/<project_id>/<run_id>.log``, the key of one run's log."""
    return f"{LOGS}{_check_project(project_id)}/{_check_run(run_id)}{LOG_SUFFIX}"


def project_prefixes(project_id: str) -> tuple[str, ...]:
    """Return every prefix holding objects of ``project_id``, for deleting the project."""
    project = _check_project(project_id)
    return (f"{WORKSPACES}{project}/", f"{LOGS}{project}/")


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
            if not rest or rest.endswith("/"):
                folder = rest.rstrip("/")
                return f"folder '{folder}' in {where}" if folder else f"workspace of {where}"
            return f"file '{rest}' in {where}"
    if key.startswith(LOGS) and key.endswith(LOG_SUFFIX):
        parts = key[len(LOGS) : -len(LOG_SUFFIX)].split("/")
        if len(parts) == 2 and parts[1].isdigit():
            return f"log of run {parts[1]} of project '{parts[0]}'"
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
