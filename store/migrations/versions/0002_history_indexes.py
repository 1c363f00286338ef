"""History reads: composite indexes for trade pages per instrument and per participant, a ts
index for time windows, and the reason an order left the book early.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 12:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trades_maker_participant"))
        batch_op.drop_index(batch_op.f("ix_trades_symbol"))
        batch_op.drop_index(batch_op.f("ix_trades_taker_participant"))
        batch_op.create_index("ix_trades_symbol_trade_id", ["symbol", "trade_id"], unique=False)
        batch_op.create_index("ix_trades_maker_participant_trade_id", ["maker_participant", "trade_id"], unique=False)
        batch_op.create_index("ix_trades_taker_participant_trade_id", ["taker_participant", "trade_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_trades_ts"), ["ts"], unique=False)
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("reason")
    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trades_ts"))
        batch_op.drop_index("ix_trades_taker_participant_trade_id")
        batch_op.drop_index("ix_trades_maker_participant_trade_id")
        batch_op.drop_index("ix_trades_symbol_trade_id")
        batch_op.create_index(batch_op.f("ix_trades_taker_participant"), ["taker_participant"], unique=False)
        batch_op.create_index(batch_op.f("ix_trades_symbol"), ["symbol"], unique=False)
        batch_op.create_index(batch_op.f("ix_trades_maker_participant"), ["maker_participant"], unique=False)
