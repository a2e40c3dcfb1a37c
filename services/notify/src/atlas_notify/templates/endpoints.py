"""Template API: versions, preview (422 on missing variables), never a half-rendered message."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from atlas_events.auth import AUTH_RESPONSES
from atlas_events.errors import error_responses
from atlas_events.service import RuntimeDep, SessionDep
from atlas_notify.auth import Principal, Role, require_roles
from atlas_notify.config import NotifySettings
from atlas_notify.errors import MissingVariables, TemplateInvalid, TemplateNotFound
from atlas_notify.templates.models import (
    CODE_PATTERN,
    PreviewRequest,
    RenderedMessage,
    TemplateCreate,
    TemplatePublic,
)
from atlas_notify.templates.rendering import render
from atlas_notify.templates.repository import TemplateRepository
from atlas_notify.templates.service import get_template, save_version, to_public

router = APIRouter(prefix="/v1/templates", tags=["templates"], responses=AUTH_RESPONSES)

Editor = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Reader = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.STAFF, Role.MANAGER))]
Code = Annotated[str, Path(pattern=CODE_PATTERN)]


@router.get("", summary="The latest version of every template")
async def list_templates(session: SessionDep, _: Reader) -> list[TemplatePublic]:
    """Every template code at its latest version."""
    return [to_public(t) for t in await TemplateRepository(session).latest_of_each()]


@router.post(
    "/{code}/versions",
    status_code=201,
    summary="Save a new version of a template",
    responses=error_responses(TemplateInvalid),
)
async def create_version(
    code: Code, body: TemplateCreate, session: SessionDep, runtime: RuntimeDep, editor: Editor
) -> TemplatePublic:
    """Check syntax, declared variables and SMS length, then store the next version."""
    settings = runtime.settings
    assert isinstance(settings, NotifySettings)
    template = await save_version(
        session, code, body, author=editor.sub, max_sms_segments=settings.sms_max_segments
    )
    return to_public(template)


@router.get("/{code}", summary="The latest version", responses=error_responses(TemplateNotFound))
async def latest_version(code: Code, session: SessionDep, _: Reader) -> TemplatePublic:
    """The version new notifications use."""
    return to_public(await get_template(session, code))


@router.get(
    "/{code}/versions",
    summary="Every version of a template",
    responses=error_responses(TemplateNotFound),
)
async def all_versions(code: Code, session: SessionDep, _: Reader) -> list[TemplatePublic]:
    """Oldest first."""
    versions = await TemplateRepository(session).versions(code)
    if not versions:
        raise TemplateNotFound(f"no template {code}")
    return [to_public(t) for t in versions]


@router.post(
    "/{code}/preview",
    summary="Render a template with parameters",
    responses=error_responses(TemplateNotFound, MissingVariables),
)
async def preview(
    code: Code, body: PreviewRequest, session: SessionDep, _: Reader
) -> RenderedMessage:
    """Render every channel's text; 422 naming the variables the parameters leave out."""
    template = await get_template(session, code, body.version)
    return render(template, body.params)
