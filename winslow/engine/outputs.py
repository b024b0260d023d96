"""What a run leaves besides its workspace: its results and its log-parser series.

Once a run has ended, ``collect_outputs`` streams its archived log through
``core.outputs.OutputScanner`` (constant memory, however long the log), reads
``results.json`` from its workspace, stores the series next to the log
(``keys.series_key``) and returns the results for the engine to keep on the run. Nothing
here fails a run: a missing log, workspace or file, or a bad ``results.json``, is logged
and what could be read is returned. A run whose series could not be read has no stored
series; whoever shows them computes them from the log later (``archived_series``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from winslow.core.models import Run
from winslow.core.outputs import (
    RESULTS_FILE,
    OutputScanner,
    ResultValue,
    Series,
    iter_lines,
    merge_results,
    parse_results_file,
    series_from_json,
    series_to_json,
)
from winslow.errors import NotFoundError, WinslowError
from winslow.pipeline.model import LogParser, Stage
from winslow.storage.keys import series_key
from winslow.storage.manifest import FileRecord
from winslow.storage.objects import ObjectStore
from winslow.storage.workspaces import read_version

log = logging.getLogger(__name__)

MAX_RESULTS_FILE_BYTES = 1024 * 1024
"""Largest ``results.json`` read, bytes (1 MiB); a larger one is ignored with a warning."""


def collect_outputs(
    objects: ObjectStore,
    run: Run,
    stage: Stage,
    *,
    log_chunks: Iterable[bytes] | None = None,
    started_from: Sequence[str] = (),
    node_log: Callable[[], Iterable[bytes]] | None = None,
    read_file: bool = True,
) -> dict[str, Any]:
    """Read the ended ``run``'s results; store its log-parser series. Returns the results.

    The log is streamed from ``run.log_key``, or taken from ``log_chunks`` when the caller
    has it already (a backend's copy while the archive is still on its way); ``node_log``
    gives the node's copy where the archive is not there (yet). Series are
    stored only for a stage with log parsers, and only when the whole log was read.
    ``started_from`` names the workspaces the run began with (``specs.workspace_sources``):
    a ``results.json`` it left as it found it there is theirs, not the run's. With
    ``read_file`` False (its runner saw no ``results.json``) only the log is read. Never raises
    for missing or malformed outputs; storage errors while storing the series are logged.
    """
    where = _where(run)
    scanner = OutputScanner(stage.log_parsers)
    if log_chunks is None:
        whole = _scan(objects, run, scanner, node_log)
    else:
        whole = _feed(run, scanner, log_chunks)
    from_file, problems = read_results_file(objects, run, started_from) if read_file else ({}, [])
    for problem in [*scanner.problems, *problems]:
        log.warning("%s: %s", where, problem)
    if stage.log_parsers and whole:
        write_series(objects, run, scanner.series())
    results: dict[str, Any] = merge_results(scanner.results, from_file)
    if results:
        log.info("%s: %d results reported", where, len(results))
    return results


def read_results_file(
    objects: ObjectStore, run: Run, started_from: Sequence[str] = ()
) -> tuple[dict[str, ResultValue], list[str]]:
    """Return the results in ``results.json`` of the run's latest workspace version, and
    what was wrong with it; nothing when the run has no workspace or no such file, or the
    file is the one a workspace in ``started_from`` holds (the run carried it over)."""
    if not run.workspace_prefix:
        return {}, []
    try:
        record = _results_record(objects, run.workspace_prefix)
        if record is None:
            return {}, []
        if record.is_link or not record.blob:
            return {}, [f"{RESULTS_FILE} is a symbolic link; write the file itself"]
        for source in started_from:
            inherited = _results_record(objects, source)
            if inherited is not None and inherited.blob == record.blob:
                log.debug("%s: %s is the one of %s, not its own", _where(run), RESULTS_FILE, source)
                return {}, []
        if record.size > MAX_RESULTS_FILE_BYTES:
            return {}, [f"{RESULTS_FILE} is {record.size} bytes, over the 1 MiB results may take"]
        # The manifest's size is what the stage-out saw; read no more than the cap anyway.
        data = objects.get_range(record.blob, 0, MAX_RESULTS_FILE_BYTES)
    except WinslowError as exc:
        return {}, [f"could not read {RESULTS_FILE}: {exc.message}"]
    if len(data) > MAX_RESULTS_FILE_BYTES:
        return {}, [f"{RESULTS_FILE} is over the 1 MiB results may take"]
    return parse_results_file(data)


def _results_record(objects: ObjectStore, workspace: str) -> FileRecord | None:
    version = read_version(objects, workspace)
    return None if version is None else version.manifest.files.get(RESULTS_FILE)


def write_series(objects: ObjectStore, run: Run, series: Sequence[Series]) -> None:
    """Store ``series`` at ``series_key`` of the run; a storage error is logged, not raised."""
    body = json.dumps(series_to_json(series), separators=(",", ":")).encode("utf-8")
    try:
        objects.put_bytes(series_key(run.project_id, run.id), body)
    except WinslowError as exc:
        log.warning("%s: could not store its series: %s", _where(run), exc.message)
        return
    points = sum(len(s.points) for s in series)
    log.info("%s: %d series with %d points stored", _where(run), len(series), points)


def read_series(objects: ObjectStore, run: Run) -> list[Series] | None:
    """Return the series stored when the run ended, or None when none were stored (the
    stage had no parsers then, the log was not archived yet, or it is an older run).

    A stored object that cannot be read back counts as none, with a warning. Raises
    ``StorageError`` when storage does not answer.
    """
    try:
        data = objects.get_bytes(series_key(run.project_id, run.id))
    except NotFoundError:
        return None
    try:
        return series_from_json(json.loads(data))
    except ValueError as exc:
        log.warning("%s: stored series unreadable, reading the log instead: %s", _where(run), exc)
        return None


def archived_series(
    objects: ObjectStore, run: Run, parsers: Sequence[LogParser]
) -> list[Series] | None:
    """Return the series ``parsers`` find in the run's archived log, streamed, and store them
    as the run's series, so the log is read once; None when the log is not archived (yet)
    or could not be read to its end."""
    scanner = OutputScanner(parsers)
    if not _scan(objects, run, scanner):
        return None
    series = scanner.series()
    write_series(objects, run, series)
    return series


def log_series(parsers: Sequence[LogParser], log_chunks: Iterable[bytes]) -> list[Series]:
    """Return the series ``parsers`` find in a log given as bytes, in one piece or many
    (a live run's log as the backend has it so far).

    Usage::

        log_series(stage.log_parsers, [backend.logs(run.job_id)])
    """
    return OutputScanner(parsers).feed_all(iter_lines(log_chunks)).series()


def _scan(
    objects: ObjectStore,
    run: Run,
    scanner: OutputScanner,
    node_log: Callable[[], Iterable[bytes]] | None = None,
) -> bool:
    """Feed the archived log to ``scanner`` (else the node's copy); True if it was read to
    its end."""
    if not run.log_key:
        log.warning("%s: has no log to read", _where(run))
        return False
    try:
        chunks = objects.iter_chunks(run.log_key)
    except NotFoundError:
        if node_log is not None:
            # The local runner reports the end first and archives the log right after.
            log.debug("%s: log not archived yet; reading the node's copy", _where(run))
            try:
                return _feed(run, scanner, node_log())
            except WinslowError as exc:
                log.warning("%s: could not read the node's log: %s", _where(run), exc.message)
                return False
        log.warning("%s: no archived log at %s (yet)", _where(run), run.log_key)
        return False
    except WinslowError as exc:
        log.warning("%s: could not read its log: %s", _where(run), exc.message)
        return False
    return _feed(run, scanner, chunks)


def _feed(run: Run, scanner: OutputScanner, chunks: Iterable[bytes]) -> bool:
    """Feed a log to ``scanner``; True if it was read to its end."""
    try:
        scanner.feed_all(iter_lines(chunks))
    except WinslowError as exc:
        log.warning(
            "%s: reading its log stopped after %d lines: %s",
            _where(run),
            scanner.lines,
            exc.message,
        )
        return False
    return True


def _where(run: Run) -> str:
    return f"project {run.project_id}: run {run.id} ({run.stage})"
