"""Instruments: ``call`` (a call auction, issue 15) joins the allowed statuses.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 15:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WITH_CALL = "status IN ('pre_open', 'open', 'halted', 'closed', 'call')"
_WITHOUT_CALL = "status IN ('pre_open', 'open', 'halted', 'closed')"


def upgrade() -> None:
    with op.batch_alter_table("instruments", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_instruments_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_instruments_status"), _WITH_CALL)


def downgrade() -> None:
    op.execute("UPDATE instruments SET status = 'halted' WHERE status = 'call'")
    with op.batch_alter_table("instruments", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_instruments_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_instruments_status"), _WITHOUT_CALL)
