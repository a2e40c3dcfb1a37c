"""Queries on templates."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from atlas_notify.templates.models import Template


class TemplateRepository:
    """Template versions by code."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def latest(self, code: str) -> Template | None:
        return await self.session.scalar(
            select(Template)
            .where(col(Template.code) == code)
            .order_by(col(Template.version).desc())
            .limit(1)
        )

    async def version(self, code: str, version: int) -> Template | None:
        return await self.session.scalar(
            select(Template).where(col(Template.code) == code, col(Template.version) == version)
        )

    async def versions(self, code: str) -> list[Template]:
        rows = await self.session.scalars(
            select(Template).where(col(Template.code) == code).order_by(col(Template.version))
        )
        return list(rows)

    async def latest_of_each(self) -> list[Template]:
        newest = (
            select(col(Template.code), func.max(col(Template.version)).label("version"))
            .group_by(col(Template.code))
            .subquery()
        )
        rows = await self.session.scalars(
            select(Template)
            .join(
                newest,
                (col(Template.code) == newest.c.code) & (col(Template.version) == newest.c.version),
            )
            .order_by(col(Template.code))
        )
        return list(rows)

    def add(self, template: Template) -> None:
        self.session.add(template)
