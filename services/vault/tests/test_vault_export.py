"""Export in one request, checked by the offline verifier; and the scheduled integrity check."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from vault_factories import DOCUMENTS_TOPIC, STAFF, start_vault, wait_for_event

from atlas_vault.verify import verify_export, verify_store


def _verify_cli(archive: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atlas_vault.verify", str(archive), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _rewrite(source: Path, target: Path, edit: Callable[[str, bytes], bytes]) -> None:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            new.writestr(item.filename, edit(item.filename, old.read(item.filename)))


async def test_export_holds_originals_manifest_journal_receipts_and_verifies_offline(
    tmp_path: Path, database_url: Callable[[], str], clamd
) -> None:
    documents = {
        "bail.pdf": b"%PDF bail " * 300,
        "solde.pdf": b"%PDF bulletin de solde " * 200,
    }
    async with start_vault(tmp_path, database_url(), clamd_address=clamd.address) as vault:
        ids = {name: await vault.deposited(data, filename=name) for name, data in documents.items()}
        gone = await vault.deposited(b"to be destroyed", filename="old.pdf")
        await vault.client.delete(f"/v1/documents/{gone}", headers=vault.owner())
        request_id = str(uuid.uuid4())
        expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        await vault.client.post(
            f"/v1/documents/{ids['bail.pdf']}/grants",
            json={"grantee": STAFF, "request_id": request_id, "expires_at": expires},
            headers=vault.owner(),
        )
        read = await vault.client.get(
            f"/v1/documents/{ids['bail.pdf']}/content", headers=vault.staff()
        )
        assert read.status_code == 200
        response = await vault.client.get("/v1/export", headers=vault.owner())
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/zip"
        key = (await vault.client.get("/v1/receipts/public-key", headers=vault.owner())).json()

    archive = tmp_path / "export.zip"
    archive.write_bytes(response.content)
    with zipfile.ZipFile(io.BytesIO(response.content)) as zipped:
        names = set(zipped.namelist())
        manifest = json.loads(zipped.read("manifest.json"))
        for name, doc_id in ids.items():
            assert zipped.read(f"documents/{doc_id}/{name}") == documents[name]
            assert f"receipts/{doc_id}.json" in names
        journal = [json.loads(line) for line in zipped.read("journal.jsonl").splitlines()]
    assert {"manifest.json", "manifest.sig", "journal.jsonl"} <= names
    assert {d["document_id"] for d in manifest["documents"]} == set(ids.values())
    assert manifest["excluded"] == [{"document_id": gone, "status": "destroyed"}]
    consultations = [e for e in journal if e["action"] == "read" and e["actor"] == STAFF]
    assert [e["request_id"] for e in consultations] == [request_id]

    # "=" form: a base64url key may start with "-", which argparse would take for an option.
    ok = _verify_cli(archive, f"--public-key={key['x']}")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: 2 documents" in ok.stdout

    # Any change to an original, the journal or a receipt is caught offline.
    def flip_original(name: str, data: bytes) -> bytes:
        return data[:-1] + bytes([data[-1] ^ 1]) if name.endswith("bail.pdf") else data

    def edit_journal(name: str, data: bytes) -> bytes:
        return data.replace(STAFF.encode(), b"someone-else") if name == "journal.jsonl" else data

    def forge_receipt(name: str, data: bytes) -> bytes:
        if not name.startswith("receipts/"):
            return data
        signed = json.loads(data)
        signed["receipt"]["size_bytes"] += 1
        return json.dumps(signed).encode()

    for edit, problem in (
        (flip_original, "SHA-256 of the original"),
        (edit_journal, "journal"),
        (forge_receipt, "receipt"),
    ):
        tampered = tmp_path / f"{edit.__name__}.zip"
        _rewrite(archive, tampered, edit)
        refused = _verify_cli(tampered, f"--public-key={key['x']}")
        assert refused.returncode == 1, edit.__name__
        assert problem in refused.stdout, refused.stdout

    other_key = "A" * 43  # the export was not signed by this key
    assert not verify_export(archive, other_key).ok
    assert verify_export(archive).ok  # with the embedded key, and a note saying so
    assert verify_export(archive).notes


async def test_scheduled_integrity_check_reports_a_corrupted_blob(
    tmp_path: Path, database_url: Callable[[], str], vault_topics: str, clamd
) -> None:
    async with start_vault(
        tmp_path,
        database_url(),
        kafka_bootstrap=vault_topics,
        workers=True,
        clamd_address=clamd.address,
        integrity_interval_seconds=0.3,
    ) as vault:
        healthy = await vault.deposited(b"sain" * 2000)
        doc_id = await vault.deposited(b"abime" * 2000)
        blob = await vault.blob_path(doc_id)
        raw = bytearray(blob.read_bytes())
        raw[5000] ^= 0xFF
        blob.write_bytes(bytes(raw))
        _, event = await wait_for_event(
            vault_topics,
            DOCUMENTS_TOPIC,
            lambda t, d: t.endswith("integrity_failed.v1") and d.get("document_id") == doc_id,
            timeout=30,
        )
        assert event["check"] == "ciphertext_digest"
        assert "chunk 1" in event["detail"]
        meta = await vault.client.get(f"/v1/documents/{doc_id}", headers=vault.owner())
        assert meta.json()["status"] == "corrupted"
        fine = await vault.client.get(f"/v1/documents/{healthy}/content", headers=vault.owner())
        assert fine.status_code == 200
        report = await vault.client.post("/v1/admin/integrity-check", headers=vault.ops())
        assert report.status_code == 200
        assert report.json()["journal_ok"] is True
        assert report.json()["corrupted"] == []  # already taken out of service
        assert (
            await vault.client.post("/v1/admin/integrity-check", headers=vault.owner())
        ).status_code == 403


async def test_the_store_verifier_names_each_broken_record(
    tmp_path: Path, database_url: Callable[[], str], clamd
) -> None:
    async with start_vault(tmp_path, database_url(), clamd_address=clamd.address) as vault:
        healthy = await vault.deposited(b"sain" * 3000)
        damaged = await vault.deposited(b"abime" * 3000)
        intact = await asyncio.to_thread(verify_store, vault.settings)
        assert intact.ok, intact.problems
        assert (intact.documents, intact.journal_entries) == (2, 4)

        blob = await vault.blob_path(damaged)
        raw = bytearray(blob.read_bytes())
        raw[5000] ^= 0xFF
        blob.write_bytes(bytes(raw))
        async with vault.db.engine.begin() as conn:
            await conn.execute(text("UPDATE vault_journal SET actor = 'x' WHERE seq = 2"))
            await conn.execute(
                text("UPDATE vault_documents SET owner_agent_id = '2020654321' WHERE id = :id"),
                {"id": healthy},
            )
        broken = await asyncio.to_thread(verify_store, vault.settings)
    assert sorted(broken.problems) == sorted(
        [
            "journal seq 2: entry content does not match its hash",
            f"document {healthy}: owner_agent_id differs from the signed receipt's depositor",
            f"document {damaged}: ciphertext_digest+authentication_tags+plaintext_digest failed: "
            "chunk 1: authentication tag mismatch",
        ]
    )
    missing = await asyncio.to_thread(
        verify_store, vault.settings.model_copy(update={"data_dir": tmp_path / "elsewhere"})
    )
    keyring = tmp_path / "elsewhere" / "keys" / "keyring.json"
    assert f"no keyring at {keyring}: documents cannot be verified" in missing.problems
    assert missing.documents == 0
