"""The vault's collaborators (KMS, blob store, scanner, receipt key), one set per service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from atlas_events.service import Runtime, RuntimeDep
from atlas_vault.config import VaultSettings
from atlas_vault.crypto.kms import KeyEncryptionService, LocalKeyring, TransitKms
from atlas_vault.crypto.receipts import ReceiptSigner
from atlas_vault.scanning.clamd import ClamdScanner
from atlas_vault.storage.blobs import BlobStore, FilesystemBlobStore

SOURCE = "urn:atlas:vault"


def transit_kms(settings: VaultSettings) -> TransitKms:
    """The OpenBao/Vault transit KMS the settings name (their token must be set)."""
    assert settings.transit_token is not None
    return TransitKms(
        settings.transit_address,
        settings.transit_token.get_secret_value(),
        mount=settings.transit_mount,
        key_name=settings.transit_key,
    )


@dataclass
class VaultContext:
    """What the endpoints, consumers and jobs share besides the database and the outbox."""

    settings: VaultSettings
    kms: KeyEncryptionService
    blobs: BlobStore
    scanner: ClamdScanner | None
    signer: ReceiptSigner

    @classmethod
    def from_settings(cls, settings: VaultSettings) -> VaultContext:
        kms: KeyEncryptionService
        if settings.kms == "transit":
            if settings.transit_token is None:
                raise ValueError("ATLAS_VAULT_TRANSIT_TOKEN is required when kms=transit")
            kms = transit_kms(settings)
        else:
            kms = LocalKeyring(settings.resolved_keyring_path())
        scanner = (
            ClamdScanner(settings.clamd_address, timeout=settings.clamd_timeout_seconds)
            if settings.clamd_address
            else None
        )
        return cls(
            settings=settings,
            kms=kms,
            blobs=FilesystemBlobStore(settings.resolved_blob_dir()),
            scanner=scanner,
            signer=ReceiptSigner.load_or_create(settings.resolved_receipt_key_path()),
        )


def context_of(runtime: Runtime) -> VaultContext:
    """The vault context of a running service, built on first use from its settings."""
    return runtime.extension(_build_context)


def _build_context(runtime: Runtime) -> VaultContext:
    settings = runtime.settings
    if not isinstance(settings, VaultSettings):
        settings = VaultSettings.model_validate(settings.model_dump())
    return VaultContext.from_settings(settings)


def _vault(runtime: RuntimeDep) -> VaultContext:
    return context_of(runtime)


VaultDep = Annotated[VaultContext, Depends(_vault)]
