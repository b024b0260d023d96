"""``winslow pipeline ...``: check, convert, apply, list, show and delete pipeline definitions.

Checking and converting happen here, on the person's machine, before anything reaches the
server: ``validate`` prints every problem with its file, line and field and exits 1 if
there is one, and ``apply`` refuses a file that would not load.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from winslow.cli.helpers import JsonOpt, api_client, emit, err, fail, out
from winslow.errors import PipelineError

pipeline_app = typer.Typer(no_args_is_help=True, help="Pipeline definitions.")


def _problem_words(problem: dict[str, Any]) -> str:
    """``file:line:column: field: message`` of one problem as the API reports it."""
    where = problem["file"]
    if problem.get("line") is not None:
        where += f":{problem['line']}"
        if problem.get("column") is not None:
            where += f":{problem['column']}"
    field = f" {problem['field']}:" if problem.get("field") else ""
    return f"{where}:{field} {problem['message']}"


def _refuse(exc: PipelineError) -> typer.Exit:
    """Print each problem of a file that did not load; return the exit (code 1) to raise."""
    for problem in exc.problems:
        err.print(f"error: {problem}", markup=False, highlight=False)
    return typer.Exit(1)


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
        raise _refuse(exc) from None
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
        raise _refuse(exc) from None
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
