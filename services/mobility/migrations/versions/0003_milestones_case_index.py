"""Drop the milestones' own case_id index: the unique step constraint's index leads with case_id.

Every milestone row kept two indexes starting with the same column; lookups by case use the
constraint's index, and a burst of cases writes one index fewer per milestone.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mobility_milestones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mobility_milestones_case_id"))


def downgrade() -> None:
    with op.batch_alter_table("mobility_milestones", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mobility_milestones_case_id"), ["case_id"], unique=False
        )
