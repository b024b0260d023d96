"""``winslow images``: the repositories and tags of the registry stage images are pushed to,
so a person picks a stage's ``image:`` by name.

It speaks the Distribution (``registry:2``) HTTP API: ``GET /v2/_catalog`` for the
repositories and ``GET /v2/<name>/tags/list`` for each one's tags, both paged with a
``Link: <...>; rel="next"`` header. The registry is ``WINSLOW_REGISTRY`` (``host:port``, as
``make push REGISTRY=`` takes it, or a URL); without a scheme it is HTTPS, except on a
loopback address, where docker also allows plain HTTP. Credentials are
``WINSLOW_REGISTRY_USER``/``WINSLOW_REGISTRY_PASSWORD``, else what ``docker login`` stored
in docker's ``config.json``; a registry that answers with a Bearer challenge gets the token
from the realm it names, as docker does. What to ask, what to send and how to read the
answers are pure functions here; ``RegistryClient`` is the one place that does HTTP.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote, urljoin, urlsplit

import httpx
import typer
from rich.table import Table

from winslow.cli.helpers import JsonOpt, emit, fail, out

if TYPE_CHECKING:
    from winslow.settings import RegistrySettings

REGISTRY_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
"""Per request to the registry: the catalog of a few hundred repositories is one page."""

PAGE_SIZE = 100
"""Repositories or tags asked for per page (``?n=``); the registry may send fewer."""

DOCKER_CERTS = Path("/etc/docker/certs.d")
"""Where docker looks for a registry's CA (``<host:port>/ca.crt``); we look there too."""

_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(Exception):
    """Listing the registry failed; the message says why and what to do."""


@dataclass(frozen=True)
class Repository:
    name: str
    tags: tuple[str, ...]


def registry_url(value: str) -> str:
    """The base URL of a registry given as ``host:port`` or a URL: ``https://`` unless it
    names a scheme, ``http://`` for a loopback host (docker's insecure default)."""
    value = value.strip().rstrip("/")
    if "://" in value:
        return value
    host = urlsplit(f"//{value}").hostname or ""
    return ("http://" if _is_loopback(host) else "https://") + value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def docker_credentials(config: dict[str, Any], registry: str) -> tuple[str, str] | None:
    """``(user, password)`` that ``docker login <registry>`` stored in ``config`` (docker's
    ``config.json``), None when it holds none for that host (or keeps them in a helper)."""
    host = urlsplit(registry_url(registry)).netloc
    auths = config.get("auths") or {}
    for key, entry in auths.items():
        if urlsplit(key if "://" in key else f"//{key}").netloc != host:
            continue
        encoded = (entry or {}).get("auth")
        if not encoded:
            continue
        try:
            user, sep, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            continue
        if sep:
            return user, password
    return None


def next_page(link_header: str | None, current: str) -> str | None:
    """The URL of the next page from a ``Link`` header, resolved against ``current``."""
    if not link_header:
        return None
    match = _NEXT_LINK.search(link_header)
    return urljoin(current, match.group(1)) if match else None


def bearer_challenge(header: str) -> dict[str, str] | None:
    """The parameters of a ``WWW-Authenticate: Bearer realm=...,service=...,scope=...``
    challenge; None for any other scheme."""
    scheme, _, params = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return dict(_CHALLENGE_PARAM.findall(params))


