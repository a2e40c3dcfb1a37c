"""API shapes of the requests domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from atlas_events.schemas._base import AgentId, AtlasId, EntityId, InseeCode, PrestationCode

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
StatusCode = Literal[
    "brouillon",
    "soumise",
    "en_instruction",
    "en_attente_usager",
    "terminee",
    "refusee",
    "sans_suite",
    "transferee",
]
ChannelCode = Literal["guichet", "telephone", "en_ligne", "anticipation"]
DocumentId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_:-]{0,99}$"),
    Field(description="Id of a document in the vault (the document itself never comes here)."),
]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ProxyIn(BaseModel):
    """Who files for the agent, holding a power of attorney (procuration)."""

    name: ShortText = Field(description="Name of the proxy, e.g. the agent's partner.")
    relationship: Literal["conjoint", "parent", "enfant", "autre"] = "conjoint"
    power_of_attorney_ref: EntityId = Field(
        description="Vault document id of the power of attorney (procuration)."
    )


class RequestCreate(BaseModel):
    """A new request: filed online by an agent, or recorded by staff at the counter or by phone."""

    prestation_code: PrestationCode
    title: ShortText
    description: Annotated[str, StringConstraints(max_length=8000)] | None = None
    channel: Literal["guichet", "telephone", "en_ligne"] | None = Field(
        default=None, description="en_ligne for agents (the default); staff record the channel."
    )
    atlas_id: AtlasId | None = Field(
        default=None, description="The space; else routed by commune_insee; staff: their own."
    )
    commune_insee: InseeCode | None = Field(
        default=None, description="Routes the request to the space covering this commune."
    )
    agent_id: AgentId | None = Field(
        default=None, description="Who it is for; an agent filing for themselves may omit it."
    )
    proxy: ProxyIn | None = Field(
        default=None, description="Required when filed for another agent (power of attorney)."
    )
    draft: bool = Field(default=False, description="Keep it as brouillon instead of submitting.")


class TransitionIn(BaseModel):
    """Move a request to another status, saying why."""

    to: StatusCode
    reason: Reason | None = None


class TransferIn(BaseModel):
    """Move a request to another space: it closes here as transferred and opens there."""

    atlas_id: AtlasId
    reason: Reason


class AssignIn(BaseModel):
    """Assign to a named staff member, or let the queue pick the least loaded one."""

    assignee: ShortText | None = None
    auto: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> AssignIn:
        if (self.assignee is None) == (not self.auto):
            raise ValueError("give either an assignee or auto: true")
        return self


class MessageIn(BaseModel):
    """A message in the thread; attachments are vault document ids (never the documents)."""

    body: str = Field(min_length=1)
    attachments: list[DocumentId] = Field(default_factory=list)


class SlaPublic(BaseModel):
    target_days: float
    consumed_days: float
    remaining_days: float
    due_at: datetime | None
    paused: bool
    warned_at: datetime | None
    breached_at: datetime | None


class RequestPublic(BaseModel):
    """A request as its readers see it."""

    request_id: str
    atlas_id: str
    status: str
    prestation_code: str
    requested_prestation_code: str | None
    prestation_unverified: bool
    agent_id: str
    channel: str
    title: str
    description: str | None
    filed_by: str
    filed_by_role: str
    on_behalf: bool
    proxy_name: str | None
    proxy_relationship: str | None
    power_of_attorney_ref: str | None
    assignee: str | None
    case_id: str | None
    case_kind: str | None
    mutation_id: str | None
    transferred_from: str | None
    transferred_to: str | None
    created_at: datetime
    submitted_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime
    first_response_at: datetime | None
    sla: SlaPublic
    allowed_transitions: list[str] = Field(
        default_factory=list, description="Statuses the caller may move it to now."
    )


class RequestPage(BaseModel):
    items: list[RequestPublic]
    total: int
    page: int
    page_size: int


class TransitionPublic(BaseModel):
    from_status: str | None
    to_status: str
    actor: str
    actor_role: str
    reason: str | None
    at: datetime


class AssignmentPublic(BaseModel):
    assignee: str
    previous_assignee: str | None
    assigned_by: str | None
    mode: str
    at: datetime


class HistoryPublic(BaseModel):
    request_id: str
    transitions: list[TransitionPublic]
    assignments: list[AssignmentPublic]


class MessagePublic(BaseModel):
    message_id: str
    request_id: str
    author: str
    author_role: str
    body: str
    attachments: list[str]
    posted_at: datetime


class StaffPublic(BaseModel):
    atlas_id: str
    staff_id: str
    open_requests: int
