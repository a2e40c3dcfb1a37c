"""Saving template versions (validated first) and seeding the defaults."""

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.db import Database
from atlas_notify.db import utcnow
from atlas_notify.errors import IdempotencyConflict, TemplateNotFound
from atlas_notify.templates.defaults import DEFAULT_TEMPLATES
from atlas_notify.templates.models import Template, TemplateCreate, TemplatePublic
from atlas_notify.templates.rendering import check_template
from atlas_notify.templates.repository import TemplateRepository


async def save_version(
    session: AsyncSession, code: str, data: TemplateCreate, *, author: str, max_sms_segments: int
) -> Template:
    """Validate and store the next version of `code` (422 before anything is written)."""
    encoding, segments = check_template(data, max_sms_segments=max_sms_segments)
    repo = TemplateRepository(session)
    latest = await repo.latest(code)
    template = Template(
        code=code,
        version=(latest.version + 1) if latest else 1,
        sms_encoding=encoding,
        sms_segments=segments,
        created_by=author,
        created_at=utcnow(),
        **data.model_dump(),
    )
    repo.add(template)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise IdempotencyConflict(f"template {code} was changed concurrently; try again") from exc
    return template


async def get_template(session: AsyncSession, code: str, version: int | None = None) -> Template:
    repo = TemplateRepository(session)
    found = await (repo.latest(code) if version is None else repo.version(code, version))
    if found is None:
        what = code if version is None else f"{code} version {version}"
        raise TemplateNotFound(f"no template {what}")
    return found


def to_public(template: Template) -> TemplatePublic:
    return TemplatePublic(
        code=template.code,
        version=template.version,
        category=template.category,
        description=template.description,
        variables=template.variables,
        email_subject=template.email_subject,
        email_body=template.email_body,
        sms_body=template.sms_body,
        in_app_title=template.in_app_title,
        in_app_body=template.in_app_body,
        sms_encoding=template.sms_encoding,
        sms_segments=template.sms_segments,
        channels=template.channels(),
        created_by=template.created_by,
        created_at=template.created_at,
    )


async def seed_defaults(db: Database, *, max_sms_segments: int) -> None:
    """Create version 1 of every default template that does not exist yet."""
    for code, data in DEFAULT_TEMPLATES.items():
        try:
            async with db.transaction() as session:
                if await TemplateRepository(session).latest(code) is None:
                    await save_version(
                        session, code, data, author="system", max_sms_segments=max_sms_segments
                    )
        except IdempotencyConflict:
            pass  # another process seeded it first
