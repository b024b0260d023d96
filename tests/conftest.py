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

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "winslow"

LONGEST_FIRST = (
    "tests/test_images.py",
    "tests/test_cli.py",
    "tests/api/test_schema_fuzz.py",
    "tests/cli/test_people.py",
    "tests/test_cli_json.py",
    "tests/test_restart.py",
    "tests/backends/nomad/test_backend.py",
    "tests/ui/test_project_insights.py",
    "tests/ui/test_logview_files.py",
    "tests/ui/test_resources.py",
)
"""The modules that take longest, in that order. Workers take whole modules in the order
collected; one of these left for last would keep a single worker busy minutes after the
others are done, so they go out first."""


def pytest_configure(config: pytest.Config) -> None:
    # The suite starts `winslow` processes by the thousand (servers, the CLI, runners).
    # Where PYTHONDONTWRITEBYTECODE is set none of them caches its bytecode, and each
    # compiles the package from source again: a third of a second of CPU every time.
    # Compiled once here (by the controller, before any worker starts), they load it.
    if not hasattr(config, "workerinput"):
        compileall.compile_dir(PACKAGE, quiet=1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    first = {name: rank for rank, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: first.get(item.path.relative_to(ROOT).as_posix(), len(first)))
