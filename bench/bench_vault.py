"""Vault throughput: upload and download MB/s of a 20 MB document through the whole service
(HTTP streaming, SHA-256, clamd INSTREAM scan when clamd is installed, chunked AES-256-GCM,
atomic blob write; on the way back digest pre-check, per-chunk authentication), against raw
AES-GCM plus a file write / read of the same bytes, measured in the same run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from atlas_events.auth import LocalSigningKey, Role
from bench.common import Result

MB = 1_000_000
PIECE = 256 * 1024  # what a client streams per write
CHUNK = 64 * 1024  # the vault's default chunk size


def _database_url(tmp: Path) -> str:
    """PostgreSQL when the test environment names one (a fresh database), else SQLite."""
    given = os.environ.get("ATLAS_TEST_POSTGRES_URL")
    if not given:
        return f"sqlite+aiosqlite:///{tmp}/vault.db"
    from atlas_devstack.postgres import PostgresEndpoint

    endpoint = PostgresEndpoint.from_url(given)
    name = f"atlas_bench_vault_{secrets.token_hex(3)}"
    endpoint.create_database(name)
    return endpoint.url(name)


def _raw_upload(path: Path, data: bytes) -> float:
    """AES-256-GCM over 64 KiB chunks and a durable file write: the floor of any safe store."""
    started = time.perf_counter()
    aead = AESGCM(os.urandom(32))
    with path.open("wb") as handle:
        for index, start in enumerate(range(0, len(data), CHUNK)):
            nonce = os.urandom(12)
            aad = index.to_bytes(8, "big")
            handle.write(nonce + aead.encrypt(nonce, data[start : start + CHUNK], aad))
        handle.flush()
        os.fsync(handle.fileno())
    return time.perf_counter() - started


def _raw_download(path: Path, key: bytes) -> float:
    started = time.perf_counter()
    aead = AESGCM(key)
    frame = CHUNK + 28
    out = bytearray()
    with path.open("rb") as handle:
        index = 0
        while block := handle.read(frame):
            out += aead.decrypt(block[:12], block[12:], index.to_bytes(8, "big"))
            index += 1
    return time.perf_counter() - started


def _raw_round(tmp: Path, data: bytes) -> tuple[float, float]:
    key = os.urandom(32)
    aead = AESGCM(key)
    path = tmp / "raw.bin"
    upload = _raw_upload(path, data)
    # Re-encrypt under a known key so the read side decrypts for real.
    with path.open("wb") as handle:
        for index, start in enumerate(range(0, len(data), CHUNK)):
            nonce = os.urandom(12)
            sealed = aead.encrypt(nonce, data[start : start + CHUNK], index.to_bytes(8, "big"))
            handle.write(nonce + sealed)
    download = _raw_download(path, key)
    path.unlink()
    return upload, download


async def run(quick: bool) -> list[Result]:
    """Upload and download a 20 MB document (4 MB when quick), best of a few rounds."""
    from atlas_vault.app import create
    from atlas_vault.config import VaultSettings
    from atlas_vault.devinfra import ClamdServer, InfraError, find_clamd

    size = (4 if quick else 20) * MB
    rounds = 2 if quick else 4
    data = secrets.token_bytes(size)
    digest = hashlib.sha256(data).hexdigest()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atlas-bench-vault-")))
        clamd: ClamdServer | None = None
        if find_clamd() is not None:
            with contextlib.suppress(InfraError):
                clamd = stack.enter_context(ClamdServer())
        settings = VaultSettings(
            database_url=_database_url(tmp),
            kafka_bootstrap="127.0.0.1:1",
            run_workers=False,
            data_dir=tmp / "vault",
            auth_local_key_path=tmp / "jwt.pem",
            clamd_address=clamd.address if clamd else None,
            quota_bytes=10 * rounds * size,
            log_level="WARNING",
        )
        app = create(settings)
        token = LocalSigningKey.load_or_create(tmp / "jwt.pem").issue("2019123456", [Role.AGENT])
        headers = {"Authorization": f"Bearer {token}"}
        uploads: list[float] = []
        downloads: list[float] = []
        raw_up: list[float] = []
        raw_down: list[float] = []
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://vault", timeout=300
            ) as client:
                for _ in range(rounds):

                    async def body() -> AsyncIterator[bytes]:
                        for start in range(0, size, PIECE):
                            yield data[start : start + PIECE]

                    started = time.perf_counter()
                    response = await client.post(
                        "/v1/documents",
                        params={"document_type": "autre", "sha256": digest},
                        content=body(),
                        headers={**headers, "Content-Type": "application/pdf"},
                    )
                    uploads.append(time.perf_counter() - started)
                    assert response.status_code == 201, response.text
                    document: dict[str, Any] = response.json()["document"]
                    if document["status"] != "available":
                        raise RuntimeError(f"document not served: {document['status']}")
                    started = time.perf_counter()
                    read = await client.get(
                        f"/v1/documents/{document['id']}/content", headers=headers
                    )
                    downloads.append(time.perf_counter() - started)
                    assert read.content == data
                    up, down = _raw_round(tmp, data)
                    raw_up.append(up)
                    raw_down.append(down)
    label = f"{size // MB} MB"
    scan = "with clamd scan" if clamd else "no clamd installed"

    def mbps(seconds: list[float]) -> float:
        return size / MB / min(seconds)

    print(
        f"vault: upload {mbps(uploads):.1f} MB/s ({scan}) vs raw {mbps(raw_up):.1f} MB/s; "
        f"download {mbps(downloads):.1f} MB/s vs raw {mbps(raw_down):.1f} MB/s "
        f"(best of {rounds}; median upload {size / MB / statistics.median(uploads):.1f} MB/s)"
    )
    return [
        Result(
            "vault",
            f"upload {label} ({scan})",
            mbps(uploads),
            "MB/s",
            baseline_name="raw AES-GCM + file write (fsync)",
            baseline=mbps(raw_up),
        ),
        Result(
            "vault",
            f"download {label}",
            mbps(downloads),
            "MB/s",
            baseline_name="raw file read + AES-GCM",
            baseline=mbps(raw_down),
        ),
    ]
