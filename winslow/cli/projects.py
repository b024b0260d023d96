"""``winslow project ...`` and ``winslow logs``: create, steer, inspect and wait for
projects, their tokens and triggers, and follow what their runs print.

A project is a pipeline applied to one input; steering (start, pause, resume, kill) asks
the server for a transition and prints the state it answers with. What a run wrote (its
log, its parsed series, its resource usage) is read from the chosen run: by default the
project's latest, else the latest of ``--stage`` or the one ``--run`` names.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from winslow.cli.client import ApiClient, CommandError
from winslow.cli.helpers import (
    JsonOpt,
    WinslowTyper,
    add_time_column,
    all_pages,
    api_client,
    done,
    emit,
    err,
    fail,
    out,
    pairs_text,
    parse_pairs,
    query_flag,
    short_time,
    time_after,
)
from winslow.cli.logs import pick_run
from winslow.core.logformat import escape_name
from winslow.core.states import ProjectState
from winslow.units import counted, format_duration, format_megabytes

project_app = WinslowTyper(no_args_is_help=True, help="Projects: a pipeline applied to one input.")
project_token_app = WinslowTyper(
    no_args_is_help=True,
    help="Project tokens: let a script trigger one project (`winslow project trigger`).",
)
project_app.add_typer(project_token_app, name="token")

TRIGGER_HEADER = "X-Winslow-Trigger-Token"
"""The header that carries a project token to the trigger endpoint."""

WAIT_POLL_SECONDS = 0.5
"""How often ``winslow project wait`` asks for the project's state, seconds."""

# -- how a project looks ------------------------------------------------------------------


def _project_line(p: dict[str, Any]) -> list[str]:
    return [
        p["name"],
        p["pipeline"],
        p["state"],
        ",".join(p["current_stages"]),
        ",".join(p["labels"]),
        p.get("state_reason") or "",
    ]


def _print_state(d: dict[str, Any]) -> None:
    """Print ``name: state (reason)``: what a steering command or ``wait`` got to."""
    out.print(f"{d['name']}: {d['state']} ({d.get('state_reason') or ''})", markup=False)


def _print_project(p: dict[str, Any]) -> None:
    out.print(f"[bold]{p['name']}[/bold]  ({p['id']})  pipeline {p['pipeline']}")
    out.print(f"state: [bold]{p['state']}[/bold]  {p.get('state_reason') or ''}", highlight=False)
    if p["labels"]:
        out.print("labels: " + ", ".join(p["labels"]), markup=False)
    if p["variables"]:
        out.print("variables: " + pairs_text(p["variables"]), markup=False)
    _print_runs(p.get("runs") or [])
    if p.get("hold_after"):
        out.print(
            "pauses after stage " + ", ".join(p["hold_after"]) + " (only this stage)",
            markup=False,
        )
    failed = [r for r in p.get("runs") or [] if r["state"] in ("failed", "lost") and r["log_tail"]]
    if p["state"] in ("failed", "failing") and failed:
        out.print(f"last lines of run {failed[-1]['id']}'s log:")
        for line in failed[-1]["log_tail"]:
            out.print("  " + line, markup=False, highlight=False)


