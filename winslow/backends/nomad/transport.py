"""``RetryTransport``: the one place Winslow repeats a request to Nomad, and when.

httpx's own transport retries failed connects only. This wrapper repeats idempotent calls
answered 429 or 5xx, or not answered at all, on a schedule that is data, honouring
``Retry-After``; a job register (a POST) is never sent twice (hashicorp/nomad api/retry.go
``isCallRetriable`` draws the same line).
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from winslow.backends.nomad.tls import tls_failure

log = logging.getLogger(__name__)

RETRY_SCHEDULE_SECONDS: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0)
"""Pauses between attempts of an idempotent call answered 429/5xx or not at all, seconds;
one more attempt than pauses."""

RETRY_AFTER_MAX_SECONDS = 30.0
"""Longest ``Retry-After`` we honour; a larger one is cut to this, seconds."""

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Answers worth repeating an idempotent call for."""

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods repeated after a failure; Nomad's job register is a POST and never repeats."""

RETRY_EXTENSION = "winslow.retry"
"""Request extension that switches the retry loop off (False) for one call."""


class RetryTransport(httpx.BaseTransport):
    """Repeat idempotent requests answered 429 or 5xx, or not answered, on a schedule.

    ``schedule`` holds the pauses between attempts in seconds; a ``Retry-After`` header
    lengthens a pause (up to ``RETRY_AFTER_MAX_SECONDS``). Each failed attempt that will
    be repeated is logged as ``attempt #2/5 failed; will retry in 1.0 s: GET /v1/... -> 503``.
    The last answer, good or bad, is returned; the last transport error is raised.
    A request whose ``extensions["winslow.retry"]`` is False is sent once.
    """

    def __init__(
        self,
        transport: httpx.BaseTransport,
        schedule: tuple[float, ...] = RETRY_SCHEDULE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._transport = transport
        self.schedule = schedule
        self._sleep = sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        retriable = request.extensions.get(RETRY_EXTENSION, request.method in IDEMPOTENT_METHODS)
        attempts = len(self.schedule) + 1 if retriable else 1
        what = f"{request.method} {request.url.path}"
        for attempt in range(1, attempts + 1):
            try:
                response = self._transport.handle_request(request)
            except httpx.TransportError as exc:
                if attempt == attempts or tls_failure(exc) is not None:
                    raise  # the last attempt, or a TLS refusal, which no retry mends
                delay = self.schedule[attempt - 1]
                log.warning(
                    "attempt #%d/%d failed; will retry in %.1f s: %s -> %s",
                    attempt,
                    attempts,
                    delay,
                    what,
                    type(exc).__name__,
                )
                self._sleep(delay)
                continue
            if response.status_code not in RETRY_STATUSES or attempt == attempts:
                return response
            delay = max(self.schedule[attempt - 1], _retry_after(response) or 0.0)
            response.close()
            log.warning(
                "attempt #%d/%d failed; will retry in %.1f s: %s -> %d",
                attempt,
                attempts,
                delay,
                what,
                response.status_code,
            )
            self._sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def close(self) -> None:
        self._transport.close()


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (delta-seconds or an HTTP date), capped."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_SECONDS)
