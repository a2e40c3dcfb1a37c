"""Re-verify every stored document and the journal; corrupted ones are taken out and reported."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from pydantic import BaseModel

from atlas_events.cloudevents import CloudEvent
from atlas_events.db import Database
from atlas_events.outbox import Outbox
from atlas_events.schemas import vault as ev
from atlas_vault.context import SOURCE, VaultContext
from atlas_vault.documents import service as documents
from atlas_vault.documents.models import DocumentStatus
from atlas_vault.documents.repository import DocumentRepository
from atlas_vault.errors import VaultError
from atlas_vault.journal.service import SYSTEM, Actor, append, verify_chain
from atlas_vault.scanning.clamd import ScannerUnavailable

log = structlog.get_logger(__name__)

_BATCH = 50


class IntegrityReport(BaseModel):
    checked: int
    corrupted: list[str]
    unverifiable: list[str]
    journal_ok: bool
    journal_first_broken_seq: int | None = None


async def run_integrity_check(
    db: Database, ctx: VaultContext, outbox: Outbox, actor: Actor = SYSTEM
) -> IntegrityReport:
    """Check each live document's digest, tags and hash; then the journal chain."""
    report = IntegrityReport(checked=0, corrupted=[], unverifiable=[], journal_ok=True)
    after = ""
    statuses = [DocumentStatus.AVAILABLE, DocumentStatus.QUARANTINED]
    while True:
        async with db.transaction() as session:
            batch = await DocumentRepository(session).with_status(
                statuses, after=after, limit=_BATCH
            )
        if not batch:
            break
        for document in batch:
            after = document.id
            try:
                result = await documents.verify_document(ctx, document)
            except VaultError as exc:  # the KMS is away: cannot tell, try next time
                report.unverifiable.append(document.id)
                log.warning("integrity_unverifiable", document_id=document.id, error=exc.message)
                continue
            report.checked += 1
            async with db.transaction() as session:
                fresh = await DocumentRepository(session).get(document.id, for_update=True)
                if fresh is None or fresh.status not in statuses:
                    continue
                if result.ok:
                    fresh.checked_at = datetime.now(UTC)
                    session.add(fresh)
                else:
                    report.corrupted.append(document.id)
                    await documents.mark_corrupted(session, outbox, fresh, result)
    async with db.transaction() as session:
        chain = await verify_chain(session)
        report.journal_ok = chain.ok
        report.journal_first_broken_seq = chain.first_broken_seq
        if not chain.ok:
            await outbox.add(
                session,
                CloudEvent.create(
                    ev.DOCUMENT_INTEGRITY_FAILED,
                    SOURCE,
                    ev.DocumentIntegrityFailed(
                        document_id="journal",
                        check="journal_chain",
                        detail=chain.reason or "journal chain broken",
                        journal_seq=chain.first_broken_seq,
                        detected_at=datetime.now(UTC),
                    ),
                ),
                key="journal",
            )
        await append(
            session,
            actor,
            "integrity_check",
            detail={
                "checked": report.checked,
                "corrupted": len(report.corrupted),
                "journal_ok": chain.ok,
            },
        )
    log.info(
        "integrity_check_done",
        checked=report.checked,
        corrupted=len(report.corrupted),
        journal_ok=report.journal_ok,
    )
    return report


async def scan_quarantined(db: Database, ctx: VaultContext, outbox: Outbox) -> int:
    """Offer quarantined documents to clamd again (deposited while it was away); returns scanned."""
    if ctx.scanner is None:
        return 0
    scanned, after = 0, ""
    while True:
        async with db.transaction() as session:
            batch = await DocumentRepository(session).with_status(
                [DocumentStatus.QUARANTINED], after=after, limit=_BATCH
            )
        if not batch:
            return scanned
        for document in batch:
            after = document.id
            try:
                data_key = await documents.unwrap_key(ctx, document)
                scan = await ctx.scanner.session()
                try:
                    async for plaintext in documents.decrypt_stream(ctx, document, data_key):
                        await scan.send(plaintext)
                    verdict = await scan.finish()
                finally:
                    scan.close()
            except ScannerUnavailable as exc:
                log.warning("scanner_unavailable", error=str(exc))
                return scanned
            except Exception as exc:  # a broken blob: the integrity check will report it
                log.warning("rescan_failed", document_id=document.id, error=repr(exc))
                continue
            async with db.transaction() as session:
                fresh = await DocumentRepository(session).get(document.id, for_update=True)
                if fresh is None or fresh.status != DocumentStatus.QUARANTINED:
                    continue
                if verdict.verdict == "infected":
                    await documents.reject_infected_stored(session, ctx, outbox, fresh, verdict)
                elif verdict.verdict == "clean":
                    await documents.record_scan(session, outbox, fresh, verdict)
                else:
                    log.warning("scan_error", document_id=document.id, detail=verdict.detail)
                    continue
            scanned += 1
