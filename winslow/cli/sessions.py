"""``winslow session ...``: who is signed in to the console, and ending a sign-in.

Through the API, like every noun but ``token``: with an admin token (the one `winslow up`
wrote is one) these commands see and end everybody's sessions, with any other token only
its own. A session is named by its handle, which signs nobody in.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import typer
from rich.table import Table

from winslow.cli.helpers import JsonOpt, api_client, emit, out, short_time

session_app = typer.Typer(
    no_args_is_help=True, help="Console sessions: who is signed in to the web console."
)

BROWSER_CHARS = 40
"""Characters of a session's browser (its User-Agent) a listing shows."""


def _sessions_table(data: dict[str, Any]) -> None:
    if not data["data"]:
        out.print("no console sessions", markup=False)
        return
    table = Table(box=None)
    # The handle is what a person copies into `winslow session revoke`: never cut.
    table.add_column("HANDLE", no_wrap=True, min_width=16)
    for title in ("USER", "SIGNED IN", "LAST SEEN", "ENDS", "FROM"):
        table.add_column(title)
    table.add_column("BROWSER", no_wrap=True, overflow="ellipsis", max_width=BROWSER_CHARS)
    for s in data["data"]:
        table.add_row(
            s["handle"],
            s["user"],
            short_time(s["created_at"]),
            short_time(s["last_seen_at"]),
            short_time(min(s["expires_at"], s["idle_expires_at"])),
            s["address"],
            s["user_agent"],
        )
    out.print(table)


@session_app.command("list")
def session_list(as_json: JsonOpt = False) -> None:
    """List the console sessions that go on (an admin token: everybody's), newest first."""
    with api_client() as api:
        data = api.get("/sessions")
    emit(data, as_json, _sessions_table)


@session_app.command("revoke")
def session_revoke(handle: str) -> None:
    """End a console session at once; its browser has to sign in again."""
    with api_client() as api:
        api.delete(f"/sessions/{quote(handle, safe='')}")
    out.print(f"session {handle} ended", markup=False)
