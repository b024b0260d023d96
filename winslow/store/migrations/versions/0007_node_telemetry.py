"""node telemetry: samples per node at several resolutions

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_telemetry",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("node_telemetry", schema=None) as batch_op:
        batch_op.create_index(
            "ix_node_telemetry_node_step_at", ["node", "step", "at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("node_telemetry", schema=None) as batch_op:
        batch_op.drop_index("ix_node_telemetry_node_step_at")
    op.drop_table("node_telemetry")
