"""Data of the HR mutation events published by the ministry's HR systems (CONTRACTS.md §1)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Final, Literal

from pydantic import Field, StrictBool, StringConstraints

from atlas_events.schemas._base import (
    EMAIL_PATTERN,
    AgentId,
    CommuneCode,
    EventData,
    MutationId,
    Revision,
    ShortText,
    example,
)

MUTATION_ANNOUNCED: Final = "fr.defense.rh.mutation.announced.v1"
MUTATION_AMENDED: Final = "fr.defense.rh.mutation.amended.v1"
MUTATION_CANCELLED: Final = "fr.defense.rh.mutation.cancelled.v1"

CONTRACT_EXAMPLE: Final = {
    "mutation_id": "TERRE-2027-004211",
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
    "origin": {"unit": "3e RIMa", "commune_insee": "56260"},
    "destination": {"unit": "Base navale de Toulon", "commune_insee": "83137"},
    "report_date": "2027-08-30",
    "household": {
        "partner": True,
        "children": [{"child_ref": "c1", "birth_date": "2016-04-12"}],
    },
    "needs": {"housing": True, "move": True},
}


class Agent(EventData):
    """The agent being transferred."""

    agent_id: AgentId
    rank: ShortText = Field(description="Rank or grade, as HR writes it.")
    given_name: ShortText = Field(description="Given name.")
    family_name: ShortText = Field(description="Family name.")
    email: Annotated[str, StringConstraints(max_length=254, pattern=EMAIL_PATTERN)] | None = Field(
        default=None, description="E-mail address, if HR has one."
    )
    phone: Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{1,14}$")] | None = Field(
        default=None, description="Phone number in E.164 form (+33612345678)."
    )
    population: Literal["militaire", "civil"] = Field(description="Military or civilian personnel.")


class Posting(EventData):
    """A unit and the commune where it is stationed."""

    unit: ShortText = Field(description="Unit or organisation name.")
    commune_insee: CommuneCode


class Child(EventData):
    """A child of the household; no name travels, only a stable reference and the birth date."""

    child_ref: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="Reference of the child, stable across revisions of the mutation."
    )
    birth_date: date = Field(description="Birth date (ISO date), to work out schooling needs.")


class Household(EventData):
    """Who moves with the agent."""

    partner: StrictBool = Field(description="Whether a partner moves with the agent.")
    children: list[Child] = Field(description="Children moving with the agent (may be empty).")


class Needs(EventData):
    """Support the agent asks for; both default to true."""

    housing: StrictBool = Field(default=True, description="Whether housing help is needed.")
    move: StrictBool = Field(default=True, description="Whether moving help is needed.")


class MutationSnapshot(EventData):
    """Full snapshot of a mutation at one revision."""

    mutation_id: MutationId
    revision: Revision
    agent: Agent = Field(description="Identity and contact of the agent being transferred.")
    origin: Posting | None = Field(
        default=None, description="Current posting; absent on a first posting."
    )
    destination: Posting = Field(description="New posting.")
    report_date: date = Field(description="Date the agent takes up the new post (ISO date).")
    household: Household = Field(description="Partner and children moving with the agent.")
    needs: Needs = Field(default_factory=Needs, description="Support needed; defaults to all.")


class MutationAnnounced(MutationSnapshot):
    """A mutation is announced: full snapshot at its first (or a later) revision."""

    model_config = example(CONTRACT_EXAMPLE)


class MutationAmended(MutationSnapshot):
    """A mutation changed: full snapshot at the new revision, replacing the previous one."""

    model_config = example({**CONTRACT_EXAMPLE, "revision": 2, "report_date": "2027-09-06"})


class AgentRef(EventData):
    """Reference to an agent."""

    agent_id: AgentId


class MutationCancelled(EventData):
    """A mutation is cancelled; the platform closes its dossier."""

    model_config = example(
        {
            "mutation_id": "TERRE-2027-004211",
            "revision": 3,
            "agent": {"agent_id": "2019123456"},
            "reason": "Affectation annulée par la DRH",
        }
    )

    mutation_id: MutationId
    revision: Revision
    agent: AgentRef = Field(description="The agent whose mutation is cancelled.")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="Why the mutation is cancelled, in the HR system's words."
    )
