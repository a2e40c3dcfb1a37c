"""SLA arithmetic across weekends, holidays (Alsace-Moselle, overseas) and pauses; SLA events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from requests_factories import RequestsApp

from atlas_events.schemas import requests as rq_events
from atlas_requests.requests.models import Request
from atlas_requests.requests.service import RequestService
from atlas_requests.sla import clock
from atlas_requests.sla.calendar import calendar_for, departement_of


def paris(y: int, m: int, d: int, h: int = 10) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(y, m, d, h, tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)


@pytest.mark.parametrize(
    ("departement", "day", "holiday"),
    [
        ("67", date(2027, 3, 26), True),  # Vendredi saint in Alsace
        ("57", date(2027, 12, 26), True),  # Saint-Étienne in Moselle (a Sunday in 2027)
        ("75", date(2027, 3, 26), False),
        ("974", date(2027, 12, 20), True),  # abolition of slavery, La Réunion
        ("971", date(2027, 5, 27), True),  # Guadeloupe
        ("972", date(2027, 5, 22), True),  # Martinique
        ("973", date(2027, 6, 10), True),  # Guyane
        ("976", date(2027, 4, 27), True),  # Mayotte
        ("75", date(2027, 5, 27), False),
        ("83", date(2027, 7, 14), True),  # national
    ],
)
def test_holidays_of_the_departement(departement: str, day: date, holiday: bool) -> None:
    assert (calendar_for(departement).holiday_name(day) is not None) is holiday


def test_departement_of_commune() -> None:
    assert departement_of("83137") == "83"
    assert departement_of("2A004") == "2A"
    assert departement_of("97411") == "974"
    assert departement_of("98818") == "988"


def test_deadline_skips_weekends_and_holidays_by_place() -> None:
    start = paris(2027, 3, 25)  # Thursday 10:00 before Easter
    # Paris: Thursday rest, Friday, then Easter Monday is off → Tuesday 10:00.
    assert calendar_for("75").add_business_days(start, 2) == paris(2027, 3, 30)
    # Strasbourg also skips Good Friday → Wednesday 10:00.
    assert calendar_for("67").add_business_days(start, 2) == paris(2027, 3, 31)
    # Submitted on a Saturday: the clock starts Monday 00:00.
    saturday = paris(2027, 3, 6, 15)
    assert calendar_for("75").add_business_days(saturday, 1) == paris(2027, 3, 9, 0)
    # Business time measured back is what was added, across the DST change.
    cal = calendar_for("67")
    due = cal.add_business_days(start, 5.5)
    assert cal.business_days_between(start, due) == pytest.approx(5.5)


def _deadline_day_by_day(departement: str, start: datetime, days: float) -> datetime:
    """The deadline walked one day at a time with each day's own bounds (the reference)."""
    cal = calendar_for(departement)
    remaining, day = days, start.astimezone(cal.zone).date()
    while True:
        lo = datetime.combine(day, datetime.min.time(), tzinfo=cal.zone).astimezone(UTC)
        hi = datetime.combine(
            day + timedelta(days=1), datetime.min.time(), tzinfo=cal.zone
        ).astimezone(UTC)
        if day.weekday() < 5 and cal.holiday_name(day) is None:
            begin = max(lo, start)
            available = (hi - begin) / (hi - lo)
            if remaining <= available + 1e-9:
                return begin + (hi - lo) * remaining
            remaining -= available
        day += timedelta(days=1)


@pytest.mark.parametrize("departement", ["75", "67", "974", "988"])
def test_deadline_agrees_with_a_day_by_day_walk(departement: str) -> None:
    # Starts every 7 h 13 min over two years (weekends, holidays, both DST changes), with
    # whole and fractional targets.
    start = datetime(2026, 12, 20, 6, 30, tzinfo=UTC)
    for step in range(0, 2 * 365 * 24, 7):
        moment = start + timedelta(hours=step, minutes=13 * step)
        for days in (0.0, 0.4, 1.0, 2.5, 10.0, 30.0):
            expected = _deadline_day_by_day(departement, moment, days)
            due = calendar_for(departement).add_business_days(moment, days)
            assert abs((due - expected).total_seconds()) < 0.001, (moment, days)


@pytest.mark.parametrize("days", [3000.0, 1e12])
def test_a_deadline_beyond_ten_years_is_refused(days: float) -> None:
    start = datetime(2026, 12, 20, 6, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="no deadline within 3660 days"):
        calendar_for("75").add_business_days(start, days)
    # Still answers afterwards (nothing half-remembered).
    assert calendar_for("75").add_business_days(start, 1) == _deadline_day_by_day("75", start, 1)


def test_overseas_deadline_uses_local_time_and_holidays() -> None:
    from zoneinfo import ZoneInfo

    reunion = ZoneInfo("Indian/Reunion")
    start = datetime(2027, 12, 17, 9, tzinfo=reunion)  # Friday; Monday 20 Dec is a holiday there
    due = calendar_for("974").add_business_days(start, 1)
    assert due == datetime(2027, 12, 21, 9, tzinfo=reunion)
    assert calendar_for("75").add_business_days(start, 1).astimezone(reunion).day == 20


