"""Settings of the requests service (environment prefix `ATLAS_REQUESTS_`)."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from atlas_events.settings import ServiceSettings


def _default_anticipation_prestations() -> dict[str, str]:
    return {"logement": "LOG-001", "scolarite": "FAM-006", "demenagement": "MOB-002", "": "MOB-001"}


class RequestsSettings(ServiceSettings):
    """Configuration of the requests service."""

    model_config = SettingsConfigDict(env_prefix="ATLAS_REQUESTS_", extra="ignore")

    service_name: ClassVar[str] = "requests"
    default_port: ClassVar[int] = 8102

    prestations_topic: str = Field(
        "catalog.prestations.v1", description="Where the catalog's prestation snapshots are read."
    )
    spaces_topic: str = Field(
        "catalog.spaces.v1", description="Where the catalog's space snapshots are read."
    )
    commands_topic: str = Field(
        "requests.commands.v1", description="Where mobility's open/close commands are read."
    )
    consumer_group_suffix: str = Field(
        "", description="Appended to consumer group names (tests run apart from each other)."
    )
    sla_check_seconds: float = Field(60.0, description="How often the SLA clock is checked.")
    sla_warning_ratio: float = Field(
        0.2, gt=0, lt=1, description="Warn when less than this share of the SLA target remains."
    )
    default_sla_days: int = Field(10, ge=1, description="SLA of a prestation that states none.")
    max_message_chars: int = Field(8000, ge=1, description="Longest message text accepted.")
    max_attachments: int = Field(10, ge=0, description="Most attachments on one message.")
    anticipation_prestations: dict[str, str] = Field(
        default_factory=_default_anticipation_prestations,
        description=(
            "Prestation used when an open_request command names a code the catalog replica does"
            " not know, by case kind ('' for no kind)."
        ),
    )
