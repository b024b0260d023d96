"""The copied samples and job schema are exactly the shared reference; the samples added
here are documented. The one place that reads outside the checkout, and it skips when the
reference is not beside it."""

from __future__ import annotations

import json

import pytest

from tests.nomad_api import LOCAL_SAMPLES, SAMPLES, SCHEMA_COPY, SHARED_API, SHARED_SAMPLES


def test_copies_match_the_shared_reference() -> None:
    if not SHARED_SAMPLES.is_dir():
        pytest.skip(f"{SHARED_SAMPLES} is not beside this checkout")
    shared = sorted(p.name for p in SHARED_SAMPLES.glob("*.json"))
    assert sorted(p.name for p in SAMPLES.glob("*.json") if p.name not in LOCAL_SAMPLES) == shared
    for name in shared:
        assert (SAMPLES / name).read_bytes() == (SHARED_SAMPLES / name).read_bytes(), name


def test_schema_copy_in_the_package_is_the_shared_reference() -> None:
    shared = SHARED_API / SCHEMA_COPY.name
    if not shared.is_file():
        pytest.skip(f"{shared} is not beside this checkout")
    assert SCHEMA_COPY.read_bytes() == shared.read_bytes()


@pytest.mark.parametrize("name", sorted(LOCAL_SAMPLES))
def test_samples_added_here_are_documented_and_kept_like_the_others(name: str) -> None:
    text = (SAMPLES / name).read_text()
    # Re-indented with 2 spaces, key order kept, as every copied sample is.
    assert text == json.dumps(json.loads(text), indent=2) + "\n"
    assert f"`{name}`" in (SAMPLES / "SAMPLES.md").read_text()
    if SHARED_SAMPLES.is_dir():
        assert not (SHARED_SAMPLES / name).exists(), f"{name} is shared now; copy it instead"
