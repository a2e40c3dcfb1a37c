"""The mobility tables: dossiers, timeline, handler cases, milestones and the spaces replica.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mobility_cases",
        sa.Column("case_id", sa.String(length=100), nullable=False),
        sa.Column("mutation_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("agent_id", sa.String(length=10), nullable=False),
        sa.Column("atlas_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("request_id", sa.String(length=100), nullable=True),
        sa.Column("request_status", sa.String(length=32), nullable=True),
        sa.Column("prestation_code", sa.String(length=64), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("report_date", sa.Date(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("case_id"),
        sa.UniqueConstraint("mutation_id", "kind", name="uq_mobility_cases_kind"),
    )
    with op.batch_alter_table("mobility_cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mobility_cases_atlas_id"), ["atlas_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_mobility_cases_mutation_id"), ["mutation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_mobility_cases_status"), ["status"], unique=False)

    op.create_table(
        "mobility_departement_defaults",
        sa.Column("departement", sa.String(length=3), nullable=False),
        sa.Column("atlas_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("departement"),
    )
    with op.batch_alter_table("mobility_departement_defaults", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mobility_departement_defaults_atlas_id"), ["atlas_id"], unique=False
        )

    op.create_table(
        "mobility_dossiers",
        sa.Column("mutation_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(length=10), nullable=False),
        sa.Column("hr_source", sa.String(length=300), nullable=True),
        sa.Column("destination_commune_insee", sa.String(length=5), nullable=True),
        sa.Column("destination_atlas_id", sa.String(length=64), nullable=True),
        sa.Column("destination_zone", sa.String(length=10), nullable=True),
        sa.Column("origin_commune_insee", sa.String(length=5), nullable=True),
        sa.Column("origin_atlas_id", sa.String(length=64), nullable=True),
        sa.Column("report_date", sa.Date(), nullable=True),
        sa.Column("snapshot", sa.JSON(), nullable=True),
        sa.Column("case_kinds", sa.JSON(), nullable=False),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(length=2000), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("mutation_id"),
    )
    with op.batch_alter_table("mobility_dossiers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mobility_dossiers_agent_id"), ["agent_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_mobility_dossiers_destination_atlas_id"),
            ["destination_atlas_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_mobility_dossiers_report_date"), ["report_date"], unique=False
        )

    op.create_table(
        "mobility_space_communes",
        sa.Column("commune_insee", sa.String(length=5), nullable=False),
        sa.Column("atlas_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("commune_insee"),
    )
    with op.batch_alter_table("mobility_space_communes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mobility_space_communes_atlas_id"), ["atlas_id"], unique=False
        )

    op.create_table(
        "mobility_spaces",
        sa.Column("atlas_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("commune_insee", sa.String(length=5), nullable=False),
        sa.Column("departement", sa.String(length=3), nullable=True),
        sa.Column("zone", sa.String(length=10), nullable=True),
        sa.Column("overseas", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("communes_covered", sa.JSON(), nullable=False),
        sa.Column("default_for_departements", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("atlas_id"),
    )
    op.create_table(
        "mobility_timeline",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("mutation_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.String(length=200), nullable=True),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("summary", sa.String(length=2000), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mobility_timeline", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mobility_timeline_mutation_id"), ["mutation_id"], unique=False
        )

    op.create_table(
        "mobility_milestones",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("case_id", sa.String(length=100), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("child_ref", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("due_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overdue_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["mobility_cases.case_id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "code", "child_ref", name="uq_mobility_milestones_step"),
    )
    with op.batch_alter_table("mobility_milestones", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mobility_milestones_case_id"), ["case_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_mobility_milestones_due_date"), ["due_date"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("mobility_milestones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mobility_milestones_due_date"))
        batch_op.drop_index(batch_op.f("ix_mobility_milestones_case_id"))

    op.drop_table("mobility_milestones")
    with op.batch_alter_table("mobility_timeline", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mobility_timeline_mutation_id"))

    op.drop_table("mobility_timeline")
    op.drop_table("mobility_spaces")
    with op.batch_alter_table("mobility_space_communes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mobility_space_communes_atlas_id"))

    op.drop_table("mobility_space_communes")
    with op.batch_alter_table("mobility_dossiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mobility_dossiers_report_date"))
        batch_op.drop_index(batch_op.f("ix_mobility_dossiers_destination_atlas_id"))
        batch_op.drop_index(batch_op.f("ix_mobility_dossiers_agent_id"))

    op.drop_table("mobility_dossiers")
    with op.batch_alter_table("mobility_departement_defaults", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mobility_departement_defaults_atlas_id"))

    op.drop_table("mobility_departement_defaults")
    with op.batch_alter_table("mobility_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mobility_cases_status"))
        batch_op.drop_index(batch_op.f("ix_mobility_cases_mutation_id"))
        batch_op.drop_index(batch_op.f("ix_mobility_cases_atlas_id"))

    op.drop_table("mobility_cases")
