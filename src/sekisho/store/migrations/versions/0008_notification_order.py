"""notifications in order: each message's order key (the request it is about)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 21:30:00.000000

Messages about one request (and its grant) reach each recipient in order: the dispatcher
does not send one while an earlier one with the same key, channel and recipient is pending.
Messages already in the outbox get the key their event would be given now, so an upgrade
in the middle of a backlog keeps its order too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The events about one request or its grant (reports and test messages have no order).
ORDERED_EVENTS = (
    "approval.needed",
    "request.decided",
    "runbook.finished",
    "grant.activated",
    "grant.ending_soon",
    "grant.ended",
)


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("order_key", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_notifications_order_key", ["order_key", "channel", "status"], unique=False
        )
    notifications = sa.table(
        "notifications",
        sa.column("event", sa.String()),
        sa.column("request_id", sa.BigInteger()),
        sa.column("order_key", sa.String()),
    )
    op.execute(
        notifications.update()
        .where(
            notifications.c.event.in_(ORDERED_EVENTS),
            notifications.c.request_id.is_not(None),
        )
        .values(
            order_key=sa.literal("request:")
            + sa.cast(notifications.c.request_id, sa.String(length=20))
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_order_key")
        batch_op.drop_column("order_key")
