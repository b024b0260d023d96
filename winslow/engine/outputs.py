"""What a run leaves besides its workspace: results and log-parser series (stub)."""

from __future__ import annotations

from typing import Any

from winslow.core.models import Run
from winslow.pipeline.model import Stage
from winslow.storage.objects import ObjectStore


def collect_outputs(objects: ObjectStore, run: Run, stage: Stage) -> dict[str, Any]:
    """Read the ended ``run``'s results; store its log-parser series. Returns the results."""
    return {}
