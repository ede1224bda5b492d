"""gateway sessions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 10:17:34.846612
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sekisho.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user", sa.String(length=128), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("grant_id", sa.BigInteger(), nullable=True),
        sa.Column("request_id", sa.BigInteger(), nullable=True),
        sa.Column("via", sa.String(length=256), nullable=False),
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("client_addr", sa.String(length=128), nullable=False),
        sa.Column("local_addr", sa.String(length=128), nullable=False),
        sa.Column("target_addr", sa.String(length=300), nullable=False),
        sa.Column("node", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("started_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=300), nullable=True),
        sa.Column("bytes_up", sa.BigInteger(), nullable=False),
        sa.Column("bytes_down", sa.BigInteger(), nullable=False),
        sa.Column("connections", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index("ix_sessions_status_last_seen", ["status", "last_seen"], unique=False)
        batch_op.create_index(batch_op.f("ix_sessions_user"), ["user"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_user"))
        batch_op.drop_index("ix_sessions_status_last_seen")

    op.drop_table("sessions")
