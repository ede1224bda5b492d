"""sign-ins in flight remember the address that started them (a cap per address)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 20:10:00.000000

One nullable column and an index on each of the two tables of sign-ins in flight.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TABLES = ("sign_in_states", "device_sign_ins")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("source", sa.String(length=64), nullable=True))
            batch_op.create_index(f"ix_{table}_source", ["source"], unique=False)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_source")
            batch_op.drop_column("source")
