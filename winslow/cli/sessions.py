"""``winslow session ...``: who is signed in to the console, and ending a sign-in.

Through the API, like every noun but ``token``: with an admin token (the one `winslow up`
wrote is one) these commands see and end everybody's sessions, with any other token only
its own. A session is named by its handle, which signs nobody in.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from rich.table import Table

from winslow.cli.helpers import (
    JsonOpt,
    WinslowTyper,
    add_time_column,
    api_client,
    done,
    emit,
    out,
    short_time,
    time_after,
)

session_app = WinslowTyper(
    no_args_is_help=True, help="Console sessions: who is signed in to the web console."
)

BROWSER_CHARS = 40
"""Characters of a session's browser (its User-Agent) a listing shows."""


def _sessions_table(data: dict[str, Any]) -> None:
    if not data["data"]:
        out.print("no console sessions", markup=False)
        return
    table = Table(box=None, pad_edge=False)
    # The handle is what a person copies into `winslow session revoke`: never cut.
    table.add_column("HANDLE", no_wrap=True, min_width=16)
    table.add_column("USER", overflow="fold")
    add_time_column(table, "SIGNED IN")
    # Later times on the sign-in's day show as times of day: the row fits 80 columns.
    table.add_column("LAST SEEN", no_wrap=True)
    table.add_column("ENDS", no_wrap=True)
    for s in data["data"]:
        table.add_row(
            s["handle"],
            s["user"],
            short_time(s["created_at"]),
            time_after(s["last_seen_at"], s["created_at"]),
            time_after(min(s["expires_at"], s["idle_expires_at"]), s["created_at"]),
        )
    out.print(table)
    for s in data["data"]:
        browser = s["user_agent"]
        if len(browser) > BROWSER_CHARS:
            browser = browser[: BROWSER_CHARS - 1] + "…"
        out.print(f"{s['handle']}: from {s['address']}, {browser}", markup=False, highlight=False)


@session_app.command("list")
def session_list(as_json: JsonOpt = False) -> None:
    """List the console sessions that go on (an admin token: everybody's), newest first."""
    with api_client() as api:
        data = api.get("/sessions")
    emit(data, as_json, _sessions_table)


@session_app.command("revoke")
def session_revoke(handle: str, as_json: JsonOpt = False) -> None:
    """End a console session at once; its browser has to sign in again."""
    with api_client() as api:
        api.delete(f"/sessions/{quote(handle, safe='')}")
    done({"handle": handle, "revoked": True}, as_json, f"session {handle} ended")
