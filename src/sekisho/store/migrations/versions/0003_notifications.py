"""notifications: the outbox, grant reminders, report lines

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 11:32:27.444480
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sekisho.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _notifications()
    _reminders()
    _report_lines()


def _notifications() -> None:
    """The outbox: one row per message and channel."""
    op.create_table(
        "notifications",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=128), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("request_id", sa.BigInteger(), nullable=True),
        sa.Column("grant_id", sa.BigInteger(), nullable=True),
        sa.Column("message", sekisho.store.types.CanonicalJSON(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sekisho.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=256), nullable=True),
        sa.Column("last_attempt_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("receipt", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("key", name=op.f("uq_notifications_key")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_status_next_at", ["status", "next_at"], unique=False
        )
        batch_op.create_index(
            "ix_notifications_channel_status", ["channel", "status"], unique=False
        )


def _reminders() -> None:
    """Reminders due before a grant ends."""
    op.create_table(
        "notification_reminders",
        sa.Column("grant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("due_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["grants.id"], name=op.f("fk_notification_reminders_grant_id_grants")
        ),
        sa.PrimaryKeyConstraint("grant_id", name=op.f("pk_notification_reminders")),
    )
    with op.batch_alter_table("notification_reminders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_reminders_due_at"), ["due_at"], unique=False
        )


def _report_lines() -> None:
    """Lines waiting for the next report."""
    op.create_table(
        "notification_report_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("user", sa.String(length=128), nullable=False),
        sa.Column("group_name", sa.String(length=128), nullable=False),
        sa.Column("grant_id", sa.BigInteger(), nullable=True),
        sa.Column("request_id", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("report_key", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_report_lines")),
    )
    with op.batch_alter_table("notification_report_lines", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notification_report_lines_report_key", ["report_key", "at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notification_report_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_report_lines_report_key")
    op.drop_table("notification_report_lines")

    with op.batch_alter_table("notification_reminders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_reminders_due_at"))
    op.drop_table("notification_reminders")

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_channel_status")
        batch_op.drop_index("ix_notifications_status_next_at")
    op.drop_table("notifications")
