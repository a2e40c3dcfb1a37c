"""Settings of the notify service (environment prefix `ATLAS_NOTIFY_`)."""

from datetime import time
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from atlas_events.settings import ServiceSettings

DEFAULT_STAFF_DIRECTORY = Path(__file__).resolve().parent / "data" / "staff_directory.json"


class SmsProviderConfig(BaseModel):
    """One SMS provider reachable over HTTP (see `channels/sms.py` for the wire format)."""

    name: str
    url: str
    token: str | None = None


class NotifySettings(ServiceSettings):
    """Configuration of the notify service."""

    model_config = SettingsConfigDict(env_prefix="ATLAS_NOTIFY_", extra="ignore")

    service_name: ClassVar[str] = "notify"
    default_port: ClassVar[int] = 8104

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "ATLAS <ne-pas-repondre@atlas.defense.gouv.fr>"
    smtp_pool_size: int = Field(8, ge=1, description="Pooled SMTP connections (and threads).")
    smtp_timeout_seconds: float = 10.0
    smtp_idle_seconds: float = Field(60.0, description="Reconnect a pooled connection idle longer.")
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None

    sms_providers: list[SmsProviderConfig] = Field(
        default_factory=list, description="SMS providers in order of preference (failover)."
    )
    sms_timeout_seconds: float = 5.0
    sms_breaker_failures: int = Field(3, ge=1, description="Failures in a row opening a circuit.")
    sms_breaker_reset_seconds: float = Field(30.0, description="Open circuit cool-down.")
    sms_max_segments: int = Field(3, ge=1, description="Longest SMS a template may render.")

    retry_max_attempts: int = Field(5, ge=1, description="Sends tried before the DLQ.")
    retry_backoff_seconds: float = Field(30.0, gt=0, description="First retry delay, doubling.")
    retry_backoff_max_seconds: float = Field(3600.0, gt=0, description="Cap of the retry delay.")
    send_lease_seconds: float = Field(
        120.0, description="A delivery claimed this long ago without an outcome is tried again."
    )

    timezone: str = "Europe/Paris"
    quiet_hours_start: time = time(21, 0)
    quiet_hours_end: time = time(8, 0)
    digest_time: time = Field(time(8, 0), description="When the daily staff digest goes out.")
    digest_auto: bool = Field(True, description="Send the digest from the dispatcher loop.")
    retention_days: dict[str, int] = Field(
        default_factory=lambda: {"email": 90, "sms": 90, "in_app": 365},
        description="Days after which a finished delivery's content is purged, per channel.",
    )

    dispatch_poll_seconds: float = Field(1.0, gt=0)
    dispatch_batch: int = Field(200, ge=1)
    dispatch_workers: bool = Field(True, description="Run the dispatcher with the workers.")
    simulated_recipients: bool = Field(
        True, description="Recognise the simulator's addresses (test mode, see SIMULATED)."
    )
    staff_directory_path: Path | None = Field(
        DEFAULT_STAFF_DIRECTORY, description="Seed of the spaces' staff directory (JSON)."
    )
    stale_crisis_hours: float = Field(
        24.0, description="Crisis-mode snapshots older than this are not notified (replays)."
    )
