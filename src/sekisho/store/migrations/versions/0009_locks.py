"""locks: the kill switch on a user, a target, a group or a role

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 21:00:00.000000

A new table; nothing existing changes. No lock is in force after the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sekisho.store.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "locks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_from", sa.String(length=256), nullable=False),
        sa.Column("created_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("until", sekisho.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("removed_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("removed_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locks")),
    )
    with op.batch_alter_table("locks", schema=None) as batch_op:
        batch_op.create_index("ix_locks_removed_at", ["removed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("locks", schema=None) as batch_op:
        batch_op.drop_index("ix_locks_removed_at")
    op.drop_table("locks")
