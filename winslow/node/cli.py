"""``winslow stage-in``, ``stage-out``, ``stage-exec`` and ``stage-follow``: the commands a
Nomad stage job runs on its node, around the stage's own command; and ``winslow
checkpoint``, which a stage runs itself.

They are hidden from ``winslow --help``: people never type them, job specs do, so their
names and options are a contract with every job spec already submitted. Each parses its
options and hands the work to ``winslow.node.stagetools``; ``winslow.cli.main`` registers
them on the root command.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from winslow import defaults
from winslow.errors import StorageError, WinslowError
from winslow.node.joblog import EventLog, project_from_env

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
    resume_from: Annotated[
        list[str],
        typer.Option("--resume-from", help="Checkpoint prefix to resume from (newest first)."),
    ] = [],
) -> None:
    """Fill a stage's workspace and inputs from object storage (WINSLOW_S3_*)."""
    from winslow.node import stagetools

    # The stage may run as another user than this task (a docker image's USER): what
    # stage-in creates must stay writable for it. The allocation folder is the job's own.
    os.umask(0)
    events = EventLog(log_file, project=project_from_env(os.environ))
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
                resume_from=resume_from,
            ),
            events,
            stagetools.TRANSFER_RETRY_DELAYS if delays is None else delays,
        )
    except (WinslowError, OSError) as exc:
        message = f"stage-in failed: {stagetools.error_message(exc)}"
        events(message)
        err.print(f"error: {message}", markup=False, highlight=False)
        infrastructure = isinstance(exc, (StorageError, OSError))
        raise typer.Exit(defaults.INFRASTRUCTURE_EXIT_CODE if infrastructure else 1) from None
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
    checkpoints: Annotated[
        list[str],
        typer.Option(
            "--checkpoints",
            help="Checkpoint prefix to delete once the stage is known to have exited 0.",
        ),
    ] = [],
) -> None:
    """Publish a stage's workspace and archive its log (WINSLOW_S3_*); retries, then exits 1."""
    from winslow.node import stagetools

    events = EventLog(log_file, project=project_from_env(os.environ))
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
        if not problems and checkpoints and _exited_0(log_file):
            from winslow.node.checkpoint import drop_checkpoints

            drop_checkpoints(checkpoints, stagetools.storage_from_env(os.environ), events)
    finally:
        events.close()
    if problems:
        _fail("stage-out gave up: " + "; ".join(problems))


def _exited_0(log_file: Path | None) -> bool:
    """Whether stage-exec left exit status 0 beside the log. A container stage's status no
    other task sees: its checkpoints stay for retention and the project's deletion."""
    import json

    from winslow.node.stagetools import EXIT_STATUS_SUFFIX

    if log_file is None:
        return False
    try:
        left = json.loads(log_file.with_name(log_file.name + EXIT_STATUS_SUFFIX).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(left, dict) and left.get("exit_code") == 0


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
    stage_cache: Annotated[
        Path | None,
        typer.Option(help="The node's folder the stage keeps files in between runs; made."),
    ] = None,
) -> None:
    """Run a stage's command: output copied through and logged, timeout, signals passed on.

    Exits with the command's status, 128+n when signal n ended it, 124 after the timeout.
    """
    from winslow.node import stagetools
    from winslow.pipeline.interpolate import resolve_node_paths
    from winslow.storage.checkpoints import resumed_from

    if (workspace is None) != (inputs is None):
        raise typer.BadParameter("give both or neither", param_hint="--workspace/--inputs")
    env = stagetools.exec_environment(
        os.environ, workspace=workspace, inputs=inputs, isolate_gpus=isolate_gpus
    )
    if workspace is not None and inputs is not None:
        argv = [resolve_node_paths(arg, workspace, inputs) for arg in argv]
        resumed = resumed_from(Path(workspace))
        if resumed is not None:
            env["WINSLOW_RESUMED_FROM"] = resumed
    if stage_cache is not None:
        try:
            stage_cache.mkdir(parents=True, exist_ok=True)
            env["WINSLOW_CACHE_DIR"] = str(stage_cache)
        except OSError as exc:  # a cache is a saving, never a reason to fail the stage
            err.print(f"warning: no stage cache at {stage_cache}: {exc}", markup=False)
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


def checkpoint(
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the node to publish the checkpoint.")
    ] = defaults.CHECKPOINT_WAIT_SECONDS,
    workspace: Annotated[
        Path | None,
        typer.Option(help="The stage's workspace (default: $WINSLOW_WORKSPACE)."),
    ] = None,
) -> None:
    """Publish the stage's checkpoint folder now ($WINSLOW_WORKSPACE/.winslow/checkpoint/).

    Run inside a stage whose pipeline sets `checkpoint:`, when what it wrote there is
    complete; returns once the checkpoint is stored, so a retry after a lost node starts
    from it. Exits 1 when it was not published.
    """
    from winslow.node.checkpoint import request_checkpoint

    folder = workspace or (
        Path(os.environ["WINSLOW_WORKSPACE"]) if os.environ.get("WINSLOW_WORKSPACE") else None
    )
    if folder is None:
        raise typer.BadParameter(
            "WINSLOW_WORKSPACE is not set: run this inside a stage, or name the workspace",
            param_hint="--workspace",
        )
    try:
        version = request_checkpoint(folder, timeout)
    except WinslowError as exc:
        _fail(exc.message)
    if version is None:
        err.print("checkpoint: the checkpoint folder is empty; nothing was published")
    else:
        err.print(f"checkpoint: version {version} is published", markup=False, highlight=False)


def stage_checkpoint(
    workspace: Annotated[Path, typer.Option(help="The stage's workspace folder.")],
    prefix: Annotated[str, typer.Option(help="Storage prefix of the run's checkpoints.")],
    every: Annotated[float, typer.Option(help="Seconds between publishes, at most.")],
    log_file: Annotated[
        Path | None, typer.Option("--log", help="The run's timestamped log to append to.")
    ] = None,
) -> None:
    """Publish a stage's checkpoint folder while it runs (WINSLOW_S3_*), until SIGTERM.

    A sidecar beside the stage, like stage-follow: it exits 0 whatever happened, since a
    sidecar that fails makes Nomad stop the stage; a publish that failed is in the log.
    """
    from winslow.node import stagetools
    from winslow.node.checkpoint import CheckpointWatcher

    signalled: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: signalled.append(signum))
    events = EventLog(log_file, project=project_from_env(os.environ))
    store = stagetools.storage_from_env(os.environ)
    staging = workspace.with_name(f".{workspace.name}.checkpoint-staging")
    try:
        with CheckpointWatcher(workspace, prefix, every, staging, store, events):
            while not signalled:
                time.sleep(0.2)
    except Exception as exc:  # any failure here must not fail the stage
        err.print(f"stage-checkpoint: stopped: {exc!r}", markup=False, highlight=False)
    finally:
        events.close()
    raise typer.Exit(0)
