"""The bucket layout: where resources, workspaces and logs live, and what is refused."""

from __future__ import annotations

import pytest

from winslow.core.logformat import INVISIBLE_CATEGORIES
from winslow.errors import ValidationError
from winslow.storage import keys


def test_resource_key_is_under_resources():
    assert keys.resource_key("videos/ulm/cam1.mp4") == "resources/videos/ulm/cam1.mp4"


def test_resource_prefix_of_root_and_folder_end_in_slash():
    assert keys.resource_prefix() == "resources/"
    assert keys.resource_prefix("videos/ulm") == "resources/videos/ulm/"
    assert keys.resource_prefix("videos/ulm/") == "resources/videos/ulm/"


def test_workspace_prefix_and_key():
    assert keys.workspace_prefix("ulm-0603", 41) == "workspaces/ulm-0603/41/"
    assert keys.workspace_key("ulm-0603", 41, "out/tracks.json") == (
        "workspaces/ulm-0603/41/out/tracks.json"
    )


def test_log_key():
    assert keys.log_key("ulm-0603", 41) == "logs/ulm-0603/41.log"


def test_project_prefixes_cover_workspaces_logs_and_pending_records_only():
    prefixes = keys.project_prefixes("ulm")
    assert prefixes == ("workspaces/ulm/", "logs/ulm/", "pending/ulm/")
    # A project whose ID starts with another's is not covered by it.
    assert not any(keys.workspace_prefix("ulm-2", 1).startswith(p) for p in prefixes)
    assert not any(keys.log_key("ulm-2", 1).startswith(p) for p in prefixes)
    assert not any(keys.resource_key("ulm/a.mp4").startswith(p) for p in prefixes)


@pytest.mark.parametrize("project_id", ["", "a/b", ".", ".."])
def test_unusable_project_ids_are_refused(project_id):
    with pytest.raises(ValidationError, match="Project ID"):
        keys.workspace_prefix(project_id, 1)
    with pytest.raises(ValidationError, match="Project ID"):
        keys.project_prefixes(project_id)


@pytest.mark.parametrize("run_id", [-1, True, "3"])
def test_bad_run_ids_are_refused(run_id):
    with pytest.raises(ValidationError, match="Run ID"):
        keys.log_key("ulm", run_id)


@pytest.mark.parametrize("path", ["", "/abs", "folder/"])
def test_file_keys_need_a_file_path(path):
    with pytest.raises(ValidationError):
        keys.resource_key(path)


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("resources/a/b.mp4", "file 'a/b.mp4' in the resource pool"),
        ("resources/a/", "folder 'a' in the resource pool"),
        ("resources/", "the resource pool"),
        ("workspaces/ulm/41/out.json", "file 'out.json' in run 41 of project 'ulm'"),
        ("workspaces/ulm/41/", "workspace of run 41 of project 'ulm'"),
        ("workspaces/ulm/41/sub/", "folder 'sub' in run 41 of project 'ulm'"),
        ("logs/ulm/41.log", "log of run 41 of project 'ulm'"),
        ("other/thing", "object 'other/thing'"),
    ],
)
def test_describe_key_names_the_thing(key, words):
    assert keys.describe_key(key) == words


def test_manifest_keys_sort_by_version_and_parse_back():
    prefix = keys.workspace_prefix("ulm", 4)
    assert keys.manifest_key(prefix, 1) == "workspaces/ulm/4/manifests/00000001.json"
    assert keys.manifest_key(prefix, 12) > keys.manifest_key(prefix, 9)
    assert keys.manifest_version(keys.manifest_key(prefix, 12)) == 12
    for not_one in ("workspaces/ulm/4/manifests/1.json", "x/00000000.json", "a/00000001.txt"):
        assert keys.manifest_version(not_one) is None
    assert keys.describe_key(keys.manifest_key(prefix, 3)) == (
        "workspace version 3 of run 4 of project 'ulm'"
    )
    with pytest.raises(ValidationError):
        keys.manifest_key(prefix, 0)
    with pytest.raises(ValidationError):
        keys.manifest_key("resources/x/", 1)


def test_blob_keys_are_content_addressed_and_checked():
    digest = "ab" + "0" * 62
    assert keys.blob_key(digest) == f"blobs/sha256/ab/{digest}"
    for bad in ("AB" + "0" * 62, "ab", "../" + "0" * 61, "g" * 64):
        with pytest.raises(ValidationError):
            keys.blob_key(bad)
    assert keys.upload_blob_key("a1b2") == "blobs/upload/a1b2"
    with pytest.raises(ValidationError):
        keys.upload_blob_key("../x")
    assert keys.pending_key("workspaces/ulm/4/", "f00") == "pending/ulm/4/f00.json"


def test_end_record_sits_beside_the_runs_log():
    assert keys.end_key(keys.log_key("ulm-0603", 41)) == "logs/ulm-0603/41.end.json"
    assert keys.end_key("workspaces/ulm/41/out.log") is None
    described = keys.describe_key("logs/ulm-0603/41.end.json")
    assert described == "end record of run 41 of project 'ulm-0603'"


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("resources/" + "a" * 1015, "key of 1025 bytes"),
        ("resources/" + "n" * 256 + "/x", "is 256 bytes long"),
        ("resources/a//b", "empty, '.' or '..' name"),
        ("resources/a/./b", "empty, '.' or '..' name"),
        ("resources/a/..", "empty, '.' or '..' name"),
        ("resources/a\\b", "backslash"),
        ("resources/a\x07", r"U\+0007"),
        ("resources/a\ud800", r"U\+D800"),
    ],
    ids=["too-long", "long-name", "empty", "dot", "dotdot", "bs", "bel", "sur"],
)
def test_keys_object_storage_cannot_hold_are_refused_before_it_is_asked(key, words):
    with pytest.raises(ValidationError, match=words):
        keys.check_key(key)


def test_the_key_limit_counts_utf8_bytes():
    at_limit = "resources/" + ("é" * 100 + "/") * 5 + "a" * 9
    assert len(at_limit.encode()) == 1024
    assert keys.check_key(at_limit) == at_limit
    with pytest.raises(ValidationError, match="key of 1025 bytes"):
        keys.check_key(at_limit + "b")


def test_key_builders_check_what_they_build():
    assert keys.resource_prefix("a/b") == "resources/a/b/"
    with pytest.raises(ValidationError, match="bytes long"):
        keys.resource_key("x" * 300)
    with pytest.raises(ValidationError, match="bytes long"):
        keys.resource_prefix("x" * 300)
    with pytest.raises(ValidationError, match="key of"):
        keys.workspace_key("ulm", 1, "a/" * 505 + "b")


@pytest.mark.parametrize("char", ["\u202e", "\u200f", "\u2067", "\u200b", "\u2060", "\u2029"])
def test_new_names_may_not_hold_invisible_characters(char):
    with pytest.raises(ValidationError, match=f"U\\+{ord(char):04X}") as caught:
        keys.check_new_path(f"clips/a{char}b.mp4")
    assert char not in caught.value.message
    assert keys.check_new_path("clips/größe/日本.mp4") == "clips/größe/日本.mp4"


def test_a_new_name_refuses_what_listings_would_show_escaped():
    """What a person may not put in a new name is what a listing escapes in a name a stage
    wrote (``core/logformat.escape_name``): the two lists must not drift apart."""
    refused = set(keys._REFUSED_CATEGORIES) | set(keys._INVISIBLE_CATEGORIES)
    assert refused == INVISIBLE_CATEGORIES
