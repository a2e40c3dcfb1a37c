"""The dossier status, derived from the dossier and its cases (never stored, so it cannot drift)."""

from __future__ import annotations

from collections.abc import Sequence

from atlas_mobility.cases.models import CLOSED_CASE_STATUSES, HandlerCase
from atlas_mobility.dossiers.models import Dossier


def dossier_status(dossier: Dossier, cases: Sequence[HandlerCase]) -> str:
    """annule, a_orienter, clos (every case closed) or ouvert."""
    if dossier.cancelled_at is not None:
        return "annule"
    if dossier.destination_atlas_id is None:
        return "a_orienter"
    wanted = set(dossier.case_kinds)
    current = [c for c in cases if c.kind in wanted]
    if (
        wanted
        and len(current) == len(wanted)
        and all(c.status in CLOSED_CASE_STATUSES for c in current)
    ):
        return "clos"
    return "ouvert"
