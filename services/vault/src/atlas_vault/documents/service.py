"""The document verbs: deposit, read, destroy, read metadata, check, list, count."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.auth import STAFF_ROLES, Principal, Role
from atlas_events.cloudevents import CloudEvent
from atlas_events.db import Database
from atlas_events.outbox import Outbox
from atlas_events.schemas import vault as ev
from atlas_vault.context import SOURCE, VaultContext
from atlas_vault.crypto.envelope import (
    ChunkAuthenticationError,
    ChunkDecryptor,
    ChunkEncryptor,
    aframes_of,
    new_data_key,
)
from atlas_vault.crypto.kms import KmsError, WrappedKey, wrap_context
from atlas_vault.crypto.receipts import RECEIPT_FORMAT
from atlas_vault.documents.models import Document, DocumentStatus, DocumentType
from atlas_vault.documents.repository import DocumentRepository
from atlas_vault.documents.schemas import CheckReport
from atlas_vault.errors import (
    AccessDenied,
    DigestMismatch,
    DocumentCorrupted,
    DocumentDestroyed,
    DocumentNotAvailable,
    DocumentNotFound,
    DocumentNotScanned,
    DocumentTooLarge,
    KmsUnavailable,
    QuotaExceeded,
)
from atlas_vault.grants.models import Grant
from atlas_vault.grants.repository import GrantRepository
from atlas_vault.grants.service import live_grant, revoke_grant
from atlas_vault.journal.service import SYSTEM, Actor, append
from atlas_vault.scanning.clamd import ScannerUnavailable, ScanResult, ScanSession
from atlas_vault.storage.blobs import BlobNotFound

log = structlog.get_logger(__name__)

HASH_ALGORITHM = "SHA-256"
_AGENT_ID = re.compile(r"[0-9]{10}")
_YIELD_BYTES = 1 << 20


@dataclass(frozen=True)
class DepositRequest:
    """What the client says about the upload; the bytes come as a stream."""

    document_type: DocumentType
    sha256: str
    content_type: str
    filename: str | None = None
    title: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    content_length: int | None = None


@dataclass
class DepositResult:
    document: Document
    scan: ScanResult | None


def is_owner(principal: Principal, document: Document) -> bool:
    return principal.has_role(Role.AGENT) and principal.sub == document.owner_agent_id


def require_agent(principal: Principal) -> None:
    if not principal.has_role(Role.AGENT):
        raise AccessDenied("only an agent may do this, on their own documents")
    if not _AGENT_ID.fullmatch(principal.sub):
        raise AccessDenied("an agent's token must name their 10-digit defence identifier")


async def _open_scan(ctx: VaultContext) -> ScanSession | None:
    if ctx.scanner is None:
        return None
    try:
        return await ctx.scanner.session()
    except ScannerUnavailable as exc:
        log.warning("scanner_unavailable", error=str(exc))
        return None


async def deposit(
    session: AsyncSession,
    ctx: VaultContext,
    outbox: Outbox,
    principal: Principal,
    request: DepositRequest,
    body: AsyncIterator[bytes],
) -> DepositResult:
    """Stream, hash, scan and encrypt an upload; store it only if the client's hash matches."""
    require_agent(principal)
    settings = ctx.settings
    owner = principal.sub
    repo = DocumentRepository(session)
    remaining = settings.quota_bytes - await repo.usage_bytes(owner)
    if request.content_length is not None:
        _check_size(request.content_length, remaining, settings.max_document_bytes)

    document_id, blob_id = str(uuid.uuid4()), uuid.uuid4().hex
    data_key = new_data_key()
    encryptor = ChunkEncryptor(data_key, document_id, 1, settings.chunk_size)
    plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
    size = cipher_size = 0
    writer = await ctx.blobs.writer(blob_id)
    scan = await _open_scan(ctx)
    committed = False
    try:
        async for piece in body:
            if not piece:
                continue
            size += len(piece)
            _check_size(size, remaining, settings.max_document_bytes)
            plain_hash.update(piece)
            if scan is not None:
                try:
                    await scan.send(piece)
                except ScannerUnavailable as exc:
                    log.warning("scanner_stream_broken", error=str(exc))
                    scan.close()
                    scan = None
            frames = encryptor.update(piece)
            if frames:
                cipher_hash.update(frames)
                cipher_size += len(frames)
                await writer.write(frames)
        last = encryptor.finalize()
        cipher_hash.update(last)
        cipher_size += len(last)
        await writer.write(last)

        digest = plain_hash.hexdigest()
        if digest != request.sha256:
            raise DigestMismatch(
                "the uploaded bytes do not match the announced SHA-256; nothing was stored",
                detail={
                    "message": "SHA-256 mismatch; nothing was stored",
                    "announced": request.sha256,
                    "computed": digest,
                },
            )
        now = datetime.now(UTC)
        document = Document(
            id=document_id,
            owner_agent_id=owner,
            document_type=request.document_type,
            title=request.title,
            filename=request.filename,
            content_type=request.content_type,
            labels=request.labels,
            version=1,
            size_bytes=size,
            sha256=digest,
            status=DocumentStatus.QUARANTINED,
            deposited_at=now,
            chunk_size=settings.chunk_size,
            chunk_count=encryptor.chunks,
            blob_id=blob_id,
            ciphertext_size=cipher_size,
            ciphertext_sha256=cipher_hash.hexdigest(),
        )
        actor = Actor.of(principal)

        async def seal() -> WrappedKey:
            try:
                wrapped = await ctx.kms.wrap(data_key, wrap_context(document_id, 1))
            except KmsError as exc:
                raise KmsUnavailable(f"the data key could not be wrapped: {exc}") from exc
            await writer.commit()
            return wrapped

        # clamd scans what it was sent while the key is wrapped and the blob made durable.
        pending_scan, scan = scan, None
        verdict, wrapped = await asyncio.gather(_verdict(pending_scan), seal())
        committed = True
        if verdict is not None and verdict.verdict == "infected":
            await ctx.blobs.delete(blob_id)  # ciphertext that no row will ever point to
            await _reject_infected(session, outbox, actor, document, verdict, now, stored=False)
            return DepositResult(document, verdict)
    except BaseException:
        if scan is not None:
            scan.close()
        if not committed:
            await writer.abort()
        raise

    document.wrapped_key, document.kek_id, document.kek_version = (
        wrapped.ciphertext,
        wrapped.kek_id,
        wrapped.version,
    )
    session.add(document)
    await session.flush()
    entry = await append(
        session,
        actor,
        "deposit",
        document_id=document.id,
        owner_agent_id=owner,
        detail={
            "document_type": str(document.document_type),
            "size_bytes": size,
            "hash_algorithm": HASH_ALGORITHM,
            "hash": digest,
        },
    )
    document.receipt = ctx.signer.sign(
        {
            "format": RECEIPT_FORMAT,
            "issuer": SOURCE,
            "document_id": document.id,
            "version": document.version,
            "depositor": owner,
            "deposited_at": now.isoformat().replace("+00:00", "Z"),
            "document_type": str(document.document_type),
            "size_bytes": size,
            "hash_algorithm": HASH_ALGORITHM,
            "hash": digest,
            "journal_seq": entry.seq,
            "journal_hash": entry.hash,
        }
    )
    session.add(document)
    await outbox.add(
        session,
        CloudEvent.create(
            ev.DOCUMENT_DEPOSITED,
            SOURCE,
            ev.DocumentDeposited(
                document_id=document.id,
                owner_agent_id=owner,
                category=str(document.document_type),
                content_type=document.content_type,
                size_bytes=size,
                sha256=digest,
                deposited_at=now,
            ),
        ),
        key=document.id,
    )
    if verdict is not None:
        await record_scan(session, outbox, document, verdict)
    return DepositResult(document, verdict)