def _print_runs(runs: list[dict[str, Any]]) -> None:
    """Print the runs' table, then a line per run with its reason, results or one-run
    overrides: free text, which a column of an 80-column table would squeeze to nothing."""
    if not runs:
        out.print("runs: none yet", markup=False)  # a bare header reads like a failure
        return
    table = Table(box=None, pad_edge=False)
    table.add_column("RUN", no_wrap=True)
    table.add_column("STAGE", overflow="fold")
    table.add_column("TRY", no_wrap=True)
    table.add_column("STATE", overflow="fold", min_width=len("succeeded"))
    table.add_column("NODE", overflow="fold")
    add_time_column(table, "STARTED")
    table.add_column("ENDED", no_wrap=True)
    table.add_column("EXIT", no_wrap=True)
    for run in runs:
        state = run["state"] + (" (superseded)" if run["superseded"] else "")
        combination = run.get("combination") or {}
        # Text, not markup: a sweep's `[fps=25]` would read as a style tag and vanish.
        stage = Text(run["stage"] + (f" [{pairs_text(combination)}]" if combination else ""))
        table.add_row(
            str(run["id"]),
            stage,
            str(run["attempt"]),
            state,
            run["node"] or "",
            short_time(run["started_at"]),
            time_after(run["ended_at"], run["started_at"]),
            "" if run["exit_code"] is None else str(run["exit_code"]),
        )
    out.print(table)
    for run in runs:
        notes = [run["reason"]] if run["reason"] else []
        if run.get("results"):
            notes.append("results " + pairs_text(run["results"]))
        if run.get("overrides"):
            notes.append("for this run only: " + _overrides_text(run["overrides"]))
        if notes:
            line = f"run {run['id']} ({run['stage']}): " + "; ".join(notes)
            out.print(line, markup=False, highlight=False)


def _overrides_text(overrides: dict[str, Any]) -> str:
    words = []
    if overrides.get("like_run") is not None:
        words.append(f"as run {overrides['like_run']} was")
    if overrides.get("variables"):
        words.append(pairs_text(overrides["variables"]))
    if overrides.get("image"):
        words.append(f"image {overrides['image']}")
    if overrides.get("resources"):
        words.append(pairs_text(overrides["resources"]))
    if overrides.get("comment"):
        words.append(repr(overrides["comment"]))
    return ", ".join(words)


