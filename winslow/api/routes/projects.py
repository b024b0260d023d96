"""Projects: create, list, show, steer (start, pause, resume, kill), variables, history,
runs and their logs, and live streams of all of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse, RedirectResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from winslow import defaults
from winslow.api.access import (
    Creator,
    ProjectApprover,
    ProjectManager,
    ProjectReader,
    ProjectSteerer,
    pipeline_role,
    visible_projects,
)
from winslow.api.context import AppContext
from winslow.api.deps import ContextDep, CurrentCaller, CurrentUser, PageLimit, PageSkip
from winslow.api.hub import (
    ALL,
    Hub,
    Message,
    history_message,
    project_key,
    project_message,
)
from winslow.api.models import (
    AfterEventQuery,
    EventPublic,
    EventsPublic,
    ProjectCreate,
    ProjectPublic,
    ProjectsPublic,
    ProjectUpdate,
    ResumeBody,
    RunIdPath,
    RunPublic,
    VariablesBody,
)
from winslow.api.routes import API_V1
from winslow.api.sse import STREAM_ANSWER, frame, hub_of, last_event_id, message_frame, stream
from winslow.core import commands
from winslow.core.access import EVERYONE, Role, group_principal
from winslow.core.models import Project, Run
from winslow.core.states import ProjectState
from winslow.engine.transitions import apply_command
from winslow.errors import (
    BackendUnavailableError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
    WinslowError,
)
from winslow.pipeline.model import Pipeline
from winslow.storage.objects import content_disposition
from winslow.store.tokens import Caller

router = APIRouter(prefix=f"{API_V1}/projects", tags=["projects"])
events_router = APIRouter(prefix=API_V1, tags=["projects"])


def _pipeline(context: AppContext, name: str) -> Pipeline:
    good, broken = context.pipelines.load_all()
    if name in good:
        return good[name]
    for file, error in broken.items():
        if file.rsplit(".", 1)[0] == name:
            raise ValidationError(f"Pipeline '{name}' ({file}) is invalid:\n{error.message}")
    raise NotFoundError(f"No pipeline '{name}'; `winslow pipeline list` shows them.")


def _show(context: AppContext, ref: str) -> ProjectPublic:
    project = context.store.get_project(ref)
    return ProjectPublic.of(project, context.store.runs(project.id))


@router.get("", response_model=ProjectsPublic)
def list_projects(
    context: ContextDep,
    caller: CurrentCaller,
    state: ProjectState | None = None,
    label: str | None = None,
    skip: PageSkip = 0,
    limit: PageLimit = defaults.PAGE_SIZE,
) -> ProjectsPublic:
    """The projects the caller may see, by name, a page at a time; ``count`` is how many
    match in all."""
    projects = visible_projects(
        context, caller, context.store.list_projects(state=state, label=label)
    )
    page = projects[skip : skip + limit]
    active: dict[str, list[Run]] = {}
    for run in context.store.active_runs():
        active.setdefault(run.project_id, []).append(run)
    data = [ProjectPublic.of(p, active.get(p.id, []), with_runs=False) for p in page]
    return ProjectsPublic(data=data, count=len(projects))


@router.post("", response_model=ProjectPublic, status_code=201)
def create_project(
    caller: Creator, body: ProjectCreate, context: ContextDep, user: CurrentUser
) -> ProjectPublic:
    """Make a project of the caller (its owner); with ``group``, that group gets
    ``group_role`` on it and its quota holds the project's runs; ``public`` lets every
    signed-in user read it."""
    commands.check_name(body.name)
    labels = commands.check_labels(body.labels)
    pipeline = _pipeline(context, body.pipeline)
    variables = commands.check_variables(body.variables)
    if pipeline_role(context, caller, pipeline.name) is None:
        raise NotFoundError(f"No pipeline '{body.pipeline}'; `winslow pipeline list` shows them.")
    grants: list[tuple[str, str]] = []
    if body.group is not None:
        if body.group not in caller.groups and not caller.admin:
            raise ForbiddenError(
                f"You are not in group '{body.group}', so the project cannot be charged to it."
            )
        grants.append((group_principal(body.group), body.group_role))
    if body.public:
        grants.append((EVERYONE, Role.PUBLIC.label))
    project = context.store.create_project(
        name=body.name,
        pipeline_name=pipeline.name,
        pipeline=pipeline.model_dump(mode="json"),
        labels=labels,
        variables=variables,
        actor=user,
        charged_group=body.group,
        grants=grants,
    )
    if body.start:
        apply_command(context.store, project.id, lambda p, _pl, _r: commands.start(p), user)
        context.engine.wake()
    return _show(context, project.id)


@router.get("/{ref}", response_model=ProjectPublic)
def show_project(
    _access: ProjectReader, ref: str, context: ContextDep, _user: CurrentUser
) -> ProjectPublic:
    return _show(context, ref)


@router.patch("/{ref}", response_model=ProjectPublic)
def update_project(
    _access: ProjectSteerer, ref: str, body: ProjectUpdate, context: ContextDep, user: CurrentUser
) -> ProjectPublic:
    """Rename, relabel, make the project follow a pipeline's current definition, or set
    its own retention (``"retention": null`` clears it)."""
    project = context.store.get_project(ref)
    if body.name is not None and body.name != project.name:
        name = body.name
        project = apply_command(
            context.store, project.id, lambda p, _pl, _r: commands.rename(p, name), user
        )
    if body.labels_add or body.labels_remove:
        add, remove = body.labels_add, body.labels_remove
        apply_command(
            context.store, project.id, lambda p, _pl, _r: commands.relabel(p, add, remove), user
        )
    if body.pipeline is not None:
        pipeline = _pipeline(context, body.pipeline)
        apply_command(
            context.store,
            project.id,
            lambda p, _pl, _r: commands.change_pipeline(p, pipeline),
            user,
        )
        context.engine.wake()
    if "retention" in body.model_fields_set:
        policy = body.retention
        apply_command(
            context.store,
            project.id,
            lambda p, _pl, _r: commands.set_retention(p, policy),
            user,
        )
    return _show(context, project.id)


@router.delete("/{ref}", status_code=204)
def delete_project(
    _access: ProjectManager, ref: str, context: ContextDep, user: CurrentUser, kill: bool = False
) -> Response:
    """Delete the project with its runs, history, workspaces and logs."""
    context.engine.delete_project(ref, kill=kill, actor=user)
    return Response(status_code=204)


def _command(context: AppContext, ref: str, decide: commands.Decider, user: str) -> ProjectPublic:
    project = apply_command(context.store, ref, decide, user)
    context.engine.wake()
    return _show(context, project.id)


@router.post("/{ref}/start", response_model=ProjectPublic)
def start_project(
    _access: ProjectSteerer, ref: str, context: ContextDep, user: CurrentUser
) -> ProjectPublic:
    return _command(context, ref, lambda p, _pl, _r: commands.start(p), user)


@router.post("/{ref}/pause", response_model=ProjectPublic)
def pause_project(
    _access: ProjectSteerer, ref: str, context: ContextDep, user: CurrentUser
) -> ProjectPublic:
    """Let the stages that run now finish, then pause."""
    return _command(context, ref, lambda p, _pl, _r: commands.pause(p), user)


@router.post("/{ref}/resume", response_model=ProjectPublic)
def resume_project(
    _access: ProjectApprover,
    ref: str,
    context: ContextDep,
    user: CurrentUser,
    body: ResumeBody | None = None,
) -> ProjectPublic:
    """Go on; with ``from_stage``, start again from that stage (earlier runs are kept).

    ``overrides`` change that stage's next run only, ``like_run`` redoes an earlier run as
    it was, ``only`` pauses once that stage ran instead of going on. ``answers`` answer the
    questions of the gate it lets pass (``GET .../gate`` shows them).
    """
    body = body or ResumeBody()
    if _access.role < Role.MAINTAINER:
        _check_member_approval(_access.project, _access.role, body)
    overrides = body.overrides.to_core() if body.overrides is not None else None
    return _command(
        context,
        ref,
        lambda p, pl, r: commands.resume(
            p,
            pl,
            r,
            body.from_stage,
            only=body.only,
            like_run=body.like_run,
            overrides=overrides,
            answers=body.answers,
        ),
        user,
    )


def _check_member_approval(project: Project, role: Role, body: ResumeBody) -> None:
    """A member may only let a gate pass that lets members approve, as it is; who only
    reads a public project may not even that."""
    gate = project.waiting_for.get("gate")
    stage = next((s for s in project.pipeline.get("stages", []) if s.get("name") == gate), None)
    plain = body.from_stage is None and body.overrides is None and body.like_run is None
    members = stage is not None and stage.get("approvers") == "member"
    if role < Role.MEMBER or not members or not plain or body.only:
        raise ForbiddenError(
            f"To resume project '{project.name}' you need to be maintainer or above; "
            "members may only approve a gate whose stage says `approvers: member`."
        )


@router.post("/{ref}/kill", response_model=ProjectPublic)
def kill_project(
    _access: ProjectSteerer, ref: str, context: ContextDep, user: CurrentUser
) -> ProjectPublic:
    """Stop the running stages now; the project pauses when they have stopped."""
    return _command(context, ref, lambda p, _pl, r: commands.kill(p, r), user)


@router.patch("/{ref}/variables", response_model=ProjectPublic)
def set_variables(
    _access: ProjectSteerer, ref: str, body: VariablesBody, context: ContextDep, user: CurrentUser
) -> ProjectPublic:
    """Set and unset variables; stages started afterwards see the new values."""
    return _command(
        context, ref, lambda p, _pl, _r: commands.set_variables(p, body.set, body.unset), user
    )


@router.get("/{ref}/history", response_model=EventsPublic)
def history(
    _access: ProjectReader,
    ref: str,
    context: ContextDep,
    _user: CurrentUser,
    after: AfterEventQuery = 0,
) -> EventsPublic:
    project = context.store.get_project(ref)
    return EventsPublic(data=[EventPublic.of(e) for e in context.store.history(project.id, after)])


@router.get("/{ref}/runs/{run_id}", response_model=RunPublic)
def show_run(
    _access: ProjectReader, ref: str, run_id: RunIdPath, context: ContextDep, _user: CurrentUser
) -> RunPublic:
    project = context.store.get_project(ref)
    return RunPublic.of(context.store.get_run(project.id, run_id))


def read_log(context: AppContext, run: Run, offset: int, limit: int | None = None) -> bytes:
    """Return a run's log from ``offset``: live from the backend, archived once it ended."""
    if not run.active and run.log_key:
        try:
            end = None if limit is None else offset + limit - 1
            if offset or end is not None:
                return context.objects.get_range(run.log_key, offset, end)
            return context.objects.get_bytes(run.log_key)
        except WinslowError:
            pass  # Not archived (yet): the node still has it.
    if run.job_id:
        try:
            data = context.backend.logs(run.job_id, offset, limit)
        except BackendUnavailableError:
            return b""  # The node is out of reach; the log is there once it is back.
        return data if limit is None else data[:limit]
    return b""


