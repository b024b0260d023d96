"""The root of ``winslow <noun> <verb>``: one typer app that the nouns' sub-apps and the few
commands that belong to no noun hang on (``winslow = "winslow.cli.main:app"``).

Each noun lives in its own module (``pipelines``, ``projects``, ``resources``,
``workspaces``, ``tokens``, ``sessions``, ``people`` for users, groups and access), what
they share in ``helpers``; the node-side stage tools live in ``winslow.node.cli`` and are
registered here, hidden. Commands that show something take ``--json`` and then print only
the API's shape on stdout. Errors go to stderr as ``error: <message>``; exit codes: 0 done
(nothing to do included), 1 the operation failed, 2 bad usage.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from typer.main import get_group_from_info
from typer.models import TyperInfo

from winslow import __version__
from winslow.cli import images, logs, workspaces
from winslow.cli.audit import audit_command
from winslow.cli.helpers import JsonOpt, WinslowGroup, WinslowTyper, api_client, emit, out
from winslow.cli.people import whoami
from winslow.node import cli as node_cli
from winslow.units import format_megabytes

NOUNS: dict[str, tuple[str, str]] = {
    "pipeline": ("winslow.cli.pipelines", "pipeline_app"),
    "project": ("winslow.cli.projects", "project_app"),
    "resources": ("winslow.cli.resources", "resources_app"),
    "workspace": ("winslow.cli.workspaces", "workspace_app"),
    "token": ("winslow.cli.tokens", "token_app"),
    "session": ("winslow.cli.sessions", "session_app"),
    "notify": ("winslow.cli.notify", "notify_app"),
    "deploy": ("winslow.cli.deploy", "deploy_app"),
    "user": ("winslow.cli.people", "user_app"),
    "group": ("winslow.cli.people", "group_app"),
}
"""Each noun's sub-app, by module and name, in the order ``--help`` lists them.

``people`` is imported with the root (for ``whoami``), not lazily: it also adds
``access``, ``grant`` and ``revoke-access`` to the project and pipeline nouns, which must
be there before either is built."""


class RootGroup(WinslowGroup):
    """``winslow`` itself: a noun's commands are built when a command line names it.

    Typer turns every command into a click one before it parses anything; for all nouns
    that was a fifth of each command's start, and a person at a prompt (or a script calling
    ``winslow`` in a loop) pays it on every call. ``--help`` and shell completion list every
    noun, and so build them all.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(noun for noun in NOUNS if noun not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in NOUNS:
            module, attribute = NOUNS[cmd_name]
            sub_app = getattr(importlib.import_module(module), attribute)
            self.add_command(
                get_group_from_info(
                    TyperInfo(sub_app, name=cmd_name),
                    pretty_exceptions_short=app.pretty_exceptions_short,
                    rich_markup_mode=app.rich_markup_mode,
                    suggest_commands=app.suggest_commands,
                ),
                cmd_name,
            )
        return self.commands.get(cmd_name)


app = WinslowTyper(
    cls=RootGroup,
    no_args_is_help=True,
    # --install-completion / --show-completion: typer's completion for bash, zsh, fish and
    # PowerShell, which asks this CLI for the commands and options as one types.
    add_completion=True,
    help="Winslow: long GPU pipelines with a person in the loop.",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"winslow {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print Winslow's version and exit.",
        ),
    ] = False,
) -> None:
    """Winslow: long GPU pipelines with a person in the loop."""


@app.command()
def up(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where Winslow keeps its state.")] = None,
) -> None:
    """Start the all-in-one Winslow server (API, engine, local backend, S3).

    Ctrl+C or SIGTERM stops it cleanly (exit 0). A start that fails prints one ``error:``
    line and exits 1; WINSLOW_LOG_LEVEL=DEBUG adds the traceback.
    """
    from winslow.server import serve

    serve(host=host, port=port, data_dir=data_dir)


app.command()(logs.logs)
app.command()(workspaces.gc)
app.command()(images.images)


@app.command()
def nodes(as_json: JsonOpt = False) -> None:
    """List the nodes stages run on, with their GPUs; a draining node says until when."""
    with api_client() as api:
        data = api.get("/nodes")

    def human(d: dict[str, Any]) -> None:
        table = Table("NODE", "STATUS", "CPUS", "MEMORY", "GPUS", "RUNS", box=None)
        for n in d["data"]:
            gpus = ", ".join(
                f"{g['index']}: {g['name']} ({format_megabytes(g['memory_mb'])})" for g in n["gpus"]
            )
            status = n["drain"]["summary"] if n.get("drain") else n["status"]
            table.add_row(
                n["name"],
                status,
                f"{n['cpus']:g}",
                format_megabytes(n["memory_mb"]),
                gpus or "none",
                ",".join(map(str, n["runs"])),
            )
        out.print(table)

    emit(data, as_json, human)


# Run inside Nomad stage jobs, which name them: hidden from the help, never renamed.
app.command("stage-in", hidden=True)(node_cli.stage_in)
app.command("stage-out", hidden=True)(node_cli.stage_out)
app.command("stage-exec", hidden=True, context_settings=node_cli.STAGE_EXEC_CONTEXT)(
    node_cli.stage_exec
)
app.command("stage-follow", hidden=True)(node_cli.stage_follow)
app.command("stage-checkpoint", hidden=True)(node_cli.stage_checkpoint)
app.command("checkpoint")(node_cli.checkpoint)

app.command("audit")(audit_command)
app.command("whoami")(whoami)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
