"""The requests service's tables: requests and their history, messages, roster, catalog replica, board.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 00:48:43.955602
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
        "board_matches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("offer_id", sa.String(length=36), nullable=False),
        sa.Column("need_id", sa.String(length=36), nullable=False),
        sa.Column("proximity", sa.String(length=12), nullable=False),
        sa.Column("offer_consent", sa.Boolean(), nullable=True),
        sa.Column("need_consent", sa.Boolean(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shared_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("board_matches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_board_matches_need_id"), ["need_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_board_matches_offer_id"), ["offer_id"], unique=False)
        batch_op.create_index("ix_board_matches_pair", ["offer_id", "need_id"], unique=True)

    op.create_table(
        "board_posts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=5), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=60), nullable=False),
        sa.Column("level", sa.String(length=40), nullable=True),
        sa.Column("commune_insee", sa.String(length=5), nullable=False),
        sa.Column("departement", sa.String(length=3), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("contact", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("board_posts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_board_posts_author"), ["author"], unique=False)
        batch_op.create_index(
            "ix_board_posts_match", ["kind", "subject", "departement", "status"], unique=False
        )

    op.create_table(
        "replica_prestations",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("essential", sa.Boolean(), nullable=False),
        sa.Column("crisis_only", sa.Boolean(), nullable=False),
        sa.Column("sla_days", sa.Integer(), nullable=True),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "replica_spaces",
        sa.Column("atlas_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("commune_insee", sa.String(length=5), nullable=False),
        sa.Column("departement", sa.String(length=3), nullable=False),
        sa.Column("overseas", sa.Boolean(), nullable=False),
        sa.Column("crisis_mode", sa.Boolean(), nullable=False),
        sa.Column("communes_covered", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("atlas_id"),
    )
    op.create_table(
        "request_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("assignee", sa.String(length=200), nullable=False),
        sa.Column("previous_assignee", sa.String(length=200), nullable=True),
        sa.Column("assigned_by", sa.String(length=200), nullable=True),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("request_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_request_assignments_request_id"), ["request_id"], unique=False
        )

    op.create_table(
        "request_messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("author_role", sa.String(length=10), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("request_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_request_messages_request_id"), ["request_id"], unique=False
        )

    op.create_table(
        "request_staff",
        sa.Column("atlas_id", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.String(length=200), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("atlas_id", "staff_id"),
    )
    op.create_table(
        "request_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("request_transitions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_request_transitions_request_id"), ["request_id"], unique=False
        )

    op.create_table(
        "requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("atlas_id", sa.String(length=64), nullable=False),
        sa.Column("prestation_code", sa.String(length=64), nullable=False),
        sa.Column("requested_prestation_code", sa.String(length=64), nullable=True),
        sa.Column("prestation_unverified", sa.Boolean(), nullable=False),
        sa.Column("agent_id", sa.String(length=10), nullable=False),
        sa.Column("filed_by", sa.String(length=200), nullable=False),
        sa.Column("filed_by_role", sa.String(length=20), nullable=False),
        sa.Column("on_behalf", sa.Boolean(), nullable=False),
        sa.Column("proxy_name", sa.String(length=200), nullable=True),
        sa.Column("proxy_relationship", sa.String(length=40), nullable=True),
        sa.Column("power_of_attorney_ref", sa.String(length=100), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("assignee", sa.String(length=200), nullable=True),
        sa.Column("case_id", sa.String(length=100), nullable=True),
        sa.Column("case_kind", sa.String(length=20), nullable=True),
        sa.Column("mutation_id", sa.String(length=64), nullable=True),
        sa.Column("transferred_from", sa.String(length=36), nullable=True),
        sa.Column("transferred_to", sa.String(length=36), nullable=True),
        sa.Column("sla_target_days", sa.Float(), nullable=False),
        sa.Column("sla_consumed_days", sa.Float(), nullable=False),
        sa.Column("sla_running_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sla_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sla_warn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sla_warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sla_breached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_requests_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_requests_assignee"), ["assignee"], unique=False)
        batch_op.create_index("ix_requests_case_space", ["case_id", "atlas_id"], unique=True)
        batch_op.create_index(batch_op.f("ix_requests_filed_by"), ["filed_by"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_requests_prestation_code"), ["prestation_code"], unique=False
        )
        batch_op.create_index(
            "ix_requests_queue", ["atlas_id", "status", "submitted_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_requests_sla_warn_at"), ["sla_warn_at"], unique=False)
        batch_op.create_index("ix_requests_space_due", ["atlas_id", "sla_due_at"], unique=False)
        batch_op.create_index(
            "ix_requests_space_submitted", ["atlas_id", "submitted_at"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_space_submitted")
        batch_op.drop_index("ix_requests_space_due")
        batch_op.drop_index(batch_op.f("ix_requests_sla_warn_at"))
        batch_op.drop_index("ix_requests_queue")
        batch_op.drop_index(batch_op.f("ix_requests_prestation_code"))
        batch_op.drop_index(batch_op.f("ix_requests_filed_by"))
        batch_op.drop_index("ix_requests_case_space")
        batch_op.drop_index(batch_op.f("ix_requests_assignee"))
        batch_op.drop_index(batch_op.f("ix_requests_agent_id"))

    op.drop_table("requests")
    with op.batch_alter_table("request_transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_transitions_request_id"))

    op.drop_table("request_transitions")
    op.drop_table("request_staff")
    with op.batch_alter_table("request_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_messages_request_id"))

    op.drop_table("request_messages")
    with op.batch_alter_table("request_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_assignments_request_id"))

    op.drop_table("request_assignments")
    op.drop_table("replica_spaces")
    op.drop_table("replica_prestations")
    with op.batch_alter_table("board_posts", schema=None) as batch_op:
        batch_op.drop_index("ix_board_posts_match")
        batch_op.drop_index(batch_op.f("ix_board_posts_author"))

    op.drop_table("board_posts")
    with op.batch_alter_table("board_matches", schema=None) as batch_op:
        batch_op.drop_index("ix_board_matches_pair")
        batch_op.drop_index(batch_op.f("ix_board_matches_offer_id"))
        batch_op.drop_index(batch_op.f("ix_board_matches_need_id"))

    op.drop_table("board_matches")
