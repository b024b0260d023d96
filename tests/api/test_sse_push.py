"""Live streams hear of changes when they are committed, not by asking the store: a
real Winslow (SQLite, SeaweedFS, local backend) served by uvicorn on 127.0.0.1, read by
httpx clients in threads."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.fixtures.served import served_in_thread
from tests.fixtures.winslow import Harness
from winslow import defaults, metrics
from winslow.api.app import create_app
from winslow.api.hub import Hub
from winslow.store.repo import open_store

IDLE = """
name: idle
stages:
  - name: wait
    command: ["true"]
"""

CHATTY = """
name: chatty
stages:
  - name: talk
    command: ["sh", "-c", "echo first; sleep 2; for i in 1 2 3; do echo line $i; done; sleep 30"]
"""


@dataclass
class Served:
    url: str
    headers: dict[str, str]
    hub: Hub

    def patch_variables(self, project: str, **variables: str) -> None:
        response = httpx.patch(
            f"{self.url}/api/v1/projects/{project}/variables",
            json={"set": variables},
            headers=self.headers,
            timeout=30,
        )
        assert response.status_code == 200, response.text


@pytest.fixture
def served(winslow: Harness) -> Iterator[Served]:
    """The harness's Winslow behind a real uvicorn (SSE needs a real connection)."""
    app = create_app(winslow.context)
    with served_in_thread(app) as address:
        yield Served(address, {"Authorization": f"Bearer {winslow.token}"}, app.state.hub)


