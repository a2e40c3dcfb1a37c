"""`python -m atlas_vault.verify`: check the vault offline, with no service at hand.

`python -m atlas_vault.verify export.zip [--public-key=KEY]` checks an owner's export: the
manifest's signature, every original's size and SHA-256, every receipt's signature and its
agreement with the manifest, and every journal entry's hash (and that each document's deposit
entry is the one its receipt names).

`python -m atlas_vault.verify --store [--database-url=URL] [--data-dir=DIR] [--public-key=KEY]`
checks the vault's own store, read-only, whether the service runs or not: every live document's
blob against its row (ciphertext digest, each chunk's authentication tag, plaintext length and
SHA-256, with the data key unwrapped as the service would), its row against its signed receipt
and the receipt's journal entry, and the whole journal hash chain. Settings are the service's
own (ATLAS_VAULT_* in the environment); the flags override them.

Each broken record is one `FAIL:` line naming it (`document <id>: ...`, `journal seq <n>: ...`).
Exit status 0 when everything holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.db import Database, is_sqlite
from atlas_vault.config import VaultSettings
from atlas_vault.context import VaultContext, transit_kms
from atlas_vault.crypto.kms import KeyEncryptionService, LocalKeyring
from atlas_vault.crypto.receipts import (
    ReceiptSigner,
    public_key_b64,
    verify_bytes,
    verify_receipt,
)
from atlas_vault.documents import service as documents
from atlas_vault.documents.models import LIVE_STATUSES, Document, DocumentStatus
from atlas_vault.documents.repository import DocumentRepository
from atlas_vault.documents.schemas import CheckReport
from atlas_vault.errors import VaultError
from atlas_vault.journal.chain import ChainWalk, entry_hash
from atlas_vault.journal.repository import JournalRepository
from atlas_vault.journal.service import hashed_fields
from atlas_vault.storage.blobs import FilesystemBlobStore

EXPORT_FORMAT = "atlas-vault-export/1"


@dataclass
class Verification:
    """What the verifier found: problems (fatal) and notes (informative)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    documents: int = 0
    journal_entries: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_export(path: Path, public_key: str | None = None) -> Verification:
    """Verify an export archive; `public_key` is the vault's raw Ed25519 key, base64url."""
    result = Verification()
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        result.problems.append(f"not a readable ZIP archive: {exc}")
        return result
    with archive:
        names = set(archive.namelist())
        if "manifest.json" not in names or "manifest.sig" not in names:
            result.problems.append("manifest.json or manifest.sig is missing")
            return result
        manifest_bytes = archive.read("manifest.json")
        manifest: dict[str, Any] = json.loads(manifest_bytes)
        if manifest.get("format") != EXPORT_FORMAT:
            result.problems.append(f"unknown export format {manifest.get('format')!r}")
            return result
        key = public_key
        if key is None:
            key = str(manifest.get("public_key", {}).get("x", ""))
            result.notes.append(
                "verified with the key embedded in the export; pass --public-key=KEY with the key "
                "published by the vault (GET /v1/receipts/public-key) to rule out a re-signed copy"
            )
        if not verify_bytes(manifest_bytes, archive.read("manifest.sig").decode().strip(), key):
            result.problems.append("the manifest's signature does not verify")
        _check_documents(archive, names, manifest, key, result)
        _check_journal(archive, names, manifest, result)
    return result


def _check_documents(
    archive: zipfile.ZipFile,
    names: set[str],
    manifest: dict[str, Any],
    key: str,
    result: Verification,
) -> None:
    for item in manifest.get("documents", []):
        doc_id = item["document_id"]
        result.documents += 1
        if item["path"] not in names:
            result.problems.append(f"{doc_id}: original {item['path']} is missing")
            continue
        data = archive.read(item["path"])
        if len(data) != item["size_bytes"]:
            result.problems.append(f"{doc_id}: size {len(data)} ≠ manifest {item['size_bytes']}")
        if hashlib.sha256(data).hexdigest() != item["sha256"]:
            result.problems.append(f"{doc_id}: SHA-256 of the original differs from the manifest")
        if item.get("receipt") not in names:
            result.problems.append(f"{doc_id}: receipt is missing")
            continue
        signed = json.loads(archive.read(item["receipt"]))
        if not verify_receipt(signed, key):
            result.problems.append(f"{doc_id}: the receipt's signature does not verify")
        receipt = signed.get("receipt", {})
        for name, expected in (
            ("document_id", doc_id),
            ("hash", item["sha256"]),
            ("size_bytes", item["size_bytes"]),
        ):
            if receipt.get(name) != expected:
                result.problems.append(f"{doc_id}: receipt {name} differs from the manifest")


