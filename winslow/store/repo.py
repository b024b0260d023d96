"""Reading and writing projects, runs, history, API tokens and project tokens.

``Store`` reads rows and hands out the frozen values of ``core/models.py``; nothing
outside ``store/`` sees a row or a session. A change of a project or its runs happens in a
``ProjectTransaction`` (``Store.project_transaction``), which ``engine/transitions.py``
drives: it holds the rules, the store holds the SQL. Console sign-ins (kept by the
server, made from API tokens) have their own module, ``store/sessions.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Text, and_, cast, event, func, make_url, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, sessionmaker

from winslow import metrics
from winslow.core.models import HistoryEvent, Project, Run
from winslow.core.states import (
    ACTIVE_RUN_STATES,
    ADVANCING_PROJECT_STATES,
    ProjectState,
    StageRunState,
)
from winslow.errors import ConflictError, NotFoundError
from winslow.store.db import make_engine, make_sessions, migrate
from winslow.store.generations import GenerationCache
from winslow.store.people_tables import AccessGrantRow, ApiTokenRow
from winslow.store.rows import now, to_event, to_project, to_run, utc
from winslow.store.tables import (
    EventRow,
    ProjectRow,
    ProjectTokenRow,
    RunRow,
)
from winslow.store.transaction import CHANGED_PROJECTS, ProjectTransaction, lock_project_row

log = logging.getLogger(__name__)


def _count_query(*_args: Any) -> None:
    metrics.count_query()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


PROJECT_TOKEN_PREFIX = "wsl_t_"
"""Project tokens start so; API tokens with ``wsl_`` only, so a person tells them apart."""


@dataclass(frozen=True)
class RunRoom:
    """The most any one node has free of each amount; a run asking for more of any of
    them cannot be placed now."""

    cpus: float
    memory_mb: int
    gpus: int


@dataclass(frozen=True)
class ProjectToken:
    """A project token as the store shows it: never the token, never its hash."""

    name: str
    capabilities: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def to_project_token(row: ProjectTokenRow) -> ProjectToken:
    return ProjectToken(
        name=row.name,
        capabilities=tuple(row.capabilities or ()),
        created_at=utc(row.created_at) or now(),
        revoked_at=utc(row.revoked_at),
    )


KEPT_PROJECTS = 64
"""Projects whose row and runs are kept between reads (``get_project``, ``runs``): the
ones the engine is busy with; a bigger count of busy projects only reads more often."""

LIST_BATCH_ROWS = 200
"""Project rows read at a time when the kept list is read again: the peak of a rebuild
(decoded rows not yet turned into projects) stays this small, whatever the count."""


class SharedSnapshots:
    """Decodes each distinct pipeline snapshot once and hands out that one copy.

    Projects made from one pipeline hold equal copies of its definition, the largest part
    of a project; the kept project list would otherwise hold one decoded copy per project,
    and a rebuild would decode them all. Equal text, one dict.
    """

    def __init__(self) -> None:
        self._decoded: dict[str, dict[str, Any]] = {}

    def of(self, text: str | None) -> dict[str, Any]:
        if text is None:
            return {}
        found = self._decoded.get(text)
        if found is None:
            found = self._decoded[text] = json.loads(text)
        return found


class Store:
    """The SQL store of one Winslow server."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        self.write_sessions: sessionmaker[Session] = make_sessions(self.engine)
        if url.startswith("sqlite"):
            self.read_engine: Engine = make_engine(url, for_writes=False)
        else:
            self.read_engine = self.engine
        self.sessions: sessionmaker[Session] = make_sessions(self.read_engine)
        """Sessions for reading; every write goes through ``transaction``."""
        self._projects_lock = threading.Lock()
        self._projects_cache: tuple[tuple[Any, ...], tuple[Project, ...]] | None = None
        self._password: str | None = None
        self._password_hooked = False
        self._commit_listeners: list[Callable[[Collection[str]], None]] = []
        self._kept_projects = GenerationCache[Project](KEPT_PROJECTS)
        self._kept_runs = GenerationCache[tuple[Run, ...]](KEPT_PROJECTS)
        self._keeping = threading.local()
        for engine in {self.engine, self.read_engine}:
            event.listen(engine, "before_cursor_execute", _count_query)

    def migrate(self) -> None:
        migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()

    def use_database_url(self, url: str) -> None:
        """Connect with the password of ``url`` from now on: a rotated one, from Vault.

        Pooled connections are dropped (those in use end their transaction first) and new
        ones log in with the new password through a ``do_connect`` hook. Raises
        ``ConflictError`` when more than the password changed: that needs a restart.
        """
        new, old = make_url(url), make_url(self.url)
        fields = ("drivername", "username", "host", "port", "database", "query")
        if any(getattr(new, name) != getattr(old, name) for name in fields):
            raise ConflictError(
                "The database URL changed in more than its password; restart Winslow to "
                "connect to the new database."
            )
        if not self._password_hooked:
            for engine in {self.engine, self.read_engine}:
                event.listen(engine, "do_connect", self._use_current_password)
            self._password_hooked = True
        self._password = new.password
        self.url = url
        for engine in {self.engine, self.read_engine}:
            engine.dispose()

    def _use_current_password(
        self, _dialect: Any, _record: Any, _args: Any, params: dict[str, Any]
    ) -> None:
        if self._password is not None:
            params["password"] = self._password

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Yield a session inside one transaction; commit on success, roll back on error."""
        with self.write_sessions() as session, session.begin():
            yield session
        changed = session.info.get(CHANGED_PROJECTS)
        if changed:
            self._committed(changed)

    @contextmanager
    def kept_reads(self) -> Iterator[None]:
        """Within the block, in this thread, ``get_project`` (by id) and ``runs`` keep
        what they read until this process commits a change to that project.

        The engine's round reads a project and its runs four or five times for every
        run that ends. Whatever was kept is forgotten when a block begins, so a write by
        another server on the same database is read by the next round; within a round
        the engine's transitions check under the project's lock anyway.
        """
        self._kept_projects.clear()
        self._kept_runs.clear()
        self._keeping.on = True
        try:
            yield
        finally:
            self._keeping.on = False

    def _keeps(self) -> bool:
        return bool(getattr(self._keeping, "on", False))

    def on_commit(self, listener: Callable[[Collection[str]], None]) -> None:
        """Call ``listener`` with the ids of the projects each transaction changed (runs
        and history included), after it committed, in the writer's thread; it must not
        block. The live streams hear of changes so, instead of asking."""
        self._commit_listeners.append(listener)

    def _committed(self, project_ids: Collection[str]) -> None:
        self._kept_projects.changed(project_ids)
        self._kept_runs.changed(project_ids)
        for listener in self._commit_listeners:
            try:
                listener(project_ids)
            except Exception:  # A listener's trouble must not fail a committed write.
                log.exception("a commit listener failed")

    # -- projects -----------------------------------------------------------------------

    @contextmanager
    def project_transaction(self, ref: str) -> Iterator[ProjectTransaction]:
        """Yield the project named or numbered ``ref``, locked until the block ends; commit
        then, or roll back if the block raises. Raises ``NotFoundError`` for no project."""
        with self.transaction() as session:
            yield ProjectTransaction(session, lock_project_row(session, ref))

    def run_project_id(self, run_id: int) -> str | None:
        """The id of the project that run ``run_id`` belongs to; ``None`` if no such run."""
        with self.sessions() as session:
            return session.scalars(select(RunRow.project_id).where(RunRow.id == run_id)).first()

    def create_project(
        self,
        *,
        name: str,
        pipeline_name: str,
        pipeline: dict[str, Any],
        labels: tuple[str, ...],
        variables: dict[str, str],
        actor: str,
        charged_group: str | None = None,
        grants: Sequence[tuple[str, str]] = (),
    ) -> Project:
        """Create an idle project of ``actor`` (its owner, who holds the owner role) with
        the further ``grants`` (principal, role); raise ``ConflictError`` if the name is
        taken."""
        at = now()
        row = ProjectRow(
            id=uuid.uuid4().hex[:12],
            name=name,
            pipeline_name=pipeline_name,
            pipeline=pipeline,
            state=ProjectState.IDLE.value,
            state_reason="created; start it when ready",
            waiting_for={},
            approved_gates=[],
            labels=list(labels),
            variables=variables,
            version=1,
            created_at=at,
            updated_at=at,
            state_changed_at=at,
            owner=actor,
            charged_group=charged_group,
        )
        try:
            with self.transaction() as session:
                session.add(row)
                session.flush()
                for principal, role in ((f"user:{actor}", "owner"), *grants):
                    session.add(
                        AccessGrantRow(kind="project", key=row.id, principal=principal, role=role)
                    )
                ProjectTransaction(session, row).add_event(
                    actor,
                    "create",
                    f"created from pipeline '{pipeline_name}'",
                    {"labels": list(labels), "variables": variables},
                )
        except IntegrityError:
            raise ConflictError(
                f"A project named '{name}' exists already; choose another name."
            ) from None
        return to_project(row)

    def get_project(self, ref: str) -> Project:
        """The project with id or name ``ref`` (by id, as kept, within ``kept_reads``)."""
        keeps = self._keeps()
        kept = self._kept_projects.get(ref) if keeps else None
        if kept is not None:
            return kept
        generation = self._kept_projects.generation(ref)
        with self.sessions() as session:
            row = (
                session.get(ProjectRow, ref)
                or session.scalars(select(ProjectRow).where(ProjectRow.name == ref)).first()
            )
            if row is None:
                raise NotFoundError(f"No project '{ref}'; `winslow project list` shows them.")
            project = to_project(row)
        if keeps and project.id == ref:
            self._kept_projects.put(ref, generation, project)
        return project

    def list_projects(
        self, state: ProjectState | None = None, label: str | None = None
    ) -> list[Project]:
        """Every project by name (of ``state``, with ``label``), from ``kept_projects``."""
        return [
            p
            for p in self.kept_projects()
            if (state is None or p.state is state) and (label is None or label in p.labels)
        ]

    def kept_projects(self) -> tuple[Project, ...]:
        """Every project by name, as kept between calls: the very same tuple until a
        project changes, so a caller may keep what it derives from it along with it.

        The whole list is read again only when a project changed: every write to a
        project row bumps its version (and a new one adds a row), so the count, the sum
        of versions and the latest update say whether the list kept from the last call is
        still the store's. The overview and its event stream ask every fraction of a
        second, with thousands of projects.
        """
        with self.sessions() as session:
            stamp = tuple(
                session.execute(
                    select(
                        func.count(), func.sum(ProjectRow.version), func.max(ProjectRow.updated_at)
                    )
                ).one()
            )
            with self._projects_lock:
                cached = self._projects_cache
            if cached is not None and cached[0] == stamp:
                return cached[1]
            # The snapshot comes as text, so equal ones are decoded once; rows come in
            # batches, so the rebuild's peak does not grow with the count.
            query = (
                select(ProjectRow, cast(ProjectRow.pipeline, Text))
                .options(defer(ProjectRow.pipeline))
                .order_by(ProjectRow.name)
                .execution_options(yield_per=LIST_BATCH_ROWS)
            )
            shared = SharedSnapshots()
            projects = tuple(
                to_project(row, shared.of(text)) for row, text in session.execute(query)
            )
        with self._projects_lock:
            self._projects_cache = (stamp, projects)
        return projects

    def advancing_project_ids(self, among: Collection[str] | None = None) -> list[str]:
        """Ids of projects the engine must look at: advancing ones or with active runs
        (only those ``among`` these ids, when given)."""
        states = [state.value for state in ADVANCING_PROJECT_STATES]
        projects = select(ProjectRow.id).where(ProjectRow.state.in_(states))
        runs = select(RunRow.project_id).where(
            RunRow.state.in_([s.value for s in ACTIVE_RUN_STATES])
        )
        if among is not None:
            if not among:
                return []
            projects = projects.where(ProjectRow.id.in_(list(among)))
            runs = runs.where(RunRow.project_id.in_(list(among)))
        with self.sessions() as session:
            ids = set(session.scalars(projects)) | set(session.scalars(runs))
        return sorted(ids)

    def changed_projects(self, since: datetime) -> dict[str, int]:
        """Id → version of every project written at or after ``since``: what the engine
        looks at between its full rounds, so a round costs what changed, not what exists."""
        query = select(ProjectRow.id, ProjectRow.version).where(ProjectRow.updated_at >= since)
        with self.sessions() as session:
            return {project_id: version for project_id, version in session.execute(query)}

    def job_project_ids(self, job_ids: Collection[str]) -> set[str]:
        """Ids of the projects whose runs have these backend job IDs."""
        if not job_ids:
            return set()
        query = select(RunRow.project_id).where(RunRow.job_id.in_(list(job_ids)))
        with self.sessions() as session:
            return set(session.scalars(query))

    # -- runs ---------------------------------------------------------------------------

    def runs(self, project_id: str) -> list[Run]:
        """Every run of the project, oldest first (as kept, within ``kept_reads``)."""
        keeps = self._keeps()
        kept = self._kept_runs.get(project_id) if keeps else None
        if kept is not None:
            return list(kept)
        generation = self._kept_runs.generation(project_id)
        query = select(RunRow).where(RunRow.project_id == project_id).order_by(RunRow.id)
        with self.sessions() as session:
            runs = [to_run(row) for row in session.scalars(query)]
        if keeps:
            self._kept_runs.put(project_id, generation, tuple(runs))
        return runs

    def get_run(self, project_id: str, run_id: int) -> Run:
        with self.sessions() as session:
            row = session.get(RunRow, run_id)
            if row is None or row.project_id != project_id:
                raise NotFoundError(
                    f"Project has no run {run_id}; `winslow project show` lists its runs."
                )
            return to_run(row)

    def active_runs(
        self, among: Collection[str] | None = None, *, submitted: bool | None = None
    ) -> list[Run]:
        """Every pending or running run of every project (of those ``among`` these ids;
        only submitted or unsubmitted ones, when ``submitted`` says), oldest first."""
        query = select(RunRow).where(RunRow.state.in_([s.value for s in ACTIVE_RUN_STATES]))
        if among is not None:
            query = query.where(RunRow.project_id.in_(list(among)))
        if submitted is not None:
            query = query.where(RunRow.submitted.is_(submitted))
        with self.sessions() as session:
            return [to_run(row) for row in session.scalars(query.order_by(RunRow.id))]

    def waiting_runs(
        self, among: Collection[str], room: RunRoom | None, *, after: int = 0, limit: int = 64
    ) -> list[Run]:
        """Unsubmitted active runs after run ``after``, oldest first, at most ``limit``: those
        of the projects ``among``, and those of any project that ``room`` could hold (every
        one without ``room``). The filter runs in SQL, so runs that cannot fit now cost
        the engine nothing however many wait."""
        query = select(RunRow).where(
            RunRow.state.in_([s.value for s in ACTIVE_RUN_STATES]),
            RunRow.submitted.is_(False),
            RunRow.id > after,
        )
        if room is not None:
            # A run created with no amount asks for its stage's: it may fit.
            fits = and_(
                or_(RunRow.cpus <= room.cpus + 1e-9, RunRow.cpus == 0),
                or_(RunRow.memory_mb <= room.memory_mb, RunRow.memory_mb == 0),
                RunRow.gpus <= room.gpus,
            )
            query = query.where(
                or_(fits, RunRow.project_id.in_(list(among)), RunRow.cancel_requested.is_(True))
            )
        with self.sessions() as session:
            rows = session.scalars(query.order_by(RunRow.id).limit(limit))
            return [to_run(row) for row in rows]

    def succeeded_stages(self, project_ids: Collection[str] | None = None) -> dict[str, set[str]]:
        """Project ID → the stages done: a current (not superseded) run succeeded or skipped.

        Of every project, or of ``project_ids`` only (a page of the overview: its cost
        then follows the page, not the history of all projects).
        """
        states = (StageRunState.SUCCEEDED.value, StageRunState.SKIPPED.value)
        query = select(RunRow.project_id, RunRow.stage, RunRow.state).where(
            RunRow.superseded.is_(False)
        )
        if project_ids is None:
            query = query.where(RunRow.state.in_(states))
        else:
            # Chosen by project only: given the state too, SQLite walks the state index
            # through the ended runs of every project (100 ms at 100,000 runs).
            query = query.where(RunRow.project_id.in_(list(project_ids)))
        with self.sessions() as session:
            done: dict[str, set[str]] = {}
            for project_id, stage, state in session.execute(query.distinct()):
                if state in states:
                    done.setdefault(project_id, set()).add(stage)
            return done

    def run_counts(self) -> dict[str, int]:
        with self.sessions() as session:
            rows = session.execute(select(RunRow.state, func.count()).group_by(RunRow.state))
            return {state: count for state, count in rows}

    def project_counts(self) -> dict[str, int]:
        """Project state → how many projects are in it (states with none are left out)."""
        with self.sessions() as session:
            query = select(ProjectRow.state, func.count()).group_by(ProjectRow.state)
            return {state: count for state, count in session.execute(query)}

    # -- history ------------------------------------------------------------------------

    def latest_event_id(self) -> int:
        """The id of the newest history line of any project; 0 for none."""
        with self.sessions() as session:
            return session.scalar(select(func.max(EventRow.id))) or 0

    def history(self, project_id: str, after: int = 0) -> list[HistoryEvent]:
        with self.sessions() as session:
            query = (
                select(EventRow)
                .where(EventRow.project_id == project_id, EventRow.id > after)
                .order_by(EventRow.id)
            )
            return [to_event(row) for row in session.scalars(query)]

    # -- tokens -------------------------------------------------------------------------

    def create_token(self, name: str, *, admin: bool = False) -> str:
        """Make the user ``name`` (if new) and a token of theirs called ``name``; return
        it, only its hash is kept. ``admin``: an admin user holding an admin-scope token.
        For the first start and for scripts on the server's machine; people make their
        own tokens through the API (``store/tokens.py``)."""
        from winslow.core.access import Scope
        from winslow.store.people import ensure_user, update_user
        from winslow.store.tokens import create_token

        user = ensure_user(self, name, admin=admin)
        if admin and not user.admin:
            update_user(self, name, admin=True)
        scope = Scope.ADMIN if admin else Scope.STEER
        return create_token(self, name, name, scope=scope)[0]

    def has_tokens(self) -> bool:
        with self.sessions() as session:
            return session.scalars(select(ApiTokenRow.id).limit(1)).first() is not None

    def token_owner(self, token: str) -> str | None:
        """Return the user of the working token ``token``, or ``None``."""
        from winslow.store.tokens import find_token

        with self.sessions() as session:
            found = find_token(session, token, now())
            return found[1].name if found is not None else None

    # -- project tokens -----------------------------------------------------------------

    def create_project_token(
        self, project_id: str, name: str, capabilities: list[str], *, actor: str
    ) -> str:
        """Create the project's token ``name`` and return it; only its hash is kept.

        The creation lands in the project's history (without the token). Raises
        ``NotFoundError`` for an unknown project and ``ConflictError`` if the project has
        a token of that name already, revoked ones included (the project row is locked,
        so two creations of one name cannot both pass the check).
        """
        token = PROJECT_TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.transaction() as session:
            project = lock_project_row(session, project_id)
            taken = session.scalars(
                select(ProjectTokenRow.id).where(
                    ProjectTokenRow.project_id == project.id, ProjectTokenRow.name == name
                )
            ).first()
            if taken is not None:
                raise ConflictError(
                    f"Project '{project.name}' has a token named '{name}' already; choose "
                    "another name (a revoked token keeps its name)."
                )
            session.add(
                ProjectTokenRow(
                    project_id=project.id,
                    name=name,
                    token_hash=hash_token(token),
                    capabilities=list(capabilities),
                    created_at=now(),
                )
            )
            ProjectTransaction(session, project).add_event(
                actor,
                "token",
                f"created token '{name}' ({', '.join(capabilities) or 'no capabilities'})",
                {"token": name, "capabilities": list(capabilities)},
            )
        return token

    def list_project_tokens(self, project_id: str) -> list[ProjectToken]:
        """Every token of the project by name, revoked ones included."""
        with self.sessions() as session:
            query = (
                select(ProjectTokenRow)
                .where(ProjectTokenRow.project_id == project_id)
                .order_by(ProjectTokenRow.name)
            )
            return [to_project_token(row) for row in session.scalars(query)]

    def revoke_project_token(self, project_id: str, name: str, *, actor: str) -> bool:
        """Revoke the project's token ``name`` at once; ``False`` if it was revoked before.

        The revocation lands in the project's history. Raises ``NotFoundError`` if the
        project has no such token.
        """
        with self.transaction() as session:
            project = lock_project_row(session, project_id)
            row = session.scalars(
                select(ProjectTokenRow).where(
                    ProjectTokenRow.project_id == project.id, ProjectTokenRow.name == name
                )
            ).first()
            if row is None:
                raise NotFoundError(
                    f"Project '{project.name}' has no token '{name}'; "
                    f"`winslow project token list {project.name}` shows them."
                )
            if row.revoked_at is not None:
                return False
            row.revoked_at = now()
            ProjectTransaction(session, project).add_event(
                actor, "token", f"revoked token '{name}'", {"token": name}
            )
            return True

    def project_token(self, project_id: str, token: str) -> ProjectToken | None:
        """Return the project's valid (unrevoked) token ``token``, or ``None``.

        Only this project's tokens are looked at, so another project's token is as wrong
        as a made-up one. The hashes are compared in constant time, and every candidate
        is compared, so how long this takes says nothing about which one matched.
        """
        digest = hash_token(token)
        with self.sessions() as session:
            rows = session.scalars(
                select(ProjectTokenRow).where(
                    ProjectTokenRow.project_id == project_id,
                    ProjectTokenRow.revoked_at.is_(None),
                )
            ).all()
        found: ProjectTokenRow | None = None
        for row in rows:
            if hmac.compare_digest(row.token_hash, digest):
                found = row
        return to_project_token(found) if found is not None else None


def open_store(url: str) -> Store:
    """Open the store at ``url`` and migrate its schema."""
    store = Store(url)
    store.migrate()
    return store
