"""The missions tables: missions, their cases, milestones and timeline (issue #23).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mobility_missions",
        sa.Column("mission_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=True),
        sa.Column("home_commune_insee", sa.String(length=5), nullable=True),
        sa.Column("atlas_id", sa.String(length=64), nullable=True),
        sa.Column("departure_date", sa.Date(), nullable=True),
        sa.Column("planned_return_date", sa.Date(), nullable=True),
        sa.Column("return_date", sa.Date(), nullable=True),
        sa.Column("return_flagged_at", _TS, nullable=True),
        sa.Column("snapshot", sa.JSON(), nullable=True),
        sa.Column("cancel_reason", sa.String(length=2000), nullable=True),
        sa.Column("announced_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("cancelled_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("mission_id"),
    )
    with op.batch_alter_table("mobility_missions", schema=None) as batch_op:
        for column in ("agent_id", "status", "atlas_id", "departure_date", "planned_return_date"):
            batch_op.create_index(batch_op.f(f"ix_mobility_missions_{column}"), [column])
    op.create_table(
        "mobility_mission_cases",
        sa.Column("case_id", sa.String(length=100), nullable=False),
        sa.Column("mission_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("agent_id", sa.String(length=10), nullable=False),
        sa.Column("atlas_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("prestation_codes", sa.JSON(), nullable=False),
        sa.Column("reference_date", sa.Date(), nullable=False),
        sa.Column("opened_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("closed_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("case_id"),
    )
    with op.batch_alter_table("mobility_mission_cases", schema=None) as batch_op:
        for column in ("mission_id", "atlas_id"):
            batch_op.create_index(batch_op.f(f"ix_mobility_mission_cases_{column}"), [column])
    op.create_table(
        "mobility_mission_milestones",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=100), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["mobility_mission_cases.case_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "code", name="uq_mobility_mission_step"),
    )
    with op.batch_alter_table("mobility_mission_milestones", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mobility_mission_milestones_due_date"), ["due_date"])
    op.create_table(
        "mobility_mission_timeline",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("mission_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.String(length=200), nullable=True),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("summary", sa.String(length=2000), nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mobility_mission_timeline", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mobility_mission_timeline_mission_id"), ["mission_id"])


def downgrade() -> None:
    op.drop_table("mobility_mission_timeline")
    op.drop_table("mobility_mission_milestones")
    op.drop_table("mobility_mission_cases")
    op.drop_table("mobility_missions")