def _request(target: float) -> Request:
    now = datetime.now(UTC)
    return Request(
        id="r", atlas_id="x", prestation_code="P", agent_id="2019000000", filed_by="a",
        filed_by_role="agent", channel="en_ligne", title="t", status="soumise",
        sla_target_days=target, created_at=now, updated_at=now,
    )  # fmt: skip


def test_the_clock_pauses_while_waiting_for_the_user() -> None:
    cal = calendar_for("75")
    request = _request(3)
    clock.run(request, paris(2027, 3, 1), cal, 0.2)  # Monday 10:00
    assert request.sla_due_at == paris(2027, 3, 4)
    assert request.sla_warn_at == cal.add_business_days(paris(2027, 3, 1), 2.4)
    clock.halt(request, paris(2027, 3, 2), cal)  # waiting for the user from Tuesday 10:00
    assert request.sla_consumed_days == pytest.approx(1)
    assert request.sla_due_at is None
    assert clock.remaining(request, paris(2027, 3, 20), cal) == pytest.approx(2)  # frozen
    clock.run(request, paris(2027, 3, 12), cal, 0.2)  # resumed the next Friday 10:00
    assert request.sla_due_at == paris(2027, 3, 16)  # 2 business days: Mon + Tue morning
    assert clock.remaining(request, paris(2027, 3, 15), cal) == pytest.approx(1)


async def test_warning_then_breach_are_emitted_once(rq: RequestsApp) -> None:
    created = await rq.file(
        rq.staff("toulon"), agent_id="2019500001", channel="guichet", prestation_code="LOG-003"
    )  # 3 days
    rid = created["request_id"]
    submitted = datetime.fromisoformat(created["submitted_at"])
    cal = calendar_for("83")

    async def scan(at: datetime) -> int:
        async with rq.runtime.db.transaction() as session:
            service = RequestService(session, rq.runtime.outbox, rq.settings, now=lambda: at)
            return await service.report_sla()

    assert await scan(cal.add_business_days(submitted, 2)) == 0
    near = cal.add_business_days(submitted, 2.5)
    assert await scan(near) == 1
    assert await scan(near + timedelta(minutes=5)) == 0
    late = cal.add_business_days(submitted, 3) + timedelta(seconds=1)
    assert await scan(late) == 1
    assert await scan(late + timedelta(days=3)) == 0
    events = [e for e in await rq.events_for(rid, 3) if e.type != rq_events.REQUEST_SUBMITTED]
    assert [e.type for e in events] == [
        rq_events.REQUEST_SLA_WARNING,
        rq_events.REQUEST_SLA_BREACHED,
    ]
    body = await rq.call("GET", f"/v1/requests/{rid}", rq.ops)
    assert body["sla"]["warned_at"]
    assert body["sla"]["breached_at"]
    at_risk = await rq.call("GET", "/v1/requests?sla_at_risk=true&atlas_id=toulon", rq.ops)
    assert rid in [r["request_id"] for r in at_risk["items"]]


async def test_a_paused_request_is_never_reported(rq: RequestsApp) -> None:
    created = await rq.file(
        rq.staff("toulon"), agent_id="2019500002", channel="guichet", prestation_code="LOG-003"
    )
    rid = created["request_id"]
    staff = rq.staff("toulon")
    await rq.move(rid, "en_instruction", staff)
    await rq.move(rid, "en_attente_usager", staff, reason="pièce manquante")
    async with rq.runtime.db.transaction() as session:
        far = datetime.now(UTC) + timedelta(days=60)
        service = RequestService(session, rq.runtime.outbox, rq.settings, now=lambda: far)
        await service.report_sla()
        request = await session.get(Request, rid)
        assert request is not None
        assert request.sla_warned_at is None


async def test_the_monitor_reports_on_its_own(rq: RequestsApp) -> None:
    """The periodic runner in the app's workers emits a breach without being asked."""
    created = await rq.file(
        rq.staff("toulon"), agent_id="2019500003", channel="guichet", prestation_code="LOG-003"
    )
    rid = created["request_id"]
    async with rq.runtime.db.transaction() as session:
        request = await session.get(Request, rid)
        assert request is not None
        past = datetime.now(UTC) - timedelta(minutes=1)
        request.sla_warn_at = request.sla_due_at = past
    events = await rq.events_for(rid, 3)
    assert {e.type for e in events[1:]} == {
        rq_events.REQUEST_SLA_WARNING,
        rq_events.REQUEST_SLA_BREACHED,
    }


@pytest.mark.parametrize("departement", ["75", "67", "974", "988"])
def test_fast_business_time_equals_counting_day_by_day(departement: str) -> None:
    import random

    cal = calendar_for(departement)
    rng = random.Random(departement)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(200):
        start = base + timedelta(minutes=rng.randrange(0, 3 * 365 * 24 * 60))
        end = start + timedelta(minutes=rng.randrange(0, 400 * 24 * 60))
        naive = 0.0
        day = start.astimezone(cal.zone).date()
        while day <= end.astimezone(cal.zone).date():
            naive += cal._fraction(day, start, end)
            day += timedelta(days=1)
        assert cal.business_days_between(start, end) == pytest.approx(naive, abs=1e-9)
        assert cal.business_days_between(start, cal.add_business_days(start, 7.25)) == (
            pytest.approx(7.25)
        )
