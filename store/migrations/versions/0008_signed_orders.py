"""Investor-signed orders (issue 16): a participant's signed mode, and the signed order kept with
the order it travelled with.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 15:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signed_orders", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signed_order", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("signed_order")
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_column("signed_orders")
