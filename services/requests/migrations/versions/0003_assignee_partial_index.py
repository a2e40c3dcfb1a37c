"""Index only the assigned requests by assignee.

Requests are looked up by assignee for a staff member's work and load, never for the unassigned
ones (those are found through the queue index). Most requests are unassigned, among them every
request a mobility burst opens: they no longer each add an entry to this index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ASSIGNED = sa.text("assignee IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_assignee")
        batch_op.create_index(
            "ix_requests_assignee",
            ["assignee"],
            unique=False,
            postgresql_where=_ASSIGNED,
            sqlite_where=_ASSIGNED,
        )


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_assignee")
        batch_op.create_index("ix_requests_assignee", ["assignee"], unique=False)
