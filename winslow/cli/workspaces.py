"""``winslow workspace ...`` and ``winslow gc``: the files of a project's runs, and freeing
what no workspace version references any more.

A run's workspace has versions: 1 is what the stage wrote, each fix uploaded while the
project is paused adds one. Commands read the latest version of the latest finished run
unless told ``--run`` and ``--version``; ``gc`` removes only contents no version refers to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from winslow.cli.client import ApiClient, CommandError
from winslow.cli.helpers import (
    JsonOpt,
    WinslowTyper,
    api_client,
    emit,
    fail,
    files_table,
    out,
    query_flag,
    transfer_progress,
)
from winslow.cli.transfer import download, upload_file
from winslow.core.logformat import escape_name
from winslow.units import format_bytes, parse_duration

workspace_app = WinslowTyper(no_args_is_help=True, help="Workspaces of a project's runs.")

VersionOpt = Annotated[
    int | None, typer.Option(help="Workspace version (1: what the stage wrote); default: latest.")
]


def _run_params(run: int | None, version: int | None, **params: Any) -> dict[str, Any]:
    """Query parameters that pick the run and version, when given, added to ``params``."""
    if run is not None:
        params["run"] = run
    if version is not None:
        params["version"] = version
    return params


@workspace_app.command("ls")
def workspace_ls(
    project: str,
    path: Annotated[str, typer.Argument()] = "",
    run: Annotated[int | None, typer.Option(help="Run id; default: latest finished.")] = None,
    version: VersionOpt = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List a run's workspace (its latest version unless --version)."""
    params = _run_params(run, version, path=path, recursive=query_flag(recursive))
    with api_client() as api:
        data = api.get(f"/projects/{project}/workspace", params=params)
    emit(data, as_json, files_table)


@workspace_app.command("upload")
def workspace_upload(
    project: str,
    local: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    path: Annotated[
        str | None, typer.Argument(help="Path in the workspace; default: the file's name.")
    ] = None,
    run: Annotated[int | None, typer.Option(help="Run id; default: latest ended.")] = None,
    note: Annotated[str, typer.Option(help="What the fix is, for the history.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Upload a fix into a run's workspace while the project is paused (a new version)."""
    target = path or local.name
    with api_client() as api:
        if run is None:
            run = int(api.get(f"/projects/{project}/workspace")["run"])
        with transfer_progress(f"upload {local.name}", local.stat().st_size) as advance:
            data = upload_file(
                api,
                local,
                target,
                advance,
                uploads_path=f"/projects/{project}/runs/{run}/workspace/uploads",
                complete_extra={"note": note} if note else None,
            )
    emit(
        data,
        as_json,
        lambda d: out.print(
            f"uploaded {d['path']} ({format_bytes(d['size'])}) into run {d['run']}'s workspace: "
            f"version {d['version']}",
            markup=False,
        ),
    )


@workspace_app.command("download")
def workspace_download(
    project: str,
    path: str,
    local: Annotated[Path | None, typer.Argument()] = None,
    run: Annotated[int | None, typer.Option(help="Run id; default: latest finished.")] = None,
    version: VersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a file (or with a folder path, every file below it) from a workspace."""
    params = _run_params(run, version, path=path)
    files = []
    with api_client() as api:
        for info, target in _download_targets(api, project, path, local, params):
            with transfer_progress(f"download {info['name']}", info["size"]) as advance:
                download(info, target, advance)
            if not as_json:
                out.print(f"downloaded {escape_name(str(target))}", markup=False)
            files.append({"file": str(target), "size": info["size"]})
    if as_json:
        emit({"project": project, "path": path, "files": files}, True, print)


def _download_targets(
    api: ApiClient, project: str, path: str, local: Path | None, params: dict[str, Any]
) -> list[tuple[dict[str, Any], Path]]:
    """Return (download info, local target) of the file at ``path``, or of every file below
    it when it is a folder; raises the first ``CommandError`` when it is neither."""
    download = f"/projects/{project}/workspace/download"
    try:
        info = api.get(download, params=params)
    except CommandError as exc:
        if exc.status_code != 404:
            raise
        listing = api.get(f"/projects/{project}/workspace", params={**params, "recursive": "true"})
        entries = [f for f in listing["data"] if not f["is_dir"]]
        if not entries:
            raise
        root = Path(local or Path(path.rstrip("/").rsplit("/", 1)[-1] or "workspace"))
        targets = []
        for entry in entries:
            info = api.get(download, params={**params, "path": entry["path"]})
            relative = entry["path"][len(path.strip("/")) :].lstrip("/")
            targets.append((info, root / relative))
        return targets
    base = Path(local or Path(info["name"]))
    if base.is_dir():
        base = base / info["name"]
    return [(info, base)]


def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be removed.")
    ] = False,
    grace: Annotated[
        str, typer.Option(help="Leave unreferenced contents younger than this (30m, 24h, 7d).")
    ] = "24h",
    multipart_older_than: Annotated[
        str,
        typer.Option(
            help="Abort unfinished uploads that got no new part for this long (30m, 24h, 7d)."
        ),
    ] = "24h",
    as_json: JsonOpt = False,
) -> None:
    """Remove stored contents no workspace version references, and abandoned uploads."""
    try:
        grace_seconds = parse_duration(grace)
    except ValueError as exc:
        fail(f"--grace: {exc}")
    try:
        multipart_seconds = parse_duration(multipart_older_than)
    except ValueError as exc:
        fail(f"--multipart-older-than: {exc}")
    with api_client() as api:
        data = api.post(
            "/gc",
            {
                "dry_run": dry_run,
                "grace_seconds": grace_seconds,
                "multipart_grace_seconds": multipart_seconds,
            },
        )

    def human(d: dict[str, Any]) -> None:
        out.print(
            f"{d['manifests']} workspace versions reference {d['referenced']} of "
            f"{d['blobs']} stored contents ({format_bytes(d['blob_bytes'])}).",
            markup=False,
        )
        if d["kept_young"]:
            out.print(
                f"{d['kept_young']} unreferenced contents are younger than {grace} and stay.",
                markup=False,
            )
        count, size = len(d["removable"]), format_bytes(d["removable_bytes"])
        if d["dry_run"]:
            for key in d["removable"]:
                out.print(f"would remove {key}", markup=False)
            out.print(f"would remove {count} contents ({size})", markup=False)
        else:
            out.print(
                f"removed {d['removed']} contents ({format_bytes(d['removed_bytes'])})",
                markup=False,
            )
        _uploads_and_records(d, multipart_older_than)

    emit(data, as_json, human)


def _uploads_and_records(d: dict[str, Any], older_than: str) -> None:
    """The lines of ``winslow gc`` on unfinished uploads and stage-out records."""
    if d["dry_run"]:
        for key in d["uploads_abandoned"]:
            out.print(f"would abort the upload to {key}", markup=False)
    done = "would abort" if d["dry_run"] else "aborted"
    count = len(d["uploads_abandoned"]) if d["dry_run"] else d["uploads_aborted"]
    out.print(
        f"{done} {count} unfinished uploads with no new part for {older_than}; "
        f"{d['uploads_active']} active ones stay",
        markup=False,
    )
    if d["finished_pending"] or d["stale_pending"]:
        out.print(
            f"{'would remove' if d['dry_run'] else 'removed'} {d['finished_pending']} "
            f"records of stage-outs whose retry published and {d['stale_pending']} of "
            "stage-outs that died long ago",
            markup=False,
        )
