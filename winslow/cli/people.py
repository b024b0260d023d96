"""``winslow user ...``, ``winslow group ...``, ``winslow whoami`` and who may do what on a
project or pipeline (``winslow project access|grant|revoke-access``, the same for
pipelines).

Through the API as the signed-in user: admins make and change users and groups, a group's
owners and maintainers put people in it, a project's owners give roles on it. A grant
names a principal: ``user:<name>``, ``group:<name>`` or ``*`` (every signed-in user, only
with the ``public`` role). Changing grants reads them, changes the one named and writes
them all back, so the other grants stay as they were.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table

from winslow.cli.client import ApiClient
from winslow.cli.helpers import (
    JsonOpt,
    WinslowTyper,
    add_time_column,
    api_client,
    done,
    emit,
    fail,
    out,
    short_time,
)
from winslow.cli.pipelines import pipeline_app
from winslow.cli.projects import project_app
from winslow.core.access import EVERYONE, GROUP_ROLES, Role, check_principal
from winslow.units import format_megabytes, parse_megabytes

user_app = WinslowTyper(no_args_is_help=True, help="Users: who signs in (admins manage them).")
group_app = WinslowTyper(
    no_args_is_help=True, help="Groups: people who share projects and a quota."
)

GROUP_ROLE_WORDS = tuple(role.label for role in GROUP_ROLES)
"""The roles a person may hold within a group."""


def _part(name: str) -> str:
    """A name as one path segment of an API URL."""
    return quote(name, safe="")


# -- quotas -------------------------------------------------------------------------------


def quota_words(quota: dict[str, Any] | None) -> str:
    """``4 GPUs, 16 CPUs, 64.0 GiB memory``; ``no limit`` for none."""
    quota = quota or {}
    words = []
    if quota.get("gpus") is not None:
        words.append(f"{quota['gpus']} GPUs")
    if quota.get("cpus") is not None:
        words.append(f"{quota['cpus']:g} CPUs")
    if quota.get("memory_mb") is not None:
        words.append(f"{format_megabytes(quota['memory_mb'])} memory")
    return ", ".join(words) or "no limit"


def _limit(text: str, option: str, parse: Callable[[str], float]) -> float | None:
    """The amount an option gives; ``None`` for ``none`` (no limit)."""
    if text.strip().lower() == "none":
        return None
    try:
        value = parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None
    if value < 0:
        raise typer.BadParameter(f"must be 0 or more, got {text}", param_hint=option)
    return value


def _whole(text: str) -> int:
    return int(text)


def quota_change(
    current: dict[str, Any] | None, gpus: str | None, cpus: str | None, memory: str | None
) -> dict[str, Any]:
    """The quota after the options given: each one set (``none``: no limit), the others
    as they were."""
    quota = {"gpus": None, "cpus": None, "memory_mb": None, **(current or {})}
    for key, text, option, parse in (
        ("gpus", gpus, "--gpus", _whole),
        ("cpus", cpus, "--cpus", float),
        ("memory_mb", memory, "--memory", parse_megabytes),
    ):
        if text is not None:
            quota[key] = _limit(text, option, parse)
    return quota


GpusOpt = Annotated[
    str | None, typer.Option("--gpus", help="GPUs its running stages may hold at once; none.")
]
CpusOpt = Annotated[str | None, typer.Option("--cpus", help="CPUs at once; none: no limit.")]
MemoryOpt = Annotated[
    str | None, typer.Option("--memory", help="Memory at once: 64G, 512M, or MiB; none.")
]
ClearOpt = Annotated[bool, typer.Option("--clear", help="No limits at all.")]


def _set_quota(
    path: str,
    what: str,
    gpus: str | None,
    cpus: str | None,
    memory: str | None,
    clear: bool,
    as_json: bool,
) -> None:
    """Show the quota of a user or group (``path``), or change it by the options given."""
    if clear and (gpus, cpus, memory) != (None, None, None):
        raise typer.BadParameter(
            "--clear cannot go with --gpus, --cpus or --memory", param_hint="--clear"
        )
    with api_client() as api:
        data = api.get(path)
        if clear:
            data = api.patch(path, {"clear_quota": True})
        elif (gpus, cpus, memory) != (None, None, None):
            quota = quota_change(data.get("quota"), gpus, cpus, memory)
            limited = any(v is not None for v in quota.values())
            data = api.patch(path, {"quota": quota} if limited else {"clear_quota": True})
    emit(
        data.get("quota") if as_json else data,
        as_json,
        lambda d: out.print(f"quota of {what}: {quota_words(d.get('quota'))}", markup=False),
    )


# -- users --------------------------------------------------------------------------------


def _read_secret(prompt: str, *, confirm: bool = False) -> str:
    """A password from the terminal (hidden), or the next line of stdin when it is a
    pipe, so scripts can hand one over without it showing in the process list."""
    if sys.stdin.isatty():
        secret: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        fail(f"No password given ({prompt.lower()}).")
    return secret


def _print_user(u: dict[str, Any]) -> None:
    shown = f" ({u['display_name']})" if u["display_name"] else ""
    email = f" <{u['email']}>" if u["email"] else ""
    words = [f"{u['source']} user"]
    words += ["admin"] if u["admin"] else []
    words += ["disabled"] if u["disabled"] else []
    out.print(f"{u['name']}{shown}{email}  {', '.join(words)}", markup=False, highlight=False)
    signed_in = short_time(u["last_sign_in_at"]) or "never"
    out.print(f"created {short_time(u['created_at'])}, last signed in {signed_in}", markup=False)
    if u["source"] == "local":
        password = "set"
        if not u["has_password"]:
            password = f"none; `winslow user passwd {u['name']}` sets one"
        out.print(f"password: {password}", markup=False)
    groups = ", ".join(f"{g} ({role})" for g, role in sorted(u["groups"].items()))
    out.print(f"groups: {groups or 'none'}", markup=False, highlight=False)
    out.print(f"quota: {quota_words(u.get('quota'))}", markup=False)


@user_app.command("list")
def user_list(as_json: JsonOpt = False) -> None:
    """List the users, with their groups (admins)."""
    with api_client() as api:
        data = api.get("/users")

    def human(d: dict[str, Any]) -> None:
        table = Table(box=None, pad_edge=False)
        table.add_column("NAME", overflow="fold")
        table.add_column("SOURCE", no_wrap=True)
        table.add_column("ADMIN", no_wrap=True)
        table.add_column("DISABLED", no_wrap=True)
        table.add_column("GROUPS", overflow="fold")
        add_time_column(table, "LAST SIGN-IN")
        for u in d["data"]:
            table.add_row(
                u["name"],
                u["source"],
                "yes" if u["admin"] else "",
                "yes" if u["disabled"] else "",
                ",".join(sorted(u["groups"])),
                short_time(u["last_sign_in_at"]),
            )
        out.print(table)

    emit(data, as_json, human)


@user_app.command("create")
def user_create(
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="Make them an admin.")] = False,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read their password from stdin's first line; without it they have "
            "none until `winslow user passwd NAME` sets one.",
        ),
    ] = False,
    display_name: Annotated[str, typer.Option(help="The name the console shows.")] = "",
    email: Annotated[str, typer.Option(help="Their e-mail address.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create a local user (admins)."""
    body: dict[str, Any] = {
        "name": name,
        "admin": admin,
        "display_name": display_name,
        "email": email,
    }
    if password_stdin:
        body["password"] = sys.stdin.readline().rstrip("\r\n")
        if not body["password"]:
            fail("No password on stdin; give one line, or leave out --password-stdin.")
    with api_client() as api:
        data = api.post("/users", body)
    emit(data, as_json, _print_user)


