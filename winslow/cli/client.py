"""The CLI's HTTP client of the Winslow API: one ``httpx.Client``, errors in our words.

A 4xx becomes a ``CommandError`` carrying the server's ``detail`` (already written for a
person); a server that does not answer says where the CLI looked and how to point it
elsewhere.

A server restarting must not fail a command whose work is done (every part of an upload
stored, only its ``complete`` left). So a call that may be repeated safely (GET, HEAD, PUT,
DELETE, and a POST its caller marks idempotent, like completing an upload) is tried again
while the server does not answer: the connection is refused or lost, or a proxy answers
502, 503 or 504. The pauses grow (``CLI_RETRY_BACKOFF``) with jitter, so many clients do
not come back at once, until ``WINSLOW_CLI_RETRY_SECONDS`` are spent; each is announced on
stderr. Any other POST is sent once: the server may have acted on it before the answer
was lost, and creating a project or starting one twice is not the same as once.
"""

from __future__ import annotations

import itertools
import os
import random
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from winslow import defaults
from winslow.client_settings import ClientSettings
from winslow.errors import ValidationError

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
"""Methods whose repeat does what one call does (RFC 9110, 9.2.2)."""

RETRY_STATUSES = frozenset({502, 503, 504})
"""Answers of a proxy or a server that is starting or stopping: nothing was done."""

JITTER = 0.25
"""Each pause is its backoff step times a random factor within 1 ± this."""


class CommandError(Exception):
    """The command failed; the message is for the person at the terminal."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def find_token(settings: ClientSettings) -> str | None:
    """``WINSLOW_TOKEN`` if set, else the admin token `winslow up` wrote into the data dir."""
    if settings.token:
        return settings.token
    token_file = settings.data_dir / "admin-token"
    if token_file.is_file():
        return token_file.read_text().strip() or None
    return None


def _tls_context(base_url: str) -> ssl.SSLContext | bool:
    """The trust for the API's connections: the system's CAs for an https server.

    This client follows no redirects and sends only paths below its base URL, so a plain
    http server never gets a handshake from it; such a server gets a context that verifies
    but trusts no one, because loading the CA bundle took a sixth of every command's start.
    """
    if urlsplit(base_url).scheme == "http":
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return True


class ApiClient:
    """Calls ``/api/v1`` of one Winslow server."""

    def __init__(
        self,
        settings: ClientSettings | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        note: Callable[[str], None] | None = None,
    ) -> None:
        """``transport`` replaces the network (tests); ``sleep`` and ``note`` are how a
        retry waits and how it is announced (default: a line on stderr)."""
        try:
            self.settings = settings or ClientSettings()
        except ValidationError as exc:
            raise CommandError(exc.message) from None
        token = find_token(self.settings)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base = self.settings.addr.rstrip("/") + "/api/v1"
        self.http = httpx.Client(
            base_url=self.base,
            headers=headers,
            timeout=httpx.Timeout(connect=5.0, read=60.0, write=60.0, pool=5.0),
            transport=transport,
            verify=_tls_context(self.base),
        )
        self.sleep = sleep
        self.note = note or _note_on_stderr

    def close(self) -> None:
        self.http.close()

    def request(
        self, method: str, path: str, *, idempotent: bool | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send one API call; raise ``CommandError`` for an error answer or no answer.

        ``idempotent`` (default: by method) lets the call be repeated while the server
        does not answer, waiting ``settings.cli_retry_seconds`` in all between tries.
        """
        if idempotent is None:
            idempotent = method.upper() in IDEMPOTENT_METHODS
        # The budget is the time spent waiting between tries: each try itself is bounded
        # by the client's timeouts, and a refused connection takes no time at all.
        budget = self.settings.cli_retry_seconds if idempotent else 0.0
        waited = 0.0
        for attempt in itertools.count(1):
            response, problem = self._attempt(method, path, **kwargs)
            if problem is None and response is not None:
                if response.status_code >= 400:
                    raise CommandError(_detail(response), response.status_code)
                return response
            pause = min(_pause(attempt, response), max(0.0, budget - waited))
            if pause <= 0:
                if response is not None:
                    raise CommandError(_detail(response), response.status_code)
                raise CommandError(problem or "no answer")
            self.note(f"server not answering, retrying in {max(1, round(pause))} s...")
            self.sleep(pause)
            waited += pause
        raise AssertionError("unreachable")

    def _attempt(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[httpx.Response | None, str | None]:
        """One try: the response, and what makes it worth another try (None: nothing)."""
        try:
            response = self.http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            return None, (
                f"No Winslow server answers at {self.settings.addr}. Start one with "
                "`winslow up`, or set WINSLOW_ADDR to where it runs."
            )
        except httpx.TimeoutException:
            # A server that is up but slow: another try would only add to its load.
            raise CommandError(
                f"The Winslow server at {self.settings.addr} did not answer in time."
            ) from None
        except httpx.TransportError as exc:
            return None, (
                f"The connection to the Winslow server at {self.settings.addr} was lost "
                f"before it answered ({type(exc).__name__}); check whether the command took "
                "effect before running it again."
            )
        if response.status_code in RETRY_STATUSES:
            return response, _detail(response)
        return response, None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, body: Any = None, *, idempotent: bool = False, **kwargs: Any) -> Any:
        """POST ``body``; with ``idempotent`` (the endpoint makes a repeat harmless) it
        is tried again while the server does not answer."""
        response = self.request("POST", path, json=body, idempotent=idempotent, **kwargs)
        return response.json() if response.content else None

    def put(self, path: str, body: Any = None) -> Any:
        return self.request("PUT", path, json=body).json()

    def patch(self, path: str, body: Any = None) -> Any:
        return self.request("PATCH", path, json=body).json()

    def delete(self, path: str, **kwargs: Any) -> None:
        self.request("DELETE", path, **kwargs)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"The server answered {response.status_code}: {response.text[:300]}"
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail
    return f"The server answered {response.status_code}: {str(body)[:300]}"


def _pause(attempt: int, response: httpx.Response | None) -> float:
    """Seconds to wait before attempt ``attempt + 1``: the server's ``Retry-After`` if it
    sent one in seconds, else the backoff step with jitter."""
    if response is not None:
        try:
            return max(0.0, float(response.headers.get("Retry-After", "")))
        except ValueError:
            pass
    steps = defaults.CLI_RETRY_BACKOFF
    step = steps[min(attempt, len(steps)) - 1]
    return step * random.uniform(1 - JITTER, 1 + JITTER)


def _note_on_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "winslow"
