"""The ports tests choose for their servers never come from the kernel's ephemeral range,
where a connection of another test could take them before the server binds."""

from __future__ import annotations

import socket

import pytest

from tests.fixtures import ports
from tests.fixtures.ports import pick_ports, worker_slice


def test_ports_are_below_the_ephemeral_range_distinct_and_free() -> None:
    chosen = pick_ports(5) + pick_ports(5)
    assert len(set(chosen)) == 10  # never handed out twice
    assert all(port in worker_slice() for port in chosen)
    assert max(chosen) < ports._ephemeral_start()
    for port in chosen:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # free


def test_workers_draw_from_slices_that_do_not_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    first = worker_slice()
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    second = worker_slice()
    assert first.stop <= second.start and len(first) > 1000


def test_a_port_in_use_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    (port,) = pick_ports(1)
    monkeypatch.setattr(ports, "worker_slice", lambda: range(port, port + 1))
    monkeypatch.setattr(ports, "_given", set())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(RuntimeError, match="no 1 free ports left"):
            pick_ports(1)
    assert pick_ports(1) == [port]  # free again
