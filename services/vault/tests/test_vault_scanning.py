"""Malware scanning over clamd INSTREAM: EICAR whole and in chunks, quarantine until scanned."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from vault_factories import DOCUMENTS_TOPIC, start_vault, wait_for_event

from atlas_events.testing import wait_until
from atlas_vault.devinfra import EICAR, ClamdServer


@pytest.mark.parametrize(
    ("payload", "pieces", "chunk_size"),
    [
        (EICAR, None, 4096),  # whole, in one request body and one chunk
        (b"A" * 10 + EICAR + b"Z" * 50, 5, 16),  # streamed in 5-byte pieces over 16-byte chunks
    ],
    ids=["whole", "in-chunks"],
)
async def test_eicar_is_rejected_and_journaled(
    tmp_path: Path,
    database_url: Callable[[], str],
    clamd,
    payload: bytes,
    pieces: int | None,
    chunk_size: int,
) -> None:
    async with start_vault(
        tmp_path, database_url(), clamd_address=clamd.address, chunk_size=chunk_size
    ) as vault:
        response = await vault.deposit(payload, pieces=pieces, filename="eicar.com")
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["error"] == "MalwareDetected"
        assert body["detail"]["signature"].startswith("Atlas.Test.EICAR")
        doc_id = body["detail"]["document_id"]
        blobs = vault.settings.resolved_blob_dir()
        assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))
        async with vault.db.engine.connect() as conn:
            row = (
                await conn.execute(text("SELECT status, wrapped_key FROM vault_documents"))
            ).one()
        assert tuple(row) == ("rejected", None)
        journal = (await vault.client.get("/v1/journal", headers=vault.owner())).json()
        rejected = [e for e in journal["entries"] if e["action"] == "deposit_rejected"]
        assert len(rejected) == 1
        assert rejected[0]["document_id"] == doc_id
        assert rejected[0]["detail"]["reason"] == "malware"
        read = await vault.client.get(f"/v1/documents/{doc_id}/content", headers=vault.owner())
        assert read.status_code == 409
        counts = (await vault.client.get("/v1/documents/count", headers=vault.owner())).json()
        assert counts["by_status"] == {"rejected": 1}
        # A clean upload through the same scanner is accepted.
        assert (await vault.deposit(b"clean" * 100, pieces=pieces)).status_code == 201


async def test_quarantined_until_clamd_comes_back(
    tmp_path: Path, database_url: Callable[[], str], vault_topics: str
) -> None:
    late = ClamdServer()  # its socket path is known before it runs
    try:
        async with start_vault(
            tmp_path,
            database_url(),
            kafka_bootstrap=vault_topics,
            workers=True,
            clamd_address=late.address,
            scan_retry_seconds=0.3,
        ) as vault:
            clean = await vault.deposited(b"bail" * 1000)
            infected = await vault.deposited(b"x" * 5000 + EICAR)  # accepted: nobody could tell
            for doc_id in (clean, infected):
                meta = await vault.client.get(f"/v1/documents/{doc_id}", headers=vault.owner())
                assert meta.json()["status"] == "quarantined"
                read = await vault.client.get(
                    f"/v1/documents/{doc_id}/content", headers=vault.owner()
                )
                assert read.status_code == 409
            infected_blob = await vault.blob_path(infected)
            late.start()

            async def status_of(doc_id: str) -> str:
                meta = await vault.client.get(f"/v1/documents/{doc_id}", headers=vault.owner())
                return str(meta.json()["status"])

            async def settled() -> bool:
                return (await status_of(clean), await status_of(infected)) == (
                    "available",
                    "rejected",
                )

            await wait_until(settled, timeout=30, interval=0.2)
            read = await vault.client.get(f"/v1/documents/{clean}/content", headers=vault.owner())
            assert read.content == b"bail" * 1000
            assert not infected_blob.exists()
            _, destroyed = await wait_for_event(
                vault_topics,
                DOCUMENTS_TOPIC,
                lambda t, d: (
                    t.endswith("document.destroyed.v1") and d.get("document_id") == infected
                ),
            )
            assert destroyed["reason"] == "infected"
            _, scanned = await wait_for_event(
                vault_topics,
                DOCUMENTS_TOPIC,
                lambda t, d: t.endswith("document.scanned.v1") and d.get("document_id") == clean,
            )
            assert scanned["verdict"] == "clean"
    finally:
        late.stop()
    assert uuid.UUID(clean)
