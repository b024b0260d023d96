"""Keeps object storage answering while the server runs, and says when it does not.

A thread the server owns (``start_services`` starts it, ``stop_services`` stops it) looks
every few seconds at the SeaweedFS Winslow owns and at S3 itself. A weed that exited is
reaped at once, so it stays no zombie, and started again on its S3 port after a pause that
doubles with each failed start, up to a cap; S3 that does not answer is reported. Health
(``/api/v1/health``, the console's banner, a metrics gauge) reads ``problems()`` and
``s3_up()``, which never wait on S3: they return what the last look found.

With an S3 server Winslow does not own (``WINSLOW_S3_ENDPOINT``, or a weed it could not
adopt) there is nothing to restart, and the supervisor only reports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from winslow.storage.s3 import make_client

if TYPE_CHECKING:
    from winslow.storage.s3 import S3Config
    from winslow.storage.seaweed import SeaweedServer

log = logging.getLogger(__name__)

SUPERVISE_INTERVAL_SECONDS = 3.0
"""Pause between two looks at weed and S3, seconds."""

PROBE_TIMEOUT_SECONDS = 2.0
"""How long one S3 probe (ListBuckets) may take before S3 counts as down, seconds."""

RESTART_BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
"""Pause before restarting a weed that exited, by failed restarts in a row, seconds; the
last one repeats."""

STOP_JOIN_SECONDS = 60.0
"""How long ``stop`` waits for a restart in progress (weed's start-up timeout is 30 s)."""


@dataclass(frozen=True)
class Problem:
    """A part of Winslow that does not work now, and why, in words a person reads."""

    component: Literal["s3"]
    reason: str


def restart_delay(failures: int) -> float:
    """Seconds to wait before the next restart after ``failures`` failed ones in a row."""
    return RESTART_BACKOFF_SECONDS[min(failures, len(RESTART_BACKOFF_SECONDS) - 1)]


def describe_exit(pid: int | None, code: int | None) -> str:
    """How a weed ended, e.g. "SeaweedFS (pid 41) was killed by signal 9"."""
    who = f"SeaweedFS (pid {pid})"
    if code is None:
        return f"{who} is gone"
    if code < 0:
        return f"{who} was killed by signal {-code}"
    return f"{who} exited with code {code}"


class S3Probe:
    """One ListBuckets with a short timeout and no retries; its client is built once."""

    def __init__(self, config: S3Config, timeout: float = PROBE_TIMEOUT_SECONDS) -> None:
        self.endpoint = config.endpoint_url
        self._timeout = timeout
        self.use_config(config)

    def use_config(self, config: S3Config) -> None:
        """Probe with ``config`` from now on (rotated keys); the client is replaced whole."""
        self._client = make_client(
            config,
            overrides=Config(
                connect_timeout=self._timeout,
                read_timeout=self._timeout,
                retries={"mode": "standard", "total_max_attempts": 1},
            ),
        )

    def __call__(self) -> str | None:
        """None if S3 answers and accepts the keys, else why not."""
        try:
            self._client.list_buckets()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            return f"S3 at {self.endpoint} refuses Winslow's request ({code})"
        except BotoCoreError as exc:
            return f"S3 at {self.endpoint} does not answer ({type(exc).__name__})"
        return None


class StorageSupervisor:
    """Watches S3 and restarts the SeaweedFS Winslow owns; its state feeds health.

    Usage::

        supervisor = StorageSupervisor(S3Probe(config), server)
        supervisor.start()
        ...
        supervisor.s3_up(), supervisor.problems()
        supervisor.stop()

    ``check_once`` is one look (tests call it to run the loop step by step); ``server`` is
    None when Winslow does not own the S3 server.
    """

    def __init__(
        self,
        probe: Callable[[], str | None],
        server: SeaweedServer | None = None,
        *,
        interval: float = SUPERVISE_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._server = server
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._problem: str | None = None
        self._failures = 0
        self._next_restart: float | None = None
        self.restarts = 0
        """Restarts that succeeded since the server started."""
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def s3_up(self) -> bool:
        """True if the last look found S3 answering (and weed, if owned, running)."""
        with self._lock:
            return self._problem is None

    def problems(self) -> list[Problem]:
        """What the last look found wrong: empty, or one ``s3`` problem with its reason."""
        with self._lock:
            return [] if self._problem is None else [Problem("s3", self._problem)]

    def start(self) -> None:
        """Look once now, then every ``interval`` seconds in a daemon thread."""
        self.check_once()
        self._thread = threading.Thread(target=self._loop, name="storage-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop looking; waits for a restart in progress, so none starts a weed after it."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(STOP_JOIN_SECONDS)
            self._thread = None

    def check_once(self) -> None:
        """Look at weed and S3 once; restart weed if it is gone and its pause is over."""
        server = self._server
        if server is not None and not server.is_running():
            self._recover(server)
            return
        problem = self._probe()
        with self._lock:
            before, self._problem = self._problem, problem
        if problem is not None and before is None:
            log.error("s3: %s; stages that read or write storage fail until it is back", problem)
        elif problem is None and before is not None:
            log.info("s3: answers again")

    def _recover(self, server: SeaweedServer) -> None:
        """Restart a weed that is gone, once its pause is over."""
        now = self._clock()
        if self._next_restart is None:
            reason = describe_exit(server.pid, server.exit_code)
            log.error("s3: %s; restarting it", reason)
            self._next_restart = now + restart_delay(0)
            self._set(f"{reason}; restarting it")
        if now < self._next_restart:
            return
        attempt = self._failures + 1
        try:
            server.restart()
        except Exception as exc:  # whatever stops weed from starting is its problem
            self._failures += 1
            delay = restart_delay(self._failures)
            self._next_restart = self._clock() + delay
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            reason = (
                f"SeaweedFS did not start again (attempt #{attempt}: {first_line}); "
                f"next try in {delay:.0f} s, its log is {server.log_path}"
            )
            log.error("s3: %s", reason)
            self._set(reason)
            return
        self._failures = 0
        self._next_restart = None
        self.restarts += 1
        log.warning("s3: SeaweedFS restarted (pid %s, attempt #%d)", server.pid, attempt)
        self._set(None)

    def _set(self, problem: str | None) -> None:
        with self._lock:
            self._problem = problem

    def _wait_seconds(self) -> float:
        """Until the next look: the interval, or less when a restart is due sooner."""
        if self._next_restart is None:
            return self._interval
        return max(0.0, min(self._interval, self._next_restart - self._clock()))

    def _loop(self) -> None:
        while not self._stopping.wait(self._wait_seconds()):
            try:
                self.check_once()
            except Exception:
                # The supervisor must outlive whatever one look runs into.
                log.exception("s3: the storage supervisor's look failed; it looks again")
