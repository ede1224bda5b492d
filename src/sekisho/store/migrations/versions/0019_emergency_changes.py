"""emergency changes: a request's break-glass flag and its post-incident review

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 21:30:00.000000

Six columns on requests. `emergency` is false for every request filed before (they were all
approved the ordinary way); the review columns stay empty for them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sekisho.store.types

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_TIME = sekisho.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("emergency", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("review_due_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("review_next_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("reviewed_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("review_comment", sa.Text(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_requests_review_next_at"), ["review_next_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requests_review_next_at"))
        batch_op.drop_column("review_comment")
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("review_next_at")
        batch_op.drop_column("review_due_at")
        batch_op.drop_column("emergency")
