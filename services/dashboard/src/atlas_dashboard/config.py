"""Settings of the ops dashboard (environment prefix `ATLAS_DASHBOARD_`)."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from atlas_events.settings import ServiceSettings


class DashboardSettings(ServiceSettings):
    """Configuration of the ops dashboard."""

    model_config = SettingsConfigDict(env_prefix="ATLAS_DASHBOARD_", extra="ignore")

    service_name: ClassVar[str] = "dashboard"
    default_port: ClassVar[int] = 8100

    window_minutes: int = Field(
        60, ge=1, description="The recent window of the notification delivery figures."
    )
    horizon_months: int = Field(6, ge=1, le=24, description="Months of arrivals shown.")
    refresh_seconds: int = Field(15, ge=2, description="Auto-refresh period of the page.")
    kafka_poll_seconds: float = Field(
        5.0, gt=0, description="How often consumer lag and DLQ sizes are read from Kafka."
    )
    page_public: bool | None = Field(
        None,
        description=(
            "Serve the HTML page without a token. Default: yes in local mode (bound to"
            " 127.0.0.1), no in production, where an authenticating proxy adds the bearer token."
        ),
    )

    @property
    def page_is_public(self) -> bool:
        """Whether GET / answers without a bearer token."""
        if self.page_public is not None:
            return self.page_public
        return self.environment == "local"