async def _verdict(scan: ScanSession | None) -> ScanResult | None:
    """clamd's verdict, or None when it could not give one (the document stays quarantined)."""
    if scan is None:
        return None
    try:
        return await scan.finish()
    except ScannerUnavailable as exc:
        log.warning("scanner_no_verdict", error=str(exc))
        return None


def _check_size(size: int, remaining: int, max_document: int) -> None:
    if size > max_document:
        raise DocumentTooLarge(f"a document may hold at most {max_document} bytes")
    if size > remaining:
        raise QuotaExceeded(
            "this document would exceed the quota of plaintext bytes",
            detail={"message": "quota exceeded", "remaining_bytes": max(remaining, 0)},
        )


async def record_scan(
    session: AsyncSession, outbox: Outbox, document: Document, verdict: ScanResult
) -> None:
    """Journal a scan verdict; a clean one releases the document from quarantine."""
    now = datetime.now(UTC)
    document.scan_verdict, document.scanned_at = verdict.verdict, now
    if verdict.verdict == "clean" and document.status == DocumentStatus.QUARANTINED:
        document.status = DocumentStatus.AVAILABLE
    session.add(document)
    await append(
        session,
        SYSTEM,
        "scan",
        document_id=document.id,
        owner_agent_id=document.owner_agent_id,
        detail={"verdict": verdict.verdict, "scanner": "clamav"},
    )
    await outbox.add(session, _scanned_event(document, verdict, now), key=document.id)


