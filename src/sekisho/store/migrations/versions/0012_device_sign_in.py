"""device sign-in: `sekisho login --device` (RFC 8628) in flight

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 14:00:00.000000

One new table; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sekisho.store.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_sign_ins",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("device_code", sa.Text(), nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("next_poll_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_sign_ins")),
    )
    with op.batch_alter_table("device_sign_ins", schema=None) as batch_op:
        batch_op.create_index("ix_device_sign_ins_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("device_sign_ins", schema=None) as batch_op:
        batch_op.drop_index("ix_device_sign_ins_expires_at")
    op.drop_table("device_sign_ins")
