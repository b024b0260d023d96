"""Changes of projects, pushed to the live streams (Server-Sent Events) that watch them.

The store calls ``Hub.publish`` with the ids of the projects a transaction changed, once
it committed, from whichever thread wrote (the engine's, a request's). The hub hands them
to the event loop, reads each changed project once (its state, runs and new history
lines) and offers what it read to every subscription of that project and of all
projects. A subscription buffers at most ``defaults.SSE_BUFFER`` messages; one that
falls further behind (its client does not read) drops them and is told to resync, that
is, to read the store itself as a reconnect would. So no client can block a writer or
make the server's memory grow.

A safety net looks every ``defaults.SSE_SAFETY_SECONDS`` for changes nobody published
(another server on the same database, a write path without the hook): two cheap queries
while nothing changes, whatever the number of streams.

Log streams share one ``LogWatcher`` per run: it asks the backend how long the log is
(a ``stat`` for the local backend) a few times a second and wakes its streams when it
grew; the run itself is read again only when the hub says its project changed.

With ``push=False`` (``WINSLOW_SSE_PUSH=false``) nothing is pushed and every stream reads
the store ``defaults.SSE_POLL_SECONDS`` apart, as Winslow did before: the baseline of
``bench/sse.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Collection, Hashable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from anyio import to_thread

from winslow import defaults
from winslow.api.models import EventPublic, ProjectPublic
from winslow.core.models import HistoryEvent, Project, Run
from winslow.errors import NotFoundError

if TYPE_CHECKING:
    from winslow.backends.base import Backend
    from winslow.store.repo import Store

log = logging.getLogger(__name__)

ALL = "*"
"""The topic of every project (the overview's stream)."""


class Message(NamedTuple):
    """One SSE event for a stream: its name, its JSON data, its ``id`` (history lines),
    and for a ``project`` event what tells whether the stream sent it already."""

    event: str
    data: dict[str, Any]
    id: int | None = None
    key: Hashable = None
    text: str | None = None
    """``data`` as JSON, made once for every stream that sends it."""


def _message(event: str, data: dict[str, Any], event_id: int | None, key: Hashable) -> Message:
    return Message(event, data, event_id, key, json.dumps(data, default=str))


class Subscription:
    """What one stream hears of one topic (a project id, or ``ALL``).

    Only the event loop's thread touches it. ``cursor`` is the newest history id the stream
    has (or has been offered); the hub reads history after the smallest cursor of a topic.
    ``None`` wants no history, only the project's state.
    """

    def __init__(
        self, topic: str, cursor: int | None = 0, limit: int = defaults.SSE_BUFFER
    ) -> None:
        self.topic = topic
        self.cursor = cursor
        self.limit = limit
        self.resync = True
        """Read the store (not the buffer): at the start, and after an overflow."""
        self._items: deque[Message] = deque()
        self._wake = asyncio.Event()

    def offer(self, message: Message) -> None:
        if message.id is not None and self.cursor is not None:
            self.cursor = max(self.cursor, message.id)
        if self.resync:
            pass  # The resync reads the store anyway.
        elif len(self._items) >= self.limit:
            self._items.clear()
            self.resync = True
        else:
            self._items.append(message)
        self._wake.set()

    def poke(self) -> None:
        """Make the stream read the store itself."""
        self._items.clear()
        self.resync = True
        self._wake.set()

    async def wait(self, timeout: float | None) -> tuple[bool, list[Message]]:
        """Wait for news, at most ``timeout`` seconds; return whether to resync and the
        messages buffered (then taken)."""
        if not self._items and not self.resync:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()
        resync, self.resync = self.resync, False
        items = list(self._items)
        self._items.clear()
        return resync, items

    @property
    def held(self) -> int:
        """Messages buffered for the stream now."""
        return len(self._items)


def project_message(project: Project, runs: list[Run] | None = None) -> Message:
    """The ``project`` event of ``project``: with its runs for the project page, without
    for the overview. Its key is what makes it news: state, update and run states."""
    shown = ProjectPublic.of(project, runs)
    return _message("project", shown.model_dump(mode="json"), None, project_key(project, runs))


def project_key(project: Project, runs: list[Run] | None = None) -> Hashable:
    if runs is None:
        return (project.state, project.updated_at)
    return (project.state, project.updated_at, tuple((run.id, run.state) for run in runs))


def history_message(event: HistoryEvent) -> Message:
    return _message("history", EventPublic.of(event).model_dump(mode="json"), event.id, None)


@dataclass
class _Read:
    """What the hub read of one project after a change: ``None`` project for deleted."""

    project: Project | None
    runs: list[Run] = field(default_factory=list)
    history: list[HistoryEvent] = field(default_factory=list)


class Hub:
    """Fans committed changes out to subscriptions; one per application."""

    def __init__(self, store: Store, *, push: bool = True) -> None:
        self.store = store
        self.push = push
        self._topics: dict[str, set[Subscription]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dirty: set[str] = set()
        self._kick: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._versions: dict[str, int] = {}
        self._latest_event = -1
        self._checked = False
        self._watchers: dict[tuple[str, int], LogWatcher] = {}
        self.deliveries = 0
        """Project reads the hub made for changes (for tests and the benchmark)."""
        if push:
            store.on_commit(self.publish)

    # -- from any thread --------------------------------------------------------------

    def publish(self, project_ids: Collection[str]) -> None:
        """Say that ``project_ids`` changed (committed); cheap, never blocks, any thread."""
        loop = self._loop
        if loop is None or not self._topics:
            return
        with contextlib.suppress(RuntimeError):  # The loop closed: nobody listens any more.
            loop.call_soon_threadsafe(self._mark, set(project_ids))

    # -- on the event loop ------------------------------------------------------------

    def _mark(self, project_ids: set[str]) -> None:
        self._dirty |= project_ids
        if self._kick is not None:
            self._kick.set()

    @property
    def subscribers(self) -> int:
        return sum(len(subs) for subs in self._topics.values())

    @contextlib.contextmanager
    def subscribe(self, topic: str, cursor: int | None = 0) -> Iterator[Subscription]:
        """A subscription to ``topic`` while the block runs; it starts with a resync."""
        self._start()
        subscription = Subscription(topic, cursor)
        self._topics.setdefault(topic, set()).add(subscription)
        try:
            yield subscription
        finally:
            subs = self._topics.get(topic)
            if subs is not None:
                subs.discard(subscription)
                if not subs:
                    del self._topics[topic]

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._task is not None and not self._task.done():
            return
        self._loop = loop
        self._kick = asyncio.Event()
        if self.push:
            self._task = loop.create_task(self._run(), name="winslow-sse-hub")

    async def _run(self) -> None:
        assert self._kick is not None
        next_check = time.monotonic()  # The first check notes where the store stands.
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), max(0.0, next_check - time.monotonic()))
            self._kick.clear()
            try:
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + defaults.SSE_SAFETY_SECONDS
                    if self._topics:
                        await self._safety_check()
                dirty, self._dirty = self._dirty, set()
                for project_id in sorted(dirty):
                    await self._deliver(project_id)
            except Exception:  # One failed read must not end the hub for every stream.
                log.exception("pushing project changes to live streams failed")
                for subs in list(self._topics.values()):
                    for subscription in subs:
                        subscription.poke()

    async def _safety_check(self) -> None:
        """Mark what changed without being published: a project whose version moved, or
        (once history grew unseen) every project somebody watches."""
        projects, latest = await to_thread.run_sync(self._stamp)
        versions = {p.id: p.version for p in projects}
        if self._checked:
            for project_id in self._versions.keys() | versions.keys():
                if self._versions.get(project_id) != versions.get(project_id):
                    self._dirty.add(project_id)
            if latest != self._latest_event:
                self._dirty |= self._topics.keys() - {ALL}
        self._versions, self._latest_event, self._checked = versions, latest, True

    def _stamp(self) -> tuple[list[Project], int]:
        return self.store.list_projects(), self.store.latest_event_id()

    async def _deliver(self, project_id: str) -> None:
        watchers = self._topics.get(project_id, set())
        everyone = self._topics.get(ALL, set())
        if not watchers and not everyone:
            return
        after = min((s.cursor for s in watchers if s.cursor is not None), default=None)
        read = await to_thread.run_sync(self._read, project_id, bool(watchers), after)
        self.deliveries += 1
        # Subscriptions may have come and gone while the store was read.
        watchers = set(self._topics.get(project_id, ()))
        everyone = set(self._topics.get(ALL, ()))
        if read.project is None:
            self._versions.pop(project_id, None)
            gone = Message("deleted", {"id": project_id})
            for subscription in watchers | everyone:
                subscription.offer(gone)
            return
        self._versions[project_id] = read.project.version
        if watchers:
            lines = [history_message(event) for event in read.history]
            state = project_message(read.project, read.runs)
            for subscription in watchers:
                cursor = subscription.cursor
                for line in lines:
                    if cursor is not None and line.id is not None and line.id > cursor:
                        subscription.offer(line)
                subscription.offer(state)
        if everyone:
            listed = project_message(read.project)
            for subscription in everyone:
                subscription.offer(listed)

    def _read(self, project_id: str, details: bool, after: int | None) -> _Read:
        try:
            project = self.store.get_project(project_id)
        except NotFoundError:
            return _Read(None)
        if not details:
            return _Read(project)
        history = self.store.history(project_id, after) if after is not None else []
        return _Read(project, self.store.runs(project_id), history)

    def wait_seconds(self) -> float | None:
        """How long a stream waits for news before it reads the store itself."""
        return None if self.push else defaults.SSE_POLL_SECONDS

    def log_watcher(self, project_id: str, run: Run, backend: Backend) -> LogWatcher:
        """The one watcher of ``run``'s log, shared by every stream of it."""
        self._start()
        key = (project_id, run.id)
        watcher = self._watchers.get(key)
        if watcher is None or watcher.done:
            watcher = LogWatcher(self, project_id, run, backend)
            self._watchers[key] = watcher
        return watcher

    def _forget(self, watcher: LogWatcher) -> None:
        key = (watcher.project_id, watcher.run.id)
        if self._watchers.get(key) is watcher:
            del self._watchers[key]


