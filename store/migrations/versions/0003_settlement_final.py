"""Settlement states: ``final`` (the settlement's block is final) joins the allowed statuses.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 13:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WITH_FINAL = "status IN ('pending', 'submitted', 'confirmed', 'failed', 'final')"
_WITHOUT_FINAL = "status IN ('pending', 'submitted', 'confirmed', 'failed')"


def upgrade() -> None:
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_settlements_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_settlements_status"), _WITH_FINAL)


def downgrade() -> None:
    op.execute("UPDATE settlements SET status = 'confirmed' WHERE status = 'final'")
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_settlements_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_settlements_status"), _WITHOUT_FINAL)
