"""Nomad's documented API samples, copied from ``shared/nomad-api`` (see README.md)."""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).resolve().parent
"""Folder of the sample JSON files."""

SHARED_SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "nomad-api" / "samples"
"""The reference they were copied from, where a checkout has it beside it."""

LOCAL_SAMPLES = frozenset({"client_allocation_stats_response.json"})
"""Samples extracted here after the shared reference was made, the same way (SAMPLES.md,
last section); they have no copy in ``shared/nomad-api`` to match."""
