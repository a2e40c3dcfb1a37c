"""Settings of the notify service (environment prefix `ATLAS_NOTIFY_`)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from atlas_events.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    """Configuration of the notify service."""

    model_config = SettingsConfigDict(env_prefix="ATLAS_NOTIFY_", extra="ignore")

    service_name: ClassVar[str] = "notify"
    default_port: ClassVar[int] = 8104
