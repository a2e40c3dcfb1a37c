"""Milestone reminders: `milestone_due` once on the day a step is due, once when overdue."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from atlas_events.schemas import mobility
from atlas_mobility.cases.models import OPEN_CASE_STATUSES, HandlerCase, Milestone
from atlas_mobility.context import MobilityContext
from atlas_mobility.events import EventSink


async def emit_reminders(
    session: AsyncSession, context: MobilityContext, sink: EventSink, *, limit: int = 500
) -> int:
    """Queue reminders for due and overdue milestones of open cases; returns how many."""
    today = context.today()
    now = context.now()
    sent = 0
    for reminder in ("due", "overdue"):
        column = col(Milestone.due_sent_at) if reminder == "due" else col(Milestone.overdue_sent_at)
        # A step found already past (announced late, or the scheduler was down on the day)
        # gets the overdue reminder only: two identical reminders at once would read as a bug.
        reached = (
            col(Milestone.due_date) == today
            if reminder == "due"
            else col(Milestone.due_date) < today
        )
        rows = (
            await session.execute(
                select(Milestone, HandlerCase)
                .join(HandlerCase, col(HandlerCase.case_id) == col(Milestone.case_id))
                .where(
                    reached,
                    column.is_(None),
                    col(HandlerCase.status).in_(OPEN_CASE_STATUSES),
                )
                .order_by(col(Milestone.id))
                .limit(limit)
                .with_for_update(of=Milestone, skip_locked=True)
            )
        ).all()
        for milestone, case in rows:
            sink.emit(
                mobility.MILESTONE_DUE,
                mobility.MilestoneDue(
                    mutation_id=case.mutation_id,
                    case_id=case.case_id,
                    case_kind=case.kind,
                    atlas_id=case.atlas_id,
                    agent_id=case.agent_id,
                    milestone=milestone.code,
                    due_date=milestone.due_date,
                    emitted_at=now,
                    reminder=reminder,
                    urgent=milestone.urgent,
                    label=milestone.label,
                    child_ref=milestone.child_ref or None,
                ),
                key=case.mutation_id,
                subject=case.case_id,
            )
            if reminder == "overdue":
                milestone.overdue_sent_at = now
            milestone.due_sent_at = milestone.due_sent_at or now
            sent += 1
    return sent


def milestone_status(milestone: Milestone, case_status: str, today: date) -> str:
    """a_venir, urgent (planned already past), echu (due today), en_retard, or the case's end."""
    if case_status not in OPEN_CASE_STATUSES:
        return "termine" if case_status == "termine" else "annule"
    if milestone.due_date > today:
        return "a_venir"
    if milestone.urgent:
        return "urgent"
    return "echu" if milestone.due_date == today else "en_retard"
