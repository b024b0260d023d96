"""``winslow token ...``: personal API tokens, each user's own.

By default through the API as the signed-in user: a token has a scope (read, steer, admin;
the last for admins), may be limited to some projects, and ends after some days unless
made without expiry. ``--local`` opens the store of the server's machine directly instead,
so the first token can be made before any token exists, or a lost one replaced; it works
where ``winslow up`` runs (or with ``WINSLOW_DATABASE_URL`` set) and makes user NAME with a
token NAME. A token is printed once; only its hash is kept.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table

from winslow.cli.helpers import (
    JsonOpt,
    WinslowTyper,
    add_time_column,
    api_client,
    done,
    emit,
    fail,
    out,
    query_flag,
    short_time,
    time_after,
)
from winslow.core.access import Scope
from winslow.errors import WinslowError

if TYPE_CHECKING:
    from winslow.store.repo import Store

token_app = WinslowTyper(
    no_args_is_help=True,
    help="Personal API tokens (--local: on the server's machine, from its data folder).",
)


def _open_local_store() -> Store:
    """Open the store of this machine's Winslow; exits 1 saying where to run when none.

    Imported here, not at the top: the store (SQLAlchemy, the password hasher) would slow
    down the start of every other command by most of a second.
    """
    from winslow.settings import Settings
    from winslow.store.repo import open_store

    settings = Settings()
    if settings.vault_addr:  # the database URL (its password) may be in Vault
        from winslow.secrets.wiring import read_server_secrets

        try:
            settings, secrets = read_server_secrets(settings)
        except WinslowError as exc:
            fail(exc.message)
        if secrets is not None:
            secrets.close()
    if settings.database_url is None and not (settings.data_dir / "winslow.db").exists():
        fail(
            f"No Winslow data in {settings.data_dir}; run this where `winslow up` runs, "
            "or set WINSLOW_DATA_DIR / WINSLOW_DATABASE_URL."
        )
    return open_store(settings.resolved_database_url())


LocalOpt = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Use this machine's Winslow data directly, not the API: for the first token "
        "or a lost one, where `winslow up` runs.",
    ),
]


@token_app.command("create")
def token_create(
    name: str,
    scope: Annotated[
        Scope | None,
        typer.Option(help="What it may do: read, steer (the default) or admin (admins only)."),
    ] = None,
    project: Annotated[
        list[str], typer.Option("--project", "-p", help="Act only on this project (repeatable).")
    ] = [],
    expires_days: Annotated[
        int | None,
        typer.Option("--expires-days", min=1, max=3650, help="End after this many days (90)."),
    ] = None,
    no_expiry: Annotated[bool, typer.Option("--no-expiry", help="Never end by itself.")] = False,
    local: LocalOpt = False,
    admin: Annotated[
        bool,
        typer.Option("--admin", help="With --local: user NAME is an admin, the token admin."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a token of yours and print it once; only its hash is kept.

    With --local: create user NAME (if new) holding a token NAME, on the server's machine.
    """
    if local:
        given = [o for o, v in (("--scope", scope), ("--project", project)) if v]
        given += [o for o, v in (("--expires-days", expires_days), ("--no-expiry", no_expiry)) if v]
        if given:
            raise typer.BadParameter("cannot go with --local", param_hint=given[0])
        _create_local(name, admin, as_json)
        return
    if admin:
        raise typer.BadParameter(
            "makes an admin user on the server's machine: add --local, or give --scope admin "
            "for an admin token of yours",
            param_hint="--admin",
        )
    if no_expiry and expires_days is not None:
        raise typer.BadParameter("cannot go with --expires-days", param_hint="--no-expiry")
    body: dict[str, Any] = {"name": name, "scope": (scope or Scope.STEER).value}
    if project:
        body["projects"] = project
    if no_expiry or expires_days is not None:
        body["expires_in_days"] = expires_days
    with api_client() as api:
        data = api.post("/tokens", body)
    # Without --json the token alone, so `$(winslow token create ci)` captures it.
    emit(data, as_json, lambda d: sys.stdout.write(d["token"] + "\n"))


