"""Preferences API: each user reads and sets their own."""

from fastapi import APIRouter
from sqlalchemy import select
from sqlmodel import col

from atlas_events.auth import AUTH_RESPONSES
from atlas_events.service import SessionDep
from atlas_notify.auth import CurrentPrincipal
from atlas_notify.preferences.models import Preference, PreferenceBase, PreferencePublic

router = APIRouter(prefix="/v1/preferences", tags=["preferences"], responses=AUTH_RESPONSES)


@router.get("", summary="The caller's preferences")
async def my_preferences(
    session: SessionDep, principal: CurrentPrincipal
) -> list[PreferencePublic]:
    """Categories and channels the caller turned on or off (anything absent is on)."""
    rows = await session.scalars(
        select(Preference)
        .where(col(Preference.user_id) == principal.sub)
        .order_by(col(Preference.category), col(Preference.channel))
    )
    return [PreferencePublic.model_validate(r, from_attributes=True) for r in rows]


@router.put("", summary="Set some of the caller's preferences")
async def set_preferences(
    body: list[PreferenceBase], session: SessionDep, principal: CurrentPrincipal
) -> list[PreferencePublic]:
    """Each entry turns a category on or off on a channel; `critical` messages still arrive."""
    for item in body:
        row = await session.get(Preference, (principal.sub, item.category, item.channel))
        if row is None:
            session.add(
                Preference(
                    user_id=principal.sub,
                    category=item.category,
                    channel=item.channel,
                    enabled=item.enabled,
                )
            )
        else:
            row.enabled = item.enabled
    await session.flush()
    return await my_preferences(session, principal)
