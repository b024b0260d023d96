"""``winslow token ...``: API tokens, made on the server's machine from its data folder.

These commands open the store directly instead of calling the API, so the first token can
be made before any token exists; they work where ``winslow up`` runs (or with
``WINSLOW_DATABASE_URL`` set). A token is printed once; only its hash is kept.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from winslow.cli.helpers import (
    JsonOpt,
    WinslowTyper,
    add_time_column,
    done,
    emit,
    fail,
    out,
    short_time,
)
from winslow.errors import WinslowError
from winslow.store import tokens

if TYPE_CHECKING:
    from winslow.store.repo import Store

token_app = WinslowTyper(
    no_args_is_help=True, help="API tokens (run on the server's machine: uses its data folder)."
)


def _open_local_store() -> Store:
    """Open the store of this machine's Winslow; exits 1 saying where to run when none."""
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


@token_app.command("create")
def token_create(
    name: str,
    admin: Annotated[
        bool,
        typer.Option("--admin", help="May also list and end other people's console sessions."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an API token and print it once; only its hash is kept."""
    store = _open_local_store()
    try:
        token = store.create_token(name, admin=admin)
    except WinslowError as exc:
        fail(exc.message)
    # Without --json the token alone, so `$(winslow token create ci)` captures it.
    emit(
        {"name": name, "admin": admin, "token": token},
        as_json,
        lambda d: sys.stdout.write(d["token"] + "\n"),
    )


@token_app.command("revoke")
def token_revoke(name: str, as_json: JsonOpt = False) -> None:
    """Revoke an API token at once, and end the console sessions made with it."""
    store = _open_local_store()
    try:
        tokens.revoke_token(store, name, name)
    except WinslowError as exc:
        fail(exc.message)
    done({"name": name, "revoked": True}, as_json, f"token '{name}' revoked")


@token_app.command("list")
def token_list(as_json: JsonOpt = False) -> None:
    """List API tokens (names only; tokens are never shown again)."""
    listed = [
        {
            "name": token.name,
            "created_at": token.created_at.isoformat(timespec="seconds"),
            "admin": token.admin,
            "revoked": token.revoked,
        }
        for token in tokens.list_tokens(_open_local_store())
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
