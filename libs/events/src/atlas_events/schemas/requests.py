"""Data of the requests service's events (request lifecycle) and of the commands it executes."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from atlas_events.schemas._base import (
    AgentId,
    AtlasId,
    CaseKind,
    EntityId,
    EventData,
    LongText,
    MutationId,
    PrestationCode,
    ShortText,
    example,
)

REQUEST_SUBMITTED: Final = "fr.defense.atlas.requests.request.submitted.v1"
REQUEST_STATUS_CHANGED: Final = "fr.defense.atlas.requests.request.status_changed.v1"
REQUEST_ASSIGNED: Final = "fr.defense.atlas.requests.request.assigned.v1"
REQUEST_SLA_WARNING: Final = "fr.defense.atlas.requests.request.sla_warning.v1"
REQUEST_SLA_BREACHED: Final = "fr.defense.atlas.requests.request.sla_breached.v1"
REQUEST_MESSAGE_POSTED: Final = "fr.defense.atlas.requests.request.message_posted.v1"
OPEN_REQUEST: Final = "fr.defense.atlas.requests.open_request.v1"
CLOSE_REQUEST: Final = "fr.defense.atlas.requests.close_request.v1"
APPLY_CASE_COMMANDS: Final = "fr.defense.atlas.requests.apply_case_commands.v1"
# Commands in one batch: an HR batch of 500 mutations opens about a thousand requests, sent as a
# few messages of at most this many (about 150 KB each, far below what Kafka takes).
MAX_BATCHED_COMMANDS: Final = 250

# The users' words (guichet, telephone, en_ligne) are what the requests service records and
# emits; counter, phone and online are the catalog's names, accepted in commands as aliases.
RequestChannel = Literal[
    "guichet", "telephone", "en_ligne", "anticipation", "counter", "phone", "online"
]
RequestStatus = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z_]{1,32}$"),
    Field(
        description=(
            "Status code of the request: brouillon, soumise, en_instruction, en_attente_usager,"
            " terminee, refusee, sans_suite, or transferee (closed by a move to another space)."
        )
    ),
]
MissionCaseKind = Literal["depart_mission", "retour_mission"]
RequestId = Annotated[EntityId, Field(description="Identifier of the request.")]
StaffId = Annotated[ShortText, Field(description="Subject (sub claim) of a staff member.")]

_REQUEST_ID = "6f1c2a9e-3b4d-4e8f-9a0b-1c2d3e4f5a6b"


class RequestSubmitted(EventData):
    """A support request was submitted to a space's queue."""

    model_config = example(
        {
            "request_id": _REQUEST_ID,
            "atlas_id": "toulon",
            "prestation_code": "LOGEMENT-RECHERCHE",
            "agent_id": "2019123456",
            "channel": "anticipation",
            "title": "Recherche de logement – mutation à Toulon",
            "status": "soumise",
            "mutation_id": "TERRE-2027-004211",
            "case_id": "TERRE-2027-004211:logement",
            "sla_due_at": "2027-05-04T08:00:00Z",
            "submitted_at": "2027-05-01T08:00:00Z",
        }
    )

    request_id: RequestId
    atlas_id: AtlasId
    prestation_code: PrestationCode
    agent_id: AgentId = Field(description="The agent the request is for.")
    channel: RequestChannel = Field(description="How the request came in.")
    title: ShortText = Field(description="Short title of the request (French).")
    status: RequestStatus
    mutation_id: MutationId | None = Field(
        default=None, description="The mutation, when the request belongs to a mobility dossier."
    )
    case_id: EntityId | None = Field(
        default=None, description="The mobility handler case that asked for it, if any."
    )
    sla_due_at: AwareDatetime | None = Field(
        default=None, description="When the request should be handled by."
    )
    submitted_at: AwareDatetime = Field(description="When it was submitted.")
    filed_by: ShortText | None = Field(
        default=None,
        description="Subject of who filed it when not the agent (staff, or a proxy holder).",
    )
    on_behalf: bool = Field(
        default=False, description="Whether a proxy (power of attorney) filed it for the agent."
    )
    transferred_from: RequestId | None = Field(
        default=None, description="The request at another space this one replaces, if any."
    )
    requested_prestation_code: PrestationCode | None = Field(
        default=None,
        description="The code asked for when it was unknown and a default prestation was used.",
    )


