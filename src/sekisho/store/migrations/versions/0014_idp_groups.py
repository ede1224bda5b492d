"""IdP groups onto standing groups: the directory's version, and each user's groups claim

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 20:00:00.000000

Two new tables; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sekisho.store.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_state")),
    )
    # The one row, there from the start: the first changes never race to insert it.
    op.execute(sa.text("INSERT INTO directory_state (id, version) VALUES (1, 0)"))
    op.create_table(
        "idp_claimed_groups",
        sa.Column("user", sa.String(length=128), nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("groups", sekisho.store.types.CanonicalJSON(), nullable=False),
        sa.Column("seen_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user", name=op.f("pk_idp_claimed_groups")),
    )


def downgrade() -> None:
    op.drop_table("idp_claimed_groups")
    op.drop_table("directory_state")
