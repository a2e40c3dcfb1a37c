"""Settings of the catalog service (environment prefix `ATLAS_CATALOG_`)."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from atlas_events.settings import ServiceSettings

DEFAULT_REFDATA_DIR = Path(__file__).resolve().parents[2] / "refdata"


class CatalogSettings(ServiceSettings):
    """Configuration of the catalog service."""

    model_config = SettingsConfigDict(env_prefix="ATLAS_CATALOG_", extra="ignore")

    service_name: ClassVar[str] = "catalog"
    default_port: ClassVar[int] = 8101

    refdata_dir: Path = Field(
        DEFAULT_REFDATA_DIR, description="Where prestations.json, spaces.json… are read from."
    )
    load_refdata: bool = Field(
        True, description="Load the reference data at start-up (publishes only what changed)."
    )
    search_refresh_seconds: float = Field(
        1.0,
        description="How often a search checks whether another process changed the catalog.",
    )
