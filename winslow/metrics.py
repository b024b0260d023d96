"""What an operator's Prometheus scrapes: Winslow's metrics, their registry and their helpers.

Every metric lives in one ``CollectorRegistry`` of its own (``REGISTRY``), never in
prometheus-client's global one, so what ``GET /metrics`` shows is exactly what Winslow
defines here (plus the process's own CPU, memory and file descriptors). The modules that
observe something call the small helpers below with plain values (seconds, a status code,
a stage name) and never touch a metric object themselves, so the names, labels and
buckets are decided in this one place and this module imports nothing of Winslow:
storage, backends and the engine all sit above it.

Counts that the store already knows (runs and projects by state) are not kept here but
read from the store when Prometheus scrapes (``set_counts``), so a restart never resets
them and two servers on one database agree.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""Media type of ``exposition()``: Prometheus's text format 0.0.4, which every Prometheus
reads (prometheus-client's own latest names a version older servers do not know)."""

S3_PROBE_CACHE_SECONDS = 10.0
"""How long one answer of the object storage probe stands for ``winslow_s3_up``, seconds;
a scrape every few seconds then costs one ListBuckets per interval, not one per scrape."""

RUN_SECONDS_BUCKETS = (
    10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0,
    604800.0,
)  # fmt: skip
"""Upper bounds of the stage run time histogram, seconds: ten seconds to a week."""

QUEUE_SECONDS_BUCKETS = (
    1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
)  # fmt: skip
"""Upper bounds of the queue time histogram, seconds: a second to a day."""

REQUEST_SECONDS_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip
"""Upper bounds of the S3 and Nomad request latency histograms, seconds."""

RECONCILE_SECONDS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Upper bounds of the reconcile round and lag histograms, seconds."""

REGISTRY = CollectorRegistry(auto_describe=True)
"""Every Winslow metric, and nothing else; ``GET /metrics`` renders this."""

ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

RUNS = Gauge(
    "winslow_runs",
    "Stage runs in the store, by state (every project, every run ever made).",
    ["state"],
    registry=REGISTRY,
)
PROJECTS = Gauge(
    "winslow_projects",
    "Projects in the store, by state.",
    ["state"],
    registry=REGISTRY,
)
RUN_SECONDS = Histogram(
    "winslow_run_duration_seconds",
    "Time from a stage run's start to its end, by stage and how it ended.",
    ["stage", "state"],
    buckets=RUN_SECONDS_BUCKETS,
    registry=REGISTRY,
)
QUEUE_SECONDS = Histogram(
    "winslow_run_queue_seconds",
    "Time from a stage run's creation to its start (waiting for a node, a GPU, or the "
    "backend), by stage.",
    ["stage"],
    buckets=QUEUE_SECONDS_BUCKETS,
    registry=REGISTRY,
)
RECONCILE_SECONDS = Histogram(
    "winslow_reconcile_duration_seconds",
    "Time one reconcile round of the engine takes.",
    buckets=RECONCILE_SECONDS_BUCKETS,
    registry=REGISTRY,
)
RECONCILE_LAG = Histogram(
    "winslow_reconcile_lag_seconds",
    "Time from a change (a backend event or a person's command) to the end of the "
    "reconcile round that handled it.",
    buckets=RECONCILE_SECONDS_BUCKETS,
    registry=REGISTRY,
)
RECONCILE_ROUNDS = Counter(
    "winslow_reconcile_rounds",
    "Reconcile rounds, by outcome: ok, or error (the round raised; the next one retries).",
    ["outcome"],
    registry=REGISTRY,
)
RECONCILE_LAST = Gauge(
    "winslow_reconcile_last_success_timestamp_seconds",
    "Unix time at which the last reconcile round ended without an error.",
    registry=REGISTRY,
)
S3_SECONDS = Histogram(
    "winslow_s3_request_duration_seconds",
    "Time an S3 request takes, botocore's retries included, by operation.",
    ["operation"],
    buckets=REQUEST_SECONDS_BUCKETS,
    registry=REGISTRY,
)
S3_ERRORS = Counter(
    "winslow_s3_request_errors",
    "S3 requests that failed because of object storage (no answer, 5xx, 429, 401, 403), "
    "by operation and S3 error code.",
    ["operation", "code"],
    registry=REGISTRY,
)
S3_UP = Gauge(
    "winslow_s3_up",
    "1 when object storage (SeaweedFS or the configured S3) answers, 0 when it does not.",
    registry=REGISTRY,
)
NOMAD_SECONDS = Histogram(
    "winslow_nomad_request_duration_seconds",
    "Time a request to Nomad takes until its headers arrive, by method and endpoint "
    "family (blocking queries left out: they wait on purpose).",
    ["method", "endpoint"],
    buckets=REQUEST_SECONDS_BUCKETS,
    registry=REGISTRY,
)
NOMAD_ERRORS = Counter(
    "winslow_nomad_request_errors",
    "Requests to Nomad that failed because of Nomad (no answer, timeout, 5xx, 429, 401, "
    "403), by method, endpoint family and reason.",
    ["method", "endpoint", "reason"],
    registry=REGISTRY,
)
UPLOAD_BYTES = Counter(
    "winslow_upload_bytes",
    "Bytes of completed uploads (resource pool and workspaces) through the API.",
    registry=REGISTRY,
)
UPLOADS = Counter(
    "winslow_uploads",
    "Completed uploads through the API.",
    registry=REGISTRY,
)


DB_QUERIES = Counter(
    "winslow_db_queries",
    "SQL statements this server sent to its database.",
    registry=REGISTRY,
)


def count_query() -> None:
    """The store sent one SQL statement."""
    DB_QUERIES.inc()


def request_failed(status: int | None) -> bool:
    """Whether a request that got HTTP ``status`` (``None``: no answer) failed because of the
    server asked, not because of what was asked: a missing key or a refused condition is an
    answer, a 5xx, throttling or a refused credential is not."""
    return status is None or status >= 500 or status in (401, 403, 429)


# -- runs -----------------------------------------------------------------------------------


def observe_run_start(stage: str, queued_seconds: float) -> None:
    """A run of ``stage`` started (or ended unstarted) after ``queued_seconds`` in the queue."""
    QUEUE_SECONDS.labels(stage=stage).observe(max(queued_seconds, 0.0))


def observe_run_end(stage: str, state: str, run_seconds: float) -> None:
    """A run of ``stage`` ended in ``state`` after running ``run_seconds``."""
    RUN_SECONDS.labels(stage=stage, state=state).observe(max(run_seconds, 0.0))


def set_counts(runs: Mapping[str, int], projects: Mapping[str, int]) -> None:
    """Set the run and project counts by state, as the store has them now; every state the
    caller names is set, zero included, so a state that emptied shows 0, not its old count."""
    for state, count in runs.items():
        RUNS.labels(state=state).set(count)
    for state, count in projects.items():
        PROJECTS.labels(state=state).set(count)


# -- the engine -----------------------------------------------------------------------------


class _Wakes:
    """The earliest change not yet handled by a reconcile round, as a monotonic time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first: float | None = None

    def note(self) -> None:
        with self._lock:
            if self._first is None:
                self._first = time.monotonic()

    def take(self) -> float | None:
        with self._lock:
            first, self._first = self._first, None
            return first