def _running_progress(api: ApiClient, ref: str, project: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the progress of each running run that reported some; a failed ask is skipped."""
    found = []
    for run in project.get("runs") or []:
        if run["state"] != "running":
            continue
        try:
            seen = api.get(f"/projects/{ref}/runs/{run['id']}/progress")
        except CommandError:
            continue  # Progress is extra; the project itself was shown.
        if seen.get("percent") is not None:
            found.append(seen | {"stage": run["stage"]})
    return found


def _progress_line(seen: dict[str, Any]) -> str:
    """``run 7 (detect): 45 % · about 12 min left``."""
    text = f"run {seen['run']} ({seen['stage']}): {seen['percent']:g} %"
    left = seen.get("seconds_left")
    return text if left is None else f"{text} · {_time_left(left)}"


def _time_left(seconds: int) -> str:
    """``about 1 h 15 min left``, to the minute, as the console says it."""
    if seconds < 60:
        return "under a minute left"
    return f"about {format_duration(round(seconds / 60) * 60, coarse=True)} left"


def _retention_words(policy: dict[str, Any] | None) -> str:
    if policy is None:
        return "the pipeline's (and its stages')"
    words = []
    if policy.get("keep_succeeded") is not None:
        words.append(f"keep the latest {policy['keep_succeeded']} succeeded")
    if not policy.get("keep_failed", True):
        words.append("drop failed")
    return ", ".join(words) or "keep every workspace"


# -- create, list, show -------------------------------------------------------------------


@project_app.command("create")
def project_create(
    name: str,
    pipeline: Annotated[str, typer.Option("--pipeline", "-p", help="Pipeline to follow.")],
    label: Annotated[list[str], typer.Option("--label", "-l", help="A label (repeatable).")] = [],
    var: Annotated[list[str], typer.Option("--var", "-v", help="NAME=VALUE (repeatable).")] = [],
    start: Annotated[bool, typer.Option(help="Start it at once.")] = False,
    group: Annotated[
        str | None,
        typer.Option(help="A group of yours: it gets --group-role, its quota holds the runs."),
    ] = None,
    group_role: Annotated[
        str, typer.Option(help="The group's role: member, maintainer or owner.")
    ] = "maintainer",
    public: Annotated[bool, typer.Option(help="Every signed-in user may read it.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a project from a pipeline; you own it."""
    variables = parse_pairs(var, "--var")
    body: dict[str, Any] = {
        "name": name,
        "pipeline": pipeline,
        "labels": label,
        "variables": variables,
        "start": start,
    }
    if group is not None:
        body.update(group=group, group_role=group_role)
    if public:
        body["public"] = True
    with api_client() as api:
        data = api.post("/projects", body)
    emit(data, as_json, _print_project)


@project_app.command("list")
def project_list(
    state: Annotated[str | None, typer.Option(help="Only projects in this state.")] = None,
    label: Annotated[str | None, typer.Option(help="Only projects with this label.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List projects, optionally filtered by state and label."""
    params = {k: v for k, v in {"state": state, "label": label}.items() if v}
    with api_client() as api:
        data = all_pages(api, "/projects", params)

    def human(d: dict[str, Any]) -> None:
        if not d["data"]:
            out.print(_no_projects(params), markup=False)
            return
        table = Table("NAME", "PIPELINE", "STATE", "CURRENT", "LABELS", "REASON", box=None)
        for p in d["data"]:
            table.add_row(*_project_line(p))
        out.print(table)

    emit(data, as_json, human)


def _no_projects(filters: dict[str, str]) -> str:
    """Why ``project list`` shows nothing: a bare header read like a command that failed."""
    if not filters:
        return "No projects yet; `winslow project create NAME --pipeline P` makes one."
    said = " and ".join(f"{name} {value}" for name, value in filters.items())
    return f"No project with {said}."


@project_app.command("show")
def project_show(project: str, as_json: JsonOpt = False) -> None:
    """Show a project: state, variables, every run, and how far running runs are."""
    progress: list[dict[str, Any]] = []
    gate: dict[str, Any] | None = None
    with api_client() as api:
        data = api.get(f"/projects/{project}")
        if not as_json:
            progress = _running_progress(api, project, data)
            if data["state"] == "awaiting_input" and (data.get("waiting_for") or {}).get("gate"):
                gate = api.get(f"/projects/{project}/gate")
    emit(data, as_json, _print_project)
    for seen in progress:
        out.print(_progress_line(seen), markup=False, highlight=False)
    if gate is not None:
        _print_gate(project, gate)


def _print_gate(project: str, gate: dict[str, Any]) -> None:
    """The gate's description and questions, and the command that answers them."""
    out.print(f"gate '{gate['stage']}' waits for a person:", markup=False)
    for line in gate["description"].strip().splitlines():
        out.print("  " + line, markup=False, highlight=False)
    for item in gate["inputs"]:
        kind = item["type"]
        if kind == "number" and (item["min"] is not None or item["max"] is not None):
            low = "" if item["min"] is None else f"{item['min']:g}"
            high = "" if item["max"] is None else f"{item['max']:g}"
            kind += f" {low}..{high}"
        elif kind == "choice":
            kind += " " + "|".join(item["choices"])
        value = "required" if item["value"] is None else f"now {item['value']!r}"
        help_text = f": {item['help']}" if item["help"] else ""
        out.print(f"  {item['name']} ({kind}, {value}){help_text}", markup=False, highlight=False)
    if gate["review"]:
        paths = [
            ("pool:" if f["source"] == "pool" else "") + escape_name(f["path"])
            for f in gate["review"]
        ]
        out.print("  review: " + ", ".join(paths), markup=False)
    required = " ".join(f"--set {item['name']}=..." for item in gate["inputs"] if item["required"])
    if required:
        out.print(f"answer and go on: winslow project resume {project} {required}", markup=False)
    elif gate["inputs"]:
        out.print(
            f"go on with these answers: winslow project resume {project} "
            "(--set NAME=VALUE changes one)",
            markup=False,
        )
    else:
        out.print(f"go on: winslow project resume {project}", markup=False)


# -- steering -----------------------------------------------------------------------------


def _steer(project: str, verb: str, as_json: bool, body: Any = None) -> None:
    with api_client() as api:
        data = api.post(f"/projects/{project}/{verb}", body)
    emit(data, as_json, _print_state)


@project_app.command("start")
def project_start(project: str, as_json: JsonOpt = False) -> None:
    """Start an idle project."""
    _steer(project, "start", as_json)


@project_app.command("pause")
def project_pause(project: str, as_json: JsonOpt = False) -> None:
    """Pause after the stage that runs now."""
    _steer(project, "pause", as_json)


@project_app.command("resume")
def project_resume(
    project: str,
    from_stage: Annotated[
        str | None, typer.Option("--from", help="Start again from this stage.")
    ] = None,
    var: Annotated[
        list[str],
        typer.Option("--var", "-v", help="NAME=VALUE for that stage's next run only (repeatable)."),
    ] = [],
    image: Annotated[str | None, typer.Option(help="Image for that run only.")] = None,
    cpus: Annotated[float | None, typer.Option(help="CPUs for that run only.")] = None,
    memory: Annotated[
        str | None, typer.Option(help="Memory for that run only: 8G, 512M, or a number of MiB.")
    ] = None,
    gpus: Annotated[int | None, typer.Option(help="GPUs for that run only.")] = None,
    comment: Annotated[str, typer.Option(help="Why; kept with the run.")] = "",
    only: Annotated[bool, typer.Option("--only", help="Run only this stage, then pause.")] = False,
    like: Annotated[
        int | None,
        typer.Option("--like", help="Redo as this earlier run was (its values and resources)."),
    ] = None,
    answer: Annotated[
        list[str],
        typer.Option(
            "--set",
            "-s",
            help="NAME=VALUE: answer a question of the gate this resume passes (repeatable); "
            "it becomes a project variable.",
        ),
    ] = [],
    as_json: JsonOpt = False,
) -> None:
    """Go on, or start again from an earlier stage (earlier runs are kept).

    With --var, --image, --cpus, --memory, --gpus or --comment, the stage's next run
    differs for that run only; the project's own values stay as they are. At a gate that
    asks questions, --set answers them (`winslow project show` lists them).
    """
    body: dict[str, Any] = {"from_stage": from_stage, "only": only, "like_run": like}
    if answer:
        body["answers"] = parse_pairs(answer, "--set")
    resources = {
        key: value
        for key, value in (("cpus", cpus), ("memory", memory), ("gpus", gpus))
        if value is not None
    }
    if var or image or resources or comment:
        body["overrides"] = {
            "variables": parse_pairs(var, "--var"),
            "image": image,
            "resources": resources,
            "comment": comment,
        }
    _steer(project, "resume", as_json, body)


@project_app.command("kill")
def project_kill(project: str, as_json: JsonOpt = False) -> None:
    """Stop the stage that runs now; the project pauses."""
    _steer(project, "kill", as_json)


# -- changing a project -------------------------------------------------------------------


@project_app.command("env")
def project_env(
    project: str,
    assign: Annotated[list[str], typer.Argument(help="NAME=VALUE to set.")] = [],
    unset: Annotated[list[str], typer.Option("--unset", help="Variable to remove.")] = [],
    as_json: JsonOpt = False,
) -> None:
    """Show, set or unset variables (stages started afterwards see them)."""
    values = parse_pairs(assign, "NAME=VALUE")
    with api_client() as api:
        if values or unset:
            data = api.patch(f"/projects/{project}/variables", {"set": values, "unset": unset})
        else:
            data = api.get(f"/projects/{project}")

    emit(data["variables"] if as_json else data, as_json, _print_variables)


def _print_variables(project: dict[str, Any]) -> None:
    """The project's variables, then the pipeline's defaults it leaves as they are: both
    are what its stages see, and an empty answer looked like a failed command."""
    for name, value in project["variables"].items():
        out.print(f"{name}={value}", markup=False, highlight=False)
    for name, value in project.get("variable_defaults", {}).items():
        out.print(f"{name}={value}  (the pipeline's default)", markup=False, highlight=False)
    if not project["variables"] and not project.get("variable_defaults"):
        out.print("No variables: none set, and the pipeline gives no defaults.", markup=False)


@project_app.command("rename")
def project_rename(project: str, new_name: str, as_json: JsonOpt = False) -> None:
    """Give a project a new name."""
    with api_client() as api:
        data = api.patch(f"/projects/{project}", {"name": new_name})
    emit(data, as_json, lambda d: out.print(f"renamed to {d['name']}", markup=False))


@project_app.command("label")
def project_label(
    project: str,
    add: Annotated[list[str], typer.Option("--add", help="Label to add.")] = [],
    remove: Annotated[list[str], typer.Option("--remove", help="Label to remove.")] = [],
    as_json: JsonOpt = False,
) -> None:
    """Add or remove labels."""
    with api_client() as api:
        data = api.patch(f"/projects/{project}", {"labels_add": add, "labels_remove": remove})
    emit(data, as_json, lambda d: out.print("labels: " + ", ".join(d["labels"]), markup=False))


@project_app.command("pipeline")
def project_pipeline(project: str, pipeline: str, as_json: JsonOpt = False) -> None:
    """Make the project follow another (or the updated) pipeline from now on."""
    with api_client() as api:
        data = api.patch(f"/projects/{project}", {"pipeline": pipeline})
    emit(data, as_json, lambda d: out.print(f"follows {d['pipeline']}", markup=False))


@project_app.command("retention")
def project_retention(
    project: str,
    keep_succeeded: Annotated[
        int | None,
        typer.Option(
            "--keep-succeeded",
            min=0,
            help="Keep the workspaces of this many latest succeeded runs.",
        ),
    ] = None,
    drop_failed: Annotated[
        bool, typer.Option("--drop-failed", help="Prune failed, lost and cancelled runs too.")
    ] = False,
    clear: Annotated[
        bool, typer.Option("--clear", help="Follow the pipeline's retention again.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show or set the project's own workspace retention (it wins over the pipeline's).

    Pruning happens after each run ends; `winslow gc` then frees the unshared contents.
    """
    if clear and (keep_succeeded is not None or drop_failed):
        raise typer.BadParameter(
            "--clear cannot go with --keep-succeeded or --drop-failed", param_hint="--clear"
        )
    with api_client() as api:
        if clear:
            data = api.patch(f"/projects/{project}", {"retention": None})
        elif keep_succeeded is not None or drop_failed:
            policy = {"keep_succeeded": keep_succeeded, "keep_failed": not drop_failed}
            data = api.patch(f"/projects/{project}", {"retention": policy})
        else:
            data = api.get(f"/projects/{project}")
    emit(
        data.get("retention") if as_json else data,
        as_json,
        lambda d: out.print(f"retention: {_retention_words(d.get('retention'))}", markup=False),
    )


@project_app.command("history")
def project_history(project: str, as_json: JsonOpt = False) -> None:
    """Every command and state change of the project: who, when, what."""
    with api_client() as api:
        data = api.get(f"/projects/{project}/history")

    def human(d: dict[str, Any]) -> None:
        for e in d["data"]:
            out.print(
                f"{short_time(e['at'])}  {e['actor']:<10} {e['message']}",
                markup=False,
                highlight=False,
            )

    emit(data, as_json, human)


@project_app.command("delete")
def project_delete(
    project: str,
    kill: Annotated[bool, typer.Option("--kill", help="Kill running stages first.")] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask first (it asks only at a terminal).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a project with its runs, history, workspaces and logs."""
    with api_client() as api:
        if not yes and sys.stdin.isatty():
            # Hours of GPU work go with it: a mistyped name should not be enough.
            shown = api.get(f"/projects/{project}")
            runs = counted(len(shown.get("runs") or []), "run")
            asked = f"Delete project '{shown['name']}' with its {runs}, history, workspaces"
            if not typer.confirm(asked + " and logs?"):
                fail("Nothing deleted.")
        api.delete(f"/projects/{project}", params={"kill": query_flag(kill)})
    done({"project": project, "deleted": True}, as_json, f"project '{project}' deleted")


# -- project tokens and triggers ----------------------------------------------------------


@project_app.command("trigger")
def project_trigger(
    project: str,
    token: Annotated[
        str,
        typer.Option(
            "--token",
            envvar="WINSLOW_TRIGGER_TOKEN",
            help="A project token with the trigger capability.",
        ),
    ],
    from_stage: Annotated[
        str | None, typer.Option("--from", help="Redo this stage and what follows.")
    ] = None,
    comment: Annotated[str, typer.Option(help="Why; it lands in the history.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Resume a project with a project token, as a script outside Winslow would."""
    with api_client() as api:
        # The trigger endpoint takes the project token only; an API token must not ride along.
        api.http.headers.pop("Authorization", None)
        data = api.post(
            f"/projects/{project}/trigger",
            {"from_stage": from_stage, "comment": comment},
            headers={TRIGGER_HEADER: token},
        )
    emit(
        data,
        as_json,
        lambda d: out.print(
            f"{d['project']}: {d['state']} ({d['message']})", markup=False, highlight=False
        ),
    )


@project_token_app.command("create")
def project_token_create(
    project: str,
    name: str,
    capability: Annotated[
        list[str], typer.Option("--capability", "-c", help="What it may do (repeatable).")
    ] = ["trigger"],
    as_json: JsonOpt = False,
) -> None:
    """Create a project token and print it once (stdout); only its hash is kept."""
    with api_client() as api:
        data = api.post(f"/projects/{project}/tokens", {"name": name, "capabilities": capability})
        url = f"{api.base}/projects/{data['project']}/trigger"

    def human(d: dict[str, Any]) -> None:
        sys.stdout.write(d["token"] + "\n")
        body = json.dumps({"from_stage": None, "comment": "new data arrived"})
        err.print(
            f"Token '{d['name']}' of project '{project}' ({', '.join(d['capabilities'])}). "
            "It is shown this once; keep it where your script can read it.\n"
            "Trigger the project with:\n"
            f"  curl -fsS -X POST -H '{TRIGGER_HEADER}: {d['token']}' "
            f"-H 'Content-Type: application/json' -d '{body}' {url}\n"
            f"or: winslow project trigger {project} --token <token> [--from STAGE]",
            markup=False,
            highlight=False,
        )

    emit(data, as_json, human)


@project_token_app.command("list")
def project_token_list(project: str, as_json: JsonOpt = False) -> None:
    """List the project's tokens (names only; tokens are never shown again)."""
    with api_client() as api:
        data = api.get(f"/projects/{project}/tokens")

    def human(d: dict[str, Any]) -> None:
        table = Table("NAME", "CAPABILITIES", box=None)
        add_time_column(table, "CREATED")
        add_time_column(table, "REVOKED")
        for t in d["data"]:
            table.add_row(
                t["name"],
                ", ".join(t["capabilities"]),
                short_time(t["created_at"]),
                short_time(t["revoked_at"]),
            )
        out.print(table)

    emit(data, as_json, human)


@project_token_app.command("revoke")
def project_token_revoke(project: str, name: str, as_json: JsonOpt = False) -> None:
    """Revoke a project token at once; triggers with it are refused from now on."""
    with api_client() as api:
        api.delete(f"/projects/{project}/tokens/{name}")
    done(
        {"project": project, "name": name, "revoked": True},
        as_json,
        f"token '{name}' of project '{project}' revoked",
    )


# -- what a run wrote: series, usage, logs ------------------------------------------------


def _run_part(
    project: str, stage: str | None, run: int | None, part: str, csv: bool
) -> dict[str, Any] | None:
    """Fetch ``part`` (series, usage) of the chosen run; with ``csv``, print its CSV and
    return None."""
    with api_client() as api:
        chosen = pick_run(api, project, stage, run)
        path = f"/projects/{project}/runs/{chosen['id']}/{part}"
        if csv:
            sys.stdout.write(api.request("GET", path + ".csv").text)
            return None
        data: dict[str, Any] = api.get(path)
        return data


@project_app.command("series")
def project_series(
    project: str,
    stage: Annotated[str | None, typer.Option(help="The latest run of this stage.")] = None,
    run: Annotated[int | None, typer.Option(help="This run.")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print every point as CSV.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show what a run's log parsers found: each series, its size and its latest values."""
    data = _run_part(project, stage, run, "series", csv)
    if data is None:
        return

    def human(d: dict[str, Any]) -> None:
        if not d["series"]:
            out.print(f"run {d['run']} ({d['stage']}) has no log parsers", markup=False)
        for series in d["series"]:
            points = series["points"]
            line = f"{series['name']}: {len(points)} points" + (
                " (thinned)" if series.get("truncated") else ""
            )
            if points:
                latest = points[-1]
                line += f"; latest at {short_time(latest['at'])}: " + pairs_text(latest["values"])
            out.print(line, markup=False, highlight=False)

    emit(data, as_json, human)


@project_app.command("usage")
def project_usage(
    project: str,
    stage: Annotated[str | None, typer.Option(help="The latest run of this stage.")] = None,
    run: Annotated[int | None, typer.Option(help="This run.")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print every sample as CSV.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show what a run used: CPU, memory and GPU, sampled while it ran."""
    data = _run_part(project, stage, run, "usage", csv)
    if data is None:
        return

    def human(d: dict[str, Any]) -> None:
        samples = d["samples"]
        out.print(f"run {d['run']}: {len(samples)} samples", markup=False)
        peak = d.get("peak") or {}
        words = []
        if peak.get("cpu_percent") is not None:
            words.append(f"CPU {peak['cpu_percent']:.0f} % of one core")
        if peak.get("memory_mb") is not None:
            words.append(f"memory {format_megabytes(peak['memory_mb'])}")
        if peak.get("gpu_percent") is not None:
            words.append(f"GPU {peak['gpu_percent']:.0f} %")
        if peak.get("gpu_memory_mb") is not None:
            words.append(f"GPU memory {format_megabytes(peak['gpu_memory_mb'])}")
        if words:
            out.print("peak: " + ", ".join(words), markup=False, highlight=False)

    emit(data, as_json, human)


# -- waiting ------------------------------------------------------------------------------


WAIT_EXIT_CODES = {
    "succeeded": 0,
    "failing": 1,
    "failed": 1,
    "paused": 3,
    "awaiting_input": 3,
    "idle": 3,
}
"""Where ``winslow project wait`` stops by default, and the exit code each state gives:
a failing project (a branch failed, others still run) already needs a person, and so
does an idle one (never started: nothing moves until someone starts it)."""

WAIT_TIMEOUT_EXIT = 4
"""Exit code of ``winslow project wait`` when the project got nowhere in time."""

PROJECT_STATES = tuple(state.value for state in ProjectState)
"""The states ``--state`` accepts."""


@project_app.command("wait")
def project_wait(
    project: str,
    state: Annotated[
        list[str], typer.Option("--state", "-s", help="State to wait for (repeatable).")
    ] = [],
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 3600,
    as_json: JsonOpt = False,
) -> None:
    """Wait until the project needs a person or is done (or reaches a given --state).

    Exit codes: 0 succeeded; 1 failed, or failing (a branch failed while others still
    run); 2 bad usage; 3 a person is needed (paused, awaiting_input, or idle: never
    started); 4 timeout. With --state it waits for those states only and exits 0 once
    one is reached. The project is printed (--json: the API's JSON) whenever it stops
    waiting before the timeout.
    """
    unknown = sorted(set(state) - set(PROJECT_STATES))
    if unknown:
        raise typer.BadParameter(
            f"unknown state {', '.join(unknown)}; one of: {', '.join(PROJECT_STATES)}",
            param_hint="--state",
        )
    wanted = set(state) or set(WAIT_EXIT_CODES)
    deadline = time.monotonic() + timeout
    with api_client() as api:
        while True:
            data = api.get(f"/projects/{project}")
            if data["state"] in wanted:
                break
            if time.monotonic() > deadline:
                fail(
                    f"Project '{project}' is still {data['state']} after {timeout:g} s; "
                    "wait again, or see `winslow project show`.",
                    WAIT_TIMEOUT_EXIT,
                )
            time.sleep(WAIT_POLL_SECONDS)
    emit(data, as_json, _print_state)
    code = 0 if state else WAIT_EXIT_CODES[data["state"]]
    if code:
        raise typer.Exit(code)
