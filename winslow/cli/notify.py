"""``winslow notify ...``: who hears when a project needs a person, and how sending went.

Through the API. A subscription sends a signed webhook or an e-mail; it covers one project
(any token) or every project of a pipeline (an admin token). A webhook's secret is printed
once, when the subscription is made: the receiver checks ``X-Winslow-Signature`` with it.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table

from winslow.cli.helpers import (
    JsonOpt,
    WinslowTyper,
    add_time_column,
    api_client,
    done,
    emit,
    fail,
    out,
    short_time,
)
from winslow.units import parse_duration

notify_app = WinslowTyper(
    no_args_is_help=True,
    help="Notifications: webhooks and e-mails when a project needs a person.",
)

EVENTS = ("awaiting_input", "paused", "failed", "succeeded")

TEST_WAIT_SECONDS = 60.0
"""How long ``notify test --wait`` waits for the server to send, at most."""


def _long_run(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--long-run") from None


@notify_app.command("add")
def notify_add(
    name: str,
    webhook: Annotated[str | None, typer.Option(help="POST signed JSON to this URL.")] = None,
    email: Annotated[str | None, typer.Option(help="Mail this address.")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p", help="One project.")] = None,
    pipeline: Annotated[
        str | None, typer.Option(help="Every project of this pipeline (admin token).")
    ] = None,
    event: Annotated[
        list[str] | None,
        typer.Option("--event", "-e", help=f"Only these events ({', '.join(EVENTS)}); repeat."),
    ] = None,
    long_run: Annotated[
        str, typer.Option(help="Tell of a success only after a run this long (10m, 2h).")
    ] = "10m",
    as_json: JsonOpt = False,
) -> None:
    """Subscribe a webhook or an e-mail address to a project's or a pipeline's notices."""
    if (webhook is None) == (email is None):
        raise typer.BadParameter(
            "give exactly one of --webhook and --email", param_hint="--webhook"
        )
    if (project is None) == (pipeline is None):
        raise typer.BadParameter(
            "give exactly one of --project and --pipeline", param_hint="--project"
        )
    body = {
        "name": name,
        "webhook": webhook,
        "email": email,
        "project": project,
        "pipeline": pipeline,
        "events": list(event or []),
        "long_run_seconds": _long_run(long_run),
    }
    with api_client() as api:
        made = api.post("/notifications/subscriptions", body)

    def human(d: dict[str, Any]) -> None:
        scope = f"project {d['project']}" if d["project"] else f"pipeline {d['pipeline']}"
        out.print(
            f"subscription '{d['name']}': {d['kind']} {d['target']} for {scope}", markup=False
        )
        if d["secret"]:
            out.print("webhook secret (shown once; checks X-Winslow-Signature):", markup=False)
            sys.stdout.write(d["secret"] + "\n")

    emit(made, as_json, human)


def _subscriptions_table(data: dict[str, Any]) -> None:
    if not data["data"]:
        out.print("no subscriptions; `winslow notify add` makes one", markup=False)
        return
    table = Table("NAME", "KIND", "TARGET", "SCOPE", "EVENTS", "LONG RUN", box=None)
    for s in data["data"]:
        scope = f"project {s['project']}" if s["project_id"] else f"pipeline {s['pipeline']}"
        table.add_row(
            s["name"],
            s["kind"],
            s["target"],
            scope,
            ",".join(s["events"]) or "all",
            f"{s['long_run_seconds'] // 60} min",
        )
    out.print(table)


@notify_app.command("list")
def notify_list(as_json: JsonOpt = False) -> None:
    """List the subscriptions (never a webhook's secret)."""
    with api_client() as api:
        data = api.get("/notifications/subscriptions")
    emit(data, as_json, _subscriptions_table)


@notify_app.command("remove")
def notify_remove(name: str, as_json: JsonOpt = False) -> None:
    """Remove a subscription and its deliveries."""
    with api_client() as api:
        api.delete(f"/notifications/subscriptions/{quote(name, safe='')}")
    done({"name": name, "removed": True}, as_json, f"subscription '{name}' removed")


def _deliveries_table(data: dict[str, Any]) -> None:
    if not data["data"]:
        out.print("no deliveries", markup=False)
        return
    table = Table("ID", "SUBSCRIPTION", "EVENT", "PROJECT", "STATUS", "TRIES", box=None)
    add_time_column(table, "WHEN")
    table.add_column("LAST ERROR", overflow="fold")
    for d in data["data"]:
        when = d["delivered_at"] or d["next_attempt_at"] or d["created_at"]
        table.add_row(
            str(d["id"]),
            d["subscription"],
            d["event"],
            d["project"] or "",
            d["status"],
            str(d["attempts"]),
            short_time(when),
            d["last_error"] or "",
        )
    out.print(table)


@notify_app.command("deliveries")
def notify_deliveries(
    subscription: Annotated[str | None, typer.Option(help="Only this subscription's.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only pending, delivered or failed ones.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List deliveries, newest first: status, attempts and the last error."""
    params: dict[str, Any] = {"limit": limit}
    if subscription:
        params["subscription"] = subscription
    if status:
        params["status"] = status
    with api_client() as api:
        data = api.get("/notifications/deliveries", params=params)
    emit(data, as_json, _deliveries_table)


@notify_app.command("test")
def notify_test(
    name: str,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait until it was sent or failed.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Send a test notification; exits 1 if its first attempt failed."""
    with api_client() as api:
        delivery = api.post(f"/notifications/subscriptions/{quote(name, safe='')}/test")
        deadline = time.monotonic() + TEST_WAIT_SECONDS
        while wait and delivery["attempts"] == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            found = api.get("/notifications/deliveries", params={"subscription": name})
            delivery = next((d for d in found["data"] if d["id"] == delivery["id"]), delivery)

    def human(d: dict[str, Any]) -> None:
        words = {"delivered": "delivered", "pending": "queued", "failed": "failed"}[d["status"]]
        if d["attempts"] and d["status"] != "delivered":
            words = f"not delivered: {d['last_error']}"
        out.print(f"test notification {d['id']} to '{name}': {words}", markup=False)

    emit(delivery, as_json, human)
    if wait and delivery["attempts"] and delivery["status"] != "delivered":
        fail(
            f"the test notification to '{name}' was not delivered; "
            "`winslow notify deliveries` shows its attempts."
        )
