"""shared signals: push streams sekisho transmits to, and the SETs it received

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 09:00:00.000000

Two new tables; nothing existing changes. No stream exists after the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sekisho.store.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ssf_streams",
        sa.Column("stream_id", sa.String(length=64), nullable=False),
        sa.Column("audience", sa.String(length=512), nullable=False),
        sa.Column("endpoint_url", sa.String(length=2048), nullable=False),
        sa.Column("authorization", sa.Text(), nullable=True),
        sa.Column("events_requested", sekisho.store.types.CanonicalJSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stream_id", name=op.f("pk_ssf_streams")),
    )
    op.create_table(
        "ssf_received",
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("jti", sa.String(length=256), nullable=False),
        sa.Column("received_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "jti", name=op.f("pk_ssf_received")),
    )
    with op.batch_alter_table("ssf_received", schema=None) as batch_op:
        batch_op.create_index("ix_ssf_received_received_at", ["received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ssf_received", schema=None) as batch_op:
        batch_op.drop_index("ix_ssf_received_received_at")
    op.drop_table("ssf_received")
    op.drop_table("ssf_streams")
