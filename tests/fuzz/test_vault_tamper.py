"""The vault checked from outside its code: its store is damaged behind its back, on disk and in
PostgreSQL, and every download, check and verification must name the damage, never serve it.

The vault runs as its own process, started as `make run` starts it (atlas_devstack.run's process
table and Supervisor), and is spoken to over HTTP with real tokens only. One process serves the
whole module; each test damages documents of its own, so the untouched ones prove the rest of the
store still reads byte-exact. The offline verifier (`python -m atlas_vault.verify --store`) runs as
a subprocess, the last time with the service stopped.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))  # as tests/e2e/conftest.py

from e2e_platform import REPO, free_port

from atlas_devstack.pytest_plugin import DATABASE_PREFIX, DatabaseServer, create_topic
from atlas_devstack.run import PROCESS_TABLE, Supervisor, build_specs
from atlas_events.auth import LocalSigningKey, Role
from atlas_vault.crypto.envelope import FRAME_OVERHEAD

OWNER = "2019123456"
CHUNK = 64 * 1024  # the deployed chunk size: documents below hold several chunks
FRAME = CHUNK + FRAME_OVERHEAD


@dataclass
class Vault:
    """The vault process, its store (database and blob directory) and a client for its owner."""

    url: str
    database: str  # libpq URL of the vault's own database, for editing rows behind its back
    data_dir: Path
    supervisor: Supervisor
    key: LocalSigningKey
    originals: dict[str, bytes] = field(default_factory=dict)  # document id → deposited bytes
    # What the tests broke, for the offline verifier's last run: record → words its line must hold
    broken: dict[str, str] = field(default_factory=dict)

    def client(self, sub: str = OWNER, *roles: Role) -> httpx.Client:
        token = self.key.issue(sub, list(roles or (Role.AGENT,)))
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            trust_env=False,
        )

    def deposit(self, data: bytes, filename: str) -> str:
        with self.client() as agent:
            response = agent.post(
                "/v1/documents",
                params={
                    "document_type": "bail",
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "filename": filename,
                },
                content=data,
                headers={"Content-Type": "application/pdf"},
            )
        assert response.status_code == 201, response.text
        document_id = str(response.json()["document"]["id"])
        assert response.json()["document"]["status"] == "available"  # clamd scanned it
        self.originals[document_id] = data
        return document_id

    def sql(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run one statement on the vault's database directly (autocommit)."""
        with psycopg.connect(self.database, autocommit=True) as conn:
            cursor = conn.execute(statement, params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def blob(self, document_id: str) -> Path:
        """Where the document's ciphertext lies (FilesystemBlobStore's layout)."""
        [(blob_id,)] = self.sql("SELECT blob_id FROM vault_documents WHERE id = %s", document_id)
        return self.data_dir / "blobs" / blob_id[:2] / blob_id

    def verifier(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The offline verifier on the store itself, as an operator runs it on the host."""
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "atlas_vault.verify",
                "--store",
                f"--database-url={self.database}",
                f"--data-dir={self.data_dir}",
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("ATLAS_VAULT_")},
        )


def _document(size: int) -> bytes:
    return b"%PDF-1.7\n" + secrets.token_bytes(size - 9)


@pytest.fixture(scope="module")
def clamd_address() -> Iterator[str]:
    from atlas_vault.devinfra import ClamdServer  # EICAR-only signatures: starts in seconds

    with ClamdServer() as server:
        yield server.address


@pytest.fixture(scope="module")
async def vault_topics(kafka_bootstrap: str) -> str:
    """This module's own topics, so its events never reach other tests' services."""
    prefix = f"t{secrets.token_hex(4)}."
    for topic in ("vault.documents.v1", "requests.requests.v1"):
        for name in (f"{prefix}{topic}", f"{prefix}{topic}.dlq"):
            await create_topic(kafka_bootstrap, name, partitions=1)
    return prefix


@pytest.fixture(scope="module")
def vault(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    postgres_server: DatabaseServer,
    clamd_address: str,
    vault_topics: str,
) -> Iterator[Vault]:
    """The vault as its own process on its own database, holding a few documents."""
    home = tmp_path_factory.mktemp("atlas")
    database = f"{DATABASE_PREFIX}tamper_{os.getpid()}_{secrets.token_hex(3)}"
    postgres_server.create_database(database)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    [entry] = [e for e in PROCESS_TABLE if e.service == "vault"]
    [spec] = build_specs(REPO, kafka_bootstrap, home / "data", table=[entry])
    spec = replace(
        spec,
        env={
            **spec.env,
            "ATLAS_HOME": str(home),
            "ATLAS_VAULT_DATABASE_URL": postgres_server.url(database),
            "ATLAS_VAULT_PORT": str(port),
            "ATLAS_VAULT_DATA_DIR": str(home / "vault"),
            "ATLAS_VAULT_CLAMD_ADDRESS": clamd_address,
            "ATLAS_VAULT_TOPIC_PREFIX": vault_topics,
            "ATLAS_VAULT_REQUESTS_TOPIC": f"{vault_topics}requests.requests.v1",
            "ATLAS_VAULT_CONSUMER_GROUP": f"{vault_topics}vault.request-status",
        },
        url=url,
        ready_url=f"{url}/readyz",
    )
    supervisor = Supervisor([spec], home / "logs", home / "run", console=io.StringIO())
    try:
        supervisor.start_all()
        supervisor.wait_ready(timeout=90)
        started = Vault(
            url=url,
            database=postgres_server.url(database, driver=None),
            data_dir=home / "vault",
            supervisor=supervisor,
            key=LocalSigningKey.load_or_create(home / "keys" / "jwt-ed25519.pem"),
        )
        yield started
    finally:
        supervisor.stop_all(grace=10)
        postgres_server.drop_database(database)


@pytest.fixture(scope="module")
def untouched(vault: Vault) -> list[str]:
    """Documents no test damages: they must read back byte-exact after every other damage."""
    return [vault.deposit(_document(3 * CHUNK + 500), f"intact-{n}.pdf") for n in range(2)]


def _assert_still_intact(vault: Vault, documents: list[str]) -> None:
    with vault.client() as agent:
        for document_id in documents:
            response = agent.get(f"/v1/documents/{document_id}/content")
            assert response.status_code == 200, response.text
            assert response.content == vault.originals[document_id]


def _assert_refused_as_corrupted(vault: Vault, document_id: str) -> dict[str, Any]:
    """The download answers the project's JSON integrity error; no byte of the document."""
    with vault.client() as agent:
        response = agent.get(f"/v1/documents/{document_id}/content")
    assert response.status_code == 409, (response.status_code, response.content[:200])
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == "DocumentCorrupted"
    assert body["detail"]
    assert vault.originals[document_id][:64] not in response.content
    return body


def test_an_intact_store_verifies_offline(vault: Vault, untouched: list[str]) -> None:
    result = vault.verifier()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("OK: ")
    _assert_still_intact(vault, untouched)


def _flip(raw: bytearray) -> None:
    raw[FRAME + 1000] ^= 0x01  # one bit of the second chunk's ciphertext


def _truncate(raw: bytearray) -> None:
    del raw[-100:]  # the end of the last (short) frame gone


def _swap(raw: bytearray) -> None:
    raw[:FRAME], raw[FRAME : 2 * FRAME] = raw[FRAME : 2 * FRAME], raw[:FRAME]


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (_flip, "chunk 1: authentication tag mismatch"),
        (_truncate, "chunk 4: authentication tag mismatch"),
        (_swap, "chunk 0: authentication tag mismatch"),
    ],
    ids=["flipped-byte", "truncated", "swapped-chunks"],
)
def test_a_damaged_blob_is_refused_checked_and_named(
    vault: Vault, untouched: list[str], damage: Any, named: str
) -> None:
    document_id = vault.deposit(_document(4 * CHUNK + 1234), f"{damage.__name__}.pdf")
    blob = vault.blob(document_id)
    raw = bytearray(blob.read_bytes())
    damage(raw)
    blob.write_bytes(bytes(raw))

    refused = _assert_refused_as_corrupted(vault, document_id)
    assert named in refused["detail"]
    with vault.client() as agent:
        report = agent.post(f"/v1/documents/{document_id}/check")
        meta = agent.get(f"/v1/documents/{document_id}")
    assert report.status_code == 200, report.text
    assert report.json() == {
        "document_id": document_id,
        "ok": False,
        "ciphertext_digest": False,
        "authentication_tags": False,
        "plaintext_digest": False,
        "detail": named,
    }
    assert meta.json()["status"] == "corrupted"
    later = _assert_refused_as_corrupted(vault, document_id)  # and on every later attempt
    assert "failed verification" in later["detail"]
    _assert_still_intact(vault, untouched)
    vault.broken[document_id] = (
        f"ciphertext_digest+authentication_tags+plaintext_digest failed: {named}"
    )


