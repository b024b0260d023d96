"""``winslow resources ...``: the resource pool, the shared input files stages read.

Listing and deleting go through the API; the bytes of an upload or a download go straight
between this machine and object storage through presigned URLs (``cli/transfer.py``), so
a file of any size can be moved and an interrupted transfer continues when rerun.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from winslow.cli.client import CommandError
from winslow.cli.helpers import (
    JsonOpt,
    WinslowTyper,
    api_client,
    done,
    emit,
    fail,
    files_table,
    out,
    query_flag,
    transfer_progress,
)
from winslow.cli.transfer import download, upload_file
from winslow.core.logformat import escape_name
from winslow.units import counted, format_bytes

resources_app = WinslowTyper(no_args_is_help=True, help="The resource pool (shared input files).")


@resources_app.command("ls")
def resources_ls(
    path: Annotated[str, typer.Argument()] = "",
    recursive: Annotated[bool, typer.Option("--recursive", "-r")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List a folder of the resource pool."""
    with api_client() as api:
        data = api.get("/resources", params={"path": path, "recursive": query_flag(recursive)})
    emit(data, as_json, lambda d: files_table(d) if d["data"] else _nothing_in(path))


def _nothing_in(path: str) -> None:
    """Say why a listing is empty: a bare header read like a command that failed."""
    if path.strip("/"):
        out.print(f"Nothing in '{path.strip('/')}' of the resource pool.", markup=False)
    else:
        out.print(
            "The resource pool is empty; `winslow resources upload FILE [PATH]` adds a file.",
            markup=False,
        )


@resources_app.command("upload")
def resources_upload(
    local: Path,
    dest: Annotated[
        str | None, typer.Argument(help="Pool path; default: the file's or folder's name.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload a file of any size, or a folder with every file under it (parallel parts;
    rerun to resume an interrupted upload; a folder's rerun sends only what changed)."""
    if local.is_dir():
        _upload_folder(local, _pool_target(local, dest), as_json)
        return
    if not local.is_file():
        fail(f"No file or folder '{local}'.")
    with (
        api_client() as api,
        transfer_progress(f"upload {local.name}", local.stat().st_size) as advance,
    ):
        data = upload_file(api, local, _pool_target(local, dest), advance)
    emit(
        data,
        as_json,
        lambda d: out.print(f"uploaded {d['path']} ({format_bytes(d['size'])})", markup=False),
    )


def _pool_target(local: Path, dest: str | None) -> str:
    """Where ``local`` goes in the pool: ``dest``, inside it when it ends in ``/``, or at
    the pool's top under its own name."""
    target = dest or local.name
    return target + local.name if target.endswith("/") else target


def _upload_folder(local: Path, prefix: str, as_json: bool) -> None:
    """Upload every file under ``local`` to ``prefix/<its path below local>``, leaving out
    those the pool holds already: the same size and stored no earlier than the file was
    last changed (to the second, as ``aws s3 sync`` compares), so a rerun after an
    interruption sends only what is missing or changed."""
    files = sorted(p for p in local.rglob("*") if p.is_file())
    if not files:
        fail(f"No file under '{local}' to upload.")
    prefix = prefix.strip("/")
    sent: list[dict[str, Any]] = []
    with api_client() as api:
        listed = api.get("/resources", params={"path": prefix, "recursive": "true"})["data"]
        pooled = {entry["path"]: entry for entry in listed if not entry["is_dir"]}
        for path in files:
            target = f"{prefix}/{path.relative_to(local).as_posix()}"
            if _pooled_already(path, pooled.get(target)):
                continue
            with transfer_progress(f"upload {target}", path.stat().st_size) as advance:
                data = upload_file(api, path, target, advance)
            if not as_json:
                out.print(f"uploaded {target} ({format_bytes(data['size'])})", markup=False)
            sent.append({"path": data["path"], "size": data["size"]})
    summary = {"path": prefix, "files": sent, "unchanged": len(files) - len(sent)}
    emit(summary, as_json, lambda d: out.print(_folder_upload_words(d), markup=False))


def _pooled_already(path: Path, entry: dict[str, Any] | None) -> bool:
    if entry is None or entry["size"] != path.stat().st_size or not entry["modified"]:
        return False
    stored = datetime.fromisoformat(entry["modified"]).timestamp()
    return int(stored) >= int(path.stat().st_mtime)


def _folder_upload_words(summary: dict[str, Any]) -> str:
    size = format_bytes(sum(f["size"] for f in summary["files"]))
    words = f"uploaded {counted(len(summary['files']), 'file')} ({size}) to {summary['path']}/"
    if summary["unchanged"]:
        words += f"; {summary['unchanged']} already there unchanged"
    return words


@resources_app.command("download")
def resources_download(
    path: str,
    local: Annotated[Path | None, typer.Argument(help="Target; default: the file's name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a file from the pool (rerun to continue an interrupted download)."""
    with api_client() as api:
        info = api.get("/resources/download", params={"path": path})
        target = local or Path(info["name"])
        if target.is_dir():
            target = target / info["name"]
        with transfer_progress(f"download {info['name']}", info["size"]) as advance:
            download(info, target, advance)
    done(
        {"path": path, "file": str(target), "size": info["size"]},
        as_json,
        f"downloaded {escape_name(path)} to {escape_name(str(target))}",
    )


@resources_app.command("rm")
def resources_rm(
    path: str,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="A folder, with everything in it.")
    ] = False,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Do not ask before a folder goes (only a terminal asks)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a file (or, with -r, a folder) from the pool."""
    with api_client() as api:
        if recursive and not yes and sys.stdin.isatty():
            # Days of uploads can sit in one folder, and every project reads from it.
            files = [
                entry
                for entry in api.get("/resources", params={"path": path, "recursive": "true"})[
                    "data"
                ]
                if not entry["is_dir"]
            ]
            if files:
                size = format_bytes(sum(entry["size"] for entry in files))
                asked = f"Delete '{path.strip('/')}' with its {counted(len(files), 'file')}"
                if not typer.confirm(f"{asked} ({size}) from the resource pool?"):
                    fail("Nothing deleted.")
        try:
            api.delete("/resources", params={"path": path, "recursive": query_flag(recursive)})
        except CommandError as exc:
            if (
                recursive
                or exc.status_code != 404
                or not api.get("/resources", params={"path": path})["data"]
            ):
                raise
            folder = path.strip("/")
            fail(
                f"'{folder}' is a folder; `winslow resources rm -r {folder}` deletes it with "
                "everything in it."
            )
    done({"path": path, "deleted": True}, as_json, f"deleted {path}")
