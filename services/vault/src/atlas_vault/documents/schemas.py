"""Response shapes of the document endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from atlas_vault.documents.models import DocumentPublic


class SignedReceipt(BaseModel):
    """An Ed25519-signed deposit receipt (NF Z42-020 fields in `receipt`)."""

    receipt: dict[str, Any] = Field(
        description=(
            "document_id, depositor, deposited_at, size_bytes, hash_algorithm, hash, and the "
            "journal position and hash of the deposit."
        )
    )
    signature_algorithm: str
    key_id: str
    signature: str = Field(description="base64url Ed25519 signature over the canonical JSON.")


class DepositOutcome(BaseModel):
    document: DocumentPublic
    receipt: SignedReceipt


class DocumentList(BaseModel):
    documents: list[DocumentPublic]


class DocumentCounts(BaseModel):
    """Counts only: what ops may see of the vault (or an owner of their own documents)."""

    scope: str = Field(description="`owner` or `vault`.")
    total: int
    by_status: dict[str, int]
    owners: int | None = None
    live_plaintext_bytes: int | None = None


class CheckReport(BaseModel):
    """The outcome of re-verifying one document's stored ciphertext."""

    document_id: str
    ok: bool
    ciphertext_digest: bool
    authentication_tags: bool
    plaintext_digest: bool
    detail: str | None = None


class PublicKey(BaseModel):
    """The receipt-signing public key, to verify receipts and exports offline."""

    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str
