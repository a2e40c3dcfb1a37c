"""What a prestation offers now, given crisis mode: the one rule catalog shows and requests applies.

Crisis mode (national, or a space's) suspends the on-site channels of non-essential prestations
and enables the crisis-only ones; outside crisis mode a crisis-only prestation is not offered.
Essential prestations keep every channel. Catalog renders this in search and detail; the
requests service refuses intake through a suspended channel with the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

ON_SITE_CHANNELS = frozenset({"guichet"})

OfferState = Literal["offered", "reduced", "suspended", "inactive"]


@dataclass(frozen=True)
class Offer:
    """The channels open now, those shut, and the resulting state."""

    state: OfferState
    channels: list[str]
    suspended_channels: list[str]

    @property
    def available(self) -> bool:
        return bool(self.channels)


def offer(channels: Iterable[str], *, essential: bool, crisis_only: bool, crisis: bool) -> Offer:
    """Apply the crisis rule to a prestation's channels."""
    channels = list(channels)
    if crisis_only and not crisis:
        return Offer("inactive", [], channels)
    if crisis and not essential:
        kept = [c for c in channels if c not in ON_SITE_CHANNELS]
        shut = [c for c in channels if c in ON_SITE_CHANNELS]
        if shut:
            return Offer("reduced" if kept else "suspended", kept, shut)
    return Offer("offered", channels, [])
