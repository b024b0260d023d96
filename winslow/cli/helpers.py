"""What every ``winslow`` command shares: the consoles, the error exit, ``--json``, and the
one way each thing looks on a terminal (times, sizes, ``NAME=VALUE`` pairs, file tables,
transfer bars).

Results go to stdout, errors to stderr as ``error: <message>`` with exit code 1; a command
that shows something prints either the API's JSON (``--json``) or words for a person, never
both. A thing two commands show is formatted here once, so they cannot drift apart.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand, TyperGroup, TyperOption
from typer.models import CommandFunctionType

from winslow import defaults
from winslow.cli.client import ApiClient, CommandError
from winslow.core.logformat import escape_name
from winslow.units import format_bytes

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON only.")]
"""The ``--json`` option every command that shows something takes."""

TIME_WIDTH = len("2026-11-25 08:12:03")
"""Columns a ``short_time`` takes: a table column of times is never narrower."""


class _FlagsTakeNoValue:
    """Typer's rich help prints each option's type beside it, so a flag read as if it took
    one (``--help <bool>``); an empty metavar leaves the type out for flags alone."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
                param.metavar = ""
        return params


def reflowed(text: str | None) -> str | None:
    """``text`` with the line breaks inside each paragraph made spaces.

    Typer's rich help keeps a docstring's line breaks, where the source wrapped it at 92
    columns, and the terminal then wraps again: ragged text on anything narrower, and in a
    command list a description cut in two. Reflowed, rich wraps each paragraph to the
    terminal. A paragraph laid out line by line (a list, an example) stays as written.
    """
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        paragraph if _laid_out(paragraph) else " ".join(paragraph.split("\n"))
        for paragraph in paragraphs
    )


def _laid_out(paragraph: str) -> bool:
    lines = paragraph.split("\n")
    return paragraph.startswith("\b") or any(
        line.startswith((" ", "- ", "* ", "$ ", "winslow ")) for line in lines[1:]
    )


class _ReflowedHelp:
    """Help text reflowed (``reflowed``) for typer's rich help."""

    help: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflowed(self.help)


class WinslowCommand(_ReflowedHelp, _FlagsTakeNoValue, TyperCommand):
    """Every ``winslow`` command: help reflowed, flags without a type in ``--help``."""


class WinslowGroup(_ReflowedHelp, _FlagsTakeNoValue, TyperGroup):
    """Every ``winslow`` noun: help reflowed, flags without a type in ``--help``."""


class WinslowTyper(typer.Typer):
    """A typer app whose commands and groups are ``WinslowCommand`` and ``WinslowGroup``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", WinslowGroup)
        super().__init__(**kwargs)

    def command(
        self, name: str | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        kwargs.setdefault("cls", WinslowCommand)
        return super().command(name, **kwargs)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with ``code``; raises ``typer.Exit``."""
    err.print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(code)


@contextmanager
def api_client() -> Iterator[ApiClient]:
    """Yield a client of the Winslow API; a ``CommandError`` inside becomes ``fail``."""
    try:
        api = ApiClient()
    except CommandError as exc:
        fail(exc.message)
    try:
        yield api
    except CommandError as exc:
        fail(exc.message)
    finally:
        api.close()


def emit(data: Any, as_json: bool, human: Callable[[Any], object]) -> None:
    """Print ``data`` as JSON on stdout with ``as_json``, else hand it to ``human``."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        human(data)


def parse_pairs(pairs: list[str], option: str) -> dict[str, str]:
    """Return ``NAME=VALUE`` arguments as a dict; raises ``typer.BadParameter`` naming
    ``option`` for one without ``=`` or a name (a usage error, exit code 2)."""
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint=option)
        values[name] = value
    return values


def pairs_text(values: dict[str, Any]) -> str:
    """``a=1, b=2``."""
    return ", ".join(f"{k}={v}" for k, v in values.items())


def query_flag(value: bool) -> str:
    """A boolean as the API's query parameters take it: ``true`` or ``false``."""
    return str(value).lower()


def add_time_column(table: Table, title: str) -> None:
    """Add a column of ``short_time`` values that a narrow terminal never wraps or cuts."""
    table.add_column(title, no_wrap=True, min_width=TIME_WIDTH)


def done(data: dict[str, Any], as_json: bool, words: str) -> None:
    """Report a command that changed something and has nothing else to show: ``data``
    (what it did to which thing) with ``--json``, else ``words``."""
    emit(data, as_json, lambda _: out.print(words, markup=False, highlight=False))


def short_time(value: str | None) -> str:
    """An API timestamp to the second, ``2026-11-25 08:12:03``; empty for none."""
    return value[:19].replace("T", " ") if value else ""


def time_after(value: str | None, earlier: str | None) -> str:
    """``short_time`` of ``value``, only the time of day when it falls on the day of
    ``earlier``: so a table row of several times fits 80 columns without cutting one."""
    shown, reference = short_time(value), short_time(earlier)
    return shown[11:] if shown and shown[:10] == reference[:10] else shown


def all_pages(api: ApiClient, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """Every item of a paged list endpoint, as one page: ``{"data": [...], "count": n}``."""
    first = api.get(path, params={**params, "limit": defaults.MAX_PAGE_SIZE})
    data = list(first["data"])
    while len(data) < first["count"]:
        page = api.get(path, params={**params, "skip": len(data), "limit": defaults.MAX_PAGE_SIZE})
        if not page["data"]:
            break  # Fewer now than when we began: some were deleted meanwhile.
        data.extend(page["data"])
    return {**first, "data": data}


def files_table(d: dict[str, Any]) -> None:
    """Print a folder listing of the resource pool or of a workspace (which also says its
    run and version); names and link targets show through ``escape_name``, since a stage
    may write any name."""
    if "version" in d:  # a workspace: say which run and version this is
        versions = ", ".join(map(str, d["versions"])) or "none"
        note = f" ({d['note']})" if d.get("note") else ""
        out.print(
            f"run {d['run']} ('{d['stage']}'), workspace version {d['version']}{note}; "
            f"versions: {versions}",
            markup=False,
        )
    table = Table("NAME", "SIZE", box=None)
    add_time_column(table, "MODIFIED")
    for f in d["data"]:
        name = escape_name(f["path"]) + ("/" if f["is_dir"] else "")
        if f.get("link"):
            name += f" -> {escape_name(f['link'])}"
        # Text, not str: rich reads a str cell as markup, and a name may hold brackets.
        table.add_row(
            Text(name),
            "" if f["is_dir"] else format_bytes(f["size"]),
            short_time(f["modified"]),
        )
    out.print(table)


@contextmanager
def transfer_progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yield a function that advances a transfer bar on stderr by a byte count; the bar
    shows only on a terminal. ``description`` names the file, escaped here (``escape_name``)."""
    with Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    ) as progress:
        task = progress.add_task(escape_name(description), total=total)
        yield lambda n: progress.advance(task, n)
