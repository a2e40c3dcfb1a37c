"""The vault's documents, grants, request states and hash-chained journal.

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

GENESIS_HASH = "0" * 64


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "vault_documents",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("owner_agent_id", sa.String(20), nullable=False, index=True),
        sa.Column("document_type", sa.String(40), nullable=False),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("filename", sa.String(200), nullable=True),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("scan_verdict", sa.String(20), nullable=True),
        sa.Column("scan_signature", sa.String(200), nullable=True),
        _ts("deposited_at"),
        _ts("scanned_at", nullable=True),
        _ts("destroyed_at", nullable=True),
        _ts("checked_at", nullable=True),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("blob_id", sa.String(100), nullable=False),
        sa.Column("ciphertext_size", sa.BigInteger(), nullable=False),
        sa.Column("ciphertext_sha256", sa.String(64), nullable=False),
        sa.Column("wrapped_key", sa.Text(), nullable=True),
        sa.Column("kek_id", sa.String(200), nullable=True),
        sa.Column("kek_version", sa.Integer(), nullable=True, index=True),
        sa.Column("receipt", sa.JSON(), nullable=False),
    )
    op.create_table(
        "vault_grants",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column(
            "document_id",
            sa.String(100),
            sa.ForeignKey("vault_documents.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("owner_agent_id", sa.String(20), nullable=False, index=True),
        sa.Column("grantee", sa.String(200), nullable=False),
        sa.Column("atlas_id", sa.String(64), nullable=True),
        sa.Column("request_id", sa.String(100), nullable=False, index=True),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("revoked_at", nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.Column("revoke_reason", sa.String(40), nullable=True),
    )
    op.create_table(
        "vault_request_states",
        sa.Column("request_id", sa.String(100), primary_key=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        _ts("changed_at"),
    )
    op.create_table(
        "vault_journal",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        _ts("at"),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("actor_role", sa.String(20), nullable=False),
        sa.Column("action", sa.String(40), nullable=False, index=True),
        sa.Column("document_id", sa.String(100), nullable=True, index=True),
        sa.Column("owner_agent_id", sa.String(20), nullable=True, index=True),
        sa.Column("request_id", sa.String(100), nullable=True),
        sa.Column("grant_id", sa.String(100), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    head = op.create_table(
        "vault_journal_head",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])


def downgrade() -> None:
    op.drop_table("vault_journal_head")
    op.drop_table("vault_journal")
    op.drop_table("vault_request_states")
    op.drop_table("vault_grants")
    op.drop_table("vault_documents")
