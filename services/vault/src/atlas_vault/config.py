"""Settings of the vault service (environment prefix `ATLAS_VAULT_`)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from atlas_events.settings import ServiceSettings


class VaultSettings(ServiceSettings):
    """Configuration of the vault service."""

    model_config = SettingsConfigDict(env_prefix="ATLAS_VAULT_", extra="ignore")

    service_name: ClassVar[str] = "vault"
    default_port: ClassVar[int] = 8105
