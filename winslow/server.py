"""``winslow up``: the all-in-one server on one machine.

It brings up what the embedded default needs, in order: object storage (SeaweedFS on
loopback unless ``WINSLOW_S3_ENDPOINT`` names an S3 server), the SQL store (migrated),
the admin token (on first start), the local backend, the engine, and the API.

SeaweedFS runs in its own session so it outlives a crashed server: stages keep running
while the server is down and still need storage to publish their outputs. A restarted
server finds it answering on its port and adopts it: from then on it is this server's, to
supervise (``storage/supervisor.py`` restarts it when it dies) and to stop at a clean stop.

Ctrl+C and SIGTERM (systemd, docker) stop the same way: the API, the engine, the
supervisor, then SeaweedFS unless stages still run. A start that fails says why in one
line, with what to do, and stops what it had started; the traceback is logged at DEBUG.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from winslow.api.context import AppContext
from winslow.atomic import write_text_atomic
from winslow.backends.base import Backend
from winslow.errors import WinslowError
from winslow.filemodes import private_dir
from winslow.gcsweep import GarbageSweeper
from winslow.settings import Settings
from winslow.storage.s3 import S3Config
from winslow.units import counted

if TYPE_CHECKING:
    import uvicorn

    # Imported where used: `winslow --help` and the node tools need neither boto3 nor SQL.
    from winslow.backends.nomad.config import NomadConfig
    from winslow.notify.dispatcher import Dispatcher
    from winslow.secrets.wiring import ServerSecrets
    from winslow.storage.objects import ObjectStore
    from winslow.storage.seaweed import SeaweedServer
    from winslow.store.repo import Store

log = logging.getLogger(__name__)


class StartupError(WinslowError):
    """The server cannot start; the message names the cause and what to do."""


class StopRequested(Exception):
    """Ctrl+C or SIGTERM arrived: stop cleanly."""


@dataclass
class Running:
    """What ``start_services`` started, for ``stop_services`` to stop."""

    context: AppContext
    seaweed: SeaweedServer | None = None
    notes: list[str] = field(default_factory=list)
    notifier: Dispatcher | None = None
    secrets: ServerSecrets | None = None


def _embedded_s3(settings: Settings) -> tuple[S3Config, SeaweedServer | None]:
    from winslow.storage.objects import ObjectStore
    from winslow.storage.seaweed import SeaweedServer, load_or_create_credentials
    from winslow.storage.weedsecurity import SECURITY_FILE

    directory = settings.data_dir / "s3"
    credentials = load_or_create_credentials(directory) if directory.exists() else None
    if credentials is not None:
        config = S3Config(
            endpoint_url=f"http://127.0.0.1:{settings.s3_port}",
            access_key=credentials.access_key,
            secret_key=credentials.secret_key,
            bucket=settings.s3_bucket,
        )
        if ObjectStore(config).answers():
            adopted = SeaweedServer.adopt(directory, settings.s3_port, bucket=settings.s3_bucket)
            if adopted is None:
                log.warning(
                    "s3: something answers at %s with Winslow's keys but is no `weed mini` "
                    "of %s; using it, but it cannot be restarted or stopped from here",
                    config.endpoint_url,
                    directory,
                )
            else:
                log.info(
                    "s3: SeaweedFS from an earlier start (pid %s) still answers at %s; adopting it",
                    adopted.pid,
                    config.endpoint_url,
                )
            if not (directory / SECURITY_FILE).exists():
                log.warning(
                    "s3: that SeaweedFS was started by an older Winslow without its locks, "
                    "so other local users can reach its data; once no stage runs, stop "
                    "Winslow, end that `weed mini` process and start Winslow again"
                )
            return config, adopted
    server = SeaweedServer(directory, settings.s3_port, bucket=settings.s3_bucket, detach=True)
    return server.start(), server


def s3_config(settings: Settings) -> tuple[S3Config, SeaweedServer | None]:
    """Return how to reach object storage, starting SeaweedFS if Winslow owns it."""
    if settings.s3_endpoint:
        if not settings.s3_access_key or not settings.s3_secret_key:
            raise SystemExit(
                "error: WINSLOW_S3_ENDPOINT is set but WINSLOW_S3_ACCESS_KEY or "
                "WINSLOW_S3_SECRET_KEY is not; set both."
            )
        return S3Config(
            endpoint_url=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            public_endpoint_url=settings.s3_public_endpoint,
        ), None
    config, seaweed = _embedded_s3(settings)
    return replace(config, public_endpoint_url=settings.s3_public_endpoint), seaweed


def ensure_admin_token(settings: Settings, store: Store) -> str | None:
    """Create the admin token on first start; return a note for the person, if any."""
    token_file = settings.token_file
    if token_file.is_file() and store.token_owner(token_file.read_text().strip()):
        return f"admin token: {token_file}"
    if store.has_tokens() and not token_file.is_file():
        return (
            "admin token file is gone; create a new one with "
            "`winslow token create NAME --local --admin`."
        )
    token = store.create_token(
        "admin" if not store.has_tokens() else f"admin-{os.getpid()}", admin=True
    )
    token_file.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(token_file, token + "\n", mode=0o600)
    return f"admin token created: {token_file} (the CLI finds it there, or set WINSLOW_TOKEN)"


def nomad_backend(settings: Settings, s3: S3Config) -> Backend:
    """The Nomad backend for these settings; publishes the S3 keys where tasks read them.

    Raises ``SystemExit`` with an ``error:`` line naming the setting when one cannot work:
    no or no fully qualified ``WINSLOW_NOMAD_IMAGE`` for docker tools, constraints Nomad
    would refuse, a client certificate without its key.
    """
    from winslow.backends.nomad.backend import NomadBackend
    from winslow.backends.nomad.config import nomad_config_problem
    from winslow.errors import WinslowError

    try:
        config = _nomad_config(settings, s3)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    problem = nomad_config_problem(config)
    if problem is not None:
        raise SystemExit(f"error: {problem}")
    if config.skip_verify:
        log.warning(
            "nomad: NOMAD_SKIP_VERIFY is set: Winslow accepts any certificate from %s, so "
            "anyone in between can read its token; set NOMAD_CACERT instead",
            config.address,
        )
    try:
        backend = NomadBackend(config)
    except ValueError as exc:  # a TLS file that cannot be used
        raise SystemExit(f"error: {exc}") from None
    if settings.nomad_publish_credentials and config.credentials == "nomad-variables":
        try:
            backend.client.variables.put(
                config.credentials_path,
                {"access_key": s3.access_key, "secret_key": s3.secret_key},
            )
            log.info("nomad: S3 keys written to variable %s", config.credentials_path)
        except WinslowError as exc:
            log.warning(
                "nomad: could not write the S3 keys to variable %s (%s); put them there "
                "yourself, see the README",
                config.credentials_path,
                exc.message,
            )
    return backend


def _nomad_config(settings: Settings, s3: S3Config) -> NomadConfig:
    """``NomadConfig`` from the settings; ``ValueError`` names a setting at fault."""
    from winslow.backends.nomad.config import (
        TOOLS_IMAGE_PLACEHOLDER,
        NomadConfig,
        parse_constraints,
    )

    return NomadConfig(
        **settings.nomad_connection(),
        namespace=settings.nomad_namespace,
        datacenters=tuple(d.strip() for d in settings.nomad_datacenters.split(",") if d.strip()),
        node_pool=settings.nomad_node_pool or None,
        constraints=parse_constraints(settings.nomad_constraints),
        winslow_image=settings.nomad_image or TOOLS_IMAGE_PLACEHOLDER,
        allow_host_commands=settings.nomad_allow_host_commands,
        tools_driver=settings.nomad_tools_driver,
        winslow_command=settings.nomad_winslow_command,
        credentials=settings.resolved_nomad_credentials(),
        credentials_path=settings.resolved_nomad_credentials_path(),
        vault_role=settings.nomad_vault_role,
        s3_endpoint=settings.nomad_s3_endpoint or s3.endpoint_url,
        s3_bucket=s3.bucket,
        s3_region=s3.region,
        node_cache_dir=settings.nomad_node_cache_dir,
        node_cache_max_bytes=settings.node_cache_max_bytes,
        jobspecs_dir=settings.nomad_jobspecs_dir,
        lost_after_seconds=settings.nomad_lost_after_seconds,
    )


def make_backend(settings: Settings, s3: S3Config) -> Backend:
    """The backend the settings name: ``local`` (this machine) or ``nomad``."""
    if settings.backend == "nomad":
        return nomad_backend(settings, s3)
    from winslow.backends.local.backend import LocalBackend

    return LocalBackend(
        settings.data_dir / "local",
        s3,
        node_name=settings.node_name,
        cache_max_bytes=settings.node_cache_max_bytes,
        warm_runner=settings.warm_runner,
    )


def build_context(
    settings: Settings, objects: ObjectStore, *, backend: Backend | None = None
) -> AppContext:
    """Wire one Winslow together: the store (migrated), the pipelines folder, the backend
    (``backend``, or the one the settings name) and the engine over ``objects``.

    Nothing runs yet: ``start_services`` starts the engine, tests drive it with
    ``engine.run_until_idle()``. The one place that does this, for both.
    """
    from winslow.core.models import Run
    from winslow.engine.outputs import collect_outputs
    from winslow.engine.reconcile import ARCHIVED_TAIL_BYTES, ArchivedEnd, Engine
    from winslow.errors import NotFoundError
    from winslow.node.stagetools import read_end_record
    from winslow.pipeline.folder import PipelineFolder
    from winslow.storage.keys import end_key, project_prefixes
    from winslow.store.repo import open_store

    private_dir(settings.data_dir)
    store = open_store(settings.resolved_database_url())
    pipelines_dir = settings.resolved_pipelines_dir()
    pipelines_dir.mkdir(parents=True, exist_ok=True)
    backend = backend or make_backend(settings, objects.cfg)

    def forget_storage(project_id: str) -> None:
        for prefix in project_prefixes(project_id):
            objects.delete_prefix(prefix)

    def archived_end(run: Run) -> ArchivedEnd | None:
        """The run's end record and the end of its archived log; None without either."""
        record_key = end_key(run.log_key)
        if record_key is None:
            return None
        try:
            record = read_end_record(objects.get_bytes(record_key))
        except NotFoundError:
            record = None
        try:
            entry = objects.head(run.log_key)
        except NotFoundError:
            if record is None:
                return None
            return ArchivedEnd(None, b"", record)
        start = max(entry.size - ARCHIVED_TAIL_BYTES, 0)
        return ArchivedEnd(entry.modified, objects.get_range(run.log_key, start), record)

    engine = Engine(
        store,
        backend,
        on_project_deleted=forget_storage,
        prune_workspace=objects.delete_prefix,
        collect_outputs=functools.partial(collect_outputs, objects),
        archived_end=archived_end,
        poll_seconds=settings.poll_seconds,
        telemetry_seconds=settings.telemetry_seconds,
        placement_timeout=settings.placement_timeout_seconds,
    )
    return AppContext(
        settings=settings,
        store=store,
        engine=engine,
        backend=backend,
        objects=objects,
        pipelines=PipelineFolder(pipelines_dir),
    )