@pytest.mark.parametrize(
    ("size", "chunk"),
    [(4 * CHUNK + 99, 1), (20 * CHUNK + 7, 18)],
    ids=["small", "beyond-the-first-mib"],
)
def test_a_resealed_blob_is_refused_by_its_tags(
    vault: Vault, untouched: list[str], size: int, chunk: int
) -> None:
    """Bytes flipped and the row's ciphertext digest rewritten to match: only the tags can tell.

    Before the fix the download answered 200, then cut the connection (after the first MiB of
    plaintext for the larger one): no error a client could read, and no alarm raised.
    """
    document_id = vault.deposit(_document(size), f"resealed-{chunk}.pdf")
    blob = vault.blob(document_id)
    raw = bytearray(blob.read_bytes())
    raw[chunk * FRAME + 500] ^= 0x40
    blob.write_bytes(bytes(raw))
    vault.sql(
        "UPDATE vault_documents SET ciphertext_sha256 = %s WHERE id = %s",
        hashlib.sha256(raw).hexdigest(),
        document_id,
    )
    refused = _assert_refused_as_corrupted(vault, document_id)
    assert f"chunk {chunk}: authentication tag mismatch" in refused["detail"]
    with vault.client() as agent:
        report = agent.post(f"/v1/documents/{document_id}/check").json()
    assert (report["ciphertext_digest"], report["authentication_tags"]) == (True, False)
    _assert_still_intact(vault, untouched)
    vault.broken[document_id] = f"authentication_tags+plaintext_digest failed: chunk {chunk}"


