"""Nomad's documented API samples, copied from ``shared/nomad-api`` (see README.md)."""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).resolve().parent
"""Folder of the sample JSON files."""

SHARED_API = Path(__file__).resolve().parents[2].parent / "shared" / "nomad-api"
"""The reference the samples and the job schema were copied from, where a checkout has it
beside it (``../shared/nomad-api``); nothing else reads outside the checkout."""

SHARED_SAMPLES = SHARED_API / "samples"

SCHEMA_COPY = (
    Path(__file__).resolve().parents[2] / "winslow" / "jobspecs" / "job-register.schema.json"
)
"""The job schema the renderer validates against, shipped in the package."""

LOCAL_SAMPLES = frozenset({"client_allocation_stats_response.json", "client_stats_response.json"})
"""Samples extracted here after the shared reference was made, the same way (SAMPLES.md,
last section); they have no copy in ``shared/nomad-api`` to match."""
