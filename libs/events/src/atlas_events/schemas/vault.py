"""Data of the vault's document events; no document content or file name ever travels."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, Field, StrictInt, StringConstraints

from atlas_events.schemas._base import AgentId, EntityId, EventData, LongText, ShortText, example

DOCUMENT_DEPOSITED: Final = "fr.defense.atlas.vault.document.deposited.v1"
DOCUMENT_SCANNED: Final = "fr.defense.atlas.vault.document.scanned.v1"
DOCUMENT_DESTROYED: Final = "fr.defense.atlas.vault.document.destroyed.v1"
DOCUMENT_INTEGRITY_FAILED: Final = "fr.defense.atlas.vault.document.integrity_failed.v1"
GRANT_CREATED: Final = "fr.defense.atlas.vault.grant.created.v1"
GRANT_REVOKED: Final = "fr.defense.atlas.vault.grant.revoked.v1"

DocumentId = Annotated[EntityId, Field(description="Identifier of the document.")]
GrantId = Annotated[EntityId, Field(description="Identifier of the grant.")]

_DOCUMENT_ID = "3d8f0c1e-5a7b-4c9d-8e2f-1a3b5c7d9e0f"
_GRANT_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"


class DocumentDeposited(EventData):
    """An agent deposited a document; it is stored encrypted."""

    model_config = example(
        {
            "document_id": _DOCUMENT_ID,
            "owner_agent_id": "2019123456",
            "category": "justificatif_domicile",
            "content_type": "application/pdf",
            "size_bytes": 184320,
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "deposited_at": "2027-05-02T18:00:00Z",
        }
    )

    document_id: DocumentId
    owner_agent_id: AgentId = Field(description="The agent who owns the document.")
    category: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")] = Field(
        description="Document category code, e.g. justificatif_domicile, bulletin_solde."
    )
    content_type: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="Media type of the plaintext."
    )
    size_bytes: StrictInt = Field(ge=0, description="Size of the plaintext in bytes.")
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] = Field(
        description="SHA-256 of the plaintext, hex, to check integrity after decryption."
    )
    deposited_at: AwareDatetime = Field(description="When it was deposited.")


class DocumentScanned(EventData):
    """A deposited document was scanned for malware."""

    model_config = example(
        {
            "document_id": _DOCUMENT_ID,
            "owner_agent_id": "2019123456",
            "verdict": "clean",
            "scanner": "clamav",
            "scanned_at": "2027-05-02T18:00:05Z",
        }
    )

    document_id: DocumentId
    owner_agent_id: AgentId = Field(description="The agent who owns the document.")
    verdict: Literal["clean", "infected", "error"] = Field(description="Scan result.")
    scanner: ShortText = Field(description="Scanner that ran.")
    scanned_at: AwareDatetime = Field(description="When the scan finished.")


class DocumentDestroyed(EventData):
    """A document was destroyed (key and ciphertext erased)."""

    model_config = example(
        {
            "document_id": _DOCUMENT_ID,
            "owner_agent_id": "2019123456",
            "reason": "owner_request",
            "destroyed_by": "2019123456",
            "destroyed_at": "2027-10-01T08:00:00Z",
        }
    )

    document_id: DocumentId
    owner_agent_id: AgentId = Field(description="The agent who owned the document.")
    reason: Literal["owner_request", "retention_expired", "infected", "admin"] = Field(
        description="Why it was destroyed."
    )
    destroyed_by: ShortText = Field(description="Subject who destroyed it, or the vault itself.")
    destroyed_at: AwareDatetime = Field(description="When it was destroyed.")


class DocumentIntegrityFailed(EventData):
    """An integrity check failed on a document or on the journal: an operator must look."""

    model_config = example(
        {
            "document_id": _DOCUMENT_ID,
            "check": "ciphertext_digest",
            "detail": "stored digest does not match the ciphertext",
            "journal_seq": 1042,
            "detected_at": "2027-05-03T02:00:00Z",
        }
    )

    document_id: DocumentId
    check: Literal["ciphertext_digest", "plaintext_digest", "journal_chain"] = Field(
        description="Which check failed."
    )
    detail: LongText = Field(description="What was found (never document content).")
    journal_seq: StrictInt | None = Field(
        default=None, ge=0, description="Journal entry where the failure was found, if any."
    )
    detected_at: AwareDatetime = Field(description="When it was detected.")


class GrantCreated(EventData):
    """The owner granted someone access to a document."""

    model_config = example(
        {
            "grant_id": _GRANT_ID,
            "document_id": _DOCUMENT_ID,
            "owner_agent_id": "2019123456",
            "grantee_kind": "space_staff",
            "grantee": "toulon",
            "permission": "read",
            "expires_at": "2027-09-30T00:00:00Z",
            "created_at": "2027-05-02T18:10:00Z",
        }
    )

    grant_id: GrantId
    document_id: DocumentId
    owner_agent_id: AgentId = Field(description="The agent who owns the document.")
    grantee_kind: Literal["staff", "space_staff"] = Field(
        description="A staff member (by sub) or a whole space's staff (by atlas_id)."
    )
    grantee: ShortText = Field(description="The staff member's sub, or the atlas_id.")
    permission: Literal["read"] = Field(description="What the grant allows.")
    expires_at: AwareDatetime | None = Field(default=None, description="When it lapses, if ever.")
    created_at: AwareDatetime = Field(description="When it was granted.")
    request_id: EntityId | None = Field(
        default=None, description="The support request the access was granted for."
    )


class GrantRevoked(EventData):
    """A grant was revoked before it lapsed."""

    model_config = example(
        {
            "grant_id": _GRANT_ID,
            "document_id": _DOCUMENT_ID,
            "owner_agent_id": "2019123456",
            "revoked_by": "2019123456",
            "revoked_at": "2027-06-01T08:00:00Z",
        }
    )

    grant_id: GrantId
    document_id: DocumentId
    owner_agent_id: AgentId = Field(description="The agent who owns the document.")
    revoked_by: ShortText = Field(description="Subject who revoked it.")
    revoked_at: AwareDatetime = Field(description="When it was revoked.")
    request_id: EntityId | None = Field(
        default=None, description="The support request the access had been granted for."
    )
    reason: Literal["owner", "request_closed", "document_destroyed"] | None = Field(
        default=None, description="Why: by the owner, the request closed, the document went."
    )
