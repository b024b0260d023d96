"""The cache behind ``Store.get_project`` and ``Store.runs``, on its own: a value read
while a commit landed is never served, and it holds no more than its capacity."""

from __future__ import annotations

from winslow.store.generations import GenerationCache


def test_a_value_is_served_until_its_project_changes() -> None:
    cache = GenerationCache[str](capacity=4)
    generation = cache.generation("p1")
    cache.put("p1", generation, "read at 1")
    assert cache.get("p1") == "read at 1"
    cache.changed({"p1"})
    assert cache.get("p1") is None


def test_a_read_that_raced_a_commit_is_not_kept() -> None:
    """The reader took the generation, a commit landed, then the reader stored what it
    had read: that may be the old state, so it must not be served."""
    cache = GenerationCache[str](capacity=4)
    generation = cache.generation("p1")
    cache.changed({"p1"})
    cache.put("p1", generation, "maybe old")
    assert cache.get("p1") is None
    cache.put("p1", cache.generation("p1"), "new")
    assert cache.get("p1") == "new"


def test_other_projects_keep_their_values_and_the_least_used_goes_first() -> None:
    cache = GenerationCache[int](capacity=2)
    for number, key in enumerate(("a", "b")):
        cache.put(key, cache.generation(key), number)
    cache.changed({"c"})
    assert cache.get("a") == 0  # also makes "b" the least used
    cache.put("c", cache.generation("c"), 2)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (0, None, 2)
