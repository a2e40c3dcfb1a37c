"""Settings shared by every service; each service subclasses with its own `ATLAS_<NAME>_` prefix."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from atlas_events.auth import AuthSettings
from atlas_events.retention import RetentionPolicy


def atlas_home() -> Path:
    """Where local state lives: `$ATLAS_HOME`, else `./.atlas` of the working directory."""
    return Path(os.environ.get("ATLAS_HOME") or Path.cwd() / ".atlas").resolve()


class ServiceSettings(BaseSettings):
    """What every service is configured with; environment variables override the defaults."""

    model_config = SettingsConfigDict(env_prefix="ATLAS_", extra="ignore")

    service_name: ClassVar[str] = "atlas"
    default_port: ClassVar[int] = 8000

    environment: Literal["local", "production"] = "local"
    host: str = "127.0.0.1"
    port: int = 0
    database_url: str = ""
    migrate_on_start: bool = Field(True, description="Apply Alembic migrations when starting.")
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = Field(
        "", description="Put before every topic name the service writes or reads (isolates runs)."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How the Kafka clients reach the brokers (SASL_SSL with Strimzi)."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism, used with the SASL_* protocols only."
    )
    kafka_sasl_username: str | None = Field(None, description="The service's Kafka user.")
    kafka_sasl_password: SecretStr | None = Field(
        None, description="The Kafka user's password (from a Secret in the cluster)."
    )
    kafka_ssl_cafile: Path | None = Field(
        None, description="CA bundle the brokers' certificates chain to; the system's if unset."
    )
    run_workers: bool = Field(
        True, description="Run the relay and consumers inside the API process (local mode)."
    )
    relay_poll_seconds: float = Field(
        1.0,
        description="Fallback poll when no commit notification can reach the relay, and while "
        "another relay publishes (how soon this one takes over when that one stops).",
    )
    outbox_keep_days: float = Field(
        7, gt=0, description="How long a published outbox row is kept (Kafka keeps the event)."
    )
    processed_keep_days: float = Field(
        45,
        gt=0,
        description=(
            "How long a processed-event record is kept; longer than any topic's retention"
            " (30 days), else a message still in Kafka could be applied twice (checked at start)."
        ),
    )
    retention_interval_seconds: float = Field(
        3600, gt=0, description="How often a worker process prunes the event tables."
    )
    metrics_port: int | None = Field(
        None, description="Port of a Prometheus endpoint in a worker process without the API."
    )
    log_level: str = "INFO"
    log_json: bool = True
    otlp_endpoint: str | None = None

    auth_mode: Literal["local", "jwks"] = "local"
    auth_local_key_path: Path | None = None
    auth_jwks_url: str | None = None
    auth_issuer: str = "urn:atlas:local"
    auth_audience: str = "atlas"

    @model_validator(mode="after")
    def _kafka_credentials(self) -> ServiceSettings:
        """A SASL protocol without its user is a deployment mistake: refuse to start."""
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"kafka_security_protocol {self.kafka_security_protocol} needs"
                " kafka_sasl_username and kafka_sasl_password"
            )
        return self

    def model_post_init(self, __context: object) -> None:
        if not self.port:
            self.port = self.default_port
        if not self.database_url:
            path = atlas_home() / "data" / f"{self.service_name}.db"
            self.database_url = f"sqlite+aiosqlite:///{path}"

    def retention_policy(self) -> RetentionPolicy:
        return RetentionPolicy(
            outbox_keep=timedelta(days=self.outbox_keep_days),
            processed_keep=timedelta(days=self.processed_keep_days),
        )

    def auth_settings(self) -> AuthSettings:
        """The auth part of the settings, as the shared verifier expects it."""
        values: dict[str, object] = {
            "mode": self.auth_mode,
            "jwks_url": self.auth_jwks_url,
            "issuer": self.auth_issuer,
            "audience": self.auth_audience,
        }
        if self.auth_local_key_path is not None:
            values["local_key_path"] = self.auth_local_key_path
        return AuthSettings.model_validate(values)