def _check_journal(
    archive: zipfile.ZipFile, names: set[str], manifest: dict[str, Any], result: Verification
) -> None:
    journal = manifest.get("journal", {})
    path = journal.get("path", "journal.jsonl")
    if path not in names:
        result.problems.append("the journal extract is missing")
        return
    raw = archive.read(path)
    if hashlib.sha256(raw).hexdigest() != journal.get("sha256"):
        result.problems.append("the journal extract's SHA-256 differs from the manifest")
    hashes: dict[int, str] = {}
    for number, line in enumerate(raw.decode().splitlines(), start=1):
        if not line.strip():
            continue
        entry = json.loads(line)
        result.journal_entries += 1
        if entry_hash(entry) != entry.get("hash"):
            result.problems.append(f"journal line {number} (seq {entry.get('seq')}): hash differs")
        hashes[int(entry["seq"])] = str(entry.get("hash"))
    for item in manifest.get("documents", []):
        if item.get("receipt") not in names:
            continue
        receipt = json.loads(archive.read(item["receipt"])).get("receipt", {})
        seq = receipt.get("journal_seq")
        if hashes.get(int(seq) if seq is not None else -1) != receipt.get("journal_hash"):
            result.problems.append(
                f"{item['document_id']}: the deposit entry its receipt names is not in the journal"
            )


# ---- the store itself ---------------------------------------------------------------------

_BATCH = 100


def verify_store(settings: VaultSettings, public_key: str | None = None) -> Verification:
    """Verify the vault's database and blobs in place, in one read-only transaction."""
    result = Verification()
    url = settings.database_url
    if is_sqlite(url) and not Path(make_url(url).database or "").is_file():
        result.problems.append(f"no vault database at {url}")
        return result
    ctx = _offline_context(settings, result)
    key = _receipt_key(settings, public_key, result)
    asyncio.run(_verify_store(url, ctx, key, result))
    return result


async def _verify_store(
    url: str, ctx: VaultContext | None, key: str | None, result: Verification
) -> None:
    db = Database(url)
    try:
        async with db.sessionmaker() as session:
            if not db.is_sqlite:
                await session.execute(text("SET TRANSACTION READ ONLY"))
            deposits = await _check_store_journal(session, result)
            if ctx is not None:
                await _check_store_documents(session, ctx, key, deposits, result)
            await session.rollback()
    finally:
        await db.dispose()


def _offline_context(settings: VaultSettings, result: Verification) -> VaultContext | None:
    """The blob store and KMS as the service has them; never creates a key that is missing."""
    kms: KeyEncryptionService
    if settings.kms == "transit":
        if settings.transit_token is None:
            result.problems.append("kms=transit needs ATLAS_VAULT_TRANSIT_TOKEN to unwrap keys")
            return None
        kms = transit_kms(settings)
    else:
        keyring = settings.resolved_keyring_path()
        if not keyring.is_file():
            result.problems.append(f"no keyring at {keyring}: documents cannot be verified")
            return None
        kms = LocalKeyring(keyring)
    # verify_document uses the blobs and the KMS only; this signer never signs anything.
    signer = ReceiptSigner.generate()
    blobs = FilesystemBlobStore(settings.resolved_blob_dir())
    return VaultContext(settings=settings, kms=kms, blobs=blobs, scanner=None, signer=signer)


def _receipt_key(
    settings: VaultSettings, public_key: str | None, result: Verification
) -> str | None:
    if public_key is not None:
        return public_key
    path = settings.resolved_receipt_key_path()
    if path.is_file():
        return public_key_b64(ReceiptSigner.load(path).public_key)
    result.notes.append(f"no receipt key at {path} and no --public-key: signatures not checked")
    return None


