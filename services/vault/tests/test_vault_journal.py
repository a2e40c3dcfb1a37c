"""The hash-chained journal: every verb is in it, and editing or deleting rows is found."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from vault_factories import OWNER, VaultApp, start_vault


async def _all_verbs(vault: VaultApp) -> str:
    doc_id = await vault.deposited(b"bulletin de solde" * 20, document_type="bulletin_solde")
    owner = vault.owner()
    assert (await vault.client.get(f"/v1/documents/{doc_id}/content", headers=owner)).is_success
    assert (await vault.client.get(f"/v1/documents/{doc_id}", headers=owner)).is_success
    assert (await vault.client.post(f"/v1/documents/{doc_id}/check", headers=owner)).is_success
    assert (await vault.client.get("/v1/journal", headers=owner)).is_success
    assert (await vault.client.get("/v1/documents", headers=owner)).is_success
    assert (await vault.client.get("/v1/documents/count", headers=owner)).is_success
    assert (await vault.client.delete(f"/v1/documents/{doc_id}", headers=owner)).is_success
    return doc_id


async def test_each_of_the_eight_verbs_is_journaled_and_chained(
    tmp_path: Path, database_url: Callable[[], str], clamd
) -> None:
    async with start_vault(tmp_path, database_url(), clamd_address=clamd.address) as vault:
        doc_id = await _all_verbs(vault)
        page = await vault.client.get("/v1/journal", headers=vault.owner())
        entries = page.json()["entries"]
        actions = [e["action"] for e in entries]
        for verb in (
            "deposit",
            "scan",
            "read",
            "read_metadata",
            "check",
            "read_journal",
            "list",
            "count",
            "destroy",
        ):
            assert verb in actions, verb
        assert all(e["owner_agent_id"] == OWNER for e in entries)
        deposit = entries[actions.index("deposit")]
        assert deposit["document_id"] == doc_id
        assert deposit["detail"]["hash_algorithm"] == "SHA-256"
        seqs = [e["seq"] for e in entries]
        assert seqs == sorted(seqs)
        for before, after in itertools.pairwise(entries):
            if after["seq"] == before["seq"] + 1:
                assert after["prev_hash"] == before["hash"]
        only_doc = await vault.client.get(
            "/v1/journal", params={"document_id": doc_id}, headers=vault.owner()
        )
        assert {e["document_id"] for e in only_doc.json()["entries"]} == {doc_id}

        verify = await vault.client.get("/v1/journal/verify", headers=vault.ops())
        assert verify.json()["ok"] is True
        assert verify.json()["entries_checked"] == verify.json()["head_seq"] >= 9
        refused = await vault.client.get("/v1/journal/verify", headers=vault.owner())
        assert refused.status_code == 403


@pytest.mark.parametrize(
    ("tamper", "broken_at", "reason"),
    [
        ("UPDATE vault_journal SET actor = 'someone-else' WHERE seq = 3", 3, "hash"),
        ("UPDATE vault_journal SET detail = '{\"size_bytes\": 1}' WHERE seq = 1", 1, "hash"),
        ("DELETE FROM vault_journal WHERE seq = 4", 4, "missing"),
        ("DELETE FROM vault_journal WHERE seq >= 6", 6, "missing"),
        (
            "UPDATE vault_journal SET prev_hash = repeat('a', 64) WHERE seq = 5",
            5,
            "previous-hash",
        ),
    ],
)
async def test_edited_or_deleted_rows_break_the_chain_at_their_position(
    tmp_path: Path,
    database_url: Callable[[], str],
    clamd,
    tamper: str,
    broken_at: int,
    reason: str,
) -> None:
    async with start_vault(tmp_path, database_url(), clamd_address=clamd.address) as vault:
        await _all_verbs(vault)
        async with vault.db.engine.begin() as conn:
            await conn.execute(text(tamper))
        report = (await vault.client.get("/v1/journal/verify", headers=vault.ops())).json()
        assert report["ok"] is False
        assert report["first_broken_seq"] == broken_at
        assert reason in report["reason"]


async def test_every_break_is_reported_not_only_the_first(
    tmp_path: Path, database_url: Callable[[], str], clamd
) -> None:
    async with start_vault(tmp_path, database_url(), clamd_address=clamd.address) as vault:
        await _all_verbs(vault)
        async with vault.db.engine.begin() as conn:
            await conn.execute(text("UPDATE vault_journal SET actor = 'x' WHERE seq IN (2, 7)"))
            await conn.execute(text("DELETE FROM vault_journal WHERE seq IN (4, 5)"))
        report = (await vault.client.get("/v1/journal/verify", headers=vault.ops())).json()
        assert (report["ok"], report["first_broken_seq"]) == (False, 2)
        assert report["breaks"] == [
            {"seq": 2, "reason": "entry content does not match its hash"},
            {"seq": 4, "reason": "entries 4 to 5 are missing"},
            {"seq": 7, "reason": "entry content does not match its hash"},
        ]
