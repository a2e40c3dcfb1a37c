"""HTTP endpoints of the document verbs; each verb is journaled."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import TypeAdapter, ValidationError

from atlas_events.auth import AUTH_RESPONSES, CurrentPrincipal, Role
from atlas_events.errors import BadRequest, error_responses
from atlas_events.schemas._base import EntityId
from atlas_events.service import RuntimeDep, SessionDep
from atlas_vault.context import VaultDep
from atlas_vault.documents import service
from atlas_vault.documents.models import DocumentPublic, DocumentStatus, DocumentType
from atlas_vault.documents.repository import DocumentRepository
from atlas_vault.documents.schemas import (
    CheckReport,
    DepositOutcome,
    DocumentCounts,
    DocumentList,
    PublicKey,
    SignedReceipt,
)
from atlas_vault.errors import (
    AccessDenied,
    DigestMismatch,
    DocumentDestroyed,
    DocumentNotAvailable,
    DocumentNotFound,
    KmsUnavailable,
    MalwareDetected,
    QuotaExceeded,
)
from atlas_vault.journal.service import Actor, append

router = APIRouter(prefix="/v1", tags=["documents"])

Sha256Hex = Annotated[str, Query(pattern=r"^[0-9a-f]{64}$", description="SHA-256, hex.")]
_LABELS = TypeAdapter(dict[str, str])
MAX_LABELS = 20


def _labels(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        labels = _LABELS.validate_python(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise BadRequest("labels must be a JSON object of strings") from exc
    if len(labels) > MAX_LABELS or any(len(k) > 50 or len(v) > 200 for k, v in labels.items()):
        raise BadRequest(f"at most {MAX_LABELS} labels, keys ≤ 50 and values ≤ 200 characters")
    return labels


@router.post(
    "/documents",
    status_code=201,
    response_model=DepositOutcome,
    summary="Deposit a document (streamed; the client's SHA-256 is checked)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
    responses={
        **AUTH_RESPONSES,
        **error_responses(BadRequest, DigestMismatch, QuotaExceeded, KmsUnavailable, AccessDenied),
    },
)
async def deposit_document(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    vault: VaultDep,
    principal: CurrentPrincipal,
    document_type: Annotated[DocumentType, Query(description="What the document is.")],
    sha256: Sha256Hex,
    filename: Annotated[str | None, Query(max_length=200)] = None,
    title: Annotated[str | None, Query(max_length=200)] = None,
    labels: Annotated[
        str | None, Query(max_length=5000, description="JSON object of string labels.")
    ] = None,
    content_type: Annotated[str | None, Header(max_length=100)] = None,
    # Read from the transport, not a parameter a client chooses: kept out of the OpenAPI.
    content_length: Annotated[int | None, Header(ge=0, include_in_schema=False)] = None,
) -> DepositOutcome | JSONResponse:
    """Upload the document's bytes as the request body; get a signed deposit receipt back.

    The document is quarantined until clamd has scanned it; an infected upload is refused (422)
    and the refusal journaled. A body whose SHA-256 differs from `sha256` is refused (422) and
    nothing is stored. Quotas count plaintext bytes (413).
    """
    outcome = await service.deposit(
        session,
        vault,
        runtime.outbox,
        principal,
        service.DepositRequest(
            document_type=document_type,
            sha256=sha256,
            content_type=(content_type or "application/octet-stream").split(";")[0].strip(),
            filename=filename,
            title=title,
            labels=_labels(labels),
            content_length=content_length,
        ),
        request.stream(),
    )
    document = outcome.document
    if document.status == DocumentStatus.REJECTED:
        refusal = MalwareDetected(
            "the upload carries malware and was rejected",
            detail={
                "message": "malware detected; the upload was rejected and journaled",
                "document_id": document.id,
                "signature": document.scan_signature,
            },
        )
        # Answered, not raised: the rejection and its journal entry must be committed.
        return JSONResponse(refusal.to_body(), status_code=refusal.status_code)
    return DepositOutcome(
        document=DocumentPublic.model_validate(document, from_attributes=True),
        receipt=SignedReceipt.model_validate(document.receipt),
    )


@router.get(
    "/documents",
    response_model=DocumentList,
    summary="List documents: an owner's own, or those granted to the calling staff member",
    responses={**AUTH_RESPONSES, **error_responses(AccessDenied)},
)
async def list_documents(
    session: SessionDep,
    principal: CurrentPrincipal,
    include_gone: Annotated[bool, Query(description="Also destroyed and rejected ones.")] = False,
) -> DocumentList:
    """The owner's documents; for staff, the documents they hold a live grant on."""
    repo = DocumentRepository(session)
    if principal.has_role(Role.AGENT):
        documents = await repo.for_owner(principal.sub, include_gone=include_gone)
        owner: str | None = principal.sub
    elif principal.has_role(Role.STAFF, Role.MANAGER):
        documents = await repo.granted_to(principal.sub, datetime.now(UTC))
        owner = None
    else:
        raise AccessDenied("ops and admins see counts, never documents")
    await append(
        session,
        Actor.of(principal),
        "list",
        owner_agent_id=owner,
        detail={"count": len(documents)},
    )
    return DocumentList(
        documents=[DocumentPublic.model_validate(d, from_attributes=True) for d in documents]
    )