def _create_local(name: str, admin: bool, as_json: bool) -> None:
    store = _open_local_store()
    try:
        token = store.create_token(name, admin=admin)
    except WinslowError as exc:
        fail(exc.message)
    emit(
        {"name": name, "admin": admin, "token": token},
        as_json,
        lambda d: sys.stdout.write(d["token"] + "\n"),
    )


@token_app.command("revoke")
def token_revoke(
    name: str,
    user: Annotated[
        str | None,
        typer.Option(
            "--user", help="Another user's token (admins); with --local, NAME if left out."
        ),
    ] = None,
    local: LocalOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a token at once, and end the console sessions signed in with it.

    With --local the token NAME of user NAME (or of --user), on the server's machine.
    """
    if local:
        from winslow.store.tokens import revoke_token

        store = _open_local_store()
        try:
            revoke_token(store, user or name, name)
        except WinslowError as exc:
            fail(exc.message)
    else:
        path = f"/tokens/{quote(name, safe='')}"
        if user is not None:
            path = f"/users/{quote(user, safe='')}{path}"
        with api_client() as api:
            api.delete(path)
    shown = {"name": name, "revoked": True} | ({"user": user} if user else {})
    whose = f" of '{user}'" if user else ""
    done(shown, as_json, f"token '{name}'{whose} revoked")


@token_app.command("list")
def token_list(
    everyone: Annotated[
        bool, typer.Option("--all", help="Everybody's tokens, not only yours (admins).")
    ] = False,
    local: LocalOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List tokens, revoked ones too (names only; tokens are never shown again)."""
    if local:
        _list_local(as_json)
        return
    with api_client() as api:
        data = api.get("/tokens", params={"everyone": query_flag(everyone)})
    emit(data, as_json, lambda d: _tokens_table(d, everyone))


def _tokens_table(data: dict[str, Any], with_user: bool) -> None:
    if not data["data"]:
        out.print("no tokens", markup=False)
        return
    table = Table(box=None, pad_edge=False)
    table.add_column("NAME", overflow="fold")
    if with_user:
        table.add_column("USER", overflow="fold")
    table.add_column("SCOPE", no_wrap=True)
    add_time_column(table, "CREATED")
    table.add_column("LAST USED", no_wrap=True)
    table.add_column("ENDS", no_wrap=True)
    table.add_column("REVOKED", no_wrap=True)
    for t in data["data"]:
        row = [t["name"]] + ([t["user"]] if with_user else [])
        row += [
            t["scope"],
            short_time(t["created_at"]),
            time_after(t["last_used_at"], t["created_at"]),
            short_time(t["expires_at"])[:10] or "never",
            "yes" if t["revoked"] else "",
        ]
        table.add_row(*row)
    out.print(table)
    for t in data["data"]:
        if t["projects"] is not None:
            owner = f" ({t['user']})" if with_user else ""
            out.print(
                f"{t['name']}{owner}: only projects {', '.join(t['projects'])}",
                markup=False,
                highlight=False,
            )


def _list_local(as_json: bool) -> None:
    from winslow.store.tokens import list_tokens

    listed = [
        {
            "name": token.name,
            "created_at": token.created_at.isoformat(timespec="seconds"),
            "admin": token.admin,
            "revoked": token.revoked,
        }
        for token in list_tokens(_open_local_store())
    ]

    def human(d: dict[str, Any]) -> None:
        table = Table("NAME", box=None)
        add_time_column(table, "CREATED")
        table.add_column("ADMIN")
        table.add_column("REVOKED")
        for t in d["data"]:
            table.add_row(
                t["name"],
                short_time(t["created_at"]),
                "yes" if t["admin"] else "",
                "yes" if t["revoked"] else "",
            )
        out.print(table)

    emit({"data": listed, "count": len(listed)}, as_json, human)
