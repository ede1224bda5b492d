"""the SCIM directory: the people and groups an IdP provisions, and its bearer tokens

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 19:40:00.000000

Three new tables; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sekisho.store.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scim_tokens",
        sa.Column("idp", sa.String(length=128), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("idp", name=op.f("pk_scim_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_scim_tokens_token_hash")),
    )
    op.create_table(
        "directory_users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("idp", sa.String(length=128), nullable=False),
        sa.Column("user_key", sa.String(length=256), nullable=False),
        sa.Column("external_id", sa.String(length=256), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("resource", sekisho.store.types.CanonicalJSON(), nullable=False),
        sa.Column("created_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_users")),
        sa.UniqueConstraint("idp", "user_key", name=op.f("uq_directory_users_idp")),
    )
    op.create_table(
        "directory_groups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("idp", sa.String(length=128), nullable=False),
        sa.Column("name_key", sa.String(length=256), nullable=False),
        sa.Column("external_id", sa.String(length=256), nullable=True),
        sa.Column("resource", sekisho.store.types.CanonicalJSON(), nullable=False),
        sa.Column("created_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_groups")),
        sa.UniqueConstraint("idp", "name_key", name=op.f("uq_directory_groups_idp")),
    )


def downgrade() -> None:
    op.drop_table("directory_groups")
    op.drop_table("directory_users")
    op.drop_table("scim_tokens")
