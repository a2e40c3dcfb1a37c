"""Request and response shapes of the grant endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from atlas_events.schemas._base import AtlasId, EntityId


class GrantCreate(BaseModel):
    """Share a document with one named staff member, for one request, until an expiry."""

    grantee: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="The staff member's subject (sub claim)."
    )
    request_id: EntityId = Field(description="The support request this access serves.")
    expires_at: AwareDatetime = Field(description="When the access lapses; always required.")
    atlas_id: AtlasId | None = Field(
        default=None, description="If set, the staff member must also belong to this space."
    )
