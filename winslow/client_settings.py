"""What the CLI needs to find a server, read from ``WINSLOW_*`` without pydantic.

Every ``winslow`` command reads these four values; building them with pydantic-settings
cost a third of a command's start (pydantic and the server's settings class imported for
four strings), so they are plain environment reads here. ``winslow.settings`` re-exports
``ClientSettings`` for the server side.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from winslow import defaults
from winslow.errors import ValidationError

DEFAULT_ADDR = "http://127.0.0.1:8080"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "winslow"


def _env(name: str) -> str | None:
    value = os.environ.get(f"WINSLOW_{name}")
    return value if value else None


def _retry_seconds_from_env() -> float:
    raw = _env("CLI_RETRY_SECONDS")
    if raw is None:
        return defaults.CLI_RETRY_SECONDS
    try:
        return float(raw)
    except ValueError:
        raise ValidationError(
            f"WINSLOW_CLI_RETRY_SECONDS must be a number of seconds, 0 or more; got {raw!r}"
        ) from None


@dataclass(frozen=True)
class ClientSettings:
    """Where the server is and who is asking; each field unset here is read from
    ``WINSLOW_<FIELD>`` (an empty variable counts as unset)."""

    addr: str = field(default_factory=lambda: _env("ADDR") or DEFAULT_ADDR)
    token: str | None = field(default_factory=lambda: _env("TOKEN"), repr=False)
    data_dir: Path = field(
        default_factory=lambda: Path(raw) if (raw := _env("DATA_DIR")) else default_data_dir()
    )
    cli_retry_seconds: float = field(default_factory=_retry_seconds_from_env)
    """How long an idempotent call is repeated while the server does not answer, seconds."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cli_retry_seconds) and self.cli_retry_seconds >= 0):
            raise ValidationError(
                "WINSLOW_CLI_RETRY_SECONDS must be a number of seconds, 0 or more; "
                f"got {self.cli_retry_seconds!r}"
            )
