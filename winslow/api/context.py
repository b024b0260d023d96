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
    from winslow.store.repo import Store


@dataclass
class AppContext:
    settings: Settings
    store: Store
    engine: Engine
    backend: Backend
    objects: ObjectStore
    pipelines: PipelineFolder
