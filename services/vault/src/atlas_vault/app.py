"""The vault service's FastAPI app and worker wiring."""

from collections.abc import Sequence
from pathlib import Path

import structlog
from fastapi import FastAPI

import atlas_vault
from atlas_events.service import Runtime, ServiceDefinition, create_app
from atlas_events.workers import PeriodicTask, Worker
from atlas_vault.config import VaultSettings
from atlas_vault.context import context_of
from atlas_vault.crypto.kms import KmsError, TransitKms
from atlas_vault.db import event_tables, metadata
from atlas_vault.documents.endpoints import router as documents_router
from atlas_vault.export.endpoints import router as export_router
from atlas_vault.grants.consumers import request_status_consumer
from atlas_vault.grants.endpoints import router as grants_router
from atlas_vault.integrity.service import run_integrity_check, scan_quarantined
from atlas_vault.journal.endpoints import router as journal_router
from atlas_vault.keys.endpoints import router as keys_router
from atlas_vault.openapi import refine_openapi

log = structlog.get_logger(__name__)


def _workers(runtime: Runtime) -> Sequence[Worker]:
    """The request-status consumer, the quarantine scanner and the scheduled integrity check."""
    vault = context_of(runtime)
    settings = vault.settings
    workers: list[Worker] = [request_status_consumer(runtime, settings)]
    if settings.scan_retry_seconds > 0 and vault.scanner is not None:
        workers.append(
            PeriodicTask(
                "vault.quarantine-scanner",
                settings.scan_retry_seconds,
                lambda: scan_quarantined(runtime.db, vault, runtime.outbox),
            )
        )
    if settings.integrity_interval_seconds > 0:
        workers.append(
            PeriodicTask(
                "vault.integrity-check",
                settings.integrity_interval_seconds,
                lambda: run_integrity_check(runtime.db, vault, runtime.outbox),
                run_at_start=False,
            )
        )
    return workers


async def _prepare(runtime: Runtime) -> None:
    """Create the keys on first start; warn when no clamd is set (uploads stay quarantined)."""
    vault = context_of(runtime)
    try:
        if isinstance(vault.kms, TransitKms):
            await vault.kms.ensure_key()
        else:
            await vault.kms.current_version()
    except KmsError as exc:  # deposits and reads answer 503 until the KMS is back
        log.warning("kms_unavailable", kek=vault.kms.kek_id, error=str(exc))
    if vault.scanner is None:
        log.warning("no_clamd_configured", effect="deposits stay quarantined until scanned")


SERVICE = ServiceDefinition(
    name="vault",
    title="ATLAS vault: the digital safe",
    description=(atlas_vault.__doc__ or "").strip(),
    version="0.1.0",
    metadata=metadata,
    tables=event_tables,
    migrations_dir=Path(__file__).resolve().parents[2] / "migrations",
    routers=[documents_router, grants_router, journal_router, export_router, keys_router],
    consumers=_workers,
    on_startup=[_prepare],
    openapi=[refine_openapi],
)


def create(settings: VaultSettings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings (database, broker)."""
    return create_app(SERVICE, settings or VaultSettings())
