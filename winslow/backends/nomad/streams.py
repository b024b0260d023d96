"""The endpoints of Nomad's HTTP API that stream: events and a task's log.

``Events.stream`` follows ``/v1/event/stream`` (one JSON frame a line, ``{}`` heartbeats);
``ClientFs`` reads a task's log from its node, followed or from an offset. Both ride on
the ``NomadClient`` that holds them (its transport, token, namespace and errors).
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import json
import socket
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Literal, cast

import httpx

from winslow.backends.nomad.types import NomadEventFrame
from winslow.backends.nomad.wire import BLOCKING_MARGIN_SECONDS, LogType, ParamValue, cut, segment
from winslow.errors import BackendError, BackendUnavailableError

if TYPE_CHECKING:
    from winslow.backends.nomad.client import NomadClient

EVENT_STREAM_HEARTBEAT_SECONDS = 30.0
"""Nomad sends ``{}`` on an idle event stream this often (``nomad/event_endpoint.go``), seconds."""


class Events:
    """The ``/v1/event/stream`` endpoint."""

    def __init__(self, client: NomadClient) -> None:
        self._client = client

    def stream(self, topics: Mapping[str, list[str]], index: int = 0) -> EventStream:
        """GET /v1/event/stream.

        ``topics`` maps a topic to filter keys (``{"Allocation": ["*"]}``); Nomad matches a
        key against an event's ``Key`` (the object's ID) or its ``FilterKeys`` (the job ID
        for allocations and evaluations), exactly, with ``*`` for all: no prefixes. Nomad
        starts at the buffered event with ``index`` itself, or at the oldest one it still
        has when that one is gone. Raises ``BackendError`` when Nomad has no event stream
        for us (404, 403); ``BackendUnavailableError`` when it does not answer.
        """
        params: list[tuple[str, ParamValue]] = [
            ("topic", f"{topic}:{key}") for topic, keys in topics.items() for key in keys
        ]
        params.append(("index", index))
        path = "/v1/event/stream"
        response = self._client._send(
            "GET",
            path,
            params=params,
            stream=True,
            # An idle stream still carries a heartbeat this often; silence longer is a
            # dead connection.
            read_timeout=EVENT_STREAM_HEARTBEAT_SECONDS + BLOCKING_MARGIN_SECONDS,
        )
        if response.status_code == 404:
            response.close()
            raise BackendError(
                f"Nomad at {self._client.address} has no event stream ({path} answered 404); "
                "it needs Nomad 1.0 or later."
            )
        if not response.is_success:
            raise self._client._error(response, f"GET {path}")
        return EventStream(response)


class EventStream:
    """An open ``/v1/event/stream``: iterate for frames; ``close`` from any thread ends it.

    Heartbeats (``{}``) are skipped. Iteration ends when Nomad closes the stream; a
    connection that breaks, or an error Nomad writes into the stream once it has begun
    (``event dropped from buffer`` for a reader too slow), raises
    ``BackendUnavailableError``. ``close`` shuts the socket down, which wakes a thread
    blocked reading it at once.
    """

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._lines = response.iter_lines()
        self._closed = threading.Event()
        self._reading = False

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> NomadEventFrame:
        self._reading = True
        try:
            return self._next_frame()
        finally:
            self._reading = False

    def _next_frame(self) -> NomadEventFrame:
        while True:
            try:
                line = next(self._lines)
            except StopIteration:
                self._response.close()
                raise
            except httpx.HTTPError as exc:
                self._response.close()
                if self._closed.is_set():
                    raise StopIteration from exc
                raise BackendUnavailableError(
                    f"Nomad's event stream broke off: {exc or type(exc).__name__}"
                ) from exc
            line = line.strip()
            if not line:
                continue
            try:
                frame = json.loads(line)
            except ValueError:
                # Once the stream began, Nomad can only report an error as plain text.
                self._response.close()
                raise BackendUnavailableError(
                    f"Nomad's event stream ended with an error: {cut(line)}"
                ) from None
            if not isinstance(frame, dict) or not frame:
                continue  # heartbeat
            return cast(NomadEventFrame, frame)

    def close(self) -> None:
        """End the stream; safe from another thread while one is blocked reading it."""
        if self._closed.is_set():
            return
        self._closed.set()
        network = self._response.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
        if isinstance(sock, socket.socket):
            # shutdown wakes a blocked recv(); close() alone would leave it waiting.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if not self._reading:
            # No thread is inside the response (the reader closes it when it wakes).
            self._response.close()


class ClientFs:
    """The ``/v1/client/fs/*`` endpoints, served by the node that runs the allocation."""

    def __init__(self, client: NomadClient) -> None:
        self._client = client

    def logs(
        self,
        alloc_id: str,
        task: str,
        type: LogType,
        offset: int = 0,
        follow: bool = False,
        origin: Literal["start", "end"] = "start",
    ) -> Iterator[bytes]:
        """GET /v1/client/fs/logs/:alloc_id.

        Yields the log's bytes from ``offset`` (counted across Nomad's rotated files) as
        they arrive, decoding the base64 ``Data`` of each frame; streamed, never read
        whole. Yields nothing when the allocation, or the task's log, does not exist (any
        more). Not retried: a reader asks again anyway.
        """
        path = f"/v1/client/fs/logs/{segment(alloc_id)}"
        params: dict[str, str | int | bool | None] = {
            "task": task,
            "type": type,
            "offset": offset,
            "origin": origin,
            "follow": follow,
            "plain": False,
        }
        response = self._client._send("GET", path, params=params, stream=True, retry=False)
        if not response.is_success:
            response.read()
            response.close()
            if response.status_code == 404 or _means_no_log(response.text):
                return iter(())
            raise self._client._error(response, f"GET {path}")
        return _log_bytes(response, self._client.address)

    def read_at(self, alloc_id: str, path: str, offset: int, limit: int) -> bytes:
        """GET /v1/client/fs/readat/:alloc_id.

        Returns up to ``limit`` bytes of the file at ``path`` (relative to the allocation
        folder, e.g. ``alloc/logs/winslow.log``) from ``offset``; ``b""`` when the
        allocation or the file does not exist (any more). Not retried, like ``logs``.
        """
        url = f"/v1/client/fs/readat/{segment(alloc_id)}"
        params: dict[str, ParamValue] = {"path": path, "offset": offset, "limit": limit}
        response = self._client._send("GET", url, params=params, retry=False)
        if response.status_code == 404 or (
            not response.is_success and _means_no_log(response.text)
        ):
            return b""
        if not response.is_success:
            raise self._client._error(response, f"GET {url}")
        return response.content


def _log_bytes(response: httpx.Response, address: str) -> Iterator[bytes]:
    """The bytes of a stream of ``StreamFrame`` objects, written back to back."""
    decoder = json.JSONDecoder()
    text = codecs.getincrementaldecoder("utf-8")(errors="replace")
    buffer = ""
    try:
        for chunk in response.iter_bytes():
            buffer += text.decode(chunk)
            while True:
                buffer = buffer.lstrip()
                if not buffer:
                    break
                try:
                    frame, end = decoder.raw_decode(buffer)
                except ValueError:
                    break  # an incomplete frame: wait for more bytes
                buffer = buffer[end:]
                data = frame.get("Data") if isinstance(frame, dict) else None
                if data:
                    yield base64.b64decode(data)
        buffer += text.decode(b"", final=True)
        if buffer.strip():
            raise BackendError(
                f"Nomad at {address} sent a log frame that is not JSON: {cut(buffer)!r}"
            )
    except httpx.HTTPError as exc:
        raise BackendUnavailableError(
            f"Reading a log from Nomad at {address} broke off: {exc or type(exc).__name__}"
        ) from exc
    finally:
        response.close()


def _means_no_log(text: str) -> bool:
    """True when Nomad says the allocation or the task's log file does not exist."""
    lowered = text.lower()
    return any(words in lowered for words in ("unknown allocation", "not found", "no such file"))
