"""Queries on the contact and staff directories."""

import asyncio
import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from atlas_events.db import Database
from atlas_notify.db import utcnow
from atlas_notify.directory.models import Contact, StaffMember, StaffMemberBase


class DirectoryRepository:
    """Contacts of agents and staff of spaces."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def contact(self, agent_id: str) -> Contact | None:
        return await self.session.get(Contact, agent_id)

    async def upsert_contact(
        self,
        agent_id: str,
        *,
        source: str,
        email: str | None = None,
        phone: str | None = None,
        given_name: str | None = None,
        family_name: str | None = None,
    ) -> Contact:
        """Store what is given; a field the source leaves out keeps its known value."""
        contact = await self.contact(agent_id)
        if contact is None:
            contact = Contact(agent_id=agent_id, source=source, updated_at=utcnow())
            self.session.add(contact)
        for name, value in (
            ("email", email),
            ("phone", phone),
            ("given_name", given_name),
            ("family_name", family_name),
        ):
            if value is not None:
                setattr(contact, name, value)
        contact.source = source
        contact.updated_at = utcnow()
        await self.session.flush()
        return contact

    async def staff_of(self, atlas_id: str) -> list[StaffMember]:
        rows = await self.session.scalars(
            select(StaffMember)
            .where(col(StaffMember.atlas_id) == atlas_id, col(StaffMember.active).is_(True))
            .order_by(col(StaffMember.staff_id))
        )
        return list(rows)

    async def staff_member(self, staff_id: str) -> StaffMember | None:
        return await self.session.get(StaffMember, staff_id)

    async def put_staff(self, atlas_id: str, member: StaffMemberBase) -> StaffMember:
        row = await self.staff_member(member.staff_id)
        if row is None:
            row = StaffMember(staff_id=member.staff_id, atlas_id=atlas_id, display_name="")
            self.session.add(row)
        row.atlas_id = atlas_id
        row.display_name = member.display_name
        row.email = member.email
        row.phone = member.phone
        row.digest = member.digest
        row.active = member.active
        row.updated_at = utcnow()
        await self.session.flush()
        return row


async def seed_staff_directory(db: Database, path: Path | None) -> int:
    """Load `{atlas_id: [staff member, ...]}` from a JSON file into the directory (file wins)."""
    if path is None:
        return 0
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except FileNotFoundError:
        return 0
    document = json.loads(text)
    count = 0
    async with db.transaction() as session:
        repo = DirectoryRepository(session)
        for atlas_id, members in document.items():
            for raw in members:
                await repo.put_staff(atlas_id, StaffMemberBase.model_validate(raw))
                count += 1
    return count
