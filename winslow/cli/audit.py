"""``winslow audit``: the commands the API took, who sent them, from where, how they ended.

Through the API (``GET /api/v1/audit``), so it takes an admin's token. Newest first; the
summary names the method, the path and the answer's status, the JSON shows what changed.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from winslow.cli.helpers import JsonOpt, add_time_column, api_client, emit, out, short_time


def _audit_table(data: dict[str, Any]) -> None:
    if not data["data"]:
        out.print("no commands recorded", markup=False)
        return
    table = Table(box=None, pad_edge=False)
    add_time_column(table, "AT")
    table.add_column("ACTOR", overflow="fold")
    table.add_column("FROM", overflow="fold")
    table.add_column("COMMAND", overflow="fold")
    for entry in data["data"]:
        table.add_row(
            short_time(entry["at"]),
            Text(entry["actor"]),
            Text(f"{entry['address']} ({entry['via']})"),
            Text(entry["summary"]),
        )
    out.print(table)


def audit_command(
    actor: Annotated[str | None, typer.Option(help="Only this user's commands.")] = None,
    project: Annotated[
        str | None, typer.Option(help="Only commands on this project (name or id).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Show at most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Show the audit trail, newest first: every command with who, when, from where and
    what it changed (an admin's token)."""
    params: dict[str, Any] = {"limit": limit}
    if actor is not None:
        params["actor"] = actor
    if project is not None:
        params["project"] = project
    with api_client() as api:
        data = api.get("/audit", params=params)
    emit(data, as_json, _audit_table)
