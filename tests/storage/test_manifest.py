"""Manifests as data: JSON round trips, damaged documents, merging, and folder views."""

from __future__ import annotations

import json

import pytest

from winslow.errors import ValidationError
from winslow.storage import keys
from winslow.storage.manifest import (
    FORMAT,
    FileRecord,
    Manifest,
    file_mode,
    from_json,
    iso_time,
    merge,
    parse_time,
    to_json,
)

SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_C = "c" * 64


def record(path: str, sha: str = SHA_A, size: int = 3, mode: int = 0o644) -> FileRecord:
    return FileRecord(path=path, size=size, mode=mode, blob=keys.blob_key(sha), sha256=sha)


def manifest(*records: FileRecord, origin: str = "stage-out") -> Manifest:
    return Manifest(
        files={r.path: r for r in records}, created="2026-11-25T08:00:00.000Z", origin=origin
    )


def document(files: dict[str, object], fmt: object = FORMAT) -> bytes:
    return json.dumps(
        {"format": fmt, "created": "", "origin": "stage-out", "files": files}
    ).encode()


# ---------------------------------------------------------------------------------------
# JSON


def test_round_trip_keeps_files_links_unicode_and_metadata():
    original = Manifest(
        files={
            "bin/run.sh": record("bin/run.sh", SHA_A, size=12, mode=0o755),
            "Straße/übersicht ümlaut.csv": record("Straße/übersicht ümlaut.csv", SHA_B, 7),
            "日本/動画.mp4": record("日本/動画.mp4", SHA_C, 1 << 40),
            "latest": FileRecord(path="latest", link="runs/日本/動画.mp4"),
            "outside": FileRecord(path="outside", link="../../etc/hosts"),
            "upload.txt": FileRecord(
                path="upload.txt",
                size=5,
                blob=keys.upload_blob_key("abc123"),
                modified="2026-11-25T08:12:03.123Z",
            ),
        },
        created="2026-11-25T08:12:03.123Z",
        origin="upload",
        note="fixed the labels — by hand",
    )

    data = to_json(original)
    back = from_json(data)

    assert back == original
    assert back.files["latest"].is_link and back.files["latest"].blob == ""
    assert not back.files["bin/run.sh"].is_link
    assert back.files["upload.txt"].sha256 is None  # unknown stays unknown, not ""
    assert "動画".encode() in data  # stored as UTF-8, not \u escapes
    assert back.total_size == 12 + 7 + (1 << 40) + 5
    assert back.blobs() == {
        keys.blob_key(SHA_A),
        keys.blob_key(SHA_B),
        keys.blob_key(SHA_C),
        keys.upload_blob_key("abc123"),
    }


def test_a_manifest_from_before_file_times_reads_with_none_and_times_convert_both_ways():
    """Manifests written before each file kept its time stay readable; the listing then
    shows the version's time."""
    files = from_json(document({"a": {"size": 1, "blob": keys.blob_key(SHA_A)}})).files
    assert files["a"].modified is None
    assert iso_time(1714557600.25) == "2024-05-01T10:00:00.250Z"
    parsed = parse_time("2024-05-01T10:00:00.250Z")
    assert parsed is not None and parsed.timestamp() == 1714557600.25
    assert parse_time("yesterday") is None


def test_a_missing_mode_reads_as_the_default_and_extra_bits_are_dropped():
    data = document(
        {
            "a": {"size": 1, "blob": keys.blob_key(SHA_A)},
            "b": {"size": 1, "blob": keys.blob_key(SHA_A), "mode": 0o104755},
        }
    )
    files = from_json(data).files
    assert files["a"].mode == 0o644
    assert files["b"].mode == 0o755  # never set-uid from a stored document
    assert file_mode(0o104755) == 0o755


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(document({}, fmt=2), "format 2 is not 1", id="newer format"),
        pytest.param(document({}, fmt=None), "format None is not 1", id="no format"),
        pytest.param(b"[1, 2]", "", id="not an object"),
        pytest.param(b"{not json", "", id="not JSON"),
        pytest.param(document({"../x": {"size": 1, "blob": "b"}}), "'..'", id="parent path"),
        pytest.param(document({"/etc/x": {"size": 1, "blob": "b"}}), "absolute", id="absolute"),
        pytest.param(document({"a//b": {"size": 1, "blob": "b"}}), "clean form", id="a//b"),
        pytest.param(document({"./a": {"size": 1, "blob": "b"}}), "clean form", id="./a"),
        pytest.param(document({"a/": {"size": 1, "blob": "b"}}), "clean form", id="a/"),
        pytest.param(document({"a": {"blob": "b"}}), "'size'", id="no size"),
        pytest.param(document({"a": {"size": "many", "blob": "b"}}), "", id="bad size"),
        pytest.param(document({"a": "just a string"}), "", id="entry not a map"),
        pytest.param(document([]), "'files' is not a map", id="files a list"),
    ],
)
def test_a_damaged_document_is_refused_naming_the_manifest(data, reason):
    where = "workspace version 3 of run 41 of project 'ulm'"
    with pytest.raises(ValidationError) as caught:
        from_json(data, where)
    message = caught.value.message
    assert message.startswith(f"The {where} is damaged and cannot be read: ")
    assert reason in message


