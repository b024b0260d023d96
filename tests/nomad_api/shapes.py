"""Compare an answer of a Nomad agent (the stand-in, or a real one) with a documented sample.

``assert_shape`` walks sample and answer together: the answer has the sample's keys (plus
only the extras a caller allows, per path) and the same JSON type per key, ``null``
matching any type as Go encodes nil. Lists compare each element with the union of the
sample's elements; maps whose keys are data (task names, device IDs) compare each value
with the sample's values; free-form maps compare by type only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.nomad_api import SAMPLES

JsonDict = dict[str, Any]

# Maps whose keys are data: their values share one shape, compared with the sample's.
SHAPED_MAPS = {
    "TaskStates",
    "TaskResources",
    "FailedTGAllocs",
    "Drivers",
    "Tasks",  # allocation statistics: task name → its usage
    "InstanceStats",  # device statistics: device ID → its statistics
}
# Maps (or free-form values) whose contents differ by nature: only the type is compared.
OPAQUE = {
    "Meta",
    "Config",
    "Env",
    "Attributes",
    "Links",
    "NodesAvailable",
    "Scores",
    "ConstraintFiltered",
    "DimensionExhausted",
    "ClassFiltered",
    "ClassExhausted",
    "QuotaExhausted",
    "ResourcesExhausted",
    "Details",
    "GetterOptions",
    "HostVolumes",
    "HostNetworks",
    "ScoreMetaData",
    "Payload",
}

ALLOC_STATS_EXTRAS = {
    "$.ResourceUsage": {"DeviceStats"},
    "$.ResourceUsage.MemoryStats": {"MappedFile", "Usage"},
    "$.Tasks.*.ResourceUsage": {"DeviceStats"},
    "$.Tasks.*.ResourceUsage.MemoryStats": {"MappedFile", "Usage"},
}
"""Keys of ``GET /v1/client/allocation/:id/stats`` that current agents send beyond the
documented sample (SAMPLES.md, last section)."""


def sample(name: str) -> Any:
    """The documented sample ``name``; skips when the file is missing."""
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"{path} is missing; the Nomad API samples live in shared/nomad-api")
    return json.loads(path.read_text())


def _json_type(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def _merge(samples: list[Any]) -> Any:
    """One representative of a list's elements: the union of their keys."""
    dicts = [s for s in samples if isinstance(s, dict)]
    if not dicts:
        return samples[0] if samples else None
    merged: JsonDict = {}
    for item in dicts:
        for key, value in item.items():
            if merged.get(key) is None:
                merged[key] = value
    return merged


def assert_shape(
    expected: Any, actual: Any, extras: Callable[[str], set[str]], path: str = "$"
) -> None:
    """``actual`` has ``expected``'s keys (plus allowed extras) and JSON types, deeply."""
    want, got = _json_type(expected), _json_type(actual)
    if want is None or got is None:
        return  # Go encodes nil pointers, maps and slices as null
    assert want == got, f"{path}: sample has {want}, the answer has {got}"
    last = path.rsplit(".", 1)[-1]
    if last in OPAQUE:
        return
    if isinstance(expected, list):
        representative = _merge(expected)
        for item in actual:
            assert_shape(representative, item, extras, f"{path}[]")
        return
    if not isinstance(expected, dict):
        return
    if last in SHAPED_MAPS:
        representative = _merge(list(expected.values()))
        for value in actual.values():
            assert_shape(representative, value, extras, f"{path}.*")
        return
    missing = set(expected) - set(actual)
    unknown = set(actual) - set(expected) - extras(path)
    assert not missing, f"{path}: keys missing from the answer: {sorted(missing)}"
    assert not unknown, f"{path}: keys the sample does not have: {sorted(unknown)}"
    for key in expected:
        assert_shape(expected[key], actual[key], extras, f"{path}.{key}")


def table_extras(table: dict[str, set[str]]) -> Callable[[str], set[str]]:
    """Extras per path, from a table (paths not in it allow none)."""
    return lambda path: table.get(path, set())
