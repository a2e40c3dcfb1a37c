"""Prestation tables (current state and every version) and their API shapes."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import StringConstraints, field_validator
from sqlalchemy import JSON
from sqlmodel import Field

from atlas_catalog.db import CatalogModel
from atlas_events.db import UTCDateTime
from atlas_events.schemas._base import INT32_MAX

PrestationStatus = Literal["active", "withdrawn"]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]{1,9}-[0-9]{3,5}$")]
SlugText = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,59}$")]
Keyword = Annotated[str, StringConstraints(min_length=1, max_length=100)]


def _lower_keywords(values: list[str]) -> list[str]:
    cleaned = [v.strip().lower() for v in values]
    if any(not v for v in cleaned):
        raise ValueError("keywords must not be blank")
    return cleaned


class PrestationBase(CatalogModel):
    """What describes a prestation, as the reference data and the admin API give it."""

    title: str = Field(min_length=1, max_length=200, description="Title shown to users (French).")
    summary: str = Field(min_length=1, max_length=2000, description="One or two sentences.")
    keywords: list[Keyword] = Field(
        default_factory=list, sa_type=JSON, description="Search keywords (French, lowercase)."
    )
    domain: SlugText = Field(max_length=60, index=True, description="Domain slug (vocabulary).")
    provider: SlugText = Field(max_length=60, description="Provider slug (vocabulary).")
    audiences: list[SlugText] = Field(
        min_length=1, sa_type=JSON, description="Audience slugs: militaire, conjoint, enfant…"
    )
    channels: list[SlugText] = Field(
        min_length=1, sa_type=JSON, description="Channel slugs: guichet, telephone, en_ligne."
    )
    documents: list[SlugText] = Field(
        default_factory=list, sa_type=JSON, description="Document types usually required."
    )
    sla_days: int = Field(ge=1, le=120, description="Target handling time in business days.")
    essential: bool = Field(description="Kept when crisis mode is on.")
    crisis_only: bool = Field(default=False, description="Offered only while crisis mode is on.")

    @field_validator("keywords")
    @classmethod
    def _keywords_lowercase(cls, value: list[str]) -> list[str]:
        return _lower_keywords(value)


class PrestationCreate(PrestationBase):
    """Body of an admin creating a prestation."""

    code: Code = Field(description="Stable code, e.g. LOG-024 (prefix of its domain).")


class PrestationUpdate(CatalogModel):
    """Body of an admin update: the version it was read at, and the fields to change."""

    version: int = Field(
        ge=1, le=INT32_MAX, description="The version the change is based on (optimistic lock)."
    )
    title: str | None = Field(default=None, min_length=1, max_length=200)
    summary: str | None = Field(default=None, min_length=1, max_length=2000)
    keywords: list[Keyword] | None = None
    domain: SlugText | None = None
    provider: SlugText | None = None
    audiences: list[SlugText] | None = Field(default=None, min_length=1)
    channels: list[SlugText] | None = Field(default=None, min_length=1)
    documents: list[SlugText] | None = None
    sla_days: int | None = Field(default=None, ge=1, le=120)
    essential: bool | None = None
    crisis_only: bool | None = None

    @field_validator("keywords")
    @classmethod
    def _keywords_lowercase(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _lower_keywords(value)


class PrestationWithdraw(CatalogModel):
    """Body of an admin withdrawing a prestation."""

    version: int = Field(ge=1, le=INT32_MAX, description="The version the withdrawal is based on.")
    reason: str | None = Field(default=None, min_length=1, max_length=2000)


class Prestation(PrestationBase, table=True):
    """The current state of a prestation (its latest version)."""

    __tablename__ = "catalog_prestations"

    code: str = Field(primary_key=True, max_length=64)
    version: int = Field(ge=1)
    status: str = Field(default="active", max_length=20)
    withdrawn_reason: str | None = Field(default=None, max_length=2000)
    origin: str = Field(default="admin", max_length=20, description="refdata or admin")
    refdata_digest: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    updated_by: str = Field(max_length=200)


class PrestationVersion(CatalogModel, table=True):
    """One version of a prestation, kept forever: what it was and who changed it."""

    __tablename__ = "catalog_prestation_versions"

    code: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    change: str = Field(max_length=20, description="created, updated or withdrawn")
    snapshot: dict[str, Any] = Field(sa_type=JSON)
    changed_by: str = Field(max_length=200)
    changed_at: datetime = Field(sa_type=UTCDateTime)


class Availability(CatalogModel):
    """What is offered now, given crisis mode where the prestation is asked for."""

    state: Literal["offered", "reduced", "suspended", "inactive"] = Field(
        description=(
            "offered: every channel; reduced: on-site channels suspended by crisis mode;"
            " suspended: no channel left in crisis mode; inactive: crisis-only, no crisis on."
        )
    )
    available: bool
    channels: list[str] = Field(description="Channels offered now.")
    suspended_channels: list[str] = Field(description="Channels suspended now.")
    crisis_mode: bool = Field(description="Whether crisis mode applies where it was asked for.")


class PrestationPublic(PrestationBase):
    """A prestation as the API shows it, with what is offered now."""

    code: str
    version: int
    status: PrestationStatus
    withdrawn_reason: str | None = None
    domain_label: str
    provider_label: str
    updated_at: datetime
    availability: Availability
    score: float | None = Field(default=None, description="Relevance, in search results only.")


class PrestationVersionPublic(CatalogModel):
    """One kept version of a prestation."""

    code: str
    version: int
    change: str
    changed_by: str
    changed_at: datetime
    snapshot: dict[str, Any]
