"""Records: the premium/discount to NAV of every trade (``trade_premiums``) and the on-chain anchors
of the audit log's hash-chain head (``audit_anchors``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 15:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trade_premiums",
        sa.Column("trade_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("nav", sa.String(length=40), nullable=False),
        sa.Column("premium_bps", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("trade_id", name=op.f("pk_trade_premiums")),
    )
    op.create_table(
        "audit_anchors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("audit_id", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=True),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_anchors")),
    )
    with op.batch_alter_table("audit_anchors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_anchors_audit_id"), ["audit_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_anchors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_anchors_audit_id"))
    op.drop_table("audit_anchors")
    op.drop_table("trade_premiums")