def start_services(settings: Settings) -> Running:
    """Bring up storage, store, backend, engine and the storage supervisor; return them
    running.

    Raises ``StartupError`` when the database stays locked or S3 does not answer, or what
    a part raises; either way after stopping what it had started (a SeaweedFS it spawned,
    not one it adopted, which may serve stages).
    """
    from winslow import metrics
    from winslow.storage.features import check_features
    from winslow.storage.objects import ObjectStore
    from winslow.storage.supervisor import S3Probe, StorageSupervisor
    from winslow.store.db import migrate_apart
    from winslow.store.sqlitelock import write_lock_problem

    private_dir(settings.data_dir)
    settings, secrets = _read_secrets(settings)
    undo: list[Callable[[], None]] = [] if secrets is None else [secrets.close]
    try:
        problem = write_lock_problem(settings.resolved_database_url())
        if problem is not None:
            raise StartupError(problem)
        config, seaweed = s3_config(settings)
        if seaweed is not None and not seaweed.adopted:
            undo.append(seaweed.stop)
        probe = S3Probe(config)
        problem = probe()
        if problem is not None:
            check = (
                "check WINSLOW_S3_ENDPOINT, WINSLOW_S3_ACCESS_KEY and WINSLOW_S3_SECRET_KEY"
                if settings.s3_endpoint
                else f"see {settings.data_dir / 's3' / 'weed.log'}"
            )
            raise StartupError(f"{problem}; {check}, then start again.")
        objects = ObjectStore(config)
        objects.ensure_bucket()
        check_features(objects)
        migrate_apart(settings.resolved_database_url())
        context = build_context(settings, objects)
        undo.append(context.store.close)
        notes = []
        note = ensure_admin_token(settings, context.store)
        if note:
            notes.append(note)
        supervisor = StorageSupervisor(probe, seaweed)
        context.supervisor = supervisor
        metrics.set_s3_probe(supervisor.s3_up)  # winslow_s3_up on /metrics
        context.engine.start()
        undo.append(context.engine.stop)
        supervisor.start()
        undo.append(supervisor.stop)
        if secrets is not None:
            from winslow.secrets.wiring import watch_server_secrets

            watch_server_secrets(secrets, context, probe)
        from winslow.notify.dispatcher import Dispatcher, NotifyConfig

        notifier = Dispatcher(context.store, NotifyConfig.of(settings))
        notifier.start()
    except BaseException:
        for step in reversed(undo):
            with contextlib.suppress(Exception):
                step()
        raise
    return Running(
        context=context, seaweed=seaweed, notes=notes, notifier=notifier, secrets=secrets
    )