@router.get(
    "/documents/count",
    response_model=DocumentCounts,
    summary="Count documents: an owner's own, or the whole vault for ops",
    responses={**AUTH_RESPONSES, **error_responses(AccessDenied)},
)
async def count_documents(session: SessionDep, principal: CurrentPrincipal) -> DocumentCounts:
    """Counts by status; ops see the vault's totals and nothing else."""
    repo = DocumentRepository(session)
    if principal.has_role(Role.AGENT):
        by_status = await repo.counts(principal.sub)
        counts = DocumentCounts(scope="owner", total=sum(by_status.values()), by_status=by_status)
        owner: str | None = principal.sub
    elif principal.is_ops or principal.has_role(Role.ADMIN):
        by_status = await repo.counts(None)
        owners, live_bytes = await repo.totals()
        counts = DocumentCounts(
            scope="vault",
            total=sum(by_status.values()),
            by_status=by_status,
            owners=owners,
            live_plaintext_bytes=live_bytes,
        )
        owner = None
    else:
        raise AccessDenied("staff read documents through grants; counts are for owners and ops")
    await append(
        session, Actor.of(principal), "count", owner_agent_id=owner, detail={"scope": counts.scope}
    )
    return counts


@router.get(
    "/documents/{document_id}",
    response_model=DocumentPublic,
    summary="Read a document's metadata",
    responses={**AUTH_RESPONSES, **error_responses(DocumentNotFound, AccessDenied)},
)
async def read_metadata(
    document_id: EntityId,
    session: SessionDep,
    principal: CurrentPrincipal,
    request_id: Annotated[str | None, Query(max_length=100)] = None,
) -> DocumentPublic:
    """The owner's view, or a granted staff member's (the grant is checked now)."""
    access = await service.authorize(session, principal, document_id, request_id)
    await service.journal_access(session, principal, access, "read_metadata")
    return DocumentPublic.model_validate(access.document, from_attributes=True)


@router.get(
    "/documents/{document_id}/content",
    summary="Read a document (decrypted, streamed)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The document."},
        **AUTH_RESPONSES,
        **error_responses(
            DocumentNotFound, AccessDenied, DocumentNotAvailable, DocumentDestroyed, KmsUnavailable
        ),
    },
)
async def read_content(
    document_id: EntityId,
    session: SessionDep,
    runtime: RuntimeDep,
    vault: VaultDep,
    principal: CurrentPrincipal,
    request_id: Annotated[str | None, Query(max_length=100)] = None,
) -> StreamingResponse:
    """The plaintext, streamed once the whole stored document has verified.

    A document whose ciphertext or metadata fails verification is refused (409
    DocumentCorrupted, naming the failed check), taken out of service and reported.
    """
    access = await service.authorize(session, principal, document_id, request_id)
    document = access.document
    service.ensure_servable(document)
    data_key = await service.unwrap_key(vault, document)
    await service.verify_for_serving(runtime.db, vault, runtime.outbox, document, data_key)
    await service.journal_access(session, principal, access, "read")
    stream: AsyncIterator[bytes] = service.decrypt_stream(vault, document, data_key)
    name = quote(document.filename or f"{document.id}")
    return StreamingResponse(
        stream,
        media_type=document.content_type,
        headers={
            "Content-Length": str(document.size_bytes),
            "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
            "X-Content-SHA256": document.sha256,
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/documents/{document_id}/receipt",
    response_model=SignedReceipt,
    summary="The signed deposit receipt of a document",
    responses={**AUTH_RESPONSES, **error_responses(DocumentNotFound, AccessDenied)},
)
async def read_receipt(
    document_id: EntityId, session: SessionDep, principal: CurrentPrincipal
) -> SignedReceipt:
    """The receipt as signed at deposit (owner only)."""
    access = await service.authorize(session, principal, document_id, None)
    if access.grant is not None:
        raise AccessDenied("receipts are for the owner")
    if not access.document.receipt:
        raise DocumentNotFound("this deposit was rejected and has no receipt")
    await service.journal_access(session, principal, access, "read_receipt")
    return SignedReceipt.model_validate(access.document.receipt)


@router.post(
    "/documents/{document_id}/check",
    response_model=CheckReport,
    summary="Check a document's integrity now",
    responses={**AUTH_RESPONSES, **error_responses(DocumentNotFound, AccessDenied)},
)
async def check_document(
    document_id: EntityId,
    session: SessionDep,
    runtime: RuntimeDep,
    vault: VaultDep,
    principal: CurrentPrincipal,
) -> CheckReport:
    """Re-verify digest, tags and plaintext hash (owner only); a failure raises the alarm."""
    access = await service.authorize(session, principal, document_id, None)
    if access.grant is not None:
        raise AccessDenied("only the owner may run a check")
    document = access.document
    if document.wrapped_key is None:
        raise DocumentDestroyed("the document's data key no longer exists")
    report = await service.verify_document(vault, document)
    await service.journal_access(session, principal, access, "check")
    if not report.ok:
        await service.mark_corrupted(session, runtime.outbox, document, report)
    return report


@router.delete(
    "/documents/{document_id}",
    status_code=204,
    summary="Destroy a document (its data key is destroyed)",
    responses={
        **AUTH_RESPONSES,
        **error_responses(DocumentNotFound, AccessDenied, DocumentDestroyed),
    },
)
async def destroy_document(
    document_id: EntityId,
    session: SessionDep,
    runtime: RuntimeDep,
    vault: VaultDep,
    principal: CurrentPrincipal,
) -> None:
    """Owner only; grants are revoked, the key destroyed, the blob erased."""
    access = await service.authorize(session, principal, document_id, None)
    if access.grant is not None:
        raise AccessDenied("only the owner may destroy a document")
    document = await DocumentRepository(session).get(document_id, for_update=True)
    assert document is not None
    await service.destroy(session, vault, runtime.outbox, principal, document)


@router.get(
    "/receipts/public-key",
    response_model=PublicKey,
    summary="The Ed25519 key that signs receipts and exports",
    responses=AUTH_RESPONSES,
)
async def receipt_public_key(vault: VaultDep, principal: CurrentPrincipal) -> PublicKey:
    """For verifying receipts and exports offline."""
    return PublicKey.model_validate(vault.signer.public_jwk())
