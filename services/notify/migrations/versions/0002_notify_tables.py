"""The notify tables: templates, notifications, deliveries, directory, preferences, jobs.

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
        "notify_contacts",
        sa.Column("agent_id", sa.String(length=10), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("given_name", sa.String(length=200), nullable=True),
        sa.Column("family_name", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agent_id"),
    )
    op.create_table(
        "notify_job_runs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_run_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "notify_notifications",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("source_key", sa.String(length=300), nullable=False),
        sa.Column("source_type", sa.String(length=200), nullable=False),
        sa.Column("recipient_kind", sa.String(length=16), nullable=False),
        sa.Column("recipient_id", sa.String(length=64), nullable=False),
        sa.Column("template_code", sa.String(length=64), nullable=False),
        sa.Column("template_version", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "source_key",
            "recipient_kind",
            "recipient_id",
            "template_code",
            name="uq_notify_notifications_once",
        ),
    )
    with op.batch_alter_table("notify_notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notify_notifications_recipient",
            ["recipient_kind", "recipient_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "notify_preferences",
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "category", "channel"),
    )
    op.create_table(
        "notify_spaces",
        sa.Column("atlas_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("atlas_id"),
    )
    op.create_table(
        "notify_staff",
        sa.Column("staff_id", sa.String(length=200), nullable=False),
        sa.Column("atlas_id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("staff_id"),
    )
    with op.batch_alter_table("notify_staff", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notify_staff_atlas_id"), ["atlas_id"], unique=False)

    op.create_table(
        "notify_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("email_subject", sa.String(length=300), nullable=True),
        sa.Column("email_body", sa.Text(), nullable=True),
        sa.Column("sms_body", sa.Text(), nullable=True),
        sa.Column("in_app_title", sa.String(length=300), nullable=True),
        sa.Column("in_app_body", sa.Text(), nullable=True),
        sa.Column("sms_encoding", sa.String(length=8), nullable=True),
        sa.Column("sms_segments", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code", "version", name="uq_notify_templates_version"),
    )
    with op.batch_alter_table("notify_templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notify_templates_code"), ["code"], unique=False)

    op.create_table(
        "notify_deliveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("notification_id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.String(length=2000), nullable=True),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("provider", sa.String(length=64), nullable=True),
        sa.Column("provider_ref", sa.String(length=200), nullable=True),
        sa.Column("dead_lettered", sa.Boolean(), nullable=False),
        sa.Column("replaced_by", sa.String(length=36), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notify_notifications.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "notification_id", "channel", "target", "generation", name="uq_notify_deliveries_once"
        ),
    )
    with op.batch_alter_table("notify_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notify_deliveries_dead_lettered"), ["dead_lettered"], unique=False
        )
        batch_op.create_index(
            "ix_notify_deliveries_due", ["status", "digest", "not_before"], unique=False
        )
        batch_op.create_index(
            "ix_notify_deliveries_inbox",
            ["channel", "target_kind", "target", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_notify_deliveries_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notify_deliveries_notification_id"), ["notification_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notify_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notify_deliveries_notification_id"))
        batch_op.drop_index(batch_op.f("ix_notify_deliveries_next_attempt_at"))
        batch_op.drop_index("ix_notify_deliveries_inbox")
        batch_op.drop_index("ix_notify_deliveries_due")
        batch_op.drop_index(batch_op.f("ix_notify_deliveries_dead_lettered"))

    op.drop_table("notify_deliveries")
    with op.batch_alter_table("notify_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notify_templates_code"))

    op.drop_table("notify_templates")
    with op.batch_alter_table("notify_staff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notify_staff_atlas_id"))

    op.drop_table("notify_staff")
    op.drop_table("notify_spaces")
    op.drop_table("notify_preferences")
    with op.batch_alter_table("notify_notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notify_notifications_recipient")

    op.drop_table("notify_notifications")
    op.drop_table("notify_job_runs")
    op.drop_table("notify_contacts")
