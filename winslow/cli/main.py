"""``winslow <noun> <verb>``: every command a person or a script needs.

Commands that show something take ``--json`` and then print only the API's shape on
stdout. Errors go to stderr as ``error: <message>``; exit codes: 0 done (nothing to do
included), 1 the operation failed, 2 bad usage.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
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

from winslow.cli.client import ApiClient, CommandError
from winslow.cli.transfer import download_url, upload_file
from winslow.errors import PipelineError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Winslow: long GPU pipelines with a person in the loop.",
)
pipeline_app = typer.Typer(no_args_is_help=True, help="Pipeline definitions.")
project_app = typer.Typer(no_args_is_help=True, help="Projects: a pipeline applied to one input.")
resources_app = typer.Typer(no_args_is_help=True, help="The resource pool (shared input files).")
workspace_app = typer.Typer(no_args_is_help=True, help="Workspaces of a project's runs.")
token_app = typer.Typer(
    no_args_is_help=True, help="API tokens (run on the server's machine: uses its data folder)."
)
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(project_app, name="project")
app.add_typer(resources_app, name="resources")
app.add_typer(workspace_app, name="workspace")
app.add_typer(token_app, name="token")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON only.")]


def fail(message: str, code: int = 1) -> None:
    err.print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(code)


@contextmanager
def api_client() -> Iterator[ApiClient]:
    api = ApiClient()
    try:
        yield api
    except CommandError as exc:
        fail(exc.message)
    finally:
        api.close()


def emit(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        human(data)


def _parse_pairs(pairs: list[str], option: str) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint=option)
        values[name] = value
    return values


# -- up -----------------------------------------------------------------------------------


@app.command()
def up(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where Winslow keeps its state.")] = None,
) -> None:
    """Start the all-in-one Winslow server (API, engine, local backend, S3)."""
    from winslow.server import serve

    serve(host=host, port=port, data_dir=data_dir)


# -- pipelines ----------------------------------------------------------------------------


@pipeline_app.command("validate")
def pipeline_validate(
    files: Annotated[list[Path], typer.Argument(help="Pipeline YAML files.")],
    as_json: JsonOpt = False,
) -> None:
    """Check pipeline files; print every problem with file, line and field."""
    from winslow.pipeline.load import load_pipeline_file

    report: dict[str, list[dict[str, Any]]] = {}
    for file in files:
        if not file.is_file():
            fail(f"No file '{file}'.")
        try:
            load_pipeline_file(file)
            report[str(file)] = []
        except PipelineError as exc:
            report[str(file)] = [p.__dict__ for p in exc.problems]
    bad = any(report.values())
    if as_json:
        emit(report, True, print)
    else:
        for checked, problems in report.items():
            if problems:
                for problem in problems:
                    err.print(f"error: {_problem_words(problem)}", markup=False, highlight=False)
            else:
                out.print(f"{checked}: valid", markup=False)
    if bad:
        raise typer.Exit(1)


def _problem_words(problem: dict[str, Any]) -> str:
    where = problem["file"]
    if problem.get("line") is not None:
        where += f":{problem['line']}"
        if problem.get("column") is not None:
            where += f":{problem['column']}"
    field = f" {problem['field']}:" if problem.get("field") else ""
    return f"{where}:{field} {problem['message']}"


@pipeline_app.command("list")
def pipeline_list(as_json: JsonOpt = False) -> None:
    """List the pipelines, and the files that failed to load."""
    with api_client() as api:
        data = api.get("/pipelines")

    def human(d: dict[str, Any]) -> None:
        table = Table("NAME", "STAGES", "DESCRIPTION", box=None)
        for p in d["data"]:
            table.add_row(p["name"], " → ".join(p["stages"]), p["description"])
        out.print(table)
        for file, problems in d["errors"].items():
            for problem in problems:
                err.print(f"warning: {file} is broken: {_problem_words(problem)}", markup=False)

    emit(data, as_json, human)


@pipeline_app.command("show")
def pipeline_show(name: str, as_json: JsonOpt = False) -> None:
    """Show a pipeline's definition."""
    with api_client() as api:
        data = api.get(f"/pipelines/{name}")
    emit(
        data,
        as_json,
        lambda d: out.print(
            d.get("text") or json.dumps(d["definition"], indent=2), markup=False, highlight=False
        ),
    )


