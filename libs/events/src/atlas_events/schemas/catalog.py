"""Data of the catalog's compacted snapshots: prestations and ATLAS spaces (with crisis mode)."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, Field, StrictBool, StrictInt, StringConstraints

from atlas_events.schemas._base import (
    AtlasId,
    EventData,
    InseeCode,
    LongText,
    PrestationCode,
    ShortText,
    example,
)

PRESTATION_SNAPSHOT: Final = "fr.defense.atlas.catalog.prestation.snapshot.v1"
PRESTATION_WITHDRAWN: Final = "fr.defense.atlas.catalog.prestation.withdrawn.v1"
SPACE_SNAPSHOT: Final = "fr.defense.atlas.catalog.space.snapshot.v1"
SPACE_CRISIS_MODE_CHANGED: Final = "fr.defense.atlas.catalog.space.crisis_mode_changed.v1"

Channel = Literal["counter", "phone", "online"]
SpaceStatus = Literal["open", "reduced", "closed", "crisis"]
Zone = Literal["metro", "drom", "com"]
CrisisScope = Literal["space", "national"]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,59}$")]
Departement = Annotated[str, StringConstraints(pattern=r"^(?:[0-9]{2}|2[AB]|97[0-9]|98[0-9])$")]

_SPACE_EXAMPLE: Final = {
    "atlas_id": "toulon",
    "name": "ATLAS de Toulon",
    "commune_insee": "83137",
    "region": "Provence-Alpes-Côte d'Azur",
    "overseas": False,
    "communes_covered": ["83137", "83126", "83129"],
    "phone": "+33494000000",
    "crisis_mode": False,
    "version": 4,
    "updated_at": "2027-03-01T08:00:00Z",
}


class PrestationSnapshot(EventData):
    """Current state of a prestation; the latest snapshot per code is the catalog entry."""

    model_config = example(
        {
            "code": "LOGEMENT-RECHERCHE",
            "version": 3,
            "title": "Aide à la recherche de logement",
            "summary": "Accompagnement dans la recherche d'un logement à la nouvelle affectation.",
            "category": "logement",
            "provider": "Ministère des Armées",
            "channels": ["counter", "phone", "online"],
            "essential": True,
            "crisis_only": False,
            "sla_hours": 72,
            "updated_at": "2027-03-01T08:00:00Z",
        }
    )

    code: PrestationCode
    version: StrictInt = Field(ge=1, description="Version of the prestation, increasing by one.")
    title: ShortText = Field(description="Title shown to users (French).")
    summary: LongText | None = Field(default=None, description="Short description (French).")
    category: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")] = Field(
        description="Category code, e.g. logement, loisirs, droits, habillement."
    )
    provider: ShortText = Field(description="Who delivers it (the ministry, IGESA, ONAC-VG, CAF…).")
    channels: list[Channel] = Field(description="Channels it is offered through.")
    essential: StrictBool = Field(
        description="Whether it stays offered when a space is in crisis mode."
    )
    crisis_only: StrictBool = Field(
        default=False, description="Whether it exists only while crisis mode is on."
    )
    sla_hours: StrictInt | None = Field(
        default=None, ge=1, description="Target handling time of a request, in hours."
    )
    updated_at: AwareDatetime = Field(description="When this version was published.")
    provider_code: Slug | None = Field(
        default=None, description="Slug of the provider in the catalog's vocabulary (igesa, caf…)."
    )
    keywords: list[str] = Field(
        default_factory=list, description="Search keywords (French, lowercase)."
    )
    audiences: list[Slug] = Field(
        default_factory=list,
        description="Who it is for: militaire, civil_defense, conjoint, enfant, ancien_combattant…",
    )
    documents: list[Slug] = Field(
        default_factory=list, description="Document types usually required (vocabulary slugs)."
    )
    sla_days: StrictInt | None = Field(
        default=None, ge=1, description="Target handling time in business days (the source value)."
    )


class PrestationWithdrawn(EventData):
    """A prestation is withdrawn from the catalog; it is the last record for its code."""

    model_config = example(
        {
            "code": "MASQUES-DISTRIBUTION",
            "version": 2,
            "reason": "Fin de la période de crise",
            "withdrawn_at": "2027-06-01T08:00:00Z",
        }
    )

    code: PrestationCode
    version: StrictInt = Field(ge=1, description="Version at which it was withdrawn.")
    reason: LongText | None = Field(default=None, description="Why it was withdrawn.")
    withdrawn_at: AwareDatetime = Field(description="When it was withdrawn.")


class SpaceSnapshot(EventData):
    """Current state of an ATLAS space: where it is, the communes it covers, crisis mode."""

    model_config = example(_SPACE_EXAMPLE)

    atlas_id: AtlasId
    name: ShortText = Field(description="Name of the space.")
    commune_insee: InseeCode = Field(description="INSEE code of the commune the space is in.")
    region: ShortText = Field(description="Region (or overseas territory) name.")
    overseas: StrictBool = Field(description="Whether the space is overseas.")
    communes_covered: list[InseeCode] = Field(
        description="INSEE codes of the communes whose mutations this space receives."
    )
    phone: Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{1,14}$")] | None = Field(
        default=None, description="Front-desk phone number (E.164)."
    )
    crisis_mode: StrictBool = Field(description="Whether the space runs in crisis mode.")
    version: StrictInt = Field(ge=1, description="Version of this record, increasing by one.")
    updated_at: AwareDatetime = Field(description="When this version was published.")
    commune_name: ShortText | None = Field(default=None, description="Name of its commune.")
    departement: Departement | None = Field(default=None, description="Its département code.")
    zone: Zone | None = Field(default=None, description="metro, drom or com.")
    status: SpaceStatus | None = Field(
        default=None, description="Status shown to users; crisis while crisis mode is on."
    )
    email: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="Contact e-mail address."
    )
    default_for_departements: list[Departement] = Field(
        default_factory=list,
        description=(
            "Départements whose communes without a space of their own, and listed in no space's"
            " communes_covered, resolve to this space."
        ),
    )
    crisis_scope: CrisisScope | None = Field(
        default=None,
        description="Why crisis mode is on: the space's own switch, or the national one.",
    )


class SpaceCrisisModeChanged(SpaceSnapshot):
    """Crisis mode was switched on or off; a full space snapshot, since the topic is compacted."""

    model_config = example(
        {
            **_SPACE_EXAMPLE,
            "crisis_mode": True,
            "version": 5,
            "updated_at": "2027-03-17T12:00:00Z",
            "crisis_reason": "Confinement national",
            "changed_by": "ops-1",
        }
    )

    crisis_reason: LongText | None = Field(default=None, description="Why it was switched.")
    changed_by: ShortText = Field(description="Subject of the operator who switched it.")
