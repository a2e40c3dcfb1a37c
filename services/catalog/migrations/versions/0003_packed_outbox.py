"""Packed outbox rows: the events of a whole batch in one row (atlas_events.outbox).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from atlas_events.migrations import add_packed_outbox, remove_packed_outbox

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_packed_outbox()


def downgrade() -> None:
    remove_packed_outbox()