_wakes = _Wakes()


def note_wake() -> None:
    """Something changed that the engine must handle: the reconcile lag starts counting."""
    _wakes.note()


@contextmanager
def reconcile_round() -> Iterator[None]:
    """Time one reconcile round; its end also ends the lag of every change noted before it
    began. A round that raises counts as an error and the exception goes on."""
    woke = _wakes.take()
    started = time.monotonic()
    try:
        yield
    except BaseException:
        RECONCILE_ROUNDS.labels(outcome="error").inc()
        raise
    ended = time.monotonic()
    RECONCILE_SECONDS.observe(ended - started)
    if woke is not None:
        RECONCILE_LAG.observe(ended - woke)
    RECONCILE_ROUNDS.labels(outcome="ok").inc()
    RECONCILE_LAST.set(time.time())


# -- remotes --------------------------------------------------------------------------------


def observe_s3(operation: str, seconds: float, status: int | None, code: str = "") -> None:
    """One S3 request, ``operation`` as botocore names it (``PutObject``), took ``seconds``
    and got HTTP ``status`` (``None``: no answer) with S3 error ``code``."""
    S3_SECONDS.labels(operation=operation).observe(seconds)
    if request_failed(status):
        reason = code or (str(status) if status is not None else "no_answer")
        S3_ERRORS.labels(operation=operation, code=reason).inc()


def nomad_endpoint(path: str) -> str:
    """The endpoint family of a Nomad API path: its first segment after ``/v1/``
    (``/v1/job/x/allocations`` → ``job``), so job IDs never become label values."""
    parts = [part for part in path.split("/") if part]
    if len(parts) >= 2 and parts[0] == "v1":
        return parts[1]
    return parts[0] if parts else "/"


def observe_nomad(
    method: str, path: str, seconds: float | None, status: int | None, reason: str = ""
) -> None:
    """One request to Nomad: ``seconds`` until its answer (``None`` for a blocking query,
    kept out of the latency), HTTP ``status`` (``None``: no answer, ``reason`` says why)."""
    endpoint = nomad_endpoint(path)
    if seconds is not None:
        NOMAD_SECONDS.labels(method=method, endpoint=endpoint).observe(seconds)
    if request_failed(status):
        why = reason or (str(status) if status is not None else "no_answer")
        NOMAD_ERRORS.labels(method=method, endpoint=endpoint, reason=why).inc()


def observe_upload(size: int) -> None:
    """An upload of ``size`` bytes completed."""
    UPLOADS.inc()
    UPLOAD_BYTES.inc(size)


# -- object storage up ------------------------------------------------------------------------


class CachedProbe:
    """A yes/no probe asked at most once per ``seconds``; an exception counts as no."""

    def __init__(self, probe: Callable[[], bool], seconds: float = S3_PROBE_CACHE_SECONDS) -> None:
        self._probe = probe
        self._seconds = seconds
        self._lock = threading.Lock()
        self._answer = False
        self._asked: float | None = None

    def __call__(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if self._asked is None or now - self._asked >= self._seconds:
                try:
                    self._answer = bool(self._probe())
                except Exception:  # a probe says yes or no; a crash in it is a no
                    self._answer = False
                self._asked = now
            return self._answer


_s3_probe: Callable[[], bool] | None = None


def set_s3_probe(probe: Callable[[], bool] | None) -> None:
    """Say how ``winslow_s3_up`` learns whether object storage answers: the server sets the
    supervisor's check at start (cached for ``S3_PROBE_CACHE_SECONDS``); ``None`` forgets it."""
    global _s3_probe
    _s3_probe = CachedProbe(probe) if probe is not None else None


def s3_probe() -> Callable[[], bool] | None:
    """The probe ``set_s3_probe`` installed, if any."""
    return _s3_probe


# -- exposition -------------------------------------------------------------------------------


def exposition(s3_up: Callable[[], bool] | None = None) -> bytes:
    """Every metric in Prometheus's text format; ``s3_up`` is asked for ``winslow_s3_up``
    when ``set_s3_probe`` installed none."""
    probe = _s3_probe or s3_up
    if probe is not None:
        S3_UP.set(1 if probe() else 0)
    return generate_latest(REGISTRY)
