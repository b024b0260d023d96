"""A reconcile round costs what changed, not how many projects exist.

Projects whose stages wait for room on the node (a "hog" project's stage holds every
CPU) are left alone by the rounds between two full ones: the database queries and backend
status reads of a round stay the same with 5 or with 200 of them waiting, and when room
frees up the waiting runs still start without a full round.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event

from tests.fixtures.winslow import Harness
from winslow.engine.reconcile import Engine

pytestmark = pytest.mark.slow

CORES = os.cpu_count() or 1

HOG = f"""
name: hog
stages:
  - name: hold
    command: ["sh", "-c", "sleep ${{SECONDS_HELD}}"]
    requirements: {{cpus: {CORES}, memory: 16M}}
variables:
  SECONDS_HELD: {{default: "120"}}
"""

WAITER = """
name: waiter
stages:
  - name: quick
    command: ["true"]
    requirements: {cpus: 1, memory: 16M}
"""


@dataclass
class Cost:
    queries: int = 0
    status_reads: int = 0


@contextmanager
def counted(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cost]:
    """Count the SQL statements the store runs and the backend status reads meanwhile."""
    cost = Cost()
    engines = {engine.store.engine, engine.store.read_engine}

    def on_statement(*_args: Any) -> None:
        cost.queries += 1

    status = engine.backend.status

    def counting_status(job_id: str) -> Any:
        cost.status_reads += 1
        return status(job_id)

    for sql in engines:
        event.listen(sql, "before_cursor_execute", on_statement)
    with monkeypatch.context() as patch:
        patch.setattr(engine.backend, "status", counting_status)
        try:
            yield cost
        finally:
            for sql in engines:
                event.remove(sql, "before_cursor_execute", on_statement)


def settle(engine: Engine) -> None:
    for _ in range(50):
        if not engine.reconcile_once():
            return
    raise AssertionError("the engine kept changing things")


def add_waiters(winslow: Harness, first: int, count: int) -> None:
    for i in range(first, first + count):
        winslow.create(f"waiter-{i:03d}", "waiter", start=True)
    settle(winslow.engine)


def round_costs(winslow: Harness, monkeypatch: pytest.MonkeyPatch) -> tuple[Cost, Cost]:
    """The cost of a round with nothing new, and of one after a command on one project."""
    with counted(winslow.engine, monkeypatch) as quiet:
        winslow.engine.reconcile_once()
    response = winslow.api.patch("/api/v1/projects/waiter-000", json={"labels_add": ["seen"]})
    assert response.status_code == 200, response.text
    with counted(winslow.engine, monkeypatch) as after_command:
        winslow.engine.reconcile_once()
    return quiet, after_command


def test_a_round_costs_the_same_with_5_or_200_projects_waiting(
    winslow: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    winslow.engine.full_round_seconds = 3600  # only the first round is a full one
    winslow.apply_pipeline(HOG)
    winslow.apply_pipeline(WAITER)
    winslow.create("hog", "hog", start=True)
    winslow.wait_until_running("hog")
    add_waiters(winslow, 0, 5)
    few = round_costs(winslow, monkeypatch)
    add_waiters(winslow, 5, 195)
    many = round_costs(winslow, monkeypatch)

    waiting = winslow.show("waiter-199")["runs"][0]
    assert waiting["state"] == "pending"
    assert waiting["reason"] and "waiting for 1 CPUs" in waiting["reason"]
    for small, big in zip(few, many, strict=True):
        assert big.queries <= small.queries + 2, (few, many)
        # At most the hog's job, the one submitted run, once a poll.
        assert big.status_reads <= 1 and small.status_reads <= 1, (few, many)
    # A full round still looks at every project, so nothing is missed for long.
    with counted(winslow.engine, monkeypatch) as full:
        winslow.engine.reconcile_once(full=True)
    assert full.queries > many[0].queries + 150


def test_waiting_runs_start_when_room_frees_without_a_full_round(
    winslow: Harness,
) -> None:
    winslow.engine.full_round_seconds = 3600
    winslow.apply_pipeline(HOG)
    winslow.apply_pipeline(WAITER)
    winslow.create("hog", "hog", start=True, variables={"SECONDS_HELD": "2"})
    winslow.wait_until_running("hog")
    for i in range(4):
        winslow.create(f"waiter-{i}", "waiter", start=True)
    settle(winslow.engine)
    assert all(winslow.show(f"waiter-{i}")["runs"][0]["state"] == "pending" for i in range(4))

    winslow.engine.run_until_idle(timeout=120)

    assert winslow.show("hog")["state"] == "succeeded"
    runs = [winslow.show(f"waiter-{i}")["runs"][0] for i in range(4)]
    assert [run["state"] for run in runs] == ["succeeded"] * 4