def read_log_tail(context: AppContext, run: Run, size: int) -> tuple[int, bytes]:
    """Return where the last ``size`` bytes of a run's log begin, cut to whole lines, and them."""
    total: int | None = None
    if not run.active and run.log_key:
        try:
            total = context.objects.head(run.log_key).size
        except WinslowError:
            total = None
    # A backend that knows a live log's size (local) spares reading all of it for its end.
    if total is None and run.job_id:
        total = context.backend.log_size(run.job_id)
    if total is not None:
        start = max(0, total - size)
        data = read_log(context, run, start)
    else:
        whole = read_log(context, run, 0)
        start = max(0, len(whole) - size)
        data = whole[start:]
    if start > 0:
        cut = data.find(b"\n")
        if cut >= 0:
            start, data = start + cut + 1, data[cut + 1 :]
    return start, data


@router.get(
    "/{ref}/runs/{run_id}/logs",
    response_class=PlainTextResponse,
    responses={307: {"description": "`download=true` of an archived log: to object storage."}},
)
def run_logs(
    _access: ProjectReader,
    ref: str,
    run_id: RunIdPath,
    context: ContextDep,
    _user: CurrentUser,
    offset: Annotated[int, Query(ge=0)] = 0,
    tail: Annotated[
        int | None, Query(ge=1, description="Only the last this many bytes (whole lines)")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, description="At most this many bytes")] = None,
    download: bool = False,
) -> Response:
    """The run's log as text from byte ``offset``.

    ``X-Log-Start`` is the offset of the first byte returned and ``X-Log-Offset`` where to
    go on. ``tail=N`` gives the last N bytes from a line start, so a huge log shows its end
    first; ``limit`` pages (``offset`` + ``limit`` for what came before). ``download=true``
    is the whole log as a file (archived logs: a redirect to object storage).
    """
    project = context.store.get_project(ref)
    run = context.store.get_run(project.id, run_id)
    name = f"{project.name}-{run.stage}-run{run.id}.log"
    if download:
        if not run.active and run.log_key and context.objects.exists(run.log_key):
            return RedirectResponse(
                context.objects.presign_get(run.log_key, filename=name), status_code=307
            )
        data = read_log(context, run, 0)
        return Response(
            data,
            media_type="text/plain; charset=utf-8",
            headers={"Content-Disposition": content_disposition(name)},
        )
    start = offset
    if tail is not None:
        start, data = read_log_tail(context, run, tail)
    else:
        data = read_log(context, run, offset, limit)
    if limit is not None:
        data = data[:limit]
    return PlainTextResponse(
        data.decode("utf-8", errors="replace"),
        headers={
            "X-Log-Start": str(start),
            "X-Log-Offset": str(start + len(data)),
            "X-Run-State": run.state.value,
        },
    )