class LogWatcher:
    """Wakes the streams of one run's log when it grew or the run changed.

    It runs while some stream listens. The log's size comes from the backend
    (``log_size``); a backend that cannot tell cheaply (Nomad) has its streams read a few
    times a second, as before. The run is read from the store when its project changed,
    never on the clock (but for the safety net).
    """

    def __init__(self, hub: Hub, project_id: str, run: Run, backend: Backend) -> None:
        self.hub = hub
        self.project_id = project_id
        self.run = run
        self.backend = backend
        self.done = False
        self.gone = False
        """The run (its project) was deleted."""
        self._listeners: set[asyncio.Event] = set()
        self._task: asyncio.Task[None] | None = None
        self.checks = 0
        """Times the log's size was asked for (for tests)."""

    @contextlib.contextmanager
    def listen(self) -> Iterator[asyncio.Event]:
        """An event set whenever the stream should read the log again (set at first)."""
        wake = asyncio.Event()
        wake.set()
        self._listeners.add(wake)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())
        try:
            yield wake
        finally:
            self._listeners.discard(wake)
            if not self._listeners and self._task is not None:
                self._task.cancel()
                self.done = True
                self.hub._forget(self)

    def _wake_all(self) -> None:
        for wake in self._listeners:
            wake.set()

    async def _watch(self) -> None:
        size: int | None = -1
        reread = False
        with self.hub.subscribe(self.project_id, cursor=None) as news:
            news.resync = False  # The run was just read by whoever made this watcher.
            while self._listeners:
                resync, items = await news.wait(defaults.SSE_POLL_SECONDS)
                if resync or items or reread or not self.hub.push:
                    reread = False
                    try:
                        self.run = await to_thread.run_sync(
                            self.hub.store.get_run, self.project_id, self.run.id
                        )
                    except NotFoundError:
                        self.gone = True
                    except Exception:  # The store is busy or away: the next round reads.
                        log.warning("reading run %s for its log streams failed", self.run.id)
                        reread = True
                    self._wake_all()
                if not self.run.active or not self.run.job_id:
                    continue
                self.checks += 1
                try:
                    now = await to_thread.run_sync(self.backend.log_size, self.run.job_id)
                except Exception:  # The node is out of reach: the streams read nothing new.
                    continue
                if now is None or now != size:
                    size = now
                    self._wake_all()


def message_fields(message: Message) -> dict[str, Any]:
    """The fields of ``message`` as ``EventSourceResponse`` takes them."""
    fields: dict[str, Any] = {"event": message.event, "data": message.data}
    if message.id is not None:
        fields["id"] = message.id
    return fields
