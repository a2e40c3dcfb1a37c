"""Data of the HR mission events (hr.missions.v1) and of mobility's mission facts.

HR systems announce a mission (OPEX, mission intérieure, embarquement) as full snapshots
idempotent by (mission_id, revision); mobility opens the departure case at the ATLAS space of
the home commune, then the return case, and publishes what it did on `mobility.missions.v1`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, Field, StrictBool, StringConstraints, model_validator

from atlas_events.schemas._base import (
    AgentId,
    AtlasId,
    CommuneCode,
    EntityId,
    EventData,
    LongText,
    Revision,
    ShortText,
    example,
)
from atlas_events.schemas.hr import Agent, AgentRef, Household

MISSION_ANNOUNCED: Final = "fr.defense.rh.mission.announced.v1"
MISSION_AMENDED: Final = "fr.defense.rh.mission.amended.v1"
MISSION_CANCELLED: Final = "fr.defense.rh.mission.cancelled.v1"
MISSION_RETURNED: Final = "fr.defense.rh.mission.returned.v1"

MISSION_OPENED: Final = "fr.defense.atlas.mobility.mission.opened.v1"
MISSION_AMENDED_FACT: Final = "fr.defense.atlas.mobility.mission.amended.v1"
MISSION_CANCELLED_FACT: Final = "fr.defense.atlas.mobility.mission.cancelled.v1"
MISSION_RETURN_OPENED: Final = "fr.defense.atlas.mobility.mission.return_opened.v1"
MISSION_RETURN_OVERDUE: Final = "fr.defense.atlas.mobility.mission.return_overdue.v1"

MissionId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._/-]+$"),
    Field(description="Issuer-unique reference of the mission order, 1 to 64 of [A-Za-z0-9._/-]."),
]
MissionKind = Annotated[
    Literal["opex", "mission_interieure", "embarquement", "other"],
    Field(description="Kind of mission: opex, mission_interieure, embarquement or other."),
]
MissionCaseKind = Annotated[
    Literal["depart_mission", "retour_mission"],
    Field(description="Kind of mission case: departure (depart_mission) or return."),
]
# Any commune code of the INSEE shape: one no space covers, or that no commune has, opens the
# mission `a_orienter` rather than being refused (nothing is lost), as for mutations.
HomeCommune = Annotated[
    CommuneCode, Field(description="5-character INSEE code of the family's home commune.")
]
MissionStatus = Literal["ouvert", "a_orienter", "en_retour", "annule"]

CONTRACT_EXAMPLE: Final = {
    "mission_id": "OPEX-2027-000731",
    "revision": 1,
    "agent": {
        "agent_id": "2019123456",
        "rank": "Sergent",
        "given_name": "Camille",
        "family_name": "Martin",
        "email": "camille.martin@example.fr",
        "phone": "+33612345678",
        "population": "militaire",
    },
    "home_commune_insee": "83137",
    "kind": "opex",
    "theatre": "Opération Lynx (Estonie)",
    "departure_date": "2027-03-01",
    "planned_return_date": "2027-07-15",
    "household": {
        "partner": True,
        "children": [{"child_ref": "c1", "birth_date": "2016-04-12"}],
    },
    "options": {"family_contact": True, "documents_to_deposit": True},
}


class MissionOptions(EventData):
    """What the agent chose: a family contact at the space, documents to deposit."""

    family_contact: StrictBool = Field(
        default=True, description="Whether the family wants a contact at the home space."
    )
    documents_to_deposit: StrictBool = Field(
        default=False, description="Whether the agent has documents to deposit (procuration…)."
    )


class MissionSnapshot(EventData):
    """Full snapshot of a mission at one revision."""

    mission_id: MissionId
    revision: Revision
    agent: Agent = Field(description="Identity and contact of the agent leaving on mission.")
    home_commune_insee: HomeCommune
    kind: MissionKind
    theatre: ShortText | None = Field(
        default=None, description="Where the mission goes, as HR may tell (optional)."
    )
    departure_date: date = Field(description="Departure date (ISO date).")
    planned_return_date: date = Field(description="Planned return date (ISO date).")
    household: Household = Field(description="Partner and children staying at home.")
    options: MissionOptions = Field(
        default_factory=MissionOptions, description="What the agent chose."
    )

    @model_validator(mode="after")
    def _return_after_departure(self) -> MissionSnapshot:
        if self.planned_return_date < self.departure_date:
            raise ValueError("planned_return_date is before departure_date")
        return self


class MissionAnnounced(MissionSnapshot):
    """A mission is announced: full snapshot at its first (or a later) revision."""

    model_config = example(CONTRACT_EXAMPLE)


class MissionAmended(MissionSnapshot):
    """A mission changed (dates moved, household…): full snapshot replacing the previous one."""

    model_config = example({**CONTRACT_EXAMPLE, "revision": 2, "planned_return_date": "2027-08-01"})


class MissionCancelled(EventData):
    """A mission is cancelled before (or instead of) its departure."""

    model_config = example(
        {
            "mission_id": "OPEX-2027-000731",
            "revision": 3,
            "agent": {"agent_id": "2019123456"},
            "reason": "Mission annulée par l'état-major",
        }
    )

    mission_id: MissionId
    revision: Revision
    agent: AgentRef = Field(description="The agent whose mission is cancelled.")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="Why the mission is cancelled, in the HR system's words."
    )


class MissionReturned(EventData):
    """The agent is back from the mission."""

    model_config = example(
        {
            "mission_id": "OPEX-2027-000731",
            "revision": 4,
            "agent": {"agent_id": "2019123456"},
            "return_date": "2027-07-14",
        }
    )

    mission_id: MissionId
    revision: Revision
    agent: AgentRef = Field(description="The agent who came back.")
    return_date: date = Field(description="Actual return date (ISO date).")


# ---- mobility's published facts (mobility.missions.v1) ------------------------------------------


class MissionCaseRef(EventData):
    """A mission case and the requests it opened at its space."""

    case_id: EntityId = Field(description="Identifier of the case (mission_id:kind).")
    kind: MissionCaseKind
    atlas_id: AtlasId | None = Field(default=None, description="The space; none while a_orienter.")
    prestation_codes: list[str] = Field(
        default_factory=list, description="Prestations a request was opened for."
    )


class _MissionFact(EventData):
    mission_id: MissionId
    revision: Revision
    agent_id: AgentId
    kind: MissionKind
    status: MissionStatus = Field(
        description="ouvert, a_orienter (no space covers the home commune), en_retour, annule."
    )
    atlas_id: AtlasId | None = Field(
        default=None, description="The space covering the home commune; none while a_orienter."
    )
    home_commune_insee: HomeCommune
    departure_date: date = Field(description="Departure date (ISO date).")
    planned_return_date: date = Field(description="Planned return date (ISO date).")
    cases: list[MissionCaseRef] = Field(default_factory=list, description="The mission's cases.")


_FACT_EXAMPLE: Final = {
    "mission_id": "OPEX-2027-000731",
    "revision": 1,
    "agent_id": "2019123456",
    "kind": "opex",
    "status": "ouvert",
    "atlas_id": "ATLAS-83137-TOULON",
    "home_commune_insee": "83137",
    "departure_date": "2027-03-01",
    "planned_return_date": "2027-07-15",
    "cases": [
        {
            "case_id": "OPEX-2027-000731:depart_mission",
            "kind": "depart_mission",
            "atlas_id": "ATLAS-83137-TOULON",
            "prestation_codes": ["FAM-001"],
        }
    ],
}


class MissionOpened(_MissionFact):
    """A mission's departure case opened at the home space (or the mission is a_orienter)."""

    model_config = example({**_FACT_EXAMPLE, "opened_at": "2027-01-10T08:00:00Z"})

    opened_at: AwareDatetime = Field(description="When mobility opened it.")


