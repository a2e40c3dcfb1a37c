"""Settings of the vault service (environment prefix `ATLAS_VAULT_`)."""

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from atlas_events.settings import ServiceSettings, atlas_home

MIB = 1 << 20


class VaultSettings(ServiceSettings):
    """Configuration of the vault service."""

    model_config = SettingsConfigDict(env_prefix="ATLAS_VAULT_", extra="ignore")

    service_name: ClassVar[str] = "vault"
    default_port: ClassVar[int] = 8105

    data_dir: Path | None = Field(
        None, description="Root of blobs and keys (default .atlas/vault)."
    )
    blob_dir: Path | None = Field(None, description="Ciphertext blobs (default <data_dir>/blobs).")
    keyring_path: Path | None = Field(
        None, description="Local KEK keyring file (default <data_dir>/keys/keyring.json)."
    )
    receipt_key_path: Path | None = Field(
        None, description="Ed25519 receipt key (default <data_dir>/keys/receipt-ed25519.pem)."
    )
    kms: Literal["local", "transit"] = Field("local", description="Where the KEK lives.")
    transit_address: str = "http://127.0.0.1:8200"
    transit_token: SecretStr | None = None
    transit_mount: str = "transit"
    transit_key: str = "atlas-vault"

    chunk_size: int = Field(64 * 1024, ge=16, le=16 * MIB, description="Plaintext bytes a chunk.")
    quota_bytes: int = Field(512 * MIB, ge=0, description="Plaintext bytes an owner may keep.")
    max_document_bytes: int = Field(200 * MIB, ge=1, description="Largest single document.")
    max_grant_days: int = Field(90, ge=1, description="Longest a grant may last.")

    clamd_address: str | None = Field(
        None, description="clamd socket: a unix path, unix://path or tcp://host:port."
    )
    clamd_timeout_seconds: float = 30.0
    scan_retry_seconds: float = Field(
        30.0, description="How often quarantined documents are offered to clamd again (0: never)."
    )
    integrity_interval_seconds: float = Field(
        6 * 3600.0, description="How often every blob is re-verified (0: never)."
    )
    consumer_group: str = Field(
        "vault.request-status", description="Consumer group reading the requests' status events."
    )
    requests_topic: str = "requests.requests.v1"

    def resolved_data_dir(self) -> Path:
        return (self.data_dir or atlas_home() / "vault").resolve()

    def resolved_blob_dir(self) -> Path:
        return self.blob_dir or self.resolved_data_dir() / "blobs"

    def resolved_keyring_path(self) -> Path:
        return self.keyring_path or self.resolved_data_dir() / "keys" / "keyring.json"

    def resolved_receipt_key_path(self) -> Path:
        return self.receipt_key_path or self.resolved_data_dir() / "keys" / "receipt-ed25519.pem"
