"""What the planner can answer for a project: start runs, skip stages, move the project.

Frozen values; the engine carries them out (``engine/reconcile.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from winslow.core.states import ProjectState


@dataclass(frozen=True)
class StartRun:
    """Create a run of ``stage`` with this attempt number."""

    stage: str
    attempt: int
    reason: str
    combination: Mapping[str, str] = field(default_factory=dict)
    """The sweep values of this run; empty unless the stage sweeps."""


@dataclass(frozen=True)
class SkipRun:
    """Record that ``stage`` does not run this time, and why."""

    stage: str
    reason: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MoveProject:
    """Put the project into ``state`` and say why."""

    state: ProjectState
    reason: str | None = None
    waiting_for: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """Everything the engine should do for one project now; empty means nothing.

    Killing is not decided here: a kill marks its runs ``cancel_requested``, and the
    engine stops every such run it sees still active.
    """

    starts: tuple[StartRun, ...] = ()
    skips: tuple[SkipRun, ...] = ()
    move: MoveProject | None = None

    @property
    def empty(self) -> bool:
        return not self.starts and not self.skips and self.move is None
