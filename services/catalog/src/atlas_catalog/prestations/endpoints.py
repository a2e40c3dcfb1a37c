"""Prestation routes: search, detail, versions, and the admin's create, update and withdraw."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from atlas_catalog.auth import CurrentPrincipal, Principal, Role, require_roles
from atlas_catalog.context import CatalogContext, ContextDep
from atlas_catalog.errors import (
    DuplicatePrestation,
    PrestationNotFound,
    PrestationVersionNotFound,
    PrestationWithdrawnError,
    UnknownValues,
    VersionConflict,
)
from atlas_catalog.events import aware
from atlas_catalog.prestations.models import (
    Prestation,
    PrestationCreate,
    PrestationPublic,
    PrestationUpdate,
    PrestationVersion,
    PrestationVersionPublic,
    PrestationWithdraw,
)
from atlas_catalog.prestations.render import render_prestation
from atlas_catalog.prestations.schemas import SearchPage
from atlas_catalog.prestations.service import PrestationService
from atlas_catalog.search.service import CatalogView, SearchQuery
from atlas_events.auth import AUTH_RESPONSES
from atlas_events.errors import error_responses
from atlas_events.schemas._base import INT32_MAX
from atlas_events.service import RuntimeDep, SessionDep

router = APIRouter(prefix="/v1/prestations", tags=["prestations"])

Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN, allow_ops=False))]
CodePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
FilterValues = Annotated[list[str] | None, Query(max_length=20)]


def _service(session: SessionDep, runtime: RuntimeDep, context: ContextDep) -> PrestationService:
    return PrestationService(session, runtime.outbox, context.vocabulary, context.views)


ServiceDep = Annotated[PrestationService, Depends(_service)]


@router.get(
    "",
    response_model=SearchPage,
    summary="Search prestations (French full text, ranked, filtered)",
    responses={**AUTH_RESPONSES, **error_responses(UnknownValues)},
)
async def search_prestations(
    request: Request,
    context: ContextDep,
    _: CurrentPrincipal,
    q: Annotated[
        str | None, Query(max_length=200, description="Words, in any case or accent")
    ] = None,
    domain: FilterValues = None,
    provider: FilterValues = None,
    audience: FilterValues = None,
    channel: FilterValues = None,
    space: Annotated[
        str | None, Query(max_length=64, description="atlas_id: apply that space's crisis mode")
    ] = None,
    essential: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> Response:
    """Accent-, case- and typo-tolerant search over title, summary and keywords, with synonyms
    ("crèche" finds "garde d'enfants"); without `q`, every prestation by code. Results show what
    is offered now given crisis mode (national, or the `space`'s)."""
    view = await context.views.current()
    page = view.search(
        SearchQuery(
            q=q,
            domains=tuple(domain or ()),
            providers=tuple(provider or ()),
            audiences=tuple(audience or ()),
            channels=tuple(channel or ()),
            space=space,
            essential=essential,
            limit=limit,
            offset=offset,
        )
    )
    # Items are rendered as JSON when the catalog changes, not per request; the whole page is
    # kept for the same query string (CachedSearch answers it next time).
    view.pages.put(request.scope["query_string"], page)
    return Response(page, media_type="application/json")


@router.post(
    "",
    status_code=201,
    response_model=PrestationPublic,
    summary="Create a prestation (admin)",
    responses={**AUTH_RESPONSES, **error_responses(DuplicatePrestation, UnknownValues)},
)
async def create_prestation(
    body: PrestationCreate, admin: Admin, service: ServiceDep, context: ContextDep
) -> PrestationPublic:
    """A new prestation at version 1, published on catalog.prestations.v1; 409 if taken."""
    view = await context.views.current()
    prestation = await service.create(body, admin.sub)
    return _rendered(view, context, prestation)


@router.get(
    "/{code}",
    response_model=PrestationPublic,
    summary="One prestation",
    responses={**AUTH_RESPONSES, **error_responses(PrestationNotFound, UnknownValues)},
)
async def get_prestation(
    code: CodePath,
    _: CurrentPrincipal,
    service: ServiceDep,
    context: ContextDep,
    space: Annotated[str | None, Query(max_length=64)] = None,
) -> PrestationPublic:
    """The prestation's current version (withdrawn ones too) and what is offered now."""
    view = await context.views.current()
    prestation = await service.get(code)
    return _rendered(view, context, prestation, space)


@router.patch(
    "/{code}",
    response_model=PrestationPublic,
    summary="Update a prestation (admin, optimistic concurrency)",
    responses={
        **AUTH_RESPONSES,
        **error_responses(PrestationNotFound, VersionConflict, UnknownValues),
    },
)
async def update_prestation(
    code: CodePath, body: PrestationUpdate, admin: Admin, service: ServiceDep, context: ContextDep
) -> PrestationPublic:
    """The next version with the fields given; `version` must be the current one, else 409."""
    view = await context.views.current()
    prestation = await service.update(code, body, admin.sub)
    return _rendered(view, context, prestation)


@router.post(
    "/{code}/withdraw",
    response_model=PrestationPublic,
    summary="Withdraw a prestation (admin)",
    responses={
        **AUTH_RESPONSES,
        **error_responses(PrestationNotFound, VersionConflict, PrestationWithdrawnError),
    },
)
async def withdraw_prestation(
    code: CodePath,
    body: PrestationWithdraw,
    admin: Admin,
    service: ServiceDep,
    context: ContextDep,
) -> PrestationPublic:
    """Withdraw it from the catalog (a last version, and a withdrawn event); 409 if stale."""
    view = await context.views.current()
    prestation = await service.withdraw(code, body, admin.sub)
    return _rendered(view, context, prestation)


@router.get(
    "/{code}/versions",
    response_model=list[PrestationVersionPublic],
    summary="Every version of a prestation",
    responses={**AUTH_RESPONSES, **error_responses(PrestationNotFound)},
)
async def list_versions(
    code: CodePath, _: CurrentPrincipal, service: ServiceDep
) -> list[PrestationVersionPublic]:
    """Every version ever published, oldest first, with who changed what."""
    return [_version(v) for v in await service.versions(code)]


@router.get(
    "/{code}/versions/{version}",
    response_model=PrestationVersionPublic,
    summary="One version of a prestation",
    responses={
        **AUTH_RESPONSES,
        **error_responses(PrestationNotFound, PrestationVersionNotFound),
    },
)
async def get_version(
    code: CodePath,
    version: Annotated[int, Path(ge=1, le=INT32_MAX)],
    _: CurrentPrincipal,
    service: ServiceDep,
) -> PrestationVersionPublic:
    """The prestation as it was at `version`."""
    return _version(await service.version(code, version))


def _rendered(
    view: CatalogView, context: CatalogContext, prestation: Prestation, space: str | None = None
) -> PrestationPublic:
    # The view is read before the request's session touches the database: on SQLite a second
    # transaction would wait for the request's own write lock.
    if space is not None and space not in view.spaces:
        raise UnknownValues([{"field": "space", "value": space, "allowed": "an atlas_id"}])
    crisis = view.crisis_for(space).active
    return render_prestation(prestation, context.vocabulary, crisis=crisis)


def _version(kept: PrestationVersion) -> PrestationVersionPublic:
    return PrestationVersionPublic(
        code=kept.code,
        version=kept.version,
        change=kept.change,
        changed_by=kept.changed_by,
        changed_at=aware(kept.changed_at),
        snapshot=kept.snapshot,
    )
