"""``winslow stage-in``, ``stage-out``, ``stage-exec`` and ``stage-follow``: the commands a
Nomad stage job runs on its node, around the stage's own command.

They are hidden from ``winslow --help``: people never type them, job specs do, so their
names and options are a contract with every job spec already submitted. Each parses its
options and hands the work to ``winslow.node.stagetools``; ``winslow.cli.main`` registers
them on the root command.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from winslow.errors import WinslowError
from winslow.node.joblog import EventLog

err = Console(stderr=True, soft_wrap=True)

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

STAGE_EXEC_CONTEXT = {"allow_interspersed_args": False}
"""``stage-exec``'s click settings: every argument after the command belongs to it."""


def _fail(message: str) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit 1, as every ``winslow`` command does."""
    err.print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(1)


def _retry_delays(text: str | None) -> tuple[float, ...] | None:
    """Return ``--retry-delays`` as seconds, None when not given; raises
    ``typer.BadParameter`` for text that is not numbers separated by commas."""
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(
            f"expected seconds separated by commas, got {text!r}", param_hint="--retry-delays"
        ) from None


# typer reads list defaults of options; they are never mutated (B006).
def stage_in(
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
    from winslow.node import stagetools

    # The stage may run as another user than this task (a docker image's USER): what
    # stage-in creates must stay writable for it. The allocation folder is the job's own.
    os.umask(0)
    events = EventLog(log_file)
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
        _fail(message)
    finally:
        events.close()


def stage_out(
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
    from winslow.node import stagetools

    events = EventLog(log_file)
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
        _fail("stage-out gave up: " + "; ".join(problems))


def stage_exec(
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
    from winslow.node import stagetools
    from winslow.pipeline.interpolate import resolve_node_paths

    if (workspace is None) != (inputs is None):
        raise typer.BadParameter("give both or neither", param_hint="--workspace/--inputs")
    env = stagetools.exec_environment(
        os.environ, workspace=workspace, inputs=inputs, isolate_gpus=isolate_gpus
    )
    if workspace is not None and inputs is not None:
        argv = [resolve_node_paths(arg, workspace, inputs) for arg in argv]
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


def stage_follow(
    logs_dir: Annotated[Path, typer.Option(help="Nomad's log folder of the job.")],
    task: Annotated[str, typer.Option(help="The stage's task name in that folder.")],
    log_file: Annotated[
        Path, typer.Option("--log", help="The run's timestamped log to append to.")
    ],
    workspace: Annotated[
        Path | None, typer.Option(help="The stage's workspace, for its progress file.")
    ] = None,
) -> None:
    """Copy a container stage's stdout and stderr into the run's log as they come.

    Runs until SIGTERM (Nomad's kill once the stage's task is dead), reads what is left,
    and exits 0 whatever happened: a sidecar that fails makes Nomad stop the stage. What
    it could not copy, stage-out adds.
    """
    from winslow.node import follow

    # The handler only notes the signal: setting an Event from a handler could deadlock
    # on the lock the interrupted main thread holds. The work runs in a thread of its own.
    signalled: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: signalled.append(signum))
    stop = threading.Event()
    done: list[bool] = []

    def run() -> None:
        try:
            done.append(follow.follow_task(logs_dir, task, log_file, stop, workspace=workspace))
        except Exception as exc:  # any failure here must not fail the stage
            err.print(
                f"stage-follow: stopped following the stage's output: {exc!r}",
                markup=False,
                highlight=False,
            )

    worker = threading.Thread(target=run, name="stage-follow", daemon=True)
    worker.start()
    while worker.is_alive():
        if signalled:
            stop.set()
        worker.join(0.1)
    if not done or not done[0]:
        err.print(
            "stage-follow: stage-out adds the rest of the stage's output to the log",
            markup=False,
            highlight=False,
        )
    raise typer.Exit(0)
