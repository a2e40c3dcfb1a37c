"""Prestations (current state and versions), spaces, communes, départements, catalog state.

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

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "catalog_prestations",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("summary", sa.String(2000), nullable=False),
        sa.Column("keywords", sa.JSON, nullable=False),
        sa.Column("domain", sa.String(60), nullable=False),
        sa.Column("provider", sa.String(60), nullable=False),
        sa.Column("audiences", sa.JSON, nullable=False),
        sa.Column("channels", sa.JSON, nullable=False),
        sa.Column("documents", sa.JSON, nullable=False),
        sa.Column("sla_days", sa.Integer, nullable=False),
        sa.Column("essential", sa.Boolean, nullable=False),
        sa.Column("crisis_only", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("withdrawn_reason", sa.String(2000), nullable=True),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("refdata_digest", sa.String(64), nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_catalog_prestations_domain", "catalog_prestations", ["domain"])
    op.create_table(
        "catalog_prestation_versions",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("change", sa.String(20), nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=False),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("changed_at", _TZ, nullable=False),
    )
    op.create_table(
        "catalog_spaces",
        sa.Column("atlas_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("commune_insee", sa.String(5), nullable=False, unique=True),
        sa.Column("commune_name", sa.String(200), nullable=False),
        sa.Column("departement", sa.String(3), nullable=False),
        sa.Column("region", sa.String(100), nullable=False),
        sa.Column("zone", sa.String(10), nullable=False),
        sa.Column("contact", sa.JSON, nullable=False),
        sa.Column("opening_hours", sa.JSON, nullable=False),
        sa.Column("base_status", sa.String(20), nullable=False),
        sa.Column("crisis_active", sa.Boolean, nullable=False),
        sa.Column("crisis_reason", sa.String(2000), nullable=True),
        sa.Column("crisis_changed_by", sa.String(200), nullable=True),
        sa.Column("crisis_changed_at", _TZ, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("refdata_digest", sa.String(64), nullable=True),
        sa.Column("updated_at", _TZ, nullable=False),
    )
    op.create_index("ix_catalog_spaces_departement", "catalog_spaces", ["departement"])
    op.create_table(
        "catalog_space_communes",
        sa.Column("commune_insee", sa.String(5), primary_key=True),
        sa.Column(
            "atlas_id",
            sa.String(64),
            sa.ForeignKey("catalog_spaces.atlas_id"),
            nullable=False,
        ),
    )
    op.create_index("ix_catalog_space_communes_atlas_id", "catalog_space_communes", ["atlas_id"])
    op.create_table(
        "catalog_departements",
        sa.Column("code", sa.String(3), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("region", sa.String(100), nullable=False),
        sa.Column("zone", sa.String(10), nullable=False),
        sa.Column("default_atlas_id", sa.String(64), nullable=True),
    )
    op.create_table(
        "catalog_communes",
        sa.Column("code", sa.String(5), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("departement", sa.String(3), nullable=False),
    )
    op.create_index("ix_catalog_communes_departement", "catalog_communes", ["departement"])
    state = op.create_table(
        "catalog_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("national_crisis", sa.Boolean, nullable=False),
        sa.Column("national_crisis_reason", sa.String(2000), nullable=True),
        sa.Column("national_crisis_changed_by", sa.String(200), nullable=True),
        sa.Column("national_crisis_changed_at", _TZ, nullable=True),
    )
    op.bulk_insert(state, [{"id": 1, "revision": 0, "national_crisis": False}])
    op.create_table(
        "catalog_refdata_files",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("loaded_at", _TZ, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "catalog_refdata_files",
        "catalog_state",
        "catalog_communes",
        "catalog_departements",
        "catalog_space_communes",
        "catalog_spaces",
        "catalog_prestation_versions",
        "catalog_prestations",
    ):
        op.drop_table(table)
