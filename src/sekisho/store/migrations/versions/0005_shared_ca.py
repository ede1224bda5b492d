"""certificate_authorities: one gateway CA shared by every node on the database

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sekisho.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A new table: nothing existing changes. A node's CA from before (in its data directory)
    # is imported by the first gateway that starts, so its clients keep trusting it.
    op.create_table(
        "certificate_authorities",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("cert_pem", sa.Text(), nullable=False),
        sa.Column("key_sealed", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("created_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_certificate_authorities")),
    )


def downgrade() -> None:
    op.drop_table("certificate_authorities")
