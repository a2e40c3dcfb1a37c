"""Every service has the same shape: health, readiness, metrics, OpenAPI, auth and migrations."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect

from atlas_events.auth import LocalSigningKey, Role
from atlas_events.db import Database

SERVICES = ["catalog", "requests", "mobility", "notify", "vault"]


def settings_for(service: str, **values: Any) -> Any:
    module = importlib.import_module(f"atlas_{service}.config")
    cls = next(
        v for k, v in vars(module).items() if k.endswith("Settings") and k != "ServiceSettings"
    )
    return cls(**values)


async def started_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "jwt.pem"


@pytest.mark.parametrize("service", SERVICES)
async def test_service_is_ready_on_postgres_and_kafka(
    service: str, database_url: Callable[[], str], kafka_bootstrap: str, key_path: Path
) -> None:
    url = database_url()
    settings = settings_for(
        service,
        database_url=url,
        kafka_bootstrap=kafka_bootstrap,
        auth_local_key_path=key_path,
        run_workers=True,
    )
    app = importlib.import_module(f"atlas_{service}.app").create(settings)
    token = LocalSigningKey.load_or_create(key_path).issue("ops-1", [Role.OPS])
    async for client in started_client(app):
        assert (await client.get("/healthz")).json() == {"status": "ok", "service": service}
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "kafka": "ok"}
        openapi = (await client.get("/openapi.json")).json()
        assert openapi["info"]["title"].startswith("ATLAS")
        assert "/v1/whoami" in openapi["paths"]

        anonymous = await client.get("/v1/whoami")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "NotAuthenticated"
        whoami = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
        assert whoami.status_code == 200, whoami.text
        assert whoami.json()["roles"] == ["ops"]

        metrics = await client.get("/metrics")
        assert "atlas_http_request_duration_seconds" in metrics.text

    # The lifespan applied the service's Alembic migrations to the real PostgreSQL database.
    db = Database(url)
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await db.dispose()
    assert {"atlas_outbox", "atlas_processed_events", "alembic_version"} <= tables


@pytest.mark.parametrize("service", ["catalog", "vault"])
async def test_readyz_names_what_is_unreachable(
    service: str, tmp_path: Path, key_path: Path
) -> None:
    settings = settings_for(
        service,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/{service}.db",
        kafka_bootstrap="127.0.0.1:1",  # nothing listens there
        auth_local_key_path=key_path,
        run_workers=False,
    )
    app = importlib.import_module(f"atlas_{service}.app").create(settings)
    async for client in started_client(app):
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["kafka"].startswith("unavailable")


async def test_unknown_route_and_bad_token_are_json_errors(tmp_path: Path, key_path: Path) -> None:
    settings = settings_for(
        "requests",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/r.db",
        kafka_bootstrap="127.0.0.1:1",
        auth_local_key_path=key_path,
        run_workers=False,
    )
    app = importlib.import_module("atlas_requests.app").create(settings)
    forged = LocalSigningKey.generate().issue("ops-1", [Role.OPS])  # signed by another key
    async for client in started_client(app):
        missing = await client.get("/v1/nothing-here")
        assert missing.status_code == 404
        assert missing.json()["error"] == "NotFound"
        refused = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {forged}"})
        assert refused.status_code == 401
        assert refused.json()["error"] == "NotAuthenticated"


def test_atlas_token_cli_is_accepted_by_every_service_settings(key_path: Path) -> None:
    """`atlas token --role ops` signs with the key every local service verifies with."""
    out = subprocess.run(
        [Path(sys.executable).parent / "atlas", "token", "--role", "ops", "--key", str(key_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    token = out.stdout.strip()
    import asyncio

    from atlas_events.auth import TokenVerifier

    for service in SERVICES:
        verifier = TokenVerifier(
            settings_for(service, auth_local_key_path=key_path).auth_settings()
        )
        principal = asyncio.run(verifier.verify(token))
        assert principal.is_ops
