"""the signed requests Slack sent (interactions, slash commands), to refuse a replay

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 21:30:00.000000

One new table; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sekisho.store.types

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_requests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_requests")),
    )
    op.create_index(op.f("ix_slack_requests_seen_at"), "slack_requests", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_slack_requests_seen_at"), table_name="slack_requests")
    op.drop_table("slack_requests")