@pytest.mark.parametrize(
    ("column", "value", "named"),
    [
        ("sha256", "0" * 64, "plaintext_digest failed: plaintext digest differs"),
        ("size_bytes", 1000, "plaintext_digest failed: 262154 plaintext bytes, 1000 recorded"),
        ("chunk_count", 3, "authentication_tags+plaintext_digest failed: 5 chunks found"),
        ("chunk_size", 4096, "authentication_tags+plaintext_digest failed: chunk 0"),
    ],
)
def test_an_edited_document_row_is_refused(
    vault: Vault, untouched: list[str], column: str, value: Any, named: str
) -> None:
    """The row no longer describes the blob: before the fix, 200 then a cut connection."""
    document_id = vault.deposit(_document(4 * CHUNK + 10), f"row-{column}.pdf")
    vault.sql(f"UPDATE vault_documents SET {column} = %s WHERE id = %s", value, document_id)  # noqa: S608
    _assert_refused_as_corrupted(vault, document_id)
    with vault.client() as agent:
        report = agent.post(f"/v1/documents/{document_id}/check").json()
    assert report["ok"] is False
    assert named.split(" failed: ")[1] in report["detail"]
    _assert_still_intact(vault, untouched)
    vault.broken[document_id] = named


def _seq_of(vault: Vault, action: str, document_id: str) -> int:
    [(seq,)] = vault.sql(
        "SELECT seq FROM vault_journal WHERE action = %s AND document_id = %s",
        action,
        document_id,
    )
    return int(seq)


