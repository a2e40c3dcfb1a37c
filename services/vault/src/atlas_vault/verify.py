"""`python -m atlas_vault.verify export.zip`: check a vault export offline, with no service at hand.

Checks the manifest's signature, every original's size and SHA-256, every receipt's signature
and its agreement with the manifest, and every journal entry's hash (and that each document's
deposit entry is the one its receipt names). Exit status 0 when everything holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atlas_vault.crypto.receipts import verify_bytes, verify_receipt
from atlas_vault.journal.chain import entry_hash

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m atlas_vault.verify", description=__doc__)
    parser.add_argument("archive", type=Path, help="the ZIP file from GET /v1/export")
    parser.add_argument(
        "--public-key",
        help=(
            "the vault's Ed25519 public key (JWK `x`, base64url); write --public-key=KEY, as a "
            "key may start with '-'"
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
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
