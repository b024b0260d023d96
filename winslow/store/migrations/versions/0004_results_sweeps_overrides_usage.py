"""results, sweeps, per-run overrides, "run only this stage", resource usage samples

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("run_overrides", sa.JSON(), nullable=False, server_default="{}")
        )
        batch_op.add_column(sa.Column("hold_after", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("combination", sa.JSON(), nullable=False, server_default="{}")
        )
        batch_op.add_column(sa.Column("results", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("image", sa.String(500), nullable=True))
        batch_op.add_column(sa.Column("overrides", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "run_usage",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=False),
        sa.Column("memory_mb", sa.Float(), nullable=False),
        sa.Column("gpu_percent", sa.Float(), nullable=True),
        sa.Column("gpu_memory_mb", sa.Float(), nullable=True),
    )
    op.create_index("ix_run_usage_run_at", "run_usage", ["run_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_run_usage_run_at", table_name="run_usage")
    op.drop_table("run_usage")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        for column in ("overrides", "image", "results", "combination"):
            batch_op.drop_column(column)
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("hold_after")
        batch_op.drop_column("run_overrides")