def _read_secrets(settings: Settings) -> tuple[Settings, ServerSecrets | None]:
    """The settings with Winslow's credentials from Vault, when ``WINSLOW_VAULT_ADDR`` is
    set (``secrets/wiring.py``); ``StartupError`` when Vault refuses or lacks them."""
    if not settings.vault_addr:
        return settings, None  # and hvac, never imported, costs no memory
    from winslow.secrets.vault import VaultError
    from winslow.secrets.wiring import read_server_secrets

    try:
        return read_server_secrets(settings)
    except VaultError as exc:
        raise StartupError(exc.message) from exc


def stop_services(running: Running) -> None:
    """Stop the supervisor and the engine; stop SeaweedFS too unless stages still need it."""
    if running.secrets is not None:
        running.secrets.close()
    if running.notifier is not None:
        running.notifier.stop()
    if running.context.supervisor is not None:
        running.context.supervisor.stop()
    running.context.engine.stop()
    active = [run for run in running.context.store.active_runs() if run.submitted]
    if running.seaweed is not None:
        if active:
            one = len(active) == 1
            log.warning(
                "s3: %s still %s; SeaweedFS (pid %s) stays up for %s, and the next "
                "`winslow up` adopts it",
                counted(len(active), "stage"),
                "runs" if one else "run",
                running.seaweed.pid,
                "it" if one else "them",
            )
        else:
            running.seaweed.stop()
    running.context.store.close()


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("WINSLOW_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Alembic lists its plugins at INFO on every start, before any error worth reading.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


STOP_GRACE_SECONDS = 5
"""How long a stop waits for requests in flight before it cuts them, seconds."""

GC_THRESHOLDS = (50_000, 20, 100)
"""The server's garbage collector thresholds (see ``serve``)."""


def serve(host: str | None = None, port: int | None = None, data_dir: Path | None = None) -> None:
    """Run the all-in-one server until Ctrl+C or SIGTERM, then stop it cleanly.

    A start that fails exits 1 with one ``error:`` line naming the cause and what to do;
    its traceback is logged only at ``WINSLOW_LOG_LEVEL=DEBUG``.
    """
    configure_logging()
    # Each request allocates many short-lived objects; at the default threshold (700)
    # the collector runs often and its older generations walk the long-lived project
    # list the overview keeps, adding 50 ms pauses to page loads with thousands of
    # projects. Collecting less often keeps pages steady; the sweeper's full collections
    # (``gcsweep``) free the reference cycles that then die unseen.
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        _serve(load_settings(host=host, port=port, data_dir=data_dir))
    except StartupError as exc:
        log.debug("start-up failed", exc_info=True)
        raise SystemExit(f"error: {exc.message}") from None


def _serve(settings: Settings) -> None:
    import uvicorn

    from winslow.api.app import create_app

    _on_stop_signals(_request_stop)
    try:
        listener = listen(settings.host, settings.port)
        running = _start(settings)
    except StopRequested:
        log.info("winslow: stopped while starting")
        return
    for note in running.notes:
        print(note, file=sys.stderr, flush=True)
    print(
        f"Winslow listens on http://{settings.host}:{settings.port} "
        f"(API docs at /docs, data in {settings.data_dir})",
        file=sys.stderr,
        flush=True,
    )
    server = _api_server(
        uvicorn.Config(
            create_app(running.context),
            log_level="warning",
            timeout_graceful_shutdown=2 * STOP_GRACE_SECONDS,
        )
    )
    sweeper = GarbageSweeper()
    sweeper.start()
    try:
        # uvicorn stops on SIGINT or SIGTERM, then raises it again with our handler back.
        server.run(sockets=[listener])
    except StopRequested as stop:
        log.info("winslow: %s received; stopping", stop)
    finally:
        _on_stop_signals(_already_stopping)
        sweeper.stop()
        listener.close()
        stop_services(running)
    if not server.started:
        raise StartupError("The API did not start; the log above says why.")
    log.info("winslow: stopped")


def _api_server(config: uvicorn.Config) -> uvicorn.Server:
    """A uvicorn server whose stop ends the requests still open after ``STOP_GRACE_SECONDS``
    as if their clients had gone: event streams (every console tab has one) never end on
    their own, and uvicorn's own timeout cancels them with a traceback in the log."""
    import asyncio

    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            async def hang_up() -> None:
                await asyncio.sleep(STOP_GRACE_SECONDS)
                for connection in list(self.server_state.connections):
                    transport = getattr(connection, "transport", None)
                    if transport is not None:
                        transport.close()

            cutting = asyncio.create_task(hang_up())
            try:
                await super().shutdown(sockets)
            finally:
                cutting.cancel()

    return Server(config)


def load_settings(**options: object) -> Settings:
    """The settings from the environment and the options given (those not None).

    Raises ``StartupError`` naming each variable whose value does not fit.
    """
    from pydantic import ValidationError

    overrides = {name: value for name, value in options.items() if value}
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(_setting_problem(error) for error in exc.errors())
        raise StartupError(f"Bad setting: {problems}. Fix it and start again.") from exc


_SECRET_WORDS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "URL")
"""A setting whose name holds one of these is never quoted back: it may be a credential."""