class RequestStatusChanged(EventData):
    """A request moved to another status."""

    model_config = example(
        {
            "request_id": _REQUEST_ID,
            "atlas_id": "toulon",
            "agent_id": "2019123456",
            "previous_status": "soumise",
            "status": "en_instruction",
            "reason": None,
            "case_id": "TERRE-2027-004211:logement",
            "changed_at": "2027-05-02T09:30:00Z",
        }
    )

    request_id: RequestId
    atlas_id: AtlasId
    agent_id: AgentId = Field(description="The agent the request is for.")
    previous_status: RequestStatus
    status: RequestStatus
    reason: LongText | None = Field(default=None, description="Why, when a reason was given.")
    case_id: EntityId | None = Field(
        default=None, description="The mobility handler case that asked for it, if any."
    )
    changed_at: AwareDatetime = Field(description="When the status changed.")
    changed_by: ShortText | None = Field(
        default=None, description="Subject of who changed it; absent for the system."
    )
    transferred_to: RequestId | None = Field(
        default=None, description="The new request, when it closed as transferred."
    )
    transferred_to_atlas_id: AtlasId | None = Field(
        default=None, description="The space it was transferred to."
    )


class RequestAssigned(EventData):
    """A request was assigned to a staff member of its space."""

    model_config = example(
        {
            "request_id": _REQUEST_ID,
            "atlas_id": "toulon",
            "assignee": "staff-toulon-04",
            "assigned_by": "manager-toulon-01",
            "assigned_at": "2027-05-02T09:00:00Z",
        }
    )

    request_id: RequestId
    atlas_id: AtlasId
    assignee: StaffId
    assigned_by: StaffId | None = Field(
        default=None, description="Who assigned it; absent when the queue assigned it itself."
    )
    assigned_at: AwareDatetime = Field(description="When it was assigned.")


class RequestSlaWarning(EventData):
    """A request is close to its SLA deadline."""

    model_config = example(
        {
            "request_id": _REQUEST_ID,
            "atlas_id": "toulon",
            "assignee": "staff-toulon-04",
            "sla_due_at": "2027-05-04T08:00:00Z",
            "warned_at": "2027-05-03T20:00:00Z",
        }
    )

    request_id: RequestId
    atlas_id: AtlasId
    assignee: StaffId | None = Field(default=None, description="Current assignee, if any.")
    sla_due_at: AwareDatetime = Field(description="The deadline.")
    warned_at: AwareDatetime = Field(description="When the warning was raised.")


class RequestSlaBreached(EventData):
    """A request passed its SLA deadline unhandled."""

    model_config = example(
        {
            "request_id": _REQUEST_ID,
            "atlas_id": "toulon",
            "assignee": None,
            "sla_due_at": "2027-05-04T08:00:00Z",
            "breached_at": "2027-05-04T08:00:05Z",
        }
    )

    request_id: RequestId
    atlas_id: AtlasId
    assignee: StaffId | None = Field(default=None, description="Current assignee, if any.")
    sla_due_at: AwareDatetime = Field(description="The deadline.")
    breached_at: AwareDatetime = Field(description="When the breach was detected.")


class RequestMessagePosted(EventData):
    """A message was posted on a request; its text stays in the requests service."""

    model_config = example(
        {
            "request_id": _REQUEST_ID,
            "atlas_id": "toulon",
            "agent_id": "2019123456",
            "message_id": "0b9e6d1a-77c3-4f0e-8d6e-5a4b3c2d1e0f",
            "author_role": "staff",
            "author": "staff-toulon-04",
            "posted_at": "2027-05-02T10:00:00Z",
        }
    )

    request_id: RequestId
    atlas_id: AtlasId
    agent_id: AgentId = Field(description="The agent the request is for.")
    message_id: EntityId = Field(description="Identifier of the message.")
    author_role: Literal["agent", "staff"] = Field(description="Who wrote it.")
    author: ShortText = Field(description="Subject (sub claim) of the author.")
    posted_at: AwareDatetime = Field(description="When it was posted.")


