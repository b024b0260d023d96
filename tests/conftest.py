"""Shared fixtures: real servers on 127.0.0.1, each test starting clean."""

from __future__ import annotations

import compileall
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.s3",
    "tests.fixtures.winslow",
    "tests.fixtures.seeded",
    "tests.fixtures.server",
    "tests.fixtures.postgres",
    "tests.fixtures.containers",
    "tests.fixtures.nomad",
    "tests.fixtures.slapd",
]

PACKAGE = Path(__file__).resolve().parents[1] / "winslow"


def pytest_configure(config: pytest.Config) -> None:
    # The suite starts `winslow` processes by the thousand (servers, the CLI, runners).
    # Where PYTHONDONTWRITEBYTECODE is set none of them caches its bytecode, and each
    # compiles the package from source again: a third of a second of CPU every time.
    # Compiled once here (by the controller, before any worker starts), they load it.
    if not hasattr(config, "workerinput"):
        compileall.compile_dir(PACKAGE, quiet=1)