class MissionAmendedFact(_MissionFact):
    """A mission changed: milestones rescheduled, space moved, household changed."""

    model_config = example(
        {**_FACT_EXAMPLE, "changes": ["planned_return_date"], "amended_at": "2027-02-01T08:00:00Z"}
    )

    changes: list[str] = Field(description="Snapshot parts that changed.")
    amended_at: AwareDatetime = Field(description="When mobility applied the change.")


class MissionCancelledFact(_MissionFact):
    """A mission was cancelled: its open cases and requests closed."""

    model_config = example(
        {
            **_FACT_EXAMPLE,
            "status": "annule",
            "reason": "Mission annulée",
            "cancelled_at": "2027-02-01T08:00:00Z",
        }
    )

    reason: LongText = Field(description="Why, in the HR system's words.")
    cancelled_at: AwareDatetime = Field(description="When mobility applied it.")


class MissionReturnOpened(_MissionFact):
    """The return case opened (a returned event, or the planned return date passed)."""

    model_config = example(
        {
            **_FACT_EXAMPLE,
            "status": "en_retour",
            "return_date": "2027-07-14",
            "trigger": "returned",
            "opened_at": "2027-07-14T08:00:00Z",
        }
    )

    return_date: date = Field(description="The actual return date, else the planned one.")
    trigger: Literal["returned", "overdue"] = Field(
        description="What opened it: the returned event, or the missing-return check."
    )
    opened_at: AwareDatetime = Field(description="When mobility opened it.")


class MissionReturnOverdue(_MissionFact):
    """The planned return date passed with no returned event: flagged once to the space."""

    model_config = example({**_FACT_EXAMPLE, "flagged_at": "2027-07-16T06:00:00Z"})

    flagged_at: AwareDatetime = Field(description="When the missing return was flagged.")
