"""The CLI's HTTP client of the Winslow API: one ``httpx.Client``, errors in our words.

A 4xx becomes a ``CommandError`` carrying the server's ``detail`` (already written for a
person); a server that does not answer says where the CLI looked and how to point it
elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from winslow.settings import ClientSettings


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


class ApiClient:
    """Calls ``/api/v1`` of one Winslow server."""

    def __init__(self, settings: ClientSettings | None = None) -> None:
        self.settings = settings or ClientSettings()
        token = find_token(self.settings)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base = self.settings.addr.rstrip("/") + "/api/v1"
        self.http = httpx.Client(
            base_url=self.base,
            headers=headers,
            timeout=httpx.Timeout(connect=5.0, read=60.0, write=60.0, pool=5.0),
        )

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise CommandError(
                f"No Winslow server answers at {self.settings.addr}. Start one with "
                "`winslow up`, or set WINSLOW_ADDR to where it runs."
            ) from None
        except httpx.TimeoutException:
            raise CommandError(
                f"The Winslow server at {self.settings.addr} did not answer in time."
            ) from None
        if response.status_code >= 400:
            raise CommandError(_detail(response), response.status_code)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        response = self.request("POST", path, json=body, **kwargs)
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


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "winslow"
