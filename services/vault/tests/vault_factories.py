"""Helpers of the vault's tests: start the app on real infrastructure, tokens, deposits, events."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI

from atlas_events.auth import LocalSigningKey, Role
from atlas_events.db import Database
from atlas_events.service import Runtime
from atlas_vault.app import create
from atlas_vault.config import VaultSettings
from atlas_vault.context import VaultContext, context_of

OWNER = "2019123456"
OTHER_AGENT = "2020654321"
STAFF = "staff-toulon-04"
OTHER_STAFF = "staff-brest-01"


@dataclass
class VaultApp:
    """A running vault service and a client on it."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: VaultSettings
    signing_key: LocalSigningKey

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    @property
    def db(self) -> Database:
        return self.runtime.db

    @property
    def vault(self) -> VaultContext:
        return context_of(self.runtime)

    def headers(self, sub: str, *roles: Role, atlas_id: str | None = None) -> dict[str, str]:
        token = self.signing_key.issue(sub, roles or (Role.AGENT,), atlas_id=atlas_id)
        return {"Authorization": f"Bearer {token}"}

    def owner(self, sub: str = OWNER) -> dict[str, str]:
        return self.headers(sub, Role.AGENT)

    def staff(self, sub: str = STAFF, atlas_id: str = "toulon") -> dict[str, str]:
        return self.headers(sub, Role.STAFF, atlas_id=atlas_id)

    def ops(self) -> dict[str, str]:
        return self.headers("ops-1", Role.OPS)

    def admin(self) -> dict[str, str]:
        return self.headers("admin-1", Role.ADMIN)

    async def deposit(
        self,
        data: bytes,
        *,
        owner: str = OWNER,
        document_type: str = "bail",
        sha256: str | None = None,
        filename: str = "bail.pdf",
        pieces: int | None = None,
        content_type: str = "application/pdf",
        **params: str,
    ) -> httpx.Response:
        """Upload `data`; with `pieces`, as a chunked stream of that many bytes per piece."""
        content: bytes | AsyncIterator[bytes] = data
        if pieces is not None:

            async def stream() -> AsyncIterator[bytes]:
                for start in range(0, len(data), pieces):
                    yield data[start : start + pieces]

            content = stream()
        return await self.client.post(
            "/v1/documents",
            params={
                "document_type": document_type,
                "sha256": sha256 or hashlib.sha256(data).hexdigest(),
                "filename": filename,
                **params,
            },
            content=content,
            headers={**self.owner(owner), "Content-Type": content_type},
        )

    async def deposited(self, data: bytes, **kwargs: Any) -> str:
        """Deposit and return the new document's id (asserting it was accepted)."""
        response = await self.deposit(data, **kwargs)
        assert response.status_code == 201, response.text
        return str(response.json()["document"]["id"])

    async def blob_path(self, document_id: str) -> Path:
        from atlas_vault.documents.repository import DocumentRepository

        async with self.db.transaction() as session:
            document = await DocumentRepository(session).get(document_id)
        assert document is not None
        store = self.vault.blobs
        return store.path_for(document.blob_id)  # type: ignore[attr-defined,no-any-return]


# This session's own topics: what the vault tests publish must not reach the end-to-end tests'
# services, which read the shared broker's real topics.
TOPIC_PREFIX = f"t{secrets.token_hex(4)}."
DOCUMENTS_TOPIC = f"{TOPIC_PREFIX}vault.documents.v1"
REQUESTS_TOPIC = f"{TOPIC_PREFIX}requests.requests.v1"


@asynccontextmanager
async def start_vault(
    tmp_path: Path,
    database_url: str,
    *,
    kafka_bootstrap: str = "127.0.0.1:1",
    workers: bool = False,
    **overrides: Any,
) -> AsyncIterator[VaultApp]:
    """Start the vault app in-process (lifespan included) on the given database and broker."""
    key_path = tmp_path / "keys" / "jwt.pem"
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap": kafka_bootstrap,
        "auth_local_key_path": key_path,
        "run_workers": workers,
        "data_dir": tmp_path / "vault",
        "integrity_interval_seconds": 0,
        "scan_retry_seconds": 0,
        "chunk_size": 4096,
        "consumer_group": f"vault-test-{uuid.uuid4().hex[:8]}",
        "relay_poll_seconds": 0.2,
        "log_json": False,
        "topic_prefix": TOPIC_PREFIX,
        "requests_topic": REQUESTS_TOPIC,
        **overrides,
    }
    settings = VaultSettings(**values)
    app = create(settings)
    signing_key = LocalSigningKey.load_or_create(key_path)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://vault.test", timeout=60
        ) as client:
            yield VaultApp(app, client, settings, signing_key)


def random_document(size: int) -> bytes:
    return secrets.token_bytes(size)


async def wait_for_event(
    bootstrap: str,
    topic: str,
    match: Callable[[str, dict[str, Any]], bool],
    *,
    timeout: float = 20.0,
) -> tuple[str, dict[str, Any]]:
    """Read `topic` from the start until an event (type, data) satisfies `match`."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"vault-test-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                for record in records:
                    headers = dict(record.headers or ())
                    ce_type = (headers.get("ce_type") or b"").decode()
                    data = json.loads(record.value or b"null")
                    if isinstance(data, dict) and match(ce_type, data):
                        return ce_type, data
        raise AssertionError(f"no matching event on {topic} within {timeout}s")
    finally:
        await consumer.stop()