def _journal_verification(vault: Vault) -> dict[str, Any]:
    with vault.client("ops-1", Role.OPS) as ops:
        response = ops.get("/v1/journal/verify")
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    assert report["ok"] is False
    return report


def test_an_edited_journal_row_is_named_and_the_document_still_served(
    vault: Vault, untouched: list[str]
) -> None:
    """The journal is the audit trail, not the document: the bytes still authenticate, so the
    document is served; the chain's verification names the edited entry."""
    document_id = vault.deposit(_document(2 * CHUNK), "journal-edited.pdf")
    seq = _seq_of(vault, "deposit", document_id)
    [(detail,)] = vault.sql("SELECT detail FROM vault_journal WHERE seq = %s", seq)
    vault.sql(
        "UPDATE vault_journal SET detail = %s::json WHERE seq = %s",
        json.dumps({**detail, "size_bytes": 1}),
        seq,
    )
    report = _journal_verification(vault)
    assert {"seq": seq, "reason": "entry content does not match its hash"} in report["breaks"]
    _assert_still_intact(vault, [document_id, *untouched])
    vault.broken[f"journal seq {seq}"] = "entry content does not match its hash"


def test_a_deleted_journal_row_is_named(vault: Vault, untouched: list[str]) -> None:
    document_id = vault.deposit(_document(2 * CHUNK), "journal-deleted.pdf")
    with vault.client() as agent:
        assert agent.get(f"/v1/documents/{document_id}").status_code == 200
        assert agent.get("/v1/documents").status_code == 200  # not the last entry: a gap
    seq = _seq_of(vault, "read_metadata", document_id)
    vault.sql("DELETE FROM vault_journal WHERE seq = %s", seq)
    report = _journal_verification(vault)
    assert {"seq": seq, "reason": f"entry {seq} is missing"} in report["breaks"]
    _assert_still_intact(vault, [document_id, *untouched])
    vault.broken[f"journal seq {seq}"] = f"entry {seq} is missing"


def test_an_export_holding_an_edited_journal_row_fails_offline(
    vault: Vault, untouched: list[str], tmp_path: Path
) -> None:
    """What the owner carries away is checked too: the export names the edited entry."""
    document_id = vault.deposit(_document(CHUNK + 1), "exported.pdf")
    seq = _seq_of(vault, "deposit", document_id)
    vault.sql("UPDATE vault_journal SET actor = 'someone-else' WHERE seq = %s", seq)
    with vault.client() as agent:
        key = agent.get("/v1/receipts/public-key").json()["x"]
        export = agent.get("/v1/export")
    assert export.status_code == 200, export.text
    archive = tmp_path / "export.zip"
    archive.write_bytes(export.content)
    result = subprocess.run(
        [sys.executable, "-m", "atlas_vault.verify", str(archive), f"--public-key={key}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"(seq {seq}): hash differs" in result.stdout
    vault.broken[f"journal seq {seq}"] = "entry content does not match its hash"


def test_the_offline_verifier_names_every_broken_record_with_the_service_stopped(
    vault: Vault, untouched: list[str]
) -> None:
    """Last in the module: what the tests above broke, each on its own line, nothing else."""
    vault.supervisor.stop_all(grace=10)
    result = vault.verifier()
    output = result.stdout + result.stderr
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAIL: ")]
    assert result.returncode == (1 if vault.broken else 0), output
    for record, named in vault.broken.items():
        label = record if record.startswith("journal") else f"document {record}"
        assert any(line.startswith(f"FAIL: {label}: ") and named in line for line in failures), (
            record,
            named,
            output,
        )
    for document_id in untouched:
        assert document_id not in output
    named_records = {line.removeprefix("FAIL: ").split(":")[0] for line in failures}
    expected = {r if r.startswith("journal") else f"document {r}" for r in vault.broken}
    assert named_records == expected, output
