"""The document table: metadata and the wrapped data key; never any plaintext."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, String, Text
from sqlmodel import Field

from atlas_events.db import UTCDateTime
from atlas_vault.db import VaultModel


class DocumentType(StrEnum):
    """What the document is, in the users' words."""

    BULLETIN_SOLDE = "bulletin_solde"
    ORDRE_MUTATION = "ordre_mutation"
    PIECE_IDENTITE = "piece_identite"
    CERTIFICAT_SCOLARITE = "certificat_scolarite"
    BAIL = "bail"
    JUSTIFICATIF_DOMICILE = "justificatif_domicile"
    LIVRET_FAMILLE = "livret_famille"
    AVIS_IMPOSITION = "avis_imposition"
    ATTESTATION = "attestation"
    AUTRE = "autre"


class DocumentStatus(StrEnum):
    QUARANTINED = "quarantined"  # stored encrypted, not scanned yet: cannot be read or shared
    AVAILABLE = "available"
    REJECTED = "rejected"  # malware: key destroyed, blob erased
    CORRUPTED = "corrupted"  # failed verification: never served
    DESTROYED = "destroyed"


LIVE_STATUSES = (DocumentStatus.QUARANTINED, DocumentStatus.AVAILABLE, DocumentStatus.CORRUPTED)


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime, nullable=nullable, index=False))


class DocumentBase(VaultModel):
    owner_agent_id: str = Field(max_length=20, index=True)
    document_type: DocumentType = Field(sa_type=String(40))
    title: str | None = Field(default=None, max_length=200)
    filename: str | None = Field(default=None, max_length=200)
    content_type: str = Field(max_length=100)
    labels: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    version: int = 1
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(max_length=64)
    status: DocumentStatus = Field(sa_type=String(20), index=True)
    scan_verdict: str | None = Field(default=None, max_length=20)
    scan_signature: str | None = Field(default=None, max_length=200)


class Document(DocumentBase, table=True):
    """A deposited document: its metadata, where its ciphertext is and its wrapped data key."""

    __tablename__ = "vault_documents"

    id: str = Field(primary_key=True, max_length=100)
    deposited_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    scanned_at: datetime | None = _ts(nullable=True)
    destroyed_at: datetime | None = _ts(nullable=True)
    checked_at: datetime | None = _ts(nullable=True)
    chunk_size: int
    chunk_count: int
    blob_id: str = Field(max_length=100)
    ciphertext_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    ciphertext_sha256: str = Field(max_length=64)
    # The data key exists only in this wrapped form; nulling it is how a document is destroyed.
    wrapped_key: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    kek_id: str | None = Field(default=None, max_length=200)
    kek_version: int | None = Field(default=None, index=True)
    receipt: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class DocumentPublic(DocumentBase):
    """What the owner (or a granted staff member) sees of a document."""

    id: str
    deposited_at: datetime
    scanned_at: datetime | None
    destroyed_at: datetime | None
