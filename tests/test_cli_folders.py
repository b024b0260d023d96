"""Folders in the resource pool from the CLI, as a person with a folder of videos meets
them: `winslow resources upload DIR`, its rerun, and `resources rm` of a folder.

Found by trying it: `resources upload DIR` said "No file 'DIR'." of a folder that was
there, and `resources rm FOLDER` told a CLI user to add `recursive=true`, the API's word.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.fixtures.server import Server

pytestmark = pytest.mark.slow


@pytest.fixture
def server(module_server: Server) -> Server:
    return module_server


def pool(server: Server, path: str) -> dict[str, int]:
    listed = server.json("resources", "ls", path, "--recursive")["data"]
    return {entry["path"]: entry["size"] for entry in listed if not entry["is_dir"]}


def test_a_folder_uploads_every_file_under_it_and_a_rerun_sends_only_what_changed(
    server: Server, tmp_path: Path
) -> None:
    videos = tmp_path / "flight-3"
    (videos / "raw").mkdir(parents=True)
    (videos / "a.mp4").write_bytes(b"a" * 1000)
    (videos / "raw" / "b.mp4").write_bytes(b"b" * 2000)
    (videos / "raw" / "c.csv").write_text("frame,cars\n1,4\n")

    sent = server.cli("resources", "upload", str(videos))
    assert pool(server, "flight-3") == {
        "flight-3/a.mp4": 1000,
        "flight-3/raw/b.mp4": 2000,
        "flight-3/raw/c.csv": 15,
    }
    assert sent.stdout.splitlines()[-1] == "uploaded 3 files (2.9 KiB) to flight-3/"

    # A rerun (after an interruption, or to bring the pool up to date) sends only the
    # files that differ from the pool's copy in size or are newer than it.
    (videos / "raw" / "c.csv").write_text("frame,cars\n1,5\n")
    later = time.time() + 5
    os.utime(videos / "raw" / "c.csv", (later, later))
    (videos / "d.mp4").write_bytes(b"d" * 10)
    again = server.json("resources", "upload", str(videos), "elsewhere/")
    assert again["path"] == "elsewhere/flight-3"
    assert sorted(f["path"] for f in again["files"]) == [
        "elsewhere/flight-3/a.mp4",
        "elsewhere/flight-3/d.mp4",
        "elsewhere/flight-3/raw/b.mp4",
        "elsewhere/flight-3/raw/c.csv",
    ]
    rerun = server.json("resources", "upload", str(videos))
    assert [f["path"] for f in rerun["files"]] == ["flight-3/d.mp4", "flight-3/raw/c.csv"]
    assert rerun["unchanged"] == 2
    got = tmp_path / "c.csv"
    server.cli("resources", "download", "flight-3/raw/c.csv", str(got))
    assert got.read_text() == "frame,cars\n1,5\n"


def test_an_empty_folder_or_a_missing_path_is_named(server: Server, tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    empty = server.cli("resources", "upload", str(tmp_path / "empty"), check=False)
    assert empty.returncode == 1
    assert empty.stderr.strip() == f"error: No file under '{tmp_path / 'empty'}' to upload."
    missing = server.cli("resources", "upload", str(tmp_path / "nope"), check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"error: No file or folder '{tmp_path / 'nope'}'."


def test_removing_a_folder_says_to_add_r(server: Server, tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x")
    server.cli("resources", "upload", str(tmp_path / "x.txt"), "gone-soon/x.txt")
    refused = server.cli("resources", "rm", "gone-soon", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: 'gone-soon' is a folder; `winslow resources rm -r gone-soon` deletes it "
        "with everything in it."
    )
    server.cli("resources", "rm", "-r", "gone-soon")
    assert pool(server, "gone-soon") == {}