class Stream:
    """One SSE stream read in a thread: ``(event, id, data)`` land in ``events``."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.events: queue.Queue[tuple[str, int | None, Any]] = queue.Queue()
        self.client = httpx.Client(timeout=httpx.Timeout(30, read=120))
        self.thread = threading.Thread(target=self._read, args=(url, headers), daemon=True)
        self.thread.start()

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                assert response.status_code == 200
                kind, ident, data = None, None, []
                for line in response.iter_lines():
                    if line == "" and kind is not None:
                        self.events.put((kind, ident, json.loads("\n".join(data))))
                        kind, ident, data = None, None, []
                    elif line.startswith("event: "):
                        kind = line[len("event: ") :]
                    elif line.startswith("id: "):
                        ident = int(line[len("id: ") :])
                    elif line.startswith("data: "):
                        data.append(line[len("data: ") :])
        except Exception:  # The test closed the client under the reader.
            return

    def next(self, kind: str, timeout: float = 30) -> tuple[int | None, Any]:
        """The next event named ``kind`` (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {kind} event within {timeout} s"
            try:
                event, ident, data = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event == kind:
                return ident, data

    def drain(self, quiet: float = 1.0) -> list[tuple[str, int | None, Any]]:
        """Every event until none came for ``quiet`` seconds."""
        got = []
        while True:
            try:
                got.append(self.events.get(timeout=quiet))
            except queue.Empty:
                return got

    def close(self) -> None:
        self.client.close()


def queries() -> float:
    return metrics.REGISTRY.get_sample_value("winslow_db_queries_total") or 0.0


def test_history_reaches_open_streams_while_the_store_is_left_alone(
    winslow: Harness, served: Served
) -> None:
    winslow.apply_pipeline(IDLE)
    project = winslow.create("quiet", "idle")
    url = f"{served.url}/api/v1/projects/quiet/events"
    streams = [Stream(url, served.headers) for _ in range(5)]
    overview = Stream(f"{served.url}/api/v1/events", served.headers)
    try:
        for stream in streams:
            stream.next("history")
            stream.next("project")
        overview.next("project")
        time.sleep(0.5)  # The resyncs of the streams' start are done.
        before = queries()
        time.sleep(2)
        idle = queries() - before
        # Polling, six streams asked the store 4 times a second, 3 to 4 queries each
        # (about 150 in 2 s); pushed, only the hub's safety net may ask (2 every 5 s).
        assert idle <= 4, f"{idle} queries while nothing changed"
        served.patch_variables("quiet", SPEED="fast")
        for stream in streams:
            _, line = stream.next("history", timeout=10)
            assert line["kind"] == "variables"
            _, shown = stream.next("project", timeout=10)
            assert shown["variables"]["SPEED"] == "fast"
        _, listed = overview.next("project", timeout=10)
        assert listed["id"] == project["id"]
    finally:
        for stream in [*streams, overview]:
            stream.close()


def test_last_event_id_resumes_after_it_without_repeats(winslow: Harness, served: Served) -> None:
    winslow.apply_pipeline(IDLE)
    winslow.create("resumed", "idle")
    for number in range(4):
        served.patch_variables("resumed", N=str(number))
    url = f"{served.url}/api/v1/projects/resumed/events"
    first = Stream(url, served.headers)
    seen = [first.next("history") for _ in range(5)]
    first.close()
    ids = [ident for ident, _ in seen]
    assert ids == sorted(ids) and None not in ids
    again = Stream(url, {**served.headers, "Last-Event-ID": str(ids[1])})
    try:
        served.patch_variables("resumed", N="late")
        got = [ident for event, ident, _ in again.drain() if event == "history"]
        assert got[:3] == ids[2:]
        assert len(got) == 4 and len(set(got)) == 4 and got == sorted(got)
    finally:
        again.close()


def test_log_stream_resumes_at_the_byte_offset_of_its_last_event(
    winslow: Harness, served: Served
) -> None:
    winslow.apply_pipeline(CHATTY)
    winslow.create("talker", "chatty")
    winslow.command("talker", "start")
    run = winslow.wait_until_running("talker")
    url = f"{served.url}/api/v1/projects/talker/runs/{run['id']}/logs/stream"
    streams = [Stream(url, served.headers) for _ in range(3)]
    try:
        offset, first = streams[0].next("log")
        assert any("first" in line for line in first["lines"]) and offset == first["offset"]
        for stream in streams[1:]:
            stream.next("log")
        # One watcher serves every stream of the run.
        assert len(served.hub._watchers) == 1
        streams[0].close()
        resumed = Stream(url, {**served.headers, "Last-Event-ID": str(offset)})
        streams[0] = resumed
        lines: list[str] = []
        while len(lines) < 3:
            _, data = resumed.next("log", timeout=30)
            lines += [line.split(" | ", 1)[1] for line in data["lines"] if "stdout |" in line]
        assert lines == ["line 1", "line 2", "line 3"]
        before = queries()
        time.sleep(2)
        assert queries() - before <= 4, "log streams of a quiet run ask the store"
    finally:
        for stream in streams:
            stream.close()
        winslow.command("talker", "kill")


def test_a_change_reaches_many_streams(winslow: Harness, served: Served) -> None:
    winslow.apply_pipeline(IDLE)
    winslow.create("popular", "idle")
    streams = [Stream(f"{served.url}/api/v1/projects/popular/events", served.headers)]
    streams += [
        Stream(f"{served.url}/api/v1/projects/popular/events", served.headers) for _ in range(39)
    ]
    streams += [Stream(f"{served.url}/api/v1/events", served.headers) for _ in range(20)]
    try:
        for stream in streams:
            stream.next("project")
        served.patch_variables("popular", WHO="everyone")
        for stream in streams:
            _, shown = stream.next("project", timeout=20)
            assert shown["name"] == "popular"
            if "variables" in shown and shown.get("runs") is not None:
                assert shown["variables"]["WHO"] == "everyone"
        for stream in streams:
            stream.close()
        # The subscriptions of clients that left are gone with them.
        deadline = time.monotonic() + 30
        while served.hub.subscribers:
            assert time.monotonic() < deadline, f"{served.hub.subscribers} subscriptions left"
            time.sleep(0.1)
    finally:
        for stream in streams:
            stream.close()


def test_a_change_nobody_published_arrives_by_the_safety_net(
    winslow: Harness, served: Served
) -> None:
    winslow.apply_pipeline(IDLE)
    winslow.create("elsewhere", "idle")
    stream = Stream(f"{served.url}/api/v1/projects/elsewhere/events", served.headers)
    overview = Stream(f"{served.url}/api/v1/events", served.headers)
    other = open_store(winslow.context.store.url)  # Another server on the same database.
    try:
        stream.next("project")
        overview.next("project")
        with other.project_transaction("elsewhere") as tx:
            tx.add_event("other", "note", "written by another server")
        _, line = stream.next("history", timeout=4 * defaults.SSE_SAFETY_SECONDS)
        assert line["message"] == "written by another server"
        with other.project_transaction("elsewhere") as tx:
            tx.update_project(state_reason="moved by another server")
        _, listed = overview.next("project", timeout=4 * defaults.SSE_SAFETY_SECONDS)
        assert listed["state_reason"] == "moved by another server"
    finally:
        other.close()
        stream.close()
        overview.close()


def test_a_client_that_does_not_read_blocks_no_writer(tmp_path: Any) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'winslow.db'}")
    store.migrate()
    project = store.create_project(
        name="busy", pipeline_name="p", pipeline={}, labels=(), variables={}, actor="t"
    )
    writes = 3 * defaults.SSE_BUFFER

    async def scenario() -> tuple[float, int, bool, list[int]]:
        hub = Hub(store)
        start = store.latest_event_id()  # The project's "create" line: read before.
        with (
            hub.subscribe(project.id, start) as stuck,
            hub.subscribe(project.id, start) as reader,
        ):
            stuck.resync = reader.resync = False
            seen: list[int] = []

            async def read() -> None:
                while len(seen) < writes:
                    _, messages = await reader.wait(1)
                    seen.extend(m.id for m in messages if m.id is not None and m.id not in seen)

            def write() -> float:
                started = time.monotonic()
                for number in range(writes):
                    with store.project_transaction(project.id) as tx:
                        tx.add_event("t", "note", f"note {number}")
                return time.monotonic() - started

            reading = asyncio.create_task(read())
            took = await asyncio.to_thread(write)
            await asyncio.wait_for(reading, 60)
            return took, stuck.held, stuck.resync, seen

    try:
        # A thread of its own: a test before this one in the worker may have left an
        # event loop running on the main thread, where asyncio.run refuses to start.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            took, held, resync, seen = pool.submit(asyncio.run, scenario()).result()
    finally:
        store.close()
    # The writes did not wait for the stuck client (generous: SQLite commits dominate).
    assert took < 60
    assert held <= defaults.SSE_BUFFER and resync, "the stuck subscription kept growing"
    assert len(seen) == writes and seen == sorted(seen)