def _scanned_event(document: Document, verdict: ScanResult, at: datetime) -> CloudEvent:
    return CloudEvent.create(
        ev.DOCUMENT_SCANNED,
        SOURCE,
        ev.DocumentScanned(
            document_id=document.id,
            owner_agent_id=document.owner_agent_id,
            verdict=verdict.verdict,
            scanner="clamav",
            scanned_at=at,
        ),
    )


async def _reject_infected(
    session: AsyncSession,
    outbox: Outbox,
    actor: Actor,
    document: Document,
    verdict: ScanResult,
    now: datetime,
    *,
    stored: bool,
) -> None:
    """Reject an infected document: no data key survives, the refusal is journaled."""
    document.status = DocumentStatus.REJECTED
    document.scan_verdict, document.scan_signature, document.scanned_at = (
        "infected",
        (verdict.signature or "")[:200] or None,
        now,
    )
    document.wrapped_key, document.kek_version = None, None
    document.destroyed_at = now
    session.add(document)
    await session.flush()
    await append(
        session,
        actor if not stored else SYSTEM,
        "deposit_rejected",
        document_id=document.id,
        owner_agent_id=document.owner_agent_id,
        detail={
            "reason": "malware",
            "signature": document.scan_signature,
            "size_bytes": document.size_bytes,
            "hash": document.sha256,
        },
    )
    await outbox.add(session, _scanned_event(document, verdict, now), key=document.id)
    if stored:
        await outbox.add(
            session,
            CloudEvent.create(
                ev.DOCUMENT_DESTROYED,
                SOURCE,
                ev.DocumentDestroyed(
                    document_id=document.id,
                    owner_agent_id=document.owner_agent_id,
                    reason="infected",
                    destroyed_by=SYSTEM.sub,
                    destroyed_at=now,
                ),
            ),
            key=document.id,
        )


async def reject_infected_stored(
    session: AsyncSession,
    ctx: VaultContext,
    outbox: Outbox,
    document: Document,
    verdict: ScanResult,
) -> None:
    """A quarantined document found infected later: destroy its key and erase its blob."""
    await _reject_infected(
        session, outbox, SYSTEM, document, verdict, datetime.now(UTC), stored=True
    )
    await ctx.blobs.delete(document.blob_id)


# ---- access -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """Why the caller may see a document: as its owner, or through a grant."""

    document: Document
    grant: Grant | None


async def authorize(
    session: AsyncSession, principal: Principal, document_id: str, request_id: str | None
) -> Access:
    """The owner fully; staff through a live grant (checked now); ops and others never."""
    document = await DocumentRepository(session).get(document_id)
    if document is None:
        raise DocumentNotFound(f"no document {document_id}")
    if is_owner(principal, document):
        return Access(document, None)
    if principal.has_role(*STAFF_ROLES):
        grant = await live_grant(session, document, principal, request_id)
        if grant is None:
            raise AccessDenied("no live grant on this document for this staff member")
        return Access(document, grant)
    if principal.is_ops or principal.has_role(Role.ADMIN):
        raise AccessDenied("ops and admins see counts, never documents")
    raise DocumentNotFound(f"no document {document_id}")


