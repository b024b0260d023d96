"""people and access: users, groups, grants, personal API tokens

Every API token that exists before this migration becomes a user of the same name who
holds that token (an admin token: an admin user). Those users join the group ``users``,
and each existing project grants that group the owner role: nobody loses a right by
upgrading. Console sessions end (the table now names users): people sign in again.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE_GROUP = "users"


def _create_people_tables() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("quota", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("quota", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("group_id", "user_id"),
    )
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_members_user_id"), ["user_id"], unique=False)
    op.create_table(
        "access_grants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("principal", sa.String(length=110), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "key", "principal", name="uq_access_grants_principal"),
    )
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_grants_key"), ["key"], unique=False)
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("projects", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
        sa.UniqueConstraint("user_id", "name", name="uq_api_tokens_user_name"),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)


def _create_console_sessions() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("handle", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("handle"),
        sa.UniqueConstraint("secret_hash"),
    )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_console_sessions_token_id"), ["token_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_console_sessions_user_id"), ["user_id"], unique=False)


def _carry_tokens_over() -> None:
    """Each old token becomes a user holding it; all of them share ``users``."""
    bind = op.get_bind()
    at = datetime.now(UTC)
    tokens = bind.execute(
        sa.text("SELECT id, name, token_hash, created_at, revoked, admin FROM tokens ORDER BY id")
    ).all()
    if not tokens:
        return
    bind.execute(
        sa.text(
            "INSERT INTO groups (name, description, source, created_at) "
            "VALUES (:name, :description, 'local', :at)"
        ),
        {"name": UPGRADE_GROUP, "description": "Everyone who had a token before 0.9", "at": at},
    )
    group_id = bind.execute(
        sa.text("SELECT id FROM groups WHERE name = :name"), {"name": UPGRADE_GROUP}
    ).scalar_one()
    # No ids are carried over: PostgreSQL's sequences would not know of them.
    for _token_id, name, token_hash, created_at, revoked, admin in tokens:
        bind.execute(
            sa.text(
                "INSERT INTO users (name, display_name, email, source, admin, disabled, "
                "created_at) VALUES (:name, '', '', 'local', :admin, :no, :at)"
            ),
            {"name": name, "admin": bool(admin), "no": False, "at": created_at},
        )
        user_id = bind.execute(
            sa.text("SELECT id FROM users WHERE name = :name"), {"name": name}
        ).scalar_one()
        bind.execute(
            sa.text(
                "INSERT INTO api_tokens (user_id, name, token_hash, scope, created_at, "
                "revoked_at) VALUES (:user_id, :name, :hash, :scope, :at, :revoked_at)"
            ),
            {
                "user_id": user_id,
                "name": name,
                "hash": token_hash,
                "scope": "admin" if admin else "steer",
                "at": created_at,
                "revoked_at": at if revoked else None,
            },
        )
        bind.execute(
            sa.text(
                "INSERT INTO group_members (group_id, user_id, role) VALUES (:g, :u, 'member')"
            ),
            {"g": group_id, "u": user_id},
        )
    for (project_id,) in bind.execute(sa.text("SELECT id FROM projects")).all():
        bind.execute(
            sa.text(
                "INSERT INTO access_grants (kind, key, principal, role) "
                "VALUES ('project', :key, :principal, 'owner')"
            ),
            {"key": project_id, "principal": f"group:{UPGRADE_GROUP}"},
        )


def upgrade() -> None:
    _create_people_tables()
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("owner", sa.String(length=100), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("charged_group", sa.String(length=100), nullable=True))
    _carry_tokens_over()
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_console_sessions_token_id")
    op.drop_table("console_sessions")
    op.drop_table("tokens")
    _create_console_sessions()


def downgrade() -> None:
    raise NotImplementedError(
        "0008 cannot be undone: tokens now belong to users. Restore the backup taken before."
    )
