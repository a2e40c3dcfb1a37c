"""The document verbs over HTTP on PostgreSQL: deposit, read, destroy, metadata, check, list."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from vault_factories import DOCUMENTS_TOPIC, OTHER_AGENT, OWNER, start_vault, wait_for_event

from atlas_events.auth import Role
from atlas_vault.crypto.receipts import verify_receipt


async def test_deposit_read_and_receipt(tmp_path: Path, database_url: Callable[[], str]) -> None:
    data = b"%PDF-1.7 bail de location " * 1000
    async with start_vault(tmp_path, database_url()) as vault:
        response = await vault.deposit(data, title="Bail Toulon", labels='{"annee": "2027"}')
        assert response.status_code == 201, response.text
        body = response.json()
        document = body["document"]
        assert document["status"] == "quarantined"  # no clamd configured: not served yet
        assert document["size_bytes"] == len(data)
        assert document["labels"] == {"annee": "2027"}
        receipt = body["receipt"]["receipt"]
        assert {k: receipt[k] for k in ("document_id", "depositor", "size_bytes", "hash")} == {
            "document_id": document["id"],
            "depositor": OWNER,
            "size_bytes": len(data),
            "hash": hashlib.sha256(data).hexdigest(),
        }
        assert receipt["hash_algorithm"] == "SHA-256"
        assert receipt["deposited_at"].endswith("Z")
        key = (await vault.client.get("/v1/receipts/public-key", headers=vault.owner())).json()
        assert verify_receipt(body["receipt"], key["x"])
        stored = await vault.client.get(
            f"/v1/documents/{document['id']}/receipt", headers=vault.owner()
        )
        assert stored.json() == body["receipt"]

        quarantined = await vault.client.get(
            f"/v1/documents/{document['id']}/content", headers=vault.owner()
        )
        assert quarantined.status_code == 409
        assert quarantined.json()["error"] == "DocumentNotScanned"

        # What is on disk and in the database is ciphertext and metadata only.
        blob = (await vault.blob_path(document["id"])).read_bytes()
        assert b"bail de location" not in blob
        rows = []
        async with vault.db.engine.connect() as conn:
            for table in ("vault_documents", "vault_journal", "atlas_outbox"):
                rows += (await conn.execute(text(f"SELECT * FROM {table}"))).all()  # noqa: S608
        assert rows
        assert "bail de location" not in " ".join(str(row) for row in rows)


async def test_clean_document_is_read_back_streamed(
    tmp_path: Path, database_url: Callable[[], str], clamd
) -> None:
    data = bytes(range(256)) * 300  # 76 800 bytes: 19 chunks of 4 KiB
    async with start_vault(tmp_path, database_url(), clamd_address=clamd.address) as vault:
        doc_id = await vault.deposited(data, pieces=1000)
        content = await vault.client.get(f"/v1/documents/{doc_id}/content", headers=vault.owner())
        assert content.status_code == 200, content.text
        assert content.content == data
        assert content.headers["x-content-sha256"] == hashlib.sha256(data).hexdigest()
        assert content.headers["content-type"] == "application/pdf"
        meta = await vault.client.get(f"/v1/documents/{doc_id}", headers=vault.owner())
        assert meta.json()["status"] == "available"
        assert meta.json()["scan_verdict"] == "clean"


async def test_digest_mismatch_is_refused_and_nothing_stored(
    tmp_path: Path, database_url: Callable[[], str]
) -> None:
    async with start_vault(tmp_path, database_url()) as vault:
        response = await vault.deposit(b"abc" * 5000, sha256="0" * 64, pieces=1024)
        assert response.status_code == 422
        body = response.json()
        assert body["error"] == "DigestMismatch"
        assert body["detail"]["computed"] == hashlib.sha256(b"abc" * 5000).hexdigest()
        blobs = vault.settings.resolved_blob_dir()
        assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))
        async with vault.db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM vault_documents"))).scalar() == 0
            assert (await conn.execute(text("SELECT count(*) FROM vault_journal"))).scalar() == 0


async def test_deposit_bad_inputs_are_named(
    tmp_path: Path, database_url: Callable[[], str]
) -> None:
    async with start_vault(tmp_path, database_url()) as vault:
        bad_hash = await vault.deposit(b"x", sha256="not-a-hash")
        assert bad_hash.status_code == 422
        assert bad_hash.json()["detail"][0]["field"] == "query.sha256"
        bad_type = await vault.deposit(b"x", document_type="photo_de_vacances")
        assert bad_type.status_code == 422
        assert bad_type.json()["detail"][0]["field"] == "query.document_type"
        bad_labels = await vault.deposit(b"x", labels="[1, 2]")
        assert bad_labels.status_code == 400
        assert "labels" in bad_labels.json()["detail"]
        anonymous = await vault.client.post("/v1/documents", content=b"x")
        assert anonymous.status_code == 401
        staff = await vault.client.post(
            "/v1/documents",
            params={"document_type": "bail", "sha256": hashlib.sha256(b"x").hexdigest()},
            content=b"x",
            headers=vault.staff(),
        )
        assert staff.status_code == 403
        assert staff.json()["error"] == "AccessDenied"
        unknown = await vault.client.get("/v1/documents/nope", headers=vault.owner())
        assert unknown.status_code == 404
        assert unknown.json()["error"] == "DocumentNotFound"


async def test_quota_counts_plaintext_bytes(
    tmp_path: Path, database_url: Callable[[], str]
) -> None:
    async with start_vault(tmp_path, database_url(), quota_bytes=10_000) as vault:
        await vault.deposited(b"a" * 6000)
        announced = await vault.deposit(b"b" * 5000)  # Content-Length says it at once
        assert announced.status_code == 413
        assert announced.json()["error"] == "QuotaExceeded"
        assert announced.json()["detail"]["remaining_bytes"] == 4000
        streamed = await vault.deposit(b"c" * 5000, pieces=1000)  # no length: found mid-stream
        assert streamed.status_code == 413
        assert (await vault.deposit(b"d" * 4000)).status_code == 201  # exactly the quota
        counts = await vault.client.get("/v1/documents/count", headers=vault.owner())
        assert counts.json()["total"] == 2
        # Another owner has their own quota.
        assert (await vault.deposit(b"e" * 9000, owner=OTHER_AGENT)).status_code == 201
        # Destroying frees the quota.
        listing = await vault.client.get("/v1/documents", headers=vault.owner())
        first = listing.json()["documents"][0]["id"]
        assert (
            await vault.client.delete(f"/v1/documents/{first}", headers=vault.owner())
        ).status_code == 204
        assert (await vault.deposit(b"f" * 4000)).status_code == 201


async def test_access_rules(tmp_path: Path, database_url: Callable[[], str], clamd) -> None:
    async with start_vault(tmp_path, database_url(), clamd_address=clamd.address) as vault:
        doc_id = await vault.deposited(b"piece d'identite" * 100, document_type="piece_identite")
        urls = (f"/v1/documents/{doc_id}", f"/v1/documents/{doc_id}/content")
        for url in urls:
            assert (await vault.client.get(url, headers=vault.owner())).status_code == 200
            other = await vault.client.get(url, headers=vault.owner(OTHER_AGENT))
            assert other.status_code == 404  # another agent does not learn it exists
            staff = await vault.client.get(url, headers=vault.staff())
            assert staff.status_code == 403
            assert "grant" in staff.json()["detail"]
            for role in (Role.OPS, Role.ADMIN):
                refused = await vault.client.get(url, headers=vault.headers("x", role))
                assert refused.status_code == 403, url
        ops_list = await vault.client.get("/v1/documents", headers=vault.ops())
        assert ops_list.status_code == 403
        ops_count = await vault.client.get("/v1/documents/count", headers=vault.ops())
        assert ops_count.status_code == 200
        assert ops_count.json() == {
            "scope": "vault",
            "total": 1,
            "by_status": {"available": 1},
            "owners": 1,
            "live_plaintext_bytes": 1600,
        }
        staff_count = await vault.client.get("/v1/documents/count", headers=vault.staff())
        assert staff_count.status_code == 403
        destroy_by_other = await vault.client.delete(
            f"/v1/documents/{doc_id}", headers=vault.owner(OTHER_AGENT)
        )
        assert destroy_by_other.status_code == 404
        journal_by_ops = await vault.client.get("/v1/journal", headers=vault.ops())
        assert journal_by_ops.status_code == 403
        export_by_staff = await vault.client.get("/v1/export", headers=vault.staff())
        assert export_by_staff.status_code == 403
        admin_only = await vault.client.post("/v1/admin/keys/rotate", headers=vault.ops())
        assert admin_only.status_code == 403


async def test_destroy_destroys_the_data_key(
    tmp_path: Path, database_url: Callable[[], str], clamd
) -> None:
    async with start_vault(tmp_path, database_url(), clamd_address=clamd.address) as vault:
        doc_id = await vault.deposited(b"ordre de mutation" * 50, document_type="ordre_mutation")
        blob = await vault.blob_path(doc_id)
        assert blob.exists()
        gone = await vault.client.delete(f"/v1/documents/{doc_id}", headers=vault.owner())
        assert gone.status_code == 204
        async with vault.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT wrapped_key, kek_version, status FROM vault_documents")
                )
            ).one()
        assert tuple(row) == (None, None, "destroyed")
        assert not blob.exists()
        read = await vault.client.get(f"/v1/documents/{doc_id}/content", headers=vault.owner())
        assert read.status_code == 410
        assert read.json()["error"] == "DocumentDestroyed"
        again = await vault.client.delete(f"/v1/documents/{doc_id}", headers=vault.owner())
        assert again.status_code == 410
        listing = await vault.client.get("/v1/documents", headers=vault.owner())
        assert listing.json()["documents"] == []
        with_gone = await vault.client.get(
            "/v1/documents", params={"include_gone": "true"}, headers=vault.owner()
        )
        assert [d["status"] for d in with_gone.json()["documents"]] == ["destroyed"]


@pytest.mark.parametrize("damage", ["flip", "truncate", "swap", "delete"])
async def test_tampered_blob_is_never_served_and_raises_the_alarm(
    tmp_path: Path,
    database_url: Callable[[], str],
    vault_topics: str,
    clamd,
    damage: str,
) -> None:
    data = bytes(range(256)) * 64  # 4 chunks of 4 KiB
    async with start_vault(
        tmp_path,
        database_url(),
        kafka_bootstrap=vault_topics,
        workers=True,
        clamd_address=clamd.address,
    ) as vault:
        doc_id = await vault.deposited(data)
        blob = await vault.blob_path(doc_id)
        raw = bytearray(blob.read_bytes())
        frame = 4096 + 28
        if damage == "flip":
            raw[frame + 100] ^= 0x80
        elif damage == "truncate":
            del raw[-frame:]
        elif damage == "swap":
            raw[:frame], raw[frame : 2 * frame] = raw[frame : 2 * frame], raw[:frame]
        if damage == "delete":
            blob.unlink()
        else:
            blob.write_bytes(bytes(raw))

        check = await vault.client.post(f"/v1/documents/{doc_id}/check", headers=vault.owner())
        assert check.status_code == 200
        assert check.json()["ok"] is False
        read = await vault.client.get(f"/v1/documents/{doc_id}/content", headers=vault.owner())
        assert read.status_code == 409
        assert read.json()["error"] == "DocumentCorrupted"
        meta = await vault.client.get(f"/v1/documents/{doc_id}", headers=vault.owner())
        assert meta.json()["status"] == "corrupted"
        _, event = await wait_for_event(
            vault_topics,
            DOCUMENTS_TOPIC,
            lambda t, d: t.endswith("integrity_failed.v1") and d.get("document_id") == doc_id,
        )
        assert event["check"] == "ciphertext_digest"


async def test_unknown_or_malformed_ids_and_parameters_are_named(
    tmp_path: Path, database_url: Callable[[], str]
) -> None:
    async with start_vault(tmp_path, database_url()) as vault:
        owner = vault.owner()
        for method, url in (
            ("GET", "/v1/documents/0000/content"),
            ("GET", "/v1/documents/0000/receipt"),
            ("POST", "/v1/documents/0000/check"),
            ("DELETE", "/v1/documents/0000"),
            ("GET", "/v1/documents/0000/grants"),
        ):
            response = await vault.client.request(method, url, headers=owner)
            assert (response.status_code, response.json()["error"]) == (404, "DocumentNotFound")
        malformed = await vault.client.get("/v1/documents/bad%20id", headers=owner)
        assert malformed.status_code == 422
        assert malformed.json()["detail"][0]["field"] == "path.document_id"
        page = await vault.client.get("/v1/journal", params={"after": -1}, headers=owner)
        assert page.status_code == 422
        assert page.json()["detail"][0]["field"] == "query.after"
        too_many = await vault.client.get("/v1/journal", params={"limit": 5000}, headers=owner)
        assert too_many.status_code == 422


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ("reseal", "chunk 1: authentication tag mismatch"),
        ("sha256", "plaintext digest differs from the deposit"),
        ("size_bytes", "16384 plaintext bytes, 10 recorded"),
        ("chunk_count", "4 chunks found, 2 expected"),
        ("chunk_size", "chunk 0: authentication tag mismatch"),
    ],
)
async def test_what_only_decryption_finds_is_refused_before_a_byte_is_sent(
    tmp_path: Path, database_url: Callable[[], str], clamd, edit: str, named: str
) -> None:
    """Regression: the digest matched, so the download answered 200 and then cut the connection
    (no error to read, document left available); it must answer 409 naming the check."""
    data = bytes(range(256)) * 64  # 4 chunks of 4 KiB
    async with start_vault(tmp_path, database_url(), clamd_address=clamd.address) as vault:
        doc_id = await vault.deposited(data)
        async with vault.db.engine.begin() as conn:
            if edit == "reseal":  # bytes altered and the row's digest rewritten to match
                blob = await vault.blob_path(doc_id)
                raw = bytearray(blob.read_bytes())
                raw[4096 + 28 + 100] ^= 0x80
                blob.write_bytes(bytes(raw))
                statement = "UPDATE vault_documents SET ciphertext_sha256 = :value"
                value: object = hashlib.sha256(raw).hexdigest()
            else:
                statement = f"UPDATE vault_documents SET {edit} = :value"  # noqa: S608
                value = {"sha256": "0" * 64, "size_bytes": 10, "chunk_count": 2}.get(edit, 1024)
            await conn.execute(text(statement), {"value": value})
        read = await vault.client.get(f"/v1/documents/{doc_id}/content", headers=vault.owner())
        assert read.status_code == 409, read.content[:200]
        assert read.json()["error"] == "DocumentCorrupted"
        assert named in read.json()["detail"]
        meta = await vault.client.get(f"/v1/documents/{doc_id}", headers=vault.owner())
        assert meta.json()["status"] == "corrupted"
        async with vault.db.engine.connect() as conn:
            alarm = (
                await conn.execute(
                    text("SELECT detail FROM vault_journal WHERE action = 'integrity_failed'")
                )
            ).scalar_one()
        assert named in alarm["detail"]


async def test_the_openapi_documents_the_deposit_as_the_endpoint_reads_it(
    tmp_path: Path, database_url: Callable[[], str]
) -> None:
    # Found by the API fuzzing: `content-length: null` (a documented header parameter) was
    # refused by the HTTP server itself as text/plain; `labels` was a free string answered 400.
    async with start_vault(tmp_path, database_url()) as vault:
        document = (await vault.client.get("/openapi.json")).json()
        deposit = document["paths"]["/v1/documents"]["post"]
        names = {p["name"] for p in deposit["parameters"]}
        assert "content-length" not in names
        [labels] = [p for p in deposit["parameters"] if p["name"] == "labels"]
        assert labels["content"]["application/json"]["schema"]["type"] == "object"
        assert "400" in deposit["responses"]
        refused = await vault.deposit(b"data", labels='["not", "an", "object"]')
        assert refused.status_code == 400
        assert refused.json()["error"] == "BadRequest"
