"""What a prestation offers now, given crisis mode: the rule kept apart so it is tested alone."""

from __future__ import annotations

from collections.abc import Sequence

from atlas_catalog.prestations.models import Availability
from atlas_catalog.vocabulary import ON_SITE_CHANNELS


def availability(
    channels: Sequence[str], *, essential: bool, crisis_only: bool, crisis: bool
) -> Availability:
    """Crisis mode suspends on-site channels of non-essential prestations and enables crisis-only
    ones; outside crisis mode, crisis-only prestations are not offered."""
    if crisis_only and not crisis:
        return Availability(
            state="inactive",
            available=False,
            channels=[],
            suspended_channels=list(channels),
            crisis_mode=False,
        )
    if crisis and not essential:
        kept = [c for c in channels if c not in ON_SITE_CHANNELS]
        suspended = [c for c in channels if c in ON_SITE_CHANNELS]
        if suspended:
            return Availability(
                state="reduced" if kept else "suspended",
                available=bool(kept),
                channels=kept,
                suspended_channels=suspended,
                crisis_mode=True,
            )
    return Availability(
        state="offered",
        available=True,
        channels=list(channels),
        suspended_channels=[],
        crisis_mode=crisis,
    )
