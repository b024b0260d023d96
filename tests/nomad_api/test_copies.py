"""The copied samples are exactly the shared reference."""

from __future__ import annotations

import pytest

from tests.nomad_api import SAMPLES, SHARED_SAMPLES


def test_copies_match_the_shared_reference() -> None:
    if not SHARED_SAMPLES.is_dir():
        pytest.skip(f"{SHARED_SAMPLES} is not beside this checkout")
    shared = sorted(p.name for p in SHARED_SAMPLES.glob("*.json"))
    assert sorted(p.name for p in SAMPLES.glob("*.json")) == shared
    for name in shared:
        assert (SAMPLES / name).read_bytes() == (SHARED_SAMPLES / name).read_bytes(), name
