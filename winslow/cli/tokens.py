"""``winslow token ...``: API tokens, made on the server's machine from its data folder.

These commands open the store directly instead of calling the API, so the first token can
be made before any token exists; they work where ``winslow up`` runs (or with
``WINSLOW_DATABASE_URL`` set). A token is printed once; only its hash is kept.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from winslow.cli.helpers import fail, out
from winslow.errors import WinslowError

if TYPE_CHECKING:
    from winslow.store.repo import Store

token_app = typer.Typer(
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
) -> None:
    """Create an API token and print it once; only its hash is kept."""
    store = _open_local_store()
    try:
        sys.stdout.write(store.create_token(name, admin=admin) + "\n")
    except WinslowError as exc:
        fail(exc.message)


@token_app.command("revoke")
def token_revoke(name: str) -> None:
    """Revoke an API token at once, and end the console sessions made with it."""
    store = _open_local_store()
    try:
        store.revoke_token(name)
    except WinslowError as exc:
        fail(exc.message)
    out.print(f"token '{name}' revoked", markup=False)


@token_app.command("list")
def token_list() -> None:
    """List API tokens (names only; tokens are never shown again)."""
    table = Table("NAME", "CREATED", "ADMIN", "REVOKED", box=None)
    for token in _open_local_store().list_tokens():
        table.add_row(
            token.name,
            token.created_at.isoformat(timespec="seconds"),
            "yes" if token.admin else "",
            "yes" if token.revoked else "",
        )
    out.print(table)