# ---------------------------------------------------------------------------------------
# merge


def test_merge_applies_in_order_and_later_wins():
    first = manifest(record("a.txt", SHA_A), record("only-first.txt", SHA_A))
    second = manifest(record("a.txt", SHA_B), record("only-second.txt", SHA_B))
    third = manifest(record("a.txt", SHA_C))

    files = merge([first, second, third])

    assert sorted(files) == ["a.txt", "only-first.txt", "only-second.txt"]
    assert files["a.txt"].sha256 == SHA_C
    assert files["only-first.txt"] is first.files["only-first.txt"]  # untouched
    assert merge([third, second, first])["a.txt"].sha256 == SHA_A
    assert merge([]) == {}


def test_merge_a_file_replaced_by_a_folder_and_a_folder_by_a_file():
    earlier = manifest(
        record("out"),  # a file ...
        record("frames/0001.png"),  # ... and a folder
        record("frames/sub/0002.png"),
        record("frames-old/keep.png"),  # shares the prefix, is another folder
        record("framesX"),
    )
    later = manifest(
        record("out/result.json", SHA_B),  # 'out' becomes a folder
        record("frames", SHA_C),  # 'frames' becomes a file
    )

    files = merge([earlier, later])

    assert sorted(files) == ["frames", "frames-old/keep.png", "framesX", "out/result.json"]
    assert files["frames"].sha256 == SHA_C


def test_merge_a_link_replaces_a_folder_like_a_file_does():
    files = merge(
        [
            manifest(record("data/a.bin"), record("data/b/c.bin")),
            manifest(FileRecord("data", link="/mnt/data")),
        ]
    )
    assert list(files) == ["data"]
    assert files["data"].link == "/mnt/data"


# ---------------------------------------------------------------------------------------
# with_file, folder, below


def test_with_file_adds_or_replaces_and_leaves_the_old_version_alone():
    old = manifest(record("a.txt", SHA_A), record("dir/b.txt", SHA_A))
    new = old.with_file(record("a.txt", SHA_B), created="t2", origin="upload", note="fix")
    newer = new.with_file(record("dir/c.txt", SHA_C), created="t3", origin="upload", note="")

    assert new.files["a.txt"].sha256 == SHA_B
    assert (new.created, new.origin, new.note) == ("t2", "upload", "fix")
    assert old.files["a.txt"].sha256 == SHA_A  # a version never changes
    assert sorted(newer.files) == ["a.txt", "dir/b.txt", "dir/c.txt"]


def test_with_file_refuses_a_file_over_a_folder():
    old = manifest(record("frames/0001.png"))
    with pytest.raises(ValidationError, match="'frames' is a folder in this workspace"):
        old.with_file(record("frames"), created="", origin="upload", note="")
    # a name that only shares the prefix is fine
    assert "frames.zip" in old.with_file(record("frames.zip"), created="", origin="", note="").files


def test_with_file_refuses_a_file_below_a_file():
    old = manifest(record("report"), record("a/b"))
    with pytest.raises(ValidationError, match="'report' is a file in this workspace, so 'report/x"):
        old.with_file(record("report/x.txt"), created="", origin="upload", note="")
    with pytest.raises(ValidationError, match="'a/b' is a file in this workspace, so 'a/b/c/d'"):
        old.with_file(record("a/b/c/d"), created="", origin="upload", note="")


def test_folder_lists_direct_files_and_subfolders():
    m = manifest(
        record("top.txt"),
        record("a/one.txt"),
        record("a/two.txt"),
        record("a/sub/deep.txt"),
        record("a/sub/deeper/x.txt"),
        record("ab/not-in-a.txt"),
        FileRecord("a/link", link="one.txt"),
    )

    files, folders = m.folder("")
    assert [r.path for r in files] == ["top.txt"]
    assert folders == ["a", "ab"]

    files, folders = m.folder("a")
    assert [r.path for r in files] == ["a/link", "a/one.txt", "a/two.txt"]
    assert folders == ["a/sub"]

    files, folders = m.folder("a/sub")
    assert [r.path for r in files] == ["a/sub/deep.txt"]
    assert folders == ["a/sub/deeper"]

    assert m.folder("missing") == ([], [])


def test_below_returns_the_path_and_everything_under_it_only():
    m = manifest(record("a"), record("b/x"), record("b/y/z"), record("bc/w"), record("b.txt"))

    assert [r.path for r in m.below("")] == ["a", "b.txt", "b/x", "b/y/z", "bc/w"]
    assert [r.path for r in m.below("b")] == ["b/x", "b/y/z"]
    assert [r.path for r in m.below("a")] == ["a"]
    assert [r.path for r in m.below("b/y")] == ["b/y/z"]
    assert m.below("nothing") == []