def _setting_problem(error: Mapping[str, Any]) -> str:
    field_name = str(error["loc"][0]) if error.get("loc") else "?"
    name = field_name if field_name.isupper() else f"WINSLOW_{field_name.upper()}"
    if any(word in name for word in _SECRET_WORDS):
        return f"{name}: {error['msg']}"
    return f"{name}={error.get('input')!r}: {error['msg']}"


def listen(host: str, port: int) -> socket.socket:
    """Bind the API's address before anything starts, so a port in use fails first and
    nothing takes it meanwhile; raises ``StartupError`` saying which setting to change."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise StartupError(
            f"Cannot listen on '{host}' ({exc}); set --host or WINSLOW_HOST to an address "
            "of this machine."
        ) from exc
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise StartupError(
            f"Cannot listen on {host} port {port}: {exc.strerror}; is another `winslow up` "
            "running? Stop it, or choose another port with --port or WINSLOW_PORT."
        ) from exc
    return sock


def _start(settings: Settings) -> Running:
    """``start_services``, its failures said in one line (``StartupError``)."""
    try:
        return start_services(settings)
    except StartupError:
        raise
    except WinslowError as exc:
        lines = exc.message.splitlines()
        more = " (WINSLOW_LOG_LEVEL=DEBUG shows the rest)" if len(lines) > 1 else ""
        raise StartupError(lines[0].rstrip(":") + more) from exc
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise StartupError(
            f"Winslow could not start: {type(exc).__name__}: {first[:300]}; "
            "WINSLOW_LOG_LEVEL=DEBUG shows where."
        ) from exc


def _request_stop(signum: int, _frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


def _already_stopping(signum: int, _frame: FrameType | None) -> None:
    # A second Ctrl+C must not cut the stop short and orphan SeaweedFS.
    log.warning("winslow: %s received; already stopping", signal.Signals(signum).name)


def _on_stop_signals(handler: Callable[[int, FrameType | None], None]) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)
