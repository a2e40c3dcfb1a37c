"""Build an owner's export: originals, a signed manifest with hashes, journal extract, receipts."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.auth import Principal
from atlas_vault.context import SOURCE, VaultContext
from atlas_vault.crypto.envelope import ChunkAuthenticationError
from atlas_vault.crypto.receipts import canonical_json
from atlas_vault.documents import service as documents
from atlas_vault.documents.models import DocumentStatus
from atlas_vault.documents.repository import DocumentRepository
from atlas_vault.errors import VaultError
from atlas_vault.journal.repository import JournalRepository
from atlas_vault.journal.service import Actor, append, hashed_fields

EXPORT_FORMAT = "atlas-vault-export/1"
MANIFEST = "manifest.json"
MANIFEST_SIGNATURE = "manifest.sig"
JOURNAL = "journal.jsonl"
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def _safe_name(name: str | None, fallback: str) -> str:
    cleaned = _UNSAFE.sub("_", name or "").strip(" .")[:120]
    return cleaned or fallback


async def build_export(
    session: AsyncSession, ctx: VaultContext, principal: Principal
) -> tuple[bytes, str]:
    """The ZIP archive (in memory: plaintext never touches disk) and its file name."""
    owner = principal.sub
    owned = await DocumentRepository(session).for_owner(owner, include_gone=True)
    exported_at = datetime.now(UTC)
    buffer = io.BytesIO()
    entries: list[dict[str, Any]] = []
    excluded: list[dict[str, str]] = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for document in owned:
            if document.status != DocumentStatus.AVAILABLE:
                excluded.append({"document_id": document.id, "status": str(document.status)})
                continue
            try:
                data_key = await documents.unwrap_key(ctx, document)
                plaintext = bytearray()
                async for piece in documents.decrypt_stream(ctx, document, data_key):
                    plaintext += piece
            except (ChunkAuthenticationError, VaultError):
                excluded.append({"document_id": document.id, "status": "unverifiable"})
                continue
            path = f"documents/{document.id}/{_safe_name(document.filename, 'document')}"
            archive.writestr(path, bytes(plaintext), compress_type=zipfile.ZIP_STORED)
            receipt_path = f"receipts/{document.id}.json"
            archive.writestr(receipt_path, json.dumps(document.receipt, indent=2))
            entries.append(
                {
                    "document_id": document.id,
                    "path": path,
                    "size_bytes": document.size_bytes,
                    "sha256": hashlib.sha256(plaintext).hexdigest(),
                    "document_type": str(document.document_type),
                    "content_type": document.content_type,
                    "title": document.title,
                    "deposited_at": document.deposited_at.isoformat(),
                    "receipt": receipt_path,
                }
            )
        await append(
            session,
            Actor.of(principal),
            "export",
            owner_agent_id=owner,
            detail={"documents": [e["document_id"] for e in entries]},
        )
        journal_lines = []
        after = 0
        repo = JournalRepository(session)
        while True:
            page = await repo.for_owner(owner, document_id=None, after=after, limit=1000)
            if not page:
                break
            for entry in page:
                journal_lines.append(
                    json.dumps({**hashed_fields(entry), "hash": entry.hash}, sort_keys=True)
                )
            after = page[-1].seq
        journal_bytes = ("\n".join(journal_lines) + "\n").encode()
        archive.writestr(JOURNAL, journal_bytes)
        manifest = {
            "format": EXPORT_FORMAT,
            "issuer": SOURCE,
            "owner": owner,
            "exported_at": exported_at.isoformat(),
            "hash_algorithm": "SHA-256",
            "public_key": ctx.signer.public_jwk(),
            "documents": entries,
            "excluded": excluded,
            "journal": {
                "path": JOURNAL,
                "sha256": hashlib.sha256(journal_bytes).hexdigest(),
                "entries": len(journal_lines),
            },
        }
        manifest_bytes = canonical_json(manifest)
        archive.writestr(MANIFEST, manifest_bytes)
        archive.writestr(MANIFEST_SIGNATURE, ctx.signer.sign_bytes(manifest_bytes))
    name = f"coffre-{owner}-{exported_at.strftime('%Y%m%dT%H%M%SZ')}.zip"
    return buffer.getvalue(), name