def ensure_servable(document: Document) -> None:
    """Only available documents are served: not quarantined, corrupted or gone."""
    status = document.status
    if status == DocumentStatus.AVAILABLE:
        return
    if status == DocumentStatus.QUARANTINED:
        raise DocumentNotScanned("the document is quarantined until it has been scanned")
    if status == DocumentStatus.CORRUPTED:
        raise DocumentCorrupted("the stored document failed verification and is not served")
    if status == DocumentStatus.DESTROYED:
        raise DocumentDestroyed("the document was destroyed; its data key no longer exists")
    raise DocumentNotAvailable(f"the document is {status}")


async def journal_access(
    session: AsyncSession, principal: Principal, access: Access, action: str
) -> None:
    document = access.document
    await append(
        session,
        Actor.of(principal),
        action,
        document_id=document.id,
        owner_agent_id=document.owner_agent_id,
        request_id=access.grant.request_id if access.grant else None,
        grant_id=access.grant.id if access.grant else None,
    )


async def unwrap_key(ctx: VaultContext, document: Document) -> bytes:
    if document.wrapped_key is None or document.kek_version is None or document.kek_id is None:
        raise DocumentDestroyed("the document's data key no longer exists")
    wrapped = WrappedKey(document.kek_id, document.kek_version, document.wrapped_key)
    try:
        return await ctx.kms.unwrap(wrapped, wrap_context(document.id, document.version))
    except KmsError as exc:
        raise KmsUnavailable(f"the data key could not be unwrapped: {exc}") from exc


async def ciphertext_digest(ctx: VaultContext, document: Document) -> str | None:
    """SHA-256 of the stored blob, or None when the blob is missing."""
    hasher = hashlib.sha256()
    try:
        async for piece in ctx.blobs.read(document.blob_id):
            hasher.update(piece)
    except BlobNotFound:
        return None
    return hasher.hexdigest()


async def decrypt_stream(
    ctx: VaultContext, document: Document, data_key: bytes
) -> AsyncIterator[bytes]:
    """Authenticated plaintext, chunk by chunk; raises on any altered, moved or missing chunk."""
    decryptor = ChunkDecryptor(data_key, document.id, document.version, document.chunk_size)
    hasher = hashlib.sha256()
    out = bytearray()
    count = 0
    async for frame, last in aframes_of(ctx.blobs.read(document.blob_id), document.chunk_size):
        plaintext = decryptor.decrypt(frame, last=last)
        count += 1
        hasher.update(plaintext)
        out += plaintext
        if len(out) >= _YIELD_BYTES:
            yield bytes(out)
            out.clear()
    if count != document.chunk_count:
        raise ChunkAuthenticationError(count, f"{count} chunks, {document.chunk_count} expected")
    if hasher.hexdigest() != document.sha256:
        raise ChunkAuthenticationError(count, "plaintext digest differs from the deposit")
    if out:
        yield bytes(out)


async def verify_document(
    ctx: VaultContext, document: Document, data_key: bytes | None = None
) -> CheckReport:
    """Re-verify the blob's digest, every chunk's tag, the plaintext's length and hash (nothing
    kept); `data_key` saves a second unwrap when the caller holds it already."""
    report = CheckReport(
        document_id=document.id,
        ok=False,
        ciphertext_digest=False,
        authentication_tags=False,
        plaintext_digest=False,
    )
    digest = await ciphertext_digest(ctx, document)
    if digest is None:
        report.detail = "the blob is missing"
        return report
    report.ciphertext_digest = digest == document.ciphertext_sha256
    if data_key is None:
        data_key = await unwrap_key(ctx, document)
    decryptor = ChunkDecryptor(data_key, document.id, document.version, document.chunk_size)
    hasher = hashlib.sha256()
    size = 0
    try:
        count = 0
        async for frame, last in aframes_of(ctx.blobs.read(document.blob_id), document.chunk_size):
            plaintext = decryptor.decrypt(frame, last=last)
            hasher.update(plaintext)
            size += len(plaintext)
            count += 1
        report.authentication_tags = count == document.chunk_count
        if not report.authentication_tags:
            report.detail = f"{count} chunks found, {document.chunk_count} expected"
    except ChunkAuthenticationError as exc:
        report.detail = str(exc)
    except BlobNotFound:
        report.detail = "the blob is missing"
    if report.authentication_tags:
        if size != document.size_bytes:
            report.detail = f"{size} plaintext bytes, {document.size_bytes} recorded"
        elif hasher.hexdigest() != document.sha256:
            report.detail = "plaintext digest differs from the deposit"
        else:
            report.plaintext_digest = True
    if report.ciphertext_digest is False and report.detail is None:
        report.detail = "stored digest does not match the ciphertext"
    report.ok = report.ciphertext_digest and report.authentication_tags and report.plaintext_digest
    return report