class RegistryClient:
    """Reads the catalog and tags of one registry; raises ``RegistryError``."""

    def __init__(
        self,
        registry: str,
        credentials: tuple[str, str] | None = None,
        *,
        verify: str | bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = registry_url(registry)
        self.credentials = credentials
        self.http = httpx.Client(
            timeout=REGISTRY_TIMEOUT, verify=verify, transport=transport, auth=credentials
        )

    def close(self) -> None:
        self.http.close()

    def catalog(self) -> list[str]:
        """GET /v2/_catalog, every page."""
        names: list[str] = []
        for page in self._pages(f"/v2/_catalog?n={PAGE_SIZE}"):
            names.extend(page.get("repositories") or [])
        return names

    def tags(self, name: str) -> list[str]:
        """GET /v2/<name>/tags/list, every page."""
        tags: list[str] = []
        for page in self._pages(f"/v2/{quote(name)}/tags/list?n={PAGE_SIZE}", repository=name):
            tags.extend(page.get("tags") or [])
        return tags

    def _pages(self, path: str, repository: str | None = None) -> Iterator[dict[str, Any]]:
        url: str | None = self.base + path
        while url is not None:
            response = self._get(url)
            if response.status_code == 404 and repository is not None:
                raise RegistryError(
                    f"No repository '{repository}' in the registry at {self.base}; "
                    "`winslow images` lists them."
                )
            if response.status_code != 200:
                raise RegistryError(self._refusal(response))
            try:
                yield response.json()
            except ValueError:
                raise RegistryError(
                    f"{self.base} answered {url} with something that is not JSON; is it a "
                    "Distribution (registry:2) registry?"
                ) from None
            url = next_page(response.headers.get("link"), url)

    def _get(self, url: str) -> httpx.Response:
        try:
            response = self.http.get(url)
            challenge = bearer_challenge(response.headers.get("www-authenticate", ""))
            if response.status_code == 401 and challenge and challenge.get("realm"):
                token = self._token(challenge)
                response = self.http.get(url, auth=None, headers={"Authorization": token})
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"The registry at {self.base} does not answer ({type(exc).__name__}: {exc}); "
                "check WINSLOW_REGISTRY (or --registry) and that the registry runs."
            ) from None
        return response

    def _token(self, challenge: dict[str, str]) -> str:
        """A Bearer token from the challenge's realm, asked with our credentials."""
        params = {k: v for k, v in challenge.items() if k in ("service", "scope")}
        answer = self.http.get(challenge["realm"], params=params)
        if answer.status_code != 200:
            raise RegistryError(self._refusal(answer))
        body = answer.json()
        return f"Bearer {body.get('token') or body.get('access_token', '')}"

    def _refusal(self, response: httpx.Response) -> str:
        if response.status_code in (401, 403):
            how = "refused the credentials" if self.credentials else "asks for credentials"
            return (
                f"The registry at {self.base} {how} (HTTP {response.status_code}); set "
                "WINSLOW_REGISTRY_USER and WINSLOW_REGISTRY_PASSWORD, or "
                f"`docker login {urlsplit(self.base).netloc}`."
            )
        return (
            f"The registry at {self.base} answered {response.request.url.path} with HTTP "
            f"{response.status_code}: {response.text[:200]}"
        )


def list_repositories(client: RegistryClient, names: list[str]) -> list[Repository]:
    """``names`` (all of the catalog when empty) with their tags, sorted by name."""
    wanted = sorted(names) if names else sorted(client.catalog())
    return [Repository(name, tuple(sorted(client.tags(name)))) for name in wanted]


def _credentials(settings: RegistrySettings, registry: str) -> tuple[str, str] | None:
    if settings.registry_user is not None:
        return settings.registry_user, settings.registry_password or ""
    config_file = settings.docker_config / "config.json"
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError):
        return None
    return docker_credentials(config, registry) if isinstance(config, dict) else None


def _verify(settings: RegistrySettings, registry: str) -> str | bool:
    if settings.registry_ca_file is not None:
        return str(settings.registry_ca_file)
    docker_ca = DOCKER_CERTS / urlsplit(registry_url(registry)).netloc / "ca.crt"
    return str(docker_ca) if docker_ca.is_file() else True


def images(
    repositories: Annotated[
        list[str] | None,
        typer.Argument(help="Repositories to show; all of the registry's when none."),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(help="host:port or URL of the registry; default WINSLOW_REGISTRY."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the registry's images (repositories and their tags) to pick a stage image from."""
    from winslow.settings import RegistrySettings  # pydantic: only this command needs it

    settings = RegistrySettings()
    where = registry or settings.registry
    if not where:
        raise typer.BadParameter(
            "no registry given; set WINSLOW_REGISTRY=host:port or pass --registry",
            param_hint="--registry",
        )
    client = RegistryClient(where, _credentials(settings, where), verify=_verify(settings, where))
    try:
        found = list_repositories(client, repositories or [])
    except RegistryError as exc:
        fail(str(exc))
    finally:
        client.close()
    host = urlsplit(client.base).netloc
    data = {
        "registry": client.base,
        "repositories": [{"name": r.name, "tags": list(r.tags)} for r in found],
    }

    def human(d: dict[str, Any]) -> None:
        if not d["repositories"]:
            out.print(f"The registry at {d['registry']} holds no images yet.", markup=False)
            return
        table = Table("IMAGE", "TAGS", box=None)
        for repo in d["repositories"]:
            table.add_row(f"{host}/{repo['name']}", ", ".join(repo["tags"]) or "(no tags)")
        out.print(table)

    emit(data, as_json, human)
