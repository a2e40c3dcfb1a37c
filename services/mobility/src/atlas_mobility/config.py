"""Settings of the mobility service (environment prefix `ATLAS_MOBILITY_`)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from atlas_events.settings import ServiceSettings


class MobilitySettings(ServiceSettings):
    """Configuration of the mobility service."""

    model_config = SettingsConfigDict(env_prefix="ATLAS_MOBILITY_", extra="ignore")

    service_name: ClassVar[str] = "mobility"
    default_port: ClassVar[int] = 8103
