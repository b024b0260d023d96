"""Sampling what running runs use (stub)."""

from __future__ import annotations

from winslow.backends.base import Backend
from winslow.store.repo import Store


class UsageSampler:
    def __init__(self, store: Store, backend: Backend, interval_seconds: float = 5.0) -> None:
        self.store = store
        self.backend = backend
        self.interval_seconds = interval_seconds

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def sample_once(self) -> int:
        return 0