async def mark_corrupted(
    session: AsyncSession, outbox: Outbox, document: Document, report: CheckReport
) -> None:
    """Take a document out of service and raise the alarm (an event for operators)."""
    now = datetime.now(UTC)
    if document.status in (DocumentStatus.AVAILABLE, DocumentStatus.QUARANTINED):
        document.status = DocumentStatus.CORRUPTED
    document.checked_at = now
    session.add(document)
    intact = report.ciphertext_digest and report.authentication_tags
    check = "plaintext_digest" if intact else "ciphertext_digest"
    detail = report.detail or "verification failed"
    entry = await append(
        session,
        SYSTEM,
        "integrity_failed",
        document_id=document.id,
        owner_agent_id=document.owner_agent_id,
        detail={"check": check, "detail": detail},
    )
    await outbox.add(
        session,
        CloudEvent.create(
            ev.DOCUMENT_INTEGRITY_FAILED,
            SOURCE,
            ev.DocumentIntegrityFailed(
                document_id=document.id,
                check=check,
                detail=detail,
                journal_seq=entry.seq,
                detected_at=now,
            ),
        ),
        key=document.id,
    )


async def verify_for_serving(
    db: Database, ctx: VaultContext, outbox: Outbox, document: Document, data_key: bytes
) -> None:
    """Verify the whole document (digest, every tag, length and hash) before a byte is served.

    Once a streamed response has started, a failure can only cut the connection after a 200:
    so nothing is sent until the stored document has verified. On failure the document is
    taken out of service in its own transaction (the alarm survives the refusal) and the caller
    gets DocumentCorrupted naming what failed. Costs one more pass over the blob, which the
    digest comparison made anyway."""
    report = await verify_document(ctx, document, data_key)
    if report.ok:
        return
    async with db.transaction() as session:
        fresh = await DocumentRepository(session).get(document.id, for_update=True)
        if fresh is not None and fresh.status == DocumentStatus.AVAILABLE:
            await mark_corrupted(session, outbox, fresh, report)
    raise DocumentCorrupted(
        f"the stored document failed verification ({report.detail}) and is not served"
    )


async def destroy(
    session: AsyncSession,
    ctx: VaultContext,
    outbox: Outbox,
    principal: Principal,
    document: Document,
) -> None:
    """Destroy the data key (which makes the ciphertext unreadable), then erase the blob."""
    if document.status == DocumentStatus.DESTROYED:
        raise DocumentDestroyed("the document was already destroyed")
    actor = Actor.of(principal)
    now = datetime.now(UTC)
    for grant in await GrantRepository(session).unrevoked_for_document(document.id):
        await revoke_grant(session, outbox, actor, grant, "document_destroyed")
    document.wrapped_key, document.kek_version = None, None
    document.status, document.destroyed_at = DocumentStatus.DESTROYED, now
    session.add(document)
    await session.flush()
    await append(
        session,
        actor,
        "destroy",
        document_id=document.id,
        owner_agent_id=document.owner_agent_id,
        detail={"method": "data_key_destroyed"},
    )
    await outbox.add(
        session,
        CloudEvent.create(
            ev.DOCUMENT_DESTROYED,
            SOURCE,
            ev.DocumentDestroyed(
                document_id=document.id,
                owner_agent_id=document.owner_agent_id,
                reason="owner_request",
                destroyed_by=principal.sub,
                destroyed_at=now,
            ),
        ),
        key=document.id,
    )
    await ctx.blobs.delete(document.blob_id)
