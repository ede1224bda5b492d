"""extension requests name the grant they extend

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 22:00:00.000000

One nullable column on requests, indexed: `extends_grant_id`, the grant an extension request
asks more time for (None: any other request). No foreign key: grants already point at
requests, and a constraint each way would make the two tables a cycle to create and drop.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extends_grant_id", _ID, nullable=True))
        batch_op.create_index("ix_requests_extends_grant_id", ["extends_grant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_extends_grant_id")
        batch_op.drop_column("extends_grant_id")
