"""session kills on record: when, by whom, from where, why

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:20:00.000000

A kill is a fact in the store, so every gateway honours it, whichever process made it.
Existing sessions keep their rows; none of them was killed on record.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sekisho.store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("killed_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("killed_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("killed_from", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("kill_reason", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("kill_reason")
        batch_op.drop_column("killed_from")
        batch_op.drop_column("killed_by")
        batch_op.drop_column("killed_at")
