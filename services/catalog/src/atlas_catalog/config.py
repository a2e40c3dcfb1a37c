"""Settings of the catalog service (environment prefix `ATLAS_CATALOG_`)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from atlas_events.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    """Configuration of the catalog service."""

    model_config = SettingsConfigDict(env_prefix="ATLAS_CATALOG_", extra="ignore")

    service_name: ClassVar[str] = "catalog"
    default_port: ClassVar[int] = 8101
