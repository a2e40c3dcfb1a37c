"""Milestones without a foreign key to their case; cases leave room for in-place updates.

The annual plan writes a hundred thousand milestones in a burst. PostgreSQL checked the foreign
key row by row, each check locking its case row (`FOR KEY SHARE`): half the database's CPU in the
burst, and every locked case row was then slower to update. Milestones are only written by the
handlers, in the transaction that writes their case (`CaseHandler`), so the key adds no safety.

The case rows are updated once more when their request is confirmed (`request_status`, not
indexed): with room left on each page, PostgreSQL rewrites them in place (HOT) without touching
the case indexes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The name PostgreSQL gave the unnamed constraint of 0002; SQLite goes through batch mode.
_PG_FK = "mobility_milestones_case_id_fkey"
_NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
_SQLITE_FK = "fk_mobility_milestones_case_id_mobility_cases"
CASES_FILLFACTOR = 80


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(_PG_FK, "mobility_milestones", type_="foreignkey")
        op.execute(f"ALTER TABLE mobility_cases SET (fillfactor = {CASES_FILLFACTOR})")
        return
    with op.batch_alter_table("mobility_milestones", naming_convention=_NAMING) as batch_op:
        batch_op.drop_constraint(_SQLITE_FK, type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE mobility_cases RESET (fillfactor)")
        op.create_foreign_key(
            _PG_FK, "mobility_milestones", "mobility_cases", ["case_id"], ["case_id"]
        )
        return
    with op.batch_alter_table("mobility_milestones", naming_convention=_NAMING) as batch_op:
        batch_op.create_foreign_key(_SQLITE_FK, "mobility_cases", ["case_id"], ["case_id"])
