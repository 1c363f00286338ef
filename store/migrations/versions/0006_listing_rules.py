"""Listing rules in the database (they were in ``listings.json`` beside the data directory).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 15:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "listing_rules",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("updated_ts", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["symbol"], ["instruments.symbol"], name=op.f("fk_listing_rules_symbol_instruments")),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_listing_rules")),
    )


def downgrade() -> None:
    op.drop_table("listing_rules")
