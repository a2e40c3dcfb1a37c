"""Data of the mobility service's events: dossier lifecycle and handler case work items."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, Field, StrictBool, StrictInt, StringConstraints

from atlas_events.schemas._base import (
    AgentId,
    AtlasId,
    CaseKind,
    CommuneCode,
    EntityId,
    EventData,
    LongText,
    MutationId,
    PrestationCode,
    Revision,
    ShortText,
    example,
)

DOSSIER_OPENED: Final = "fr.defense.atlas.mobility.dossier.opened.v1"
DOSSIER_AMENDED: Final = "fr.defense.atlas.mobility.dossier.amended.v1"
DOSSIER_CANCELLED: Final = "fr.defense.atlas.mobility.dossier.cancelled.v1"
DOSSIER_CLOSED: Final = "fr.defense.atlas.mobility.dossier.closed.v1"
DEPARTURE_ANNOUNCED: Final = "fr.defense.atlas.mobility.dossier.departure_announced.v1"
MILESTONE_DUE: Final = "fr.defense.atlas.mobility.dossier.milestone_due.v1"
LOGEMENT_CASE_OPENED: Final = "fr.defense.atlas.mobility.logement.case_opened.v1"
LOGEMENT_CASE_UPDATED: Final = "fr.defense.atlas.mobility.logement.case_updated.v1"
LOGEMENT_CASE_CLOSED: Final = "fr.defense.atlas.mobility.logement.case_closed.v1"
SCOLARITE_CASE_OPENED: Final = "fr.defense.atlas.mobility.scolarite.case_opened.v1"
SCOLARITE_CASE_UPDATED: Final = "fr.defense.atlas.mobility.scolarite.case_updated.v1"
SCOLARITE_CASE_CLOSED: Final = "fr.defense.atlas.mobility.scolarite.case_closed.v1"
DEMENAGEMENT_CASE_OPENED: Final = "fr.defense.atlas.mobility.demenagement.case_opened.v1"
DEMENAGEMENT_CASE_UPDATED: Final = "fr.defense.atlas.mobility.demenagement.case_updated.v1"
DEMENAGEMENT_CASE_CLOSED: Final = "fr.defense.atlas.mobility.demenagement.case_closed.v1"

DossierStatus = Literal["ouvert", "a_orienter", "clos", "annule"]
CaseId = Annotated[EntityId, Field(description="Identifier of the handler case.")]
Zone = Literal["metro", "drom", "com"]
SchoolLevel = Literal["maternelle", "elementaire", "college", "lycee"]
ChildRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MilestoneCode = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9_]{1,40}$"),
    Field(description="Code of the milestone, e.g. visite_logement, inscription_ecole."),
]

_MUTATION = "TERRE-2027-004211"
_LOGEMENT_CASE = f"{_MUTATION}:logement"


class CaseRef(EventData):
    """A handler case of a dossier, as other services need to know it."""

    case_id: CaseId
    kind: CaseKind
    atlas_id: AtlasId = Field(description="The space that handles the case.")


class DossierOpened(EventData):
    """A mobility dossier opened for a mutation, at its destination space or for orientation."""

    model_config = example(
        {
            "mutation_id": _MUTATION,
            "revision": 1,
            "agent_id": "2019123456",
            "status": "ouvert",
            "destination_atlas_id": "toulon",
            "destination_commune_insee": "83137",
            "report_date": "2027-08-30",
            "cases": [
                {"case_id": _LOGEMENT_CASE, "kind": "logement", "atlas_id": "toulon"},
                {"case_id": f"{_MUTATION}:scolarite", "kind": "scolarite", "atlas_id": "toulon"},
            ],
            "opened_at": "2027-05-01T08:00:00Z",
        }
    )

    mutation_id: MutationId
    revision: Revision
    agent_id: AgentId
    status: Literal["ouvert", "a_orienter"] = Field(
        description="ouvert at a space, or a_orienter when no space covers the destination."
    )
    destination_atlas_id: AtlasId | None = Field(
        default=None, description="The destination space; absent while a_orienter."
    )
    destination_commune_insee: CommuneCode
    report_date: date = Field(description="Date the agent takes up the new post.")
    cases: list[CaseRef] = Field(description="Handler cases opened with the dossier.")
    opened_at: AwareDatetime = Field(description="When the dossier opened.")
    origin_commune_insee: CommuneCode | None = Field(
        default=None, description="Where the agent is posted now, if known."
    )
    anticipation_days: StrictInt | None = Field(
        default=None, description="Days from the announcement to the report date (lead time)."
    )


class DossierAmended(EventData):
    """A dossier took a new mutation revision; `cases` lists its open cases afterwards."""

    model_config = example(
        {
            "mutation_id": _MUTATION,
            "revision": 2,
            "agent_id": "2019123456",
            "status": "ouvert",
            "destination_atlas_id": "toulon",
            "destination_commune_insee": "83137",
            "report_date": "2027-09-06",
            "changes": ["report_date"],
            "cases": [{"case_id": _LOGEMENT_CASE, "kind": "logement", "atlas_id": "toulon"}],
            "amended_at": "2027-05-10T08:00:00Z",
        }
    )

    mutation_id: MutationId
    revision: Revision
    agent_id: AgentId
    status: DossierStatus = Field(description="Status of the dossier after the change.")
    destination_atlas_id: AtlasId | None = Field(
        default=None, description="The destination space; absent while a_orienter."
    )
    destination_commune_insee: CommuneCode
    report_date: date = Field(description="Date the agent takes up the new post.")
    changes: list[
        Literal["agent", "origin", "destination", "report_date", "household", "needs"]
    ] = Field(description="Parts of the mutation that changed in this revision.")
    cases: list[CaseRef] = Field(description="Open handler cases after the change.")
    amended_at: AwareDatetime = Field(description="When the change was applied.")


class DossierCancelled(EventData):
    """A dossier was cancelled because its mutation was; its cases and requests close."""

    model_config = example(
        {
            "mutation_id": _MUTATION,
            "revision": 3,
            "agent_id": "2019123456",
            "destination_atlas_id": "toulon",
            "reason": "Affectation annulée par la DRH",
            "cancelled_at": "2027-05-20T08:00:00Z",
        }
    )

    mutation_id: MutationId
    revision: Revision
    agent_id: AgentId
    destination_atlas_id: AtlasId | None = Field(default=None, description="The destination space.")
    reason: LongText = Field(description="Reason given by HR.")
    cancelled_at: AwareDatetime = Field(description="When the dossier was cancelled.")


class DossierClosed(EventData):
    """A dossier closed: the agent arrived and every case is done."""

    model_config = example(
        {
            "mutation_id": _MUTATION,
            "agent_id": "2019123456",
            "destination_atlas_id": "toulon",
            "reason": "Toutes les démarches sont terminées",
            "closed_at": "2027-09-30T08:00:00Z",
        }
    )

    mutation_id: MutationId
    agent_id: AgentId
    destination_atlas_id: AtlasId | None = Field(default=None, description="The destination space.")
    reason: LongText | None = Field(default=None, description="Closing note.")
    closed_at: AwareDatetime = Field(description="When the dossier closed.")


class DepartureAnnounced(EventData):
    """The origin space learns that one of its agents is leaving, to prepare the departure."""

    model_config = example(
        {
            "mutation_id": _MUTATION,
            "revision": 1,
            "agent_id": "2019123456",
            "origin_atlas_id": "lorient",
            "origin_commune_insee": "56121",
            "destination_commune_insee": "83137",
            "report_date": "2027-08-30",
            "announced_at": "2027-05-01T08:00:00Z",
        }
    )

    mutation_id: MutationId
    revision: Revision
    agent_id: AgentId
    origin_atlas_id: AtlasId | None = Field(
        default=None, description="The space covering the origin commune, if any."
    )
    origin_commune_insee: CommuneCode
    destination_commune_insee: CommuneCode
    report_date: date = Field(description="Date the agent takes up the new post.")
    announced_at: AwareDatetime = Field(description="When the departure was announced.")


class MilestoneDue(EventData):
    """A milestone of a handler case has reached its due date."""

    model_config = example(
        {
            "mutation_id": _MUTATION,
            "case_id": _LOGEMENT_CASE,
            "case_kind": "logement",
            "atlas_id": "toulon",
            "agent_id": "2019123456",
            "milestone": "visite_logement",
            "due_date": "2027-07-30",
            "emitted_at": "2027-07-30T06:00:00Z",
        }
    )

    mutation_id: MutationId
    case_id: CaseId
    case_kind: CaseKind
    atlas_id: AtlasId = Field(description="The space that handles the case.")
    agent_id: AgentId
    milestone: MilestoneCode
    due_date: date = Field(description="The milestone's due date.")
    emitted_at: AwareDatetime = Field(description="When the reminder was emitted.")
    reminder: Literal["due", "overdue"] = Field(
        default="due", description="due on the due date; overdue once it has passed undone."
    )
    urgent: StrictBool = Field(
        default=False, description="Whether the due date had already passed when it was planned."
    )
    label: ShortText | None = Field(default=None, description="What the step is (French).")
    child_ref: ChildRef | None = Field(
        default=None, description="The child the step is for (scolarité)."
    )


class Milestone(EventData):
    """A step of a handler case with its due date, counted back from the report date."""

    code: MilestoneCode
    due_date: date = Field(description="When the step should be done.")
    label: ShortText | None = Field(default=None, description="What the step is (French).")
    child_ref: ChildRef | None = Field(
        default=None, description="The child the step is for (scolarité)."
    )


class HandlerCase(EventData):
    """Fields every handler case work item carries: a full snapshot of the case."""

    case_id: CaseId
    mutation_id: MutationId
    revision: Revision
    agent_id: AgentId
    atlas_id: AtlasId = Field(description="The space that handles the case.")
    destination_commune_insee: CommuneCode
    report_date: date = Field(description="Date the agent takes up the new post.")
    milestones: list[Milestone] = Field(description="The case's milestones, by due date.")
    zone: Zone | None = Field(default=None, description="Zone of the destination space.")
    prestation_code: PrestationCode | None = Field(
        default=None, description="Prestation of the request opened for the case."
    )
    title: ShortText | None = Field(default=None, description="Title of that request (French).")


_CASE_EXAMPLE: Final = {
    "mutation_id": _MUTATION,
    "revision": 1,
    "agent_id": "2019123456",
    "atlas_id": "toulon",
    "destination_commune_insee": "83137",
    "report_date": "2027-08-30",
}


class LogementCase(HandlerCase):
    """Housing case: find a home at the destination before the report date."""

    model_config = example(
        {
            **_CASE_EXAMPLE,
            "case_id": _LOGEMENT_CASE,
            "milestones": [
                {"code": "demande_logement", "due_date": "2027-05-30"},
                {"code": "visite_logement", "due_date": "2027-07-30"},
            ],
            "partner": True,
            "children_count": 1,
        }
    )

    partner: StrictBool = Field(description="Whether a partner moves with the agent.")
    children_count: StrictInt = Field(ge=0, description="Number of children moving.")


class SchoolChild(EventData):
    """A child to enrol at the destination."""

    child_ref: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="The child's reference from the mutation."
    )
    birth_date: date = Field(description="Birth date.")
    age_on_report_date: StrictInt = Field(ge=2, le=17, description="Age on the report date.")
    level: SchoolLevel | None = Field(default=None, description="School level joined.")


class ScolariteCase(HandlerCase):
    """Schooling case: enrol the children aged 2 to 17 at the destination."""

    model_config = example(
        {
            **_CASE_EXAMPLE,
            "case_id": f"{_MUTATION}:scolarite",
            "milestones": [{"code": "inscription_ecole", "due_date": "2027-06-30"}],
            "children": [{"child_ref": "c1", "birth_date": "2016-04-12", "age_on_report_date": 11}],
        }
    )

    children: list[SchoolChild] = Field(min_length=1, description="Children to enrol.")


class DemenagementCase(HandlerCase):
    """Moving case: organise the household move from origin to destination."""

    model_config = example(
        {
            **_CASE_EXAMPLE,
            "case_id": f"{_MUTATION}:demenagement",
            "milestones": [{"code": "devis_demenagement", "due_date": "2027-06-30"}],
            "origin_commune_insee": "56121",
        }
    )

    origin_commune_insee: CommuneCode | None = Field(
        default=None, description="Where the household moves from, if known."
    )


class HandlerCaseClosed(EventData):
    """A handler case closed: done, cancelled with its dossier, or transferred to another space."""

    model_config = example(
        {
            "case_id": _LOGEMENT_CASE,
            "mutation_id": _MUTATION,
            "agent_id": "2019123456",
            "atlas_id": "toulon",
            "outcome": "transferred",
            "reason": "Destination modifiée : Brest",
            "closed_at": "2027-05-10T08:00:00Z",
        }
    )

    case_id: CaseId
    mutation_id: MutationId
    agent_id: AgentId
    atlas_id: AtlasId = Field(description="The space that handled the case.")
    outcome: Literal["completed", "cancelled", "transferred"] = Field(description="Why it closed.")
    reason: LongText | None = Field(default=None, description="Closing note.")
    closed_at: AwareDatetime = Field(description="When it closed.")
    revision: Revision | None = Field(
        default=None, description="The mutation revision that closed it (orders the work items)."
    )
