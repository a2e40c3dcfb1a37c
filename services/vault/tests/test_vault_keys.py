"""KEK rotation, rewrap (wrapped keys only) and retirement, on the local keyring and OpenBao."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from vault_factories import VaultApp, start_vault


async def _wrapped(vault: VaultApp) -> dict[str, tuple[str, int]]:
    async with vault.db.engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT id, wrapped_key, kek_version FROM vault_documents"))
        ).all()
    return {row[0]: (row[1], row[2]) for row in rows}


async def _fingerprints(vault: VaultApp, ids: list[str]) -> dict[str, tuple[str, int]]:
    out = {}
    for doc_id in ids:
        path = await vault.blob_path(doc_id)
        out[doc_id] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return out


async def _rotate_rewrap_retire(vault: VaultApp, kek_prefix: str) -> None:
    admin = vault.admin()
    contents = {b"bail" * 500: "", b"bulletin" * 700: ""}
    ids = [await vault.deposited(data) for data in contents]
    first = await _wrapped(vault)
    assert {version for _, version in first.values()} == {1}
    assert all(wrapped.startswith(kek_prefix) for wrapped, _ in first.values())

    rotated = await vault.client.post("/v1/admin/keys/rotate", headers=admin)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["current_version"] == 2
    assert rotated.json()["documents_on_older_versions"] == 2
    newer = await vault.deposited(b"ordre" * 300, document_type="ordre_mutation")
    assert (await _wrapped(vault))[newer][1] == 2
    ids.append(newer)
    for doc_id in ids:  # old and new versions both readable after rotation
        read = await vault.client.get(f"/v1/documents/{doc_id}/content", headers=vault.owner())
        assert read.status_code == 200

    refused = await vault.client.post("/v1/admin/keys/retire", params={"below": 2}, headers=admin)
    assert refused.status_code == 409
    assert refused.json()["error"] == "KeyRetirementRefused"

    blobs_before = await _fingerprints(vault, ids)
    rewrapped = await vault.client.post("/v1/admin/keys/rewrap", headers=admin)
    assert rewrapped.json()["rewrapped"] == 2
    after = await _wrapped(vault)
    assert {version for _, version in after.values()} == {2}
    for doc_id in ids[:2]:
        assert after[doc_id][0] != first[doc_id][0]
    assert await _fingerprints(vault, ids) == blobs_before  # no blob read-modified or rewritten
    again = await vault.client.post("/v1/admin/keys/rewrap", headers=admin)
    assert again.json()["rewrapped"] == 0

    retired = await vault.client.post("/v1/admin/keys/retire", params={"below": 2}, headers=admin)
    assert retired.status_code == 200, retired.text
    for doc_id, data in zip(ids, [*contents, b"ordre" * 300], strict=True):
        read = await vault.client.get(f"/v1/documents/{doc_id}/content", headers=vault.owner())
        assert read.status_code == 200
        assert read.content == data
    check = await vault.client.post(f"/v1/documents/{ids[0]}/check", headers=vault.owner())
    assert check.json()["ok"] is True
    journal_actions = {
        e["action"]
        for e in (await vault.client.get("/v1/journal", headers=vault.owner())).json()["entries"]
    }
    assert "deposit" in journal_actions
    verify = (await vault.client.get("/v1/journal/verify", headers=vault.ops())).json()
    assert verify["ok"] is True


async def test_local_keyring_rotation_rewrap_retirement(
    tmp_path: Path, database_url: Callable[[], str], clamd
) -> None:
    async with start_vault(tmp_path, database_url(), clamd_address=clamd.address) as vault:
        await _rotate_rewrap_retire(vault, "local:v1:")
        ring = vault.settings.resolved_keyring_path().read_text()
        assert '"current": 2' in ring


async def test_openbao_transit_rotation_rewrap_retirement(
    tmp_path: Path, database_url: Callable[[], str], clamd, bao
) -> None:
    settings: dict[str, Any] = {
        "clamd_address": clamd.address,
        "kms": "transit",
        "transit_address": bao.address,
        "transit_token": bao.token,
        "transit_key": f"atlas-vault-{tmp_path.name[-20:]}".replace("_", "-"),
    }
    async with start_vault(tmp_path, database_url(), **settings) as vault:
        await _rotate_rewrap_retire(vault, "vault:v1:")
        assert not vault.settings.resolved_keyring_path().exists()  # no local KEK at all


async def test_key_admin_bad_inputs(tmp_path: Path, database_url: Callable[[], str]) -> None:
    async with start_vault(tmp_path, database_url()) as vault:
        missing = await vault.client.post("/v1/admin/keys/retire", headers=vault.admin())
        assert missing.status_code == 422
        assert missing.json()["detail"][0]["field"] == "query.below"
        future = await vault.client.post(
            "/v1/admin/keys/retire", params={"below": 5}, headers=vault.admin()
        )
        assert future.status_code == 409
        assert "current" in future.json()["detail"]
        for role_headers in (vault.owner(), vault.ops(), vault.staff()):
            status = await vault.client.get("/v1/admin/keys", headers=role_headers)
            assert status.status_code == 403


async def test_unreachable_kms_refuses_deposit_and_stores_nothing(
    tmp_path: Path, database_url: Callable[[], str]
) -> None:
    async with start_vault(
        tmp_path,
        database_url(),
        kms="transit",
        transit_address="http://127.0.0.1:1",
        transit_token="nothing",
    ) as vault:
        response = await vault.deposit(b"bail" * 100)
        assert response.status_code == 503
        assert response.json()["error"] == "KmsUnavailable"
        blobs = vault.settings.resolved_blob_dir()
        assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))
        async with vault.db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM vault_documents"))).scalar() == 0