@pipeline_app.command("apply")
def pipeline_apply(
    file: Path,
    name: Annotated[str | None, typer.Option(help="Name; default: the file's `name:`.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or replace a pipeline from a YAML file (validated first)."""
    from winslow.pipeline.load import load_pipeline_file

    try:
        pipeline = load_pipeline_file(file)
    except PipelineError as exc:
        for problem in exc.problems:
            err.print(f"error: {problem}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    with api_client() as api:
        data = api.put(f"/pipelines/{name or pipeline.name}", {"text": file.read_text()})
    emit(data, as_json, lambda d: out.print(f"pipeline '{d['name']}' applied", markup=False))


@pipeline_app.command("import")
def pipeline_import(
    file: Annotated[Path, typer.Argument(help="A pipeline file of the first Winslow.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the YAML here, not to stdout.")
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Also apply it, like `winslow pipeline apply`.")
    ] = False,
) -> None:
    """Convert a first-Winslow pipeline file to Winslow's format; warn about what is lost."""
    from winslow.pipeline.legacy import convert
    from winslow.pipeline.load import read_pipeline_file

    if not file.is_file():
        fail(f"No file '{file}'.")
    try:
        conversion = convert(read_pipeline_file(file), str(file))
    except PipelineError as exc:
        for problem in exc.problems:
            err.print(f"error: {problem}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    for sentence in conversion.unmapped:
        err.print(f"warning: {sentence}", markup=False, highlight=False)
    if output is None:
        sys.stdout.write(conversion.yaml)
    else:
        output.write_text(conversion.yaml, encoding="utf-8")
        err.print(f"wrote {output}", markup=False, highlight=False)
    if apply:
        name = conversion.pipeline["name"]
        with api_client() as api:
            data = api.put(f"/pipelines/{name}", {"text": conversion.yaml})
        err.print(f"pipeline '{data['name']}' applied", markup=False, highlight=False)


@pipeline_app.command("delete")
def pipeline_delete(name: str) -> None:
    """Delete a pipeline definition (projects keep the definition they follow)."""
    with api_client() as api:
        api.delete(f"/pipelines/{name}")
    out.print(f"pipeline '{name}' deleted", markup=False)


# -- projects -----------------------------------------------------------------------------


def _project_line(p: dict[str, Any]) -> list[str]:
    return [
        p["name"],
        p["pipeline"],
        p["state"],
        ",".join(p["current_stages"]),
        ",".join(p["labels"]),
        p.get("state_reason") or "",
    ]


def _print_project(p: dict[str, Any]) -> None:
    out.print(f"[bold]{p['name']}[/bold]  ({p['id']})  pipeline {p['pipeline']}")
    out.print(f"state: [bold]{p['state']}[/bold]  {p.get('state_reason') or ''}", highlight=False)
    if p["labels"]:
        out.print("labels: " + ", ".join(p["labels"]), markup=False)
    if p["variables"]:
        out.print(
            "variables: " + ", ".join(f"{k}={v}" for k, v in p["variables"].items()), markup=False
        )
    table = Table(
        "RUN", "STAGE", "ATTEMPT", "STATE", "NODE", "STARTED", "ENDED", "EXIT", "REASON", box=None
    )
    for run in p.get("runs") or []:
        state = run["state"] + (" (superseded)" if run["superseded"] else "")
        combination = run.get("combination") or {}
        stage = run["stage"] + (f" [{_pairs_text(combination)}]" if combination else "")
        table.add_row(
            str(run["id"]),
            stage,
            str(run["attempt"]),
            state,
            run["node"] or "",
            _short_time(run["started_at"]),
            _short_time(run["ended_at"]),
            "" if run["exit_code"] is None else str(run["exit_code"]),
            run["reason"] or "",
        )
    out.print(table)
    for run in p.get("runs") or []:
        notes = []
        if run.get("results"):
            notes.append("results " + _pairs_text(run["results"]))
        if run.get("overrides"):
            notes.append("for this run only: " + _overrides_text(run["overrides"]))
        if notes:
            line = f"run {run['id']} ({run['stage']}): " + "; ".join(notes)
            out.print(line, markup=False, highlight=False)
    if p.get("hold_after"):
        out.print(
            "pauses after stage " + ", ".join(p["hold_after"]) + " (only this stage)",
            markup=False,
        )
    failed = [r for r in p.get("runs") or [] if r["state"] in ("failed", "lost") and r["log_tail"]]
    if p["state"] == "failed" and failed:
        out.print(f"last lines of run {failed[-1]['id']}'s log:")
        for line in failed[-1]["log_tail"]:
            out.print("  " + line, markup=False, highlight=False)


def _pairs_text(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def _overrides_text(overrides: dict[str, Any]) -> str:
    words = []
    if overrides.get("like_run") is not None:
        words.append(f"as run {overrides['like_run']} was")
    if overrides.get("variables"):
        words.append(_pairs_text(overrides["variables"]))
    if overrides.get("image"):
        words.append(f"image {overrides['image']}")
    if overrides.get("resources"):
        words.append(_pairs_text(overrides["resources"]))
    if overrides.get("comment"):
        words.append(repr(overrides["comment"]))
    return ", ".join(words)


def _short_time(value: str | None) -> str:
    return value[:19].replace("T", " ") if value else ""


@project_app.command("create")
def project_create(
    name: str,
    pipeline: Annotated[str, typer.Option("--pipeline", "-p", help="Pipeline to follow.")],
    label: Annotated[list[str], typer.Option("--label", "-l", help="A label (repeatable).")] = [],
    var: Annotated[list[str], typer.Option("--var", "-v", help="NAME=VALUE (repeatable).")] = [],
    start: Annotated[bool, typer.Option(help="Start it at once.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a project from a pipeline."""
    variables = _parse_pairs(var, "--var")
    with api_client() as api:
        data = api.post(
            "/projects",
            {
                "name": name,
                "pipeline": pipeline,
                "labels": label,
                "variables": variables,
                "start": start,
            },
        )
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
        data = api.get("/projects", params=params)

    def human(d: dict[str, Any]) -> None:
        table = Table("NAME", "PIPELINE", "STATE", "CURRENT", "LABELS", "REASON", box=None)
        for p in d["data"]:
            table.add_row(*_project_line(p))
        out.print(table)

    emit(data, as_json, human)


@project_app.command("show")
def project_show(project: str, as_json: JsonOpt = False) -> None:
    """Show a project: state, variables, every run, and how far running runs are."""
    progress: list[dict[str, Any]] = []
    with api_client() as api:
        data = api.get(f"/projects/{project}")
        if not as_json:
            progress = _running_progress(api, project, data)
    emit(data, as_json, _print_project)
    for seen in progress:
        out.print(_progress_line(seen), markup=False, highlight=False)


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
    if seconds < 60:
        return "under a minute left"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {minutes} min left"
    return f"about {minutes // 60} h {minutes % 60:02d} min left"


def _steer(project: str, verb: str, as_json: bool, body: Any = None) -> None:
    with api_client() as api:
        data = api.post(f"/projects/{project}/{verb}", body)
    emit(
        data,
        as_json,
        lambda d: out.print(
            f"{d['name']}: {d['state']} ({d.get('state_reason') or ''})", markup=False
        ),
    )


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
        str | None, typer.Option(help="Memory for that run only: 8G, 512M, or MB.")
    ] = None,
    gpus: Annotated[int | None, typer.Option(help="GPUs for that run only.")] = None,
    comment: Annotated[str, typer.Option(help="Why; kept with the run.")] = "",
    only: Annotated[bool, typer.Option("--only", help="Run only this stage, then pause.")] = False,
    like: Annotated[
        int | None,
        typer.Option("--like", help="Redo as this earlier run was (its values and resources)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Go on, or start again from an earlier stage (earlier runs are kept).

    With --var, --image, --cpus, --memory, --gpus or --comment, the stage's next run
    differs for that run only; the project's own values stay as they are.
    """
    body: dict[str, Any] = {"from_stage": from_stage, "only": only, "like_run": like}
    resources = {
        key: value
        for key, value in (("cpus", cpus), ("memory", memory), ("gpus", gpus))
        if value is not None
    }
    if var or image or resources or comment:
        body["overrides"] = {
            "variables": _parse_pairs(var, "--var"),
            "image": image,
            "resources": resources,
            "comment": comment,
        }
    _steer(project, "resume", as_json, body)


@project_app.command("kill")
def project_kill(project: str, as_json: JsonOpt = False) -> None:
    """Stop the stage that runs now; the project pauses."""
    _steer(project, "kill", as_json)


@project_app.command("env")
def project_env(
    project: str,
    assign: Annotated[list[str], typer.Argument(help="NAME=VALUE to set.")] = [],
    unset: Annotated[list[str], typer.Option("--unset", help="Variable to remove.")] = [],
    as_json: JsonOpt = False,
) -> None:
    """Show, set or unset variables (stages started afterwards see them)."""
    values = _parse_pairs(assign, "NAME=VALUE")
    with api_client() as api:
        if values or unset:
            data = api.patch(f"/projects/{project}/variables", {"set": values, "unset": unset})
        else:
            data = api.get(f"/projects/{project}")

    def human(d: dict[str, Any]) -> None:
        for name, value in d["variables"].items():
            out.print(f"{name}={value}", markup=False, highlight=False)

    emit(data["variables"] if as_json else data, as_json, human)


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


def _retention_words(policy: dict[str, Any] | None) -> str:
    if policy is None:
        return "the pipeline's (and its stages')"
    words = []
    if policy.get("keep_succeeded") is not None:
        words.append(f"keep the latest {policy['keep_succeeded']} succeeded")
    if not policy.get("keep_failed", True):
        words.append("drop failed")
    return ", ".join(words) or "keep every workspace"


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
                f"{_short_time(e['at'])}  {e['actor']:<10} {e['message']}",
                markup=False,
                highlight=False,
            )

    emit(data, as_json, human)


@project_app.command("delete")
def project_delete(
    project: str,
    kill: Annotated[bool, typer.Option("--kill", help="Kill running stages first.")] = False,
) -> None:
    """Delete a project with its runs, history, workspaces and logs."""
    with api_client() as api:
        api.delete(f"/projects/{project}", params={"kill": str(kill).lower()})
    out.print(f"project '{project}' deleted", markup=False)


# -- project tokens and triggers ----------------------------------------------------------

project_token_app = typer.Typer(
    no_args_is_help=True,
    help="Project tokens: let a script trigger one project (`winslow project trigger`).",
)
project_app.add_typer(project_token_app, name="token")

TRIGGER_HEADER = "X-Winslow-Trigger-Token"


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
        table = Table("NAME", "CAPABILITIES", "CREATED", "REVOKED", box=None)
        for t in d["data"]:
            table.add_row(
                t["name"],
                ", ".join(t["capabilities"]),
                _short_time(t["created_at"]),
                _short_time(t["revoked_at"]),
            )
        out.print(table)

    emit(data, as_json, human)


@project_token_app.command("revoke")
def project_token_revoke(project: str, name: str) -> None:
    """Revoke a project token at once; triggers with it are refused from now on."""
    with api_client() as api:
        api.delete(f"/projects/{project}/tokens/{name}")
    out.print(f"token '{name}' of project '{project}' revoked", markup=False)


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


def _run_part(
    project: str, stage: str | None, run: int | None, part: str, csv: bool
) -> dict[str, Any] | None:
    """Fetch ``part`` (series, usage) of the chosen run; with ``csv``, print its CSV and
    return None."""
    with api_client() as api:
        chosen = _pick_run(api, project, stage, run)
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
                line += f"; latest at {_short_time(latest['at'])}: " + _pairs_text(latest["values"])
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
            words.append(f"memory {peak['memory_mb']:.0f} MB")
        if peak.get("gpu_percent") is not None:
            words.append(f"GPU {peak['gpu_percent']:.0f} %")
        if peak.get("gpu_memory_mb") is not None:
            words.append(f"GPU memory {peak['gpu_memory_mb']:.0f} MB")
        if words:
            out.print("peak: " + ", ".join(words), markup=False, highlight=False)

    emit(data, as_json, human)


# -- logs ---------------------------------------------------------------------------------


def _pick_run(api: ApiClient, project: str, stage: str | None, run: int | None) -> dict[str, Any]:
    data = api.get(f"/projects/{project}")
    runs = data.get("runs") or []
    if run is not None:
        chosen = [r for r in runs if r["id"] == run]
    elif stage is not None:
        chosen = [r for r in runs if r["stage"] == stage]
    else:
        chosen = runs
    if not chosen:
        what = (
            f"run {run}" if run is not None else f"a run of stage '{stage}'" if stage else "a run"
        )
        raise CommandError(
            f"Project '{project}' has no {what} yet; `winslow project show {project}`"
            " lists its runs."
        )
    last: dict[str, Any] = chosen[-1]
    return last


@app.command()
def logs(
    project: str,
    stage: Annotated[str | None, typer.Option(help="Latest run of this stage.")] = None,
    run: Annotated[int | None, typer.Option(help="This run.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
) -> None:
    """Print a run's log (default: the project's latest run)."""
    with api_client() as api:
        chosen = _pick_run(api, project, stage, run)
        path = f"/projects/{project}/runs/{chosen['id']}/logs"
        if not follow:
            sys.stdout.write(api.request("GET", path).text)
            return
        try:
            with api.http.stream(
                "GET", path + "/stream", timeout=httpx.Timeout(10.0, read=None)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise CommandError(response.text)
                event = None
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "log":
                        for text in json.loads(line[6:])["lines"]:
                            sys.stdout.write(text + "\n")
                        sys.stdout.flush()
                    elif line.startswith("data: ") and event == "end":
                        return
        except KeyboardInterrupt:
            return


# -- resources ----------------------------------------------------------------------------


def _files_table(d: dict[str, Any]) -> None:
    if "version" in d:  # a workspace: say which run and version this is
        versions = ", ".join(map(str, d["versions"])) or "none"
        note = f" ({d['note']})" if d.get("note") else ""
        out.print(
            f"run {d['run']} ('{d['stage']}'), workspace version {d['version']}{note}; "
            f"versions: {versions}",
            markup=False,
        )
    table = Table("NAME", "SIZE", "MODIFIED", box=None)
    for f in d["data"]:
        table.add_row(
            f["path"]
            + ("/" if f["is_dir"] else "")
            + (f" -> {f['link']}" if f.get("link") else ""),
            "" if f["is_dir"] else _size(f["size"]),
            _short_time(f["modified"]),
        )
    out.print(table)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@contextmanager
def _progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


@resources_app.command("ls")
def resources_ls(
    path: Annotated[str, typer.Argument()] = "",
    recursive: Annotated[bool, typer.Option("--recursive", "-r")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List a folder of the resource pool."""
    with api_client() as api:
        data = api.get("/resources", params={"path": path, "recursive": str(recursive).lower()})
    emit(data, as_json, _files_table)


@resources_app.command("upload")
def resources_upload(
    local: Path,
    dest: Annotated[str | None, typer.Argument(help="Pool path; default: the file's name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload a file of any size (parallel parts; rerun to resume an interrupted upload)."""
    if not local.is_file():
        fail(f"No file '{local}'.")
    target = dest or local.name
    if target.endswith("/"):
        target += local.name
    with api_client() as api, _progress(f"upload {local.name}", local.stat().st_size) as advance:
        data = upload_file(api, local, target, advance)
    emit(
        data,
        as_json,
        lambda d: out.print(f"uploaded {d['path']} ({_size(d['size'])})", markup=False),
    )


@resources_app.command("download")
def resources_download(
    path: str,
    local: Annotated[Path | None, typer.Argument(help="Target; default: the file's name.")] = None,
) -> None:
    """Download a file from the pool (rerun to continue an interrupted download)."""
    with api_client() as api:
        info = api.get("/resources/download", params={"path": path})
        target = local or Path(info["name"])
        if target.is_dir():
            target = target / info["name"]
        with _progress(f"download {info['name']}", info["size"]) as advance:
            download_url(info["url"], info["size"], target, advance)
    out.print(f"downloaded {path} to {target}", markup=False)


@resources_app.command("rm")
def resources_rm(
    path: str, recursive: Annotated[bool, typer.Option("--recursive", "-r")] = False
) -> None:
    """Delete a file (or, with -r, a folder) from the pool."""
    with api_client() as api:
        api.delete("/resources", params={"path": path, "recursive": str(recursive).lower()})
    out.print(f"deleted {path}", markup=False)


# -- workspaces ---------------------------------------------------------------------------


VersionOpt = Annotated[
    int | None, typer.Option(help="Workspace version (1: what the stage wrote); default: latest.")
]


@workspace_app.command("ls")
def workspace_ls(
    project: str,
    path: Annotated[str, typer.Argument()] = "",
    run: Annotated[int | None, typer.Option(help="Run id; default: latest finished.")] = None,
    version: VersionOpt = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List a run's workspace (its latest version unless --version)."""
    params: dict[str, Any] = {"path": path, "recursive": str(recursive).lower()}
    if run is not None:
        params["run"] = run
    if version is not None:
        params["version"] = version
    with api_client() as api:
        data = api.get(f"/projects/{project}/workspace", params=params)
    emit(data, as_json, _files_table)


@workspace_app.command("upload")
def workspace_upload(
    project: str,
    local: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    path: Annotated[
        str | None, typer.Argument(help="Path in the workspace; default: the file's name.")
    ] = None,
    run: Annotated[int | None, typer.Option(help="Run id; default: latest ended.")] = None,
    note: Annotated[str, typer.Option(help="What the fix is, for the history.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Upload a fix into a run's workspace while the project is paused (a new version)."""
    target = path or local.name
    with api_client() as api:
        if run is None:
            run = int(api.get(f"/projects/{project}/workspace")["run"])
        with _progress(f"upload {local.name}", local.stat().st_size) as advance:
            data = upload_file(
                api,
                local,
                target,
                advance,
                uploads_path=f"/projects/{project}/runs/{run}/workspace/uploads",
                complete_extra={"note": note} if note else None,
            )
    emit(
        data,
        as_json,
        lambda d: out.print(
            f"uploaded {d['path']} ({_size(d['size'])}) into run {d['run']}'s workspace: "
            f"version {d['version']}",
            markup=False,
        ),
    )


@workspace_app.command("download")
def workspace_download(
    project: str,
    path: str,
    local: Annotated[Path | None, typer.Argument()] = None,
    run: Annotated[int | None, typer.Option(help="Run id; default: latest finished.")] = None,
    version: VersionOpt = None,
) -> None:
    """Download a file (or with a folder path, every file below it) from a workspace."""
    params: dict[str, Any] = {"path": path}
    if run is not None:
        params["run"] = run
    if version is not None:
        params["version"] = version
    with api_client() as api:
        try:
            files = [(path, api.get(f"/projects/{project}/workspace/download", params=params))]
            base = Path(local or Path(files[0][1]["name"]))
            if base.is_dir():
                base = base / files[0][1]["name"]
            targets = [(files[0][1], base)]
        except CommandError as exc:
            if exc.status_code != 404:
                raise
            listing = api.get(
                f"/projects/{project}/workspace", params={**params, "recursive": "true"}
            )
            entries = [f for f in listing["data"] if not f["is_dir"]]
            if not entries:
                raise
            root = Path(local or Path(path.rstrip("/").rsplit("/", 1)[-1] or "workspace"))
            targets = []
            for entry in entries:
                info = api.get(
                    f"/projects/{project}/workspace/download",
                    params={**params, "path": entry["path"]},
                )
                relative = entry["path"][len(path.strip("/")) :].lstrip("/")
                targets.append((info, root / relative))
        for info, target in targets:
            with _progress(f"download {info['name']}", info["size"]) as advance:
                download_url(info["url"], info["size"], target, advance)
            out.print(f"downloaded {target}", markup=False)


@app.command()
def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be removed.")
    ] = False,
    grace: Annotated[
        str, typer.Option(help="Leave unreferenced contents younger than this (30m, 24h, 7d).")
    ] = "24h",
    as_json: JsonOpt = False,
) -> None:
    """Remove stored contents that no workspace version references any more."""
    from winslow.pipeline.model import parse_seconds

    try:
        grace_seconds = int(parse_seconds(grace))
    except ValueError as exc:
        fail(f"--grace: {exc}")
    with api_client() as api:
        data = api.post("/gc", {"dry_run": dry_run, "grace_seconds": grace_seconds})

    def human(d: dict[str, Any]) -> None:
        out.print(
            f"{d['manifests']} workspace versions reference {d['referenced']} of "
            f"{d['blobs']} stored contents ({_size(d['blob_bytes'])}).",
            markup=False,
        )
        if d["kept_young"]:
            out.print(
                f"{d['kept_young']} unreferenced contents are younger than {grace} and stay.",
                markup=False,
            )
        count, size = len(d["removable"]), _size(d["removable_bytes"])
        if d["dry_run"]:
            for key in d["removable"]:
                out.print(f"would remove {key}", markup=False)
            out.print(f"would remove {count} contents ({size})", markup=False)
        else:
            out.print(
                f"removed {d['removed']} contents ({_size(d['removed_bytes'])})", markup=False
            )

    emit(data, as_json, human)


@app.command()
def nodes(as_json: JsonOpt = False) -> None:
    """List the nodes stages run on, with their GPUs."""
    with api_client() as api:
        data = api.get("/nodes")

    def human(d: dict[str, Any]) -> None:
        table = Table("NODE", "STATUS", "CPUS", "MEMORY", "GPUS", "RUNS", box=None)
        for n in d["data"]:
            gpus = ", ".join(f"{g['index']}: {g['name']} ({g['memory_mb']} MB)" for g in n["gpus"])
            table.add_row(
                n["name"],
                n["status"],
                f"{n['cpus']:g}",
                f"{n['memory_mb']} MB",
                gpus or "none",
                ",".join(map(str, n["runs"])),
            )
        out.print(table)

    emit(data, as_json, human)


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

    Exits 0 when it gets there, 1 on timeout; for scripts that chain projects.
    """
    wanted = set(state) or {"paused", "awaiting_input", "failed", "succeeded"}
    deadline = time.monotonic() + timeout
    with api_client() as api:
        while True:
            data = api.get(f"/projects/{project}")
            if data["state"] in wanted:
                break
            if time.monotonic() > deadline:
                fail(f"Project '{project}' is still {data['state']} after {timeout:g} s.")
            time.sleep(0.5)
    emit(
        data,
        as_json,
        lambda d: out.print(
            f"{d['name']}: {d['state']} ({d.get('state_reason') or ''})", markup=False
        ),
    )


def _open_local_store() -> Any:
    from winslow.settings import Settings
    from winslow.store.repo import open_store

    settings = Settings()
    if settings.database_url is None and not (settings.data_dir / "winslow.db").exists():
        fail(
            f"No Winslow data in {settings.data_dir}; run this where `winslow up` runs, "
            "or set WINSLOW_DATA_DIR / WINSLOW_DATABASE_URL."
        )
    return open_store(settings.resolved_database_url())


@token_app.command("create")
def token_create(name: str) -> None:
    """Create an API token and print it once; only its hash is kept."""
    from winslow.errors import WinslowError

    store = _open_local_store()
    try:
        sys.stdout.write(store.create_token(name) + "\n")
    except WinslowError as exc:
        fail(exc.message)


@token_app.command("revoke")
def token_revoke(name: str) -> None:
    """Revoke an API token at once."""
    from winslow.errors import WinslowError

    store = _open_local_store()
    try:
        store.revoke_token(name)
    except WinslowError as exc:
        fail(exc.message)
    out.print(f"token '{name}' revoked", markup=False)


@token_app.command("list")
def token_list() -> None:
    """List API tokens (names only; tokens are never shown again)."""
    table = Table("NAME", "CREATED", "REVOKED", box=None)
    for name, created, revoked in _open_local_store().list_tokens():
        table.add_row(name, created.isoformat(timespec="seconds"), "yes" if revoked else "")
    out.print(table)


# -- stage tools (run inside Nomad stage jobs; hidden from the help) -----------------------


def _retry_delays(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(
            f"expected seconds separated by commas, got {text!r}", param_hint="--retry-delays"
        ) from None


RetryDelaysOpt = Annotated[
    str | None,
    typer.Option(
        "--retry-delays",
        hidden=True,
        help="Seconds before each new attempt of a transfer, comma-separated.",
    ),
]


CacheOpt = Annotated[
    Path | None, typer.Option("--cache", help="The node cache folder (shared by all jobs).")
]
CacheMaxOpt = Annotated[
    int, typer.Option("--cache-max", help="Size cap of the node cache, bytes (0: none).")
]


@app.command("stage-in", hidden=True)
def stage_in_command(
    workspace: Annotated[Path, typer.Option(help="Folder the workspace sources fill.")],
    inputs: Annotated[Path, typer.Option(help="Folder the inputs go to.")],
    source: Annotated[
        list[str], typer.Option("--source", help="Workspace prefix to copy in (in order).")
    ] = [],
    input_path: Annotated[
        list[str], typer.Option("--input", help="Resource pool path to bring in.")
    ] = [],
    cache: CacheOpt = None,
    cache_max: CacheMaxOpt = 0,
    log_file: Annotated[Path | None, typer.Option("--log", help="Log to append to.")] = None,
    retry_delays: RetryDelaysOpt = None,
) -> None:
    """Fill a stage's workspace and inputs from object storage (WINSLOW_S3_*)."""
    import os

    from winslow.errors import WinslowError
    from winslow.node import stagetools

    # The stage may run as another user than this task (a docker image's USER): what
    # stage-in creates must stay writable for it. The allocation folder is the job's own.
    os.umask(0)
    events = stagetools.EventLog(log_file)
    store = stagetools.storage_from_env(os.environ)
    delays = _retry_delays(retry_delays)
    try:
        stagetools.with_retries(
            "stage-in",
            lambda: stagetools.stage_in(
                workspace,
                inputs,
                sources=source,
                input_paths=input_path,
                store=store,
                event=events,
                cache_dir=cache,
                cache_max_bytes=cache_max,
            ),
            events,
            stagetools.TRANSFER_RETRY_DELAYS if delays is None else delays,
        )
    except (WinslowError, OSError) as exc:
        message = f"stage-in failed: {stagetools.error_message(exc)}"
        events(message)
        fail(message)
    finally:
        events.close()


@app.command("stage-out", hidden=True)
def stage_out_command(
    workspace: Annotated[Path, typer.Option(help="The stage's workspace folder.")],
    prefix: Annotated[
        str | None, typer.Option(help="Storage prefix to publish the workspace to.")
    ] = None,
    log_key: Annotated[str | None, typer.Option(help="Storage key of the run's log.")] = None,
    log_file: Annotated[
        Path | None, typer.Option("--log", help="The run's timestamped log to archive.")
    ] = None,
    logs_dir: Annotated[Path | None, typer.Option(help="Nomad's log folder of the job.")] = None,
    task: Annotated[str | None, typer.Option(help="The stage's task name in that folder.")] = None,
    merge_task_logs: Annotated[
        bool, typer.Option(help="Add the task's stdout and stderr files to the archived log.")
    ] = False,
    cache: CacheOpt = None,
    cache_max: CacheMaxOpt = 0,
    retry_delays: RetryDelaysOpt = None,
) -> None:
    """Publish a stage's workspace and archive its log (WINSLOW_S3_*); retries, then exits 1."""
    import os

    from winslow.node import stagetools

    events = stagetools.EventLog(log_file)
    delays = _retry_delays(retry_delays)
    try:
        problems = stagetools.run_stage_out(
            workspace=workspace,
            prefix=prefix,
            log_key=log_key,
            store=stagetools.storage_from_env(os.environ),
            events=events,
            log_path=log_file,
            logs_dir=logs_dir,
            task=task,
            merge_task_logs=merge_task_logs,
            cache_dir=cache,
            cache_max_bytes=cache_max,
            delays=stagetools.TRANSFER_RETRY_DELAYS if delays is None else delays,
        )
    finally:
        events.close()
    if problems:
        fail("stage-out gave up: " + "; ".join(problems))


@app.command(
    "stage-exec",
    hidden=True,
    context_settings={"allow_interspersed_args": False},
)
def stage_exec_command(
    argv: Annotated[list[str], typer.Argument(help="The command and its arguments, after --.")],
    workdir: Annotated[Path, typer.Option(help="Folder to run the command in.")],
    timeout: Annotated[
        float | None, typer.Option(help="Stop the command after this many seconds.")
    ] = None,
    log_file: Annotated[
        Path | None, typer.Option("--log", help="Log to append timestamped lines to.")
    ] = None,
    grace: Annotated[
        float | None,
        typer.Option(help="Seconds between SIGTERM and SIGKILL when stopping it [default: 10]."),
    ] = None,
    workspace: Annotated[
        str | None, typer.Option(help="Resolve ${WINSLOW_WORKSPACE} to this.")
    ] = None,
    inputs: Annotated[str | None, typer.Option(help="Resolve ${WINSLOW_INPUTS} to this.")] = None,
    isolate_gpus: Annotated[
        bool, typer.Option(help="Show the command only the GPUs Nomad gave the task.")
    ] = False,
) -> None:
    """Run a stage's command: output copied through and logged, timeout, signals passed on.

    Exits with the command's status, 128+n when signal n ended it, 124 after the timeout.
    """
    import os

    from winslow.node import stagetools

    if (workspace is None) != (inputs is None):
        raise typer.BadParameter("give both or neither", param_hint="--workspace/--inputs")
    env = stagetools.exec_environment(
        os.environ, workspace=workspace, inputs=inputs, isolate_gpus=isolate_gpus
    )
    if workspace is not None and inputs is not None:
        argv = [stagetools.resolve_node_paths(arg, workspace, inputs) for arg in argv]
    workdir.mkdir(parents=True, exist_ok=True)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    result = stagetools.run_command(
        argv,
        workdir=workdir,
        env=env,
        log_path=log_file,
        timeout=timeout,
        grace=stagetools.KILL_GRACE_SECONDS if grace is None else grace,
        workspace=Path(workspace) if workspace is not None else None,
    )
    if result.message is not None:
        err.print(f"error: stage {result.message}", markup=False, highlight=False)
    raise typer.Exit(result.exit_code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
