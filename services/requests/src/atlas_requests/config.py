"""Settings of the requests service (environment prefix `ATLAS_REQUESTS_`)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from atlas_events.settings import ServiceSettings


class RequestsSettings(ServiceSettings):
    """Configuration of the requests service."""

    model_config = SettingsConfigDict(env_prefix="ATLAS_REQUESTS_", extra="ignore")

    service_name: ClassVar[str] = "requests"
    default_port: ClassVar[int] = 8102