class OpenRequest(EventData):
    """Command: open a request in a space's queue on behalf of a mobility handler case."""

    model_config = example(
        {
            "case_id": "TERRE-2027-004211:logement",
            "atlas_id": "toulon",
            "prestation_code": "LOGEMENT-RECHERCHE",
            "agent_id": "2019123456",
            "channel": "anticipation",
            "title": "Recherche de logement – mutation à Toulon",
            "mutation_id": "TERRE-2027-004211",
            "case_kind": "logement",
            "due_at": "2027-06-30T00:00:00Z",
            "requested_at": "2027-05-01T08:00:00Z",
        }
    )

    case_id: EntityId = Field(
        description="The handler case asking; at most one open request per case (idempotency key)."
    )
    atlas_id: AtlasId
    prestation_code: PrestationCode
    agent_id: AgentId = Field(description="The agent the request is for.")
    channel: RequestChannel = Field(default="anticipation", description="Channel to record.")
    title: ShortText = Field(description="Short title of the request (French).")
    mutation_id: MutationId | None = Field(default=None, description="The mutation, if any.")
    case_kind: CaseKind | MissionCaseKind | None = Field(
        default=None, description="Kind of the handler case (mobility or mission case)."
    )
    due_at: AwareDatetime | None = Field(default=None, description="When it should be handled by.")
    requested_at: AwareDatetime = Field(description="When the command was issued.")
    request_id: RequestId | None = Field(
        default=None,
        description=(
            "Identifier the sender gives the request, when it opens a new one (the same for the"
            " same case and space, so the sender knows it without reading the request back)."
        ),
    )


class CloseRequest(EventData):
    """Command: close the request opened for a handler case (cancelled, transferred or done)."""

    model_config = example(
        {
            "case_id": "TERRE-2027-004211:logement",
            "request_id": _REQUEST_ID,
            "outcome": "transferred",
            "reason": "Destination modifiée : Brest",
            "requested_at": "2027-05-10T08:00:00Z",
        }
    )

    case_id: EntityId = Field(description="The handler case whose request is to be closed.")
    request_id: RequestId | None = Field(
        default=None, description="The request, when the sender knows it; else found by case_id."
    )
    outcome: Literal["completed", "cancelled", "transferred"] = Field(
        description="Why the request closes."
    )
    reason: LongText | None = Field(default=None, description="Explanation shown to staff.")
    requested_at: AwareDatetime = Field(description="When the command was issued.")


TraceParent = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"),
]


class OpenRequestItem(OpenRequest):
    """An open_request command inside a batch, with the trace of the mutation that issued it."""

    command: Literal["open_request"] = Field(description="Which command this item is.")
    traceparent: TraceParent | None = Field(
        default=None,
        description="W3C trace context of the mutation that issued it: its span continues it.",
    )


class CloseRequestItem(CloseRequest):
    """A close_request command inside a batch, with the trace of the mutation that issued it."""

    command: Literal["close_request"] = Field(description="Which command this item is.")
    traceparent: TraceParent | None = Field(
        default=None,
        description="W3C trace context of the mutation that issued it: its span continues it.",
    )


CaseCommand = Annotated[OpenRequestItem | CloseRequestItem, Field(discriminator="command")]


class CaseCommands(EventData):
    """Command batch: open and close case requests, applied in this order in one transaction.

    Mobility's HR stage sends the commands of one batch of mutations this way, keyed by the HR
    partition they come from, so a case's commands stay in order. Each is idempotent by case id.
    """

    model_config = example(
        {
            "commands": [
                {
                    "command": "open_request",
                    "case_id": "TERRE-2027-004211:logement",
                    "atlas_id": "toulon",
                    "prestation_code": "LOGEMENT-RECHERCHE",
                    "agent_id": "2019123456",
                    "channel": "anticipation",
                    "title": "Recherche de logement – mutation à Toulon",
                    "mutation_id": "TERRE-2027-004211",
                    "case_kind": "logement",
                    "due_at": "2027-06-30T00:00:00Z",
                    "requested_at": "2027-05-01T08:00:00Z",
                    "request_id": _REQUEST_ID,
                    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                },
                {
                    "command": "close_request",
                    "case_id": "TERRE-2027-001867:demenagement",
                    "outcome": "cancelled",
                    "reason": "Affectation annulée par la DRH",
                    "requested_at": "2027-05-01T08:00:00Z",
                },
            ]
        }
    )

    commands: list[CaseCommand] = Field(
        min_length=1,
        max_length=MAX_BATCHED_COMMANDS,
        description="The commands, applied in order (a case's open before its close).",
    )
