"""What was read of a project, kept until a commit of this process changes the project.

The engine reads a project and its runs several times for every run that ends (to read
its results, apply retention, decide the next step, build the next job); with five
projects ending stages at once those reads were a fifth of the server's CPU. Every write
of a project, its runs or its history goes through ``ProjectTransaction``, which names
the project to the store's commit hook, so a value read before that commit is known to
be stale afterwards.

A reader takes the project's generation *before* it reads the database and stores what
it read under that generation; a commit bumps the generation after it committed. So a
read that raced a commit is stored under a generation that is already old and never
served. Only this process's commits are heard, so the store keeps values only inside
``Store.kept_reads`` (the engine's round), and forgets them all when one begins: a write
by another server on the same database is seen by the next round.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection
from typing import Generic, TypeVar

V = TypeVar("V")


class GenerationCache(Generic[V]):
    """Values by project id, each good while the project's generation is unchanged."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._generations: dict[str, int] = {}
        self._values: OrderedDict[str, tuple[int, V]] = OrderedDict()

    def generation(self, key: str) -> int:
        """Take this before reading what ``put`` will keep."""
        with self._lock:
            return self._generations.get(key, 0)

    def get(self, key: str) -> V | None:
        """The value kept for ``key`` if no commit changed the project since it was read."""
        with self._lock:
            kept = self._values.get(key)
            if kept is None:
                return None
            if kept[0] != self._generations.get(key, 0):
                del self._values[key]
                return None
            self._values.move_to_end(key)
            return kept[1]

    def put(self, key: str, generation: int, value: V) -> None:
        """Keep ``value``, read after ``generation`` was taken; the least used goes when full."""
        with self._lock:
            if generation != self._generations.get(key, 0):
                return  # A commit landed during the read: what was read may be old.
            self._values[key] = (generation, value)
            self._values.move_to_end(key)
            while len(self._values) > self.capacity:
                self._values.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def changed(self, keys: Collection[str]) -> None:
        """Called once a transaction that wrote these projects committed."""
        with self._lock:
            for key in keys:
                self._generations[key] = self._generations.get(key, 0) + 1
                self._values.pop(key, None)