@router.get(
    "/{ref}/runs/{run_id}/logs/stream",
    response_class=EventSourceResponse,
    responses=STREAM_ANSWER,
)
async def stream_logs(
    _access: ProjectReader,
    ref: str,
    run_id: RunIdPath,
    request: Request,
    context: ContextDep,
    _user: CurrentUser,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """SSE: ``log`` events carry new lines as they are written, each with the byte offset
    after its lines as ``id:`` (a ``Last-Event-ID`` goes on from there, before ``offset``);
    ``end`` when the run ends; ``refused`` (``detail``, ``code``) when the log cannot be
    read at all (Winslow's Nomad token lacks ``read-fs``), after which the stream ends:
    retrying would not help."""
    project = await to_thread.run_sync(context.store.get_project, ref)
    run = await to_thread.run_sync(context.store.get_run, project.id, run_id)
    resume = last_event_id(request)
    hub = hub_of(request)
    return stream(_log_events(context, hub, run, offset if resume is None else resume))


async def _log_events(
    context: AppContext, hub: Hub, run: Run, position: int
) -> AsyncIterator[ServerSentEvent]:
    pending = b""
    watcher = hub.log_watcher(run.project_id, run, context.backend)
    with watcher.listen() as wake:
        while not watcher.gone:
            run = watcher.run
            try:
                data = await to_thread.run_sync(read_log, context, run, position)
            except WinslowError as exc:
                yield frame("refused", {"detail": exc.message, "code": exc.code})
                return
            position += len(data)
            pending += data
            if b"\n" in pending:
                complete, _, pending = pending.rpartition(b"\n")
                lines = complete.decode("utf-8", "replace").split("\n")
                end = position - len(pending)
                yield frame("log", {"offset": end, "lines": lines}, end)
            if not run.active and not data:
                if pending:
                    lines = [pending.decode("utf-8", "replace")]
                    yield frame("log", {"offset": position, "lines": lines}, position)
                yield frame("end", {"state": run.state.value, "exit_code": run.exit_code})
                return
            if not data:  # Read out: wait until the log grew or the run changed.
                await wake.wait()
                wake.clear()


@router.get("/{ref}/events", response_class=EventSourceResponse, responses=STREAM_ANSWER)
async def project_events(
    _access: ProjectReader,
    ref: str,
    request: Request,
    context: ContextDep,
    _user: CurrentUser,
    after: AfterEventQuery = 0,
) -> Response:
    """SSE: every new history line of the project (``history``, its id as ``id:``, so a
    ``Last-Event-ID`` goes on after it) and its new state (``project``) the moment it
    changes; ``deleted`` when it is gone."""
    project = await to_thread.run_sync(context.store.get_project, ref)
    resume = last_event_id(request)
    start = after if resume is None else max(after, resume)
    return stream(_project_events(context, hub_of(request), project.id, start))


def _project_now(context: AppContext, project_id: str, after: int) -> list[Message]:
    """The project's history after ``after`` and its state, read from the store."""
    events = context.store.history(project_id, after)
    try:
        project = context.store.get_project(project_id)
    except NotFoundError:
        return [*map(history_message, events), Message("deleted", {"id": project_id})]
    now = project_message(project, context.store.runs(project_id))
    return [*map(history_message, events), now]


async def _project_events(
    context: AppContext, hub: Hub, project_id: str, last: int
) -> AsyncIterator[ServerSentEvent]:
    shown: Hashable = None
    with hub.subscribe(project_id, last) as news:
        while True:
            resync, messages = await news.wait(hub.wait_seconds())
            if resync or not hub.push:
                messages = await to_thread.run_sync(_project_now, context, project_id, last)
            for message in messages:
                if message.event == "history":
                    if message.id is None or message.id <= last:
                        continue  # Sent already: read by a resync and pushed too.
                    last = message.id
                elif message.event == "project":
                    if message.key == shown:
                        continue
                    shown = message.key
                yield message_frame(message)
                if message.event == "deleted":
                    return


@events_router.get("/events", response_class=EventSourceResponse, responses=STREAM_ANSWER)
async def all_project_events(
    request: Request, context: ContextDep, caller: CurrentCaller
) -> Response:
    """SSE: a ``project`` event whenever any project changes (for the overview), each
    project once at the start; ``deleted`` when one is gone."""
    return stream(_all_project_events(context, hub_of(request), caller))


def _may_see(context: AppContext, caller: Caller, project_id: str) -> bool:
    try:
        project = context.store.get_project(project_id)
    except NotFoundError:
        return False
    return bool(visible_projects(context, caller, [project]))


def _changed_projects(
    context: AppContext, caller: Caller, seen: dict[str, Hashable]
) -> list[Message]:
    """What changed of the list since ``seen`` (project id → key of what was sent)."""
    projects = visible_projects(context, caller, context.store.list_projects())
    messages = [project_message(p) for p in projects if seen.get(p.id) != project_key(p)]
    gone = seen.keys() - {p.id for p in projects}
    return messages + [Message("deleted", {"id": project_id}) for project_id in gone]


async def _all_project_events(
    context: AppContext, hub: Hub, caller: Caller
) -> AsyncIterator[ServerSentEvent]:
    seen: dict[str, Hashable] = {}
    may_see: dict[str, bool] = {}
    with hub.subscribe(ALL, None) as news:
        while True:
            resync, messages = await news.wait(hub.wait_seconds())
            if resync or not hub.push:
                may_see.clear()  # grants may have changed meanwhile
                messages = await to_thread.run_sync(_changed_projects, context, caller, seen)
            for message in messages:
                project_id = message.data["id"]
                if message.event != "deleted" and project_id not in seen:
                    if project_id not in may_see:
                        may_see[project_id] = await to_thread.run_sync(
                            _may_see, context, caller, project_id
                        )
                    if not may_see[project_id]:
                        continue
                if message.event == "deleted":
                    if seen.pop(project_id, None) is None:
                        continue
                elif seen.get(project_id) == message.key:
                    continue
                else:
                    seen[project_id] = message.key
                yield message_frame(message)
