"""A prestation's availability as catalog renders it (the rule is `atlas_events.availability`)."""

from __future__ import annotations

from collections.abc import Sequence

from atlas_catalog.prestations.models import Availability
from atlas_events.availability import offer


def availability(
    channels: Sequence[str], *, essential: bool, crisis_only: bool, crisis: bool
) -> Availability:
    """Crisis mode suspends on-site channels of non-essential prestations and enables crisis-only
    ones; outside crisis mode, crisis-only prestations are not offered."""
    now = offer(channels, essential=essential, crisis_only=crisis_only, crisis=crisis)
    return Availability(
        state=now.state,
        available=now.available,
        channels=now.channels,
        suspended_channels=now.suspended_channels,
        crisis_mode=crisis,
    )
