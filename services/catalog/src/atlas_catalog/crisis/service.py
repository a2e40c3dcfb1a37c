"""Switching crisis mode, nationally or for one space, with a crisis event per space affected."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from atlas_catalog.crisis.schemas import CrisisOverview, CrisisSwitch
from atlas_catalog.errors import SpaceNotFound
from atlas_catalog.events import aware, publish_space, space_snapshot, utcnow
from atlas_catalog.search.service import ViewCache
from atlas_catalog.spaces.models import AtlasSpace, AtlasSpacePublic, CrisisState
from atlas_catalog.spaces.repository import SpaceRepository
from atlas_catalog.spaces.service import SpaceService
from atlas_catalog.state import bump_revision, get_state
from atlas_events.outbox import Outbox


class CrisisService:
    """Changes crisis mode in the caller's unit of work; every switch is published."""

    def __init__(self, session: AsyncSession, outbox: Outbox, views: ViewCache) -> None:
        self.session = session
        self.outbox = outbox
        self.views = views
        self.spaces = SpaceRepository(session)

    async def overview(self) -> CrisisOverview:
        state = await get_state(self.session)
        in_crisis = [s.atlas_id for s in await self.spaces.all() if s.crisis_active]
        changed_at = state.national_crisis_changed_at
        return CrisisOverview(
            national=CrisisState(
                active=state.national_crisis,
                scope="national" if state.national_crisis else None,
                reason=state.national_crisis_reason,
                changed_by=state.national_crisis_changed_by,
                changed_at=aware(changed_at) if changed_at else None,
            ),
            spaces_in_crisis=in_crisis,
        )

    async def set_national(self, switch: CrisisSwitch, actor: str) -> CrisisOverview:
        """Switch national crisis mode; every space's snapshot goes out (its mode changed)."""
        state = await get_state(self.session, for_update=True)
        if state.national_crisis == switch.active:
            return await self.overview()  # already so: no event
        now = utcnow()
        state.national_crisis = switch.active
        state.national_crisis_reason = switch.reason
        state.national_crisis_changed_by = actor
        state.national_crisis_changed_at = now
        self.session.add(state)
        covers = await self.spaces.covers()
        defaults = await self.spaces.defaults()
        for space in await self.spaces.all(for_update=True):
            await self._publish_switch(
                space,
                actor,
                switch.reason,
                covers=covers.get(space.atlas_id, []),
                default_for=defaults.get(space.atlas_id, []),
                national=switch.active,
            )
        await self._changed()
        return await self.overview()

    async def set_space(self, atlas_id: str, switch: CrisisSwitch, actor: str) -> AtlasSpacePublic:
        """Switch one space's crisis mode; its snapshot goes out as a crisis event."""
        space = await self.spaces.get(atlas_id, for_update=True)
        if space is None:
            raise SpaceNotFound(f"no ATLAS space has id {atlas_id!r}")
        if space.crisis_active != switch.active:
            now = utcnow()
            space.crisis_active = switch.active
            space.crisis_reason = switch.reason
            space.crisis_changed_by = actor
            space.crisis_changed_at = now
            state = await get_state(self.session)
            covers = await self.spaces.covers([atlas_id])
            defaults = await self.spaces.defaults()
            await self._publish_switch(
                space,
                actor,
                switch.reason,
                covers=covers.get(atlas_id, []),
                default_for=defaults.get(atlas_id, []),
                national=state.national_crisis,
            )
            await self._changed()
        return await SpaceService(self.session).render(space)

    async def _publish_switch(
        self,
        space: AtlasSpace,
        actor: str,
        reason: str | None,
        *,
        covers: list[str],
        default_for: list[str],
        national: bool,
    ) -> None:
        space.version += 1
        space.updated_at = utcnow()
        self.session.add(space)
        snapshot = space_snapshot(
            space, covers=covers, default_for=default_for, national_crisis=national
        )
        await publish_space(
            self.session, self.outbox, snapshot, crisis_changed_by=actor, crisis_reason=reason
        )

    async def _changed(self) -> None:
        await bump_revision(self.session)
        self.views.mark_changed(self.session)