async def _check_store_journal(session: AsyncSession, result: Verification) -> dict[int, str]:
    """Walk the whole chain; return the stored hash of every deposit entry by seq."""
    repo = JournalRepository(session)
    walk = ChainWalk()
    deposits: dict[int, str] = {}
    async for entry in repo.stream_all():
        walk.add(hashed_fields(entry), entry.hash)
        if entry.action == "deposit":
            deposits[entry.seq] = entry.hash
    head = await repo.head()
    walk.finish(head.seq if head else None, head.hash if head else None)
    result.journal_entries = walk.checked
    result.problems += [f"journal seq {b.seq}: {b.reason}" for b in walk.breaks]
    return deposits


async def _check_store_documents(
    session: AsyncSession,
    ctx: VaultContext,
    key: str | None,
    deposits: dict[int, str],
    result: Verification,
) -> None:
    repo, after = DocumentRepository(session), ""
    while batch := await repo.with_status(LIVE_STATUSES, after=after, limit=_BATCH):
        for document in batch:
            after = document.id
            result.documents += 1
            await _check_store_document(ctx, key, deposits, document, result)


async def _check_store_document(
    ctx: VaultContext,
    key: str | None,
    deposits: dict[int, str],
    document: Document,
    result: Verification,
) -> None:
    label = f"document {document.id}"
    try:
        report = await documents.verify_document(ctx, document)
    except VaultError as exc:  # the KMS refused or is away: the record cannot be vouched for
        result.problems.append(f"{label}: the data key could not be unwrapped: {exc.message}")
    else:
        if not report.ok:
            result.problems.append(f"{label}: {_failed_checks(report)} failed: {report.detail}")
        elif document.status == DocumentStatus.CORRUPTED:
            result.notes.append(f"{label}: marked corrupted, though it verifies now")
    signed = document.receipt
    if key is not None and not verify_receipt(signed, key):
        result.problems.append(f"{label}: the receipt's signature does not verify")
    receipt = signed.get("receipt", {})
    for name, column, value in (
        ("document_id", "id", document.id),
        ("version", "version", document.version),
        ("depositor", "owner_agent_id", document.owner_agent_id),
        ("size_bytes", "size_bytes", document.size_bytes),
        ("hash", "sha256", document.sha256),
    ):
        if receipt.get(name) != value:
            result.problems.append(f"{label}: {column} differs from the signed receipt's {name}")
    seq = receipt.get("journal_seq")
    if not isinstance(seq, int) or deposits.get(seq) != receipt.get("journal_hash"):
        result.problems.append(f"{label}: its deposit entry (journal seq {seq}) differs")


def _failed_checks(report: CheckReport) -> str:
    checks = ("ciphertext_digest", "authentication_tags", "plaintext_digest")
    return "+".join(name for name in checks if not getattr(report, name))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m atlas_vault.verify",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("archive", type=Path, nargs="?", help="the ZIP file from GET /v1/export")
    parser.add_argument(
        "--store", action="store_true", help="check the vault's database and blobs instead"
    )
    parser.add_argument(
        "--database-url", help="with --store: the vault's database (ATLAS_VAULT_DATABASE_URL)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="with --store: the vault's data directory (ATLAS_VAULT_DATA_DIR)",
    )
    parser.add_argument(
        "--public-key",
        help=(
            "the vault's Ed25519 public key (JWK `x`, base64url); write --public-key=KEY, as a "
            "key may start with '-'"
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.store == (args.archive is not None):
        parser.error("give an export archive, or --store")
    if not args.store and (args.database_url or args.data_dir):
        parser.error("--database-url and --data-dir go with --store")
    if args.store:
        overrides = {
            name: value
            for name, value in (("database_url", args.database_url), ("data_dir", args.data_dir))
            if value is not None
        }
        result = verify_store(VaultSettings(**overrides), args.public_key)
    else:
        result = verify_export(args.archive, args.public_key)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": result.ok,
                    "documents": result.documents,
                    "journal_entries": result.journal_entries,
                    "problems": result.problems,
                    "notes": result.notes,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        for note in result.notes:
            print(f"note: {note}")
        for problem in result.problems:
            print(f"FAIL: {problem}")
        verdict = "OK" if result.ok else "FAILED"
        print(
            f"{verdict}: {result.documents} documents, {result.journal_entries} journal entries, "
            f"{len(result.problems)} problems"
        )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
