"""What a running server holds: settings, store, engine, backend, storage, pipelines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from winslow.backends.base import Backend
    from winslow.engine.reconcile import Engine
    from winslow.pipeline.folder import PipelineFolder
    from winslow.settings import Settings
    from winslow.storage.objects import ObjectStore
    from winslow.storage.supervisor import Problem, StorageSupervisor
    from winslow.store.repo import Store


@dataclass
class AppContext:
    settings: Settings
    store: Store
    engine: Engine
    backend: Backend
    objects: ObjectStore
    pipelines: PipelineFolder
    supervisor: StorageSupervisor | None = None
    """Watches S3 while ``winslow up`` runs; None where nothing watches (tests)."""

    def problems(self) -> list[Problem]:
        """What does not work now (S3 down), for health and the console's banner."""
        return self.supervisor.problems() if self.supervisor is not None else []
