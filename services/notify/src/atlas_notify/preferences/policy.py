"""When a delivery may go: preferences, the critical bypass and quiet hours (Europe/Paris)."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from atlas_notify.preferences.models import Preference
from atlas_notify.templates.models import CRITICAL

# In-app items wait silently in the inbox, so only channels that ring or buzz are deferred.
DISTURBING_CHANNELS = frozenset({"email", "sms"})


async def opted_out(session: AsyncSession, user_id: str, category: str, channel: str) -> bool:
    """True when the user turned this category off on this channel (never for `critical`)."""
    if category == CRITICAL:
        return False
    enabled = await session.scalar(
        select(col(Preference.enabled)).where(
            col(Preference.user_id) == user_id,
            col(Preference.category) == category,
            col(Preference.channel) == channel,
        )
    )
    return enabled is False


class QuietHours:
    """A nightly window in a time zone; what is not critical waits for its end."""

    def __init__(self, start: time, end: time, zone: str) -> None:
        self.start = start
        self.end = end
        self.zone = ZoneInfo(zone)

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # the window spans midnight

    def end_after(self, moment: datetime) -> datetime:
        """The first end of the window after `moment` (a local wall-clock time, DST-aware)."""
        local = moment.astimezone(self.zone)
        candidate = datetime.combine(local.date(), self.end, tzinfo=self.zone)
        if candidate <= local:
            candidate = datetime.combine(
                local.date() + timedelta(days=1), self.end, tzinfo=self.zone
            )
        return candidate

    def defer(self, moment: datetime, *, category: str, channel: str) -> datetime | None:
        """When to send instead of `moment`, or None when it may go at `moment`."""
        if category == CRITICAL or channel not in DISTURBING_CHANNELS:
            return None
        if not self.contains(moment):
            return None
        return self.end_after(moment)
