"""The SLA clock of one request: started at submission, paused while waiting, stopped at closing."""

from __future__ import annotations

from datetime import datetime

from atlas_requests.requests.models import Request
from atlas_requests.sla.calendar import BusinessCalendar


def consumed(request: Request, now: datetime, calendar: BusinessCalendar) -> float:
    """Business days used so far, the running stretch included."""
    used = request.sla_consumed_days
    if request.sla_running_since is not None:
        used += calendar.business_days_between(request.sla_running_since, now)
    return used


def remaining(request: Request, now: datetime, calendar: BusinessCalendar) -> float:
    return request.sla_target_days - consumed(request, now, calendar)


def run(request: Request, now: datetime, calendar: BusinessCalendar, warning_ratio: float) -> None:
    """Start (or resume) the clock at `now` and set the deadline and the warning instant."""
    if request.sla_running_since is not None:
        return
    left = request.sla_target_days - request.sla_consumed_days
    request.sla_running_since = now
    request.sla_due_at = calendar.add_business_days(now, max(left, 0.0))
    warn_left = left - warning_ratio * request.sla_target_days
    request.sla_warn_at = calendar.add_business_days(now, max(warn_left, 0.0))


def halt(request: Request, now: datetime, calendar: BusinessCalendar) -> None:
    """Pause (or stop) the clock: bank the running stretch, no deadline while halted."""
    if request.sla_running_since is None:
        return
    request.sla_consumed_days = consumed(request, now, calendar)
    request.sla_running_since = None
    request.sla_due_at = None
    request.sla_warn_at = None
