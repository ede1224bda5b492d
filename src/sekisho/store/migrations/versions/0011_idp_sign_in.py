"""sign-in through the identity provider: pending sign-ins, and how each login was proven

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 13:00:00.000000

Two new tables (sign-ins sent to the IdP and not back yet; verified sign-ins waiting for the
CLI that started them) and five nullable columns on tokens;
existing logins read as password + TOTP (auth_method NULL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sekisho.store.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TOKEN_COLUMNS = ("auth_method", "idp_subject", "auth_time", "amr", "acr")


def upgrade() -> None:
    op.create_table(
        "sign_in_states",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("verifier", sa.Text(), nullable=False),
        sa.Column("browser", sa.String(length=64), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2048), nullable=False),
        sa.Column("next_url", sa.String(length=2048), nullable=False),
        sa.Column("cli_redirect", sa.String(length=512), nullable=True),
        sa.Column("cli_challenge", sa.String(length=64), nullable=True),
        sa.Column("created_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_states")),
    )
    with op.batch_alter_table("sign_in_states", schema=None) as batch_op:
        batch_op.create_index("ix_sign_in_states_expires_at", ["expires_at"], unique=False)
    op.create_table(
        "sign_in_handoffs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("challenge", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=128), nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("idp_subject", sa.String(length=256), nullable=False),
        sa.Column("auth_time", sekisho.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("amr", sa.String(length=256), nullable=False),
        sa.Column("acr", sa.String(length=256), nullable=True),
        sa.Column("expires_at", sekisho.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_handoffs")),
    )
    with op.batch_alter_table("sign_in_handoffs", schema=None) as batch_op:
        batch_op.create_index("ix_sign_in_handoffs_expires_at", ["expires_at"], unique=False)
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auth_method", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("idp_subject", sa.String(length=256), nullable=True))
        batch_op.add_column(
            sa.Column("auth_time", sekisho.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("amr", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("acr", sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        for column in reversed(_TOKEN_COLUMNS):
            batch_op.drop_column(column)
    with op.batch_alter_table("sign_in_handoffs", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_handoffs_expires_at")
    op.drop_table("sign_in_handoffs")
    with op.batch_alter_table("sign_in_states", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_states_expires_at")
    op.drop_table("sign_in_states")
