"""passkeys, their one-time challenges, the step-ups sessions proved, fresh IdP sign-ins

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 21:00:00.000000

Three new tables, and one nullable column on sign-ins in flight: `fresh`, a sign-in through
the identity provider that asked it to sign the person in again (a step-up).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sekisho.store.types

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sekisho.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "passkeys",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("user", sa.String(length=128), nullable=False),
        sa.Column("credential_id", sa.String(length=1400), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("last_used_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passkeys")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_passkeys_credential_id")),
    )
    op.create_index(op.f("ix_passkeys_user"), "passkeys", ["user"], unique=False)
    op.create_table(
        "webauthn_challenges",
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("challenge", sa.String(length=128), nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("token_id", "purpose", name=op.f("pk_webauthn_challenges")),
    )
    op.create_index(
        op.f("ix_webauthn_challenges_expires_at"),
        "webauthn_challenges",
        ["expires_at"],
        unique=False,
    )
    op.create_table(
        "step_ups",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=128), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("passkey_id", _ID, nullable=True),
        sa.Column("proven_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_step_ups")),
    )
    op.create_index(op.f("ix_step_ups_token_id"), "step_ups", ["token_id"], unique=False)
    with op.batch_alter_table("sign_in_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fresh", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sign_in_states", schema=None) as batch_op:
        batch_op.drop_column("fresh")
    op.drop_index(op.f("ix_step_ups_token_id"), table_name="step_ups")
    op.drop_table("step_ups")
    op.drop_index(op.f("ix_webauthn_challenges_expires_at"), table_name="webauthn_challenges")
    op.drop_table("webauthn_challenges")
    op.drop_index(op.f("ix_passkeys_user"), table_name="passkeys")
    op.drop_table("passkeys")
