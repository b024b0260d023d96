"""The shape a reader relies on: every module in a layer the linter checks, small rooms.

``lint-imports`` (run by ``make lint``) enforces the contracts of ``.importlinter``, but
only for the modules its layers name; a module left out of every layer would be free to
import anything. These tests keep the list complete and the modules and functions small.
"""

from __future__ import annotations

import ast
import configparser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "winslow"

MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 80

CONTAINERS = {"winslow", "winslow.backends"}
"""Packages that hold only other layers (and ``__version__``): no code of their own."""


def module_names() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


LIBRARY_HOMES = {
    "sql-in-store": {"winslow.store"},
    "s3-in-storage": {"winslow.storage", "winslow.node"},
    "nomad-http-in-nomad": {"winslow.backends.nomad", "winslow.cli", "winslow.notify"},
    "vault-in-secrets": {"winslow.secrets"},
}
"""Per "library only in X" contract, the layers its sources leave out: the library's home,
and those that use it for something else (``.importlinter`` says why by the contract)."""


def linter_config() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    return config


def layered_modules() -> set[str]:
    layers = linter_config()["importlinter:contract:layers"]["layers"]
    return {
        name.strip().strip("()")
        for line in layers.splitlines()
        for name in line.replace(":", "|").split("|")
        if name.strip()
    }


def python_files() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if "migrations" not in p.parts]


def test_every_module_sits_in_a_layer() -> None:
    layered = layered_modules()
    outside = [
        name
        for name in module_names()
        if name not in CONTAINERS
        and not any(name == layer or name.startswith(layer + ".") for layer in layered)
    ]
    assert outside == [], "add these to a layer of .importlinter"


def test_every_library_contract_names_all_but_the_librarys_home() -> None:
    config = linter_config()
    forbidden = {
        section.removeprefix("importlinter:contract:")
        for section in config.sections()
        if config[section].get("type") == "forbidden"
    }
    assert forbidden - {"pure-core"} == set(LIBRARY_HOMES), "say where the new library lives"
    layered = layered_modules()
    for contract, homes in LIBRARY_HOMES.items():
        sources = config["importlinter:contract:" + contract]["source_modules"].split()
        left_out = {
            layer
            for layer in layered
            if not any(layer == source or layer.startswith(source + ".") for source in sources)
        }
        assert left_out == homes, f"{contract}: add the layers it leaves out to its sources"


def test_the_containers_hold_no_code() -> None:
    for name in CONTAINERS:
        tree = ast.parse((ROOT / name.replace(".", "/") / "__init__.py").read_text())
        kinds = {type(node).__name__ for node in tree.body}
        assert kinds <= {"Expr", "Assign", "ImportFrom"}, name  # docstring, __version__


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES, "split this module by what it does"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == [], "cut these into named steps"
