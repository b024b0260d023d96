"""``winslow resources ...``: the resource pool, the shared input files stages read.

Listing and deleting go through the API; the bytes of an upload or a download go straight
between this machine and object storage through presigned URLs (``cli/transfer.py``), so
a file of any size can be moved and an interrupted transfer continues when rerun.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
from winslow.units import format_bytes

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
    dest: Annotated[str | None, typer.Argument(help="Pool path; default: the file's name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload a file of any size (parallel parts; rerun to resume an interrupted upload)."""
    if not local.is_file():
        fail(f"No file '{local}'.")
    target = dest or local.name
    if target.endswith("/"):
        target += local.name
    with (
        api_client() as api,
        transfer_progress(f"upload {local.name}", local.stat().st_size) as advance,
    ):
        data = upload_file(api, local, target, advance)
    emit(
        data,
        as_json,
        lambda d: out.print(f"uploaded {d['path']} ({format_bytes(d['size'])})", markup=False),
    )


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
        f"downloaded {path} to {target}",
    )


@resources_app.command("rm")
def resources_rm(
    path: str,
    recursive: Annotated[bool, typer.Option("--recursive", "-r")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a file (or, with -r, a folder) from the pool."""
    with api_client() as api:
        api.delete("/resources", params={"path": path, "recursive": query_flag(recursive)})
    done({"path": path, "deleted": True}, as_json, f"deleted {path}")
