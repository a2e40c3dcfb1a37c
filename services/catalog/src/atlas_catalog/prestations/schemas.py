"""API shapes of prestation search that are not tables."""

from __future__ import annotations

from pydantic import BaseModel

from atlas_catalog.prestations.models import PrestationPublic
from atlas_catalog.spaces.models import CrisisState


class SearchPage(BaseModel):
    """A page of search results, best first, with the crisis mode that shaped them."""

    query: str | None
    total: int
    limit: int
    offset: int
    crisis: CrisisState
    items: list[PrestationPublic]
