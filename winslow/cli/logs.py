"""``winslow logs``: what a run printed, whole or as it comes, and which run a command means.

The run is the project's latest by default, else the latest of ``--stage`` or the one
``--run`` names (``pick_run``, which ``project series`` and ``project usage`` share). A run
that has not started has no log yet; that is said on stderr, with the run's reason, so an
empty output is never the only answer.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import httpx
import typer
from httpx_sse import SSEError, connect_sse

from winslow.cli.client import ApiClient, CommandError
from winslow.cli.helpers import api_client, emit, err


def pick_run(api: ApiClient, project: str, stage: str | None, run: int | None) -> dict[str, Any]:
    """Return run ``run``, else the latest run of ``stage``, else the project's latest run;
    raises ``CommandError`` when there is none."""
    data = api.get(f"/projects/{project}")
    runs = data.get("runs") or []
    if run is not None:
        chosen = [r for r in runs if r["id"] == run]
    elif stage is not None:
        chosen = [r for r in runs if r["stage"] == stage]
    else:
        chosen = runs
    if not chosen:
        stages = data.get("stages") or []
        if run is None and stage is not None and stages and stage not in stages:
            raise CommandError(
                f"Project '{project}' has no stage '{stage}'; its stages are: {', '.join(stages)}."
            )
        what = (
            f"run {run}"
            if run is not None
            else f"run of stage '{stage}' yet"
            if stage
            else "run yet"
        )
        raise CommandError(
            f"Project '{project}' has no {what}; `winslow project show {project}` lists its runs."
        )
    last: dict[str, Any] = chosen[-1]
    return last


def not_started_note(run: dict[str, Any]) -> str | None:
    """Why run ``run`` has no log: ``run 7 ('detect') is pending, not started yet: waiting
    for 2 CPUs``; None for a run that started."""
    if run["started_at"] is not None:
        return None
    what = f"run {run['id']} ('{run['stage']}')"
    if run["state"] == "pending":
        note = f"{what} is pending, not started yet"
    else:
        note = f"{what} never started (it is {run['state']})"
    reason = run.get("reason")
    if reason:
        return f"{note}: {reason}"
    return note + ("; the scheduler has not picked it up yet" if run["state"] == "pending" else "")


def logs(
    project: str,
    stage: Annotated[str | None, typer.Option(help="Latest run of this stage.")] = None,
    run: Annotated[int | None, typer.Option(help="This run.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print JSON only: the run, its state and reason and its lines; with"
            " --follow one object per line.",
        ),
    ] = False,
) -> None:
    """Print a run's log (default: the project's latest run).

    A run that has not started has no log yet: it says so on stderr, with the run's
    reason (for example, waiting for CPUs), and exits 0.
    """
    with api_client() as api:
        chosen = pick_run(api, project, stage, run)
        note = not_started_note(chosen)
        if note is not None:
            err.print(note, markup=False, highlight=False)
        path = f"/projects/{project}/runs/{chosen['id']}/logs"
        if not follow:
            text = api.request("GET", path).text
            data = {
                "project": project,
                "run": chosen["id"],
                "stage": chosen["stage"],
                "state": chosen["state"],
                "reason": chosen["reason"],
                "lines": text.splitlines(),
            }
            emit(data, as_json, lambda _: sys.stdout.write(text))
            return
        try:
            _follow_log(api, path + "/stream", chosen if as_json else None)
        except KeyboardInterrupt:
            return


def _follow_log(api: ApiClient, path: str, as_json_of: dict[str, Any] | None) -> None:
    """Print the lines of the server's ``log`` events as they come, until its ``end`` event
    (the run ended) or the stream closes; with ``as_json_of`` (the run) each line is one
    JSON object. Raises ``CommandError`` when the server refuses the stream or the log (a
    ``refused`` event)."""
    with connect_sse(api.http, "GET", path, timeout=httpx.Timeout(10.0, read=None)) as source:
        if source.response.status_code >= 400:
            source.response.read()
            raise CommandError(source.response.text)
        try:
            for event in source.iter_sse():
                if event.event == "log":
                    for text in event.json()["lines"]:
                        sys.stdout.write(_line(text, as_json_of))
                    sys.stdout.flush()
                elif event.event == "end":
                    return
                elif event.event == "refused":
                    raise CommandError(event.json()["detail"])
        except SSEError as exc:
            raise CommandError(
                f"The server's log stream at {path} is no event stream: {exc}"
            ) from None


def _line(text: str, run: dict[str, Any] | None) -> str:
    """One log line as ``logs --follow`` prints it: the text, or with ``run`` a JSON line
    ``{"run": 7, "stage": "detect", "line": "..."}``."""
    if run is None:
        return text + "\n"
    return json.dumps({"run": run["id"], "stage": run["stage"], "line": text}) + "\n"