@user_app.command("show")
def user_show(name: str, as_json: JsonOpt = False) -> None:
    """Show a user: groups and roles there, quota, last sign-in (yourself, or admins)."""
    with api_client() as api:
        data = api.get(f"/users/{_part(name)}")
    emit(data, as_json, _print_user)


def _patch_user(name: str, body: dict[str, Any], as_json: bool, words: str) -> None:
    with api_client() as api:
        data = api.patch(f"/users/{_part(name)}", body)
    done(data, as_json, words)


@user_app.command("disable")
def user_disable(name: str, as_json: JsonOpt = False) -> None:
    """Disable a user: their console sessions end and their tokens stop working (admins)."""
    _patch_user(name, {"disabled": True}, as_json, f"user '{name}' disabled")


@user_app.command("enable")
def user_enable(name: str, as_json: JsonOpt = False) -> None:
    """Let a disabled user sign in again (admins)."""
    _patch_user(name, {"disabled": False}, as_json, f"user '{name}' enabled")


@user_app.command("admin")
def user_admin(
    name: str,
    on: Annotated[
        bool | None, typer.Option("--on/--off", help="Make them an admin, or no longer.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a user an admin, or take it away (admins)."""
    if on is None:
        raise typer.BadParameter("give --on or --off", param_hint="--on/--off")
    words = f"user '{name}' is {'an admin' if on else 'no admin'}"
    _patch_user(name, {"admin": on}, as_json, words)


@user_app.command("passwd")
def user_passwd(
    name: Annotated[str | None, typer.Argument(help="Whose password; yours if left out.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set a local user's password: yours (asks for the current one), or anyone's (admins).

    Asks on the terminal without showing what is typed; from a pipe it reads the current
    password (when needed) and the new one, a line each.
    """
    with api_client() as api:
        me = api.get("/me")
        target = name or me["name"]
        body: dict[str, Any] = {}
        if target == me["name"] and not (me["admin"] and me["scope"] == "admin"):
            body["current"] = _read_secret("Current password")
        body["password"] = _read_secret("New password", confirm=True)
        api.request("PUT", f"/users/{_part(target)}/password", json=body)
    done({"user": target, "password": "set"}, as_json, f"password of '{target}' set")


@user_app.command("quota")
def user_quota(
    name: str,
    gpus: GpusOpt = None,
    cpus: CpusOpt = None,
    memory: MemoryOpt = None,
    clear: ClearOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show or set what the user's projects may hold at once (setting: admins).

    Each option given sets that amount (`none`: no limit); the others stay as they were.
    """
    _set_quota(f"/users/{_part(name)}", f"user '{name}'", gpus, cpus, memory, clear, as_json)


def whoami(as_json: JsonOpt = False) -> None:
    """Who the CLI acts as: your user, groups, and what the token allows."""
    with api_client() as api:
        data = api.get("/me")

    def human(d: dict[str, Any]) -> None:
        out.print(d["name"] + (" (admin)" if d["admin"] else ""), markup=False)
        out.print(f"groups: {', '.join(d['groups']) or 'none'}", markup=False, highlight=False)
        how = d["via"].replace("token:", "token ", 1)
        limit = f", only projects {', '.join(d['projects'])}" if d["projects"] is not None else ""
        out.print(f"via {how}, scope {d['scope']}{limit}", markup=False, highlight=False)

    emit(data, as_json, human)


# -- groups -------------------------------------------------------------------------------


def _print_group(g: dict[str, Any]) -> None:
    about = f": {g['description']}" if g["description"] else ""
    out.print(f"{g['name']} ({g['source']} group){about}", markup=False, highlight=False)
    out.print(f"quota: {quota_words(g.get('quota'))}", markup=False)
    if not g["members"]:
        out.print("no members", markup=False)
        return
    table = Table("USER", "ROLE", box=None, pad_edge=False)
    order = {word: i for i, word in enumerate(reversed(GROUP_ROLE_WORDS))}
    for user, role in sorted(g["members"].items(), key=lambda m: (order.get(m[1], 9), m[0])):
        table.add_row(user, role)
    out.print(table)


@group_app.command("list")
def group_list(as_json: JsonOpt = False) -> None:
    """List the groups."""
    with api_client() as api:
        data = api.get("/groups")

    def human(d: dict[str, Any]) -> None:
        table = Table(box=None, pad_edge=False)
        table.add_column("NAME", overflow="fold")
        table.add_column("SOURCE", no_wrap=True)
        table.add_column("MEMBERS", no_wrap=True, justify="right")
        table.add_column("QUOTA", overflow="fold")
        table.add_column("DESCRIPTION", overflow="fold")
        for g in d["data"]:
            quota = quota_words(g.get("quota")) if g.get("quota") else ""
            table.add_row(g["name"], g["source"], str(len(g["members"])), quota, g["description"])
        out.print(table)

    emit(data, as_json, human)


@group_app.command("create")
def group_create(
    name: str,
    description: Annotated[str, typer.Option(help="What the group is for.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create a group (admins)."""
    with api_client() as api:
        data = api.post("/groups", {"name": name, "description": description})
    emit(data, as_json, _print_group)


@group_app.command("show")
def group_show(name: str, as_json: JsonOpt = False) -> None:
    """Show a group: who is in it with which role, and its quota."""
    with api_client() as api:
        data = api.get(f"/groups/{_part(name)}")
    emit(data, as_json, _print_group)


@group_app.command("delete")
def group_delete(name: str, as_json: JsonOpt = False) -> None:
    """Delete a group; the roles it held on projects and pipelines go with it (admins)."""
    with api_client() as api:
        api.delete(f"/groups/{_part(name)}")
    done({"group": name, "deleted": True}, as_json, f"group '{name}' deleted")


@group_app.command("add")
def group_add(
    group: str,
    user: str,
    role: Annotated[
        str, typer.Option("--role", help=f"Their role in it: {', '.join(GROUP_ROLE_WORDS)}.")
    ] = "member",
    as_json: JsonOpt = False,
) -> None:
    """Put a user in a group, or change their role there (admins, the group's owners and
    maintainers; only owners make owners)."""
    if role not in GROUP_ROLE_WORDS:
        raise typer.BadParameter(
            f"choose one of {', '.join(GROUP_ROLE_WORDS)}, got {role!r}", param_hint="--role"
        )
    with api_client() as api:
        data = api.put(f"/groups/{_part(group)}/members/{_part(user)}", {"role": role})
    done(data, as_json, f"'{user}' is {role} of group '{group}'")


@group_app.command("remove")
def group_remove(group: str, user: str, as_json: JsonOpt = False) -> None:
    """Take a user out of a group."""
    with api_client() as api:
        data = api.request("DELETE", f"/groups/{_part(group)}/members/{_part(user)}").json()
    done(data, as_json, f"'{user}' left group '{group}'")


@group_app.command("quota")
def group_quota(
    name: str,
    gpus: GpusOpt = None,
    cpus: CpusOpt = None,
    memory: MemoryOpt = None,
    clear: ClearOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show or set what the group's projects may hold at once (setting: admins).

    Each option given sets that amount (`none`: no limit); the others stay as they were.
    """
    _set_quota(f"/groups/{_part(name)}", f"group '{name}'", gpus, cpus, memory, clear, as_json)


# -- access to projects and pipelines -----------------------------------------------------


def _principal(text: str) -> str:
    try:
        return check_principal(text.strip())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="PRINCIPAL") from None


def _role(text: str) -> str:
    try:
        return Role.parse(text).label
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="ROLE") from None


def _access_printer(what: str) -> Callable[[dict[str, Any]], None]:
    def human(d: dict[str, Any]) -> None:
        public = "; public: every signed-in user may read it" if d["public"] else ""
        out.print(f"{what}: you are {d['your_role']}{public}", markup=False, highlight=False)
        if not d["grants"] and what.startswith("pipeline"):
            out.print(
                "no grants: shared, every signed-in user may read and use it, admins edit it",
                markup=False,
            )
            return
        table = Table("PRINCIPAL", "ROLE", box=None, pad_edge=False)
        for g in d["grants"]:
            table.add_row(g["principal"], g["role"])
        out.print(table)

    return human


def _change_access(
    api: ApiClient, path: str, change: Callable[[dict[str, str]], object]
) -> dict[str, Any]:
    """Read the grants at ``path``, let ``change`` edit them (principal → role), write
    them back; the others stay as they were."""
    grants = {g["principal"]: g["role"] for g in api.get(path)["grants"]}
    change(grants)
    body = {"grants": [{"principal": p, "role": r} for p, r in grants.items()]}
    result: dict[str, Any] = api.put(path, body)
    return result


def _show_access(path: str, what: str, public: bool | None, as_json: bool) -> None:
    with api_client() as api:
        if public is None:
            data = api.get(path)
        elif public:
            data = _change_access(api, path, lambda g: g.update({EVERYONE: Role.PUBLIC.label}))
        else:
            data = _change_access(api, path, lambda g: g.pop(EVERYONE, None))
    emit(data, as_json, _access_printer(what))


def _grant(path: str, what: str, principal: str, role: str, as_json: bool) -> None:
    principal, role = _principal(principal), _role(role)
    with api_client() as api:
        data = _change_access(api, path, lambda g: g.update({principal: role}))
    emit(data, as_json, _access_printer(what))


def _revoke(path: str, what: str, principal: str, as_json: bool) -> None:
    principal = _principal(principal)
    with api_client() as api:
        data = api.get(path)
        if any(g["principal"] == principal for g in data["grants"]):
            data = _change_access(api, path, lambda g: g.pop(principal, None))
        elif not as_json:
            out.print(f"{principal} has no role on {what}; nothing to change", markup=False)
            return
    emit(data, as_json, _access_printer(what))


PublicOpt = Annotated[
    bool | None,
    typer.Option(
        "--public/--private",
        help="Let every signed-in user read it, or no longer (the other grants stay).",
    ),
]
PrincipalArg = Annotated[
    str, typer.Argument(help="user:<name>, group:<name>, or * (every signed-in user).")
]
RoleArg = Annotated[str, typer.Argument(help="owner, maintainer, member (public: only for *).")]


@project_app.command("access")
def project_access(project: str, public: PublicOpt = None, as_json: JsonOpt = False) -> None:
    """Show who has which role on a project; --public or --private changes who may read it
    (the project's owners)."""
    _show_access(f"/projects/{_part(project)}/access", f"project {project}", public, as_json)


@project_app.command("grant")
def project_grant(
    project: str, principal: PrincipalArg, role: RoleArg, as_json: JsonOpt = False
) -> None:
    """Give a user or group a role on a project, or change theirs (the project's owners)."""
    _grant(f"/projects/{_part(project)}/access", f"project {project}", principal, role, as_json)


@project_app.command("revoke-access")
def project_revoke_access(project: str, principal: PrincipalArg, as_json: JsonOpt = False) -> None:
    """Take a user's or group's role on a project away (the project's owners)."""
    _revoke(f"/projects/{_part(project)}/access", f"project {project}", principal, as_json)


@pipeline_app.command("access")
def pipeline_access(name: str, public: PublicOpt = None, as_json: JsonOpt = False) -> None:
    """Show who has which role on a pipeline; --public or --private changes who may read
    it (the pipeline's owners)."""
    _show_access(f"/pipelines/{_part(name)}/access", f"pipeline {name}", public, as_json)


@pipeline_app.command("grant")
def pipeline_grant(
    name: str, principal: PrincipalArg, role: RoleArg, as_json: JsonOpt = False
) -> None:
    """Give a user or group a role on a pipeline (owners edit its access, maintainers its
    file, members use it); a pipeline with no grants is shared by everyone."""
    _grant(f"/pipelines/{_part(name)}/access", f"pipeline {name}", principal, role, as_json)


@pipeline_app.command("revoke-access")
def pipeline_revoke_access(name: str, principal: PrincipalArg, as_json: JsonOpt = False) -> None:
    """Take a user's or group's role on a pipeline away (the pipeline's owners)."""
    _revoke(f"/pipelines/{_part(name)}/access", f"pipeline {name}", principal, as_json)
