"""The queue gauges the alerts read, as Prometheus scrapes them from `/metrics`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families
from requests_factories import RequestsApp

from atlas_events.testing import wait_until
from atlas_requests.requests.models import Request


async def _scrape(rq: RequestsApp) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await rq.http.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name.startswith("atlas_requests_")
    }


def _breached(space: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("atlas_requests_sla_breached_open", (("atlas_id", space),))


def _open(space: str, status: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("atlas_requests_open", (("atlas_id", space), ("status", status)))


async def test_open_requests_past_their_sla_are_counted_per_space(rq: RequestsApp) -> None:
    staff = rq.staff("strasbourg")
    late = await rq.file(staff, atlas_id="strasbourg", agent_id="2019600001", channel="guichet")
    on_time = await rq.file(staff, atlas_id="strasbourg", agent_id="2019600002", channel="guichet")
    other = await rq.file(rq.staff("lyon"), atlas_id="lyon", agent_id="2019600003")
    async with rq.runtime.db.transaction() as session:
        request = await session.get(Request, late["request_id"])
        assert request is not None
        # The deadline went by a minute ago; the gauge counts it whether or not the SLA
        # monitor has flagged it yet.
        request.sla_due_at = datetime.now(UTC) - timedelta(minutes=1)

    async def counted() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        samples = await _scrape(rq)
        return samples if samples.get(_breached("strasbourg")) == 1 else None

    samples = await wait_until(counted, timeout=20, interval=0.2)
    assert samples[_open("strasbourg", "soumise")] == 2
    assert samples[_breached("lyon")] == 0
    assert samples[_open("lyon", "soumise")] == 1
    assert on_time["request_id"] != late["request_id"] != other["request_id"]

    # Closing the late request takes it out of the figure; the space's backlog shrinks.
    await rq.move(late["request_id"], "refusee", staff, reason="hors périmètre")

    async def cleared() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        samples = await _scrape(rq)
        return samples if samples.get(_breached("strasbourg")) == 0 else None

    samples = await wait_until(cleared, timeout=20, interval=0.2)
    assert samples[_open("strasbourg", "soumise")] == 1

    # A space whose last open request closes disappears from the gauges.
    await rq.move(other["request_id"], "refusee", rq.staff("lyon"), reason="doublon")

    async def gone() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        samples = await _scrape(rq)
        return samples if _breached("lyon") not in samples else None

    samples = await wait_until(gone, timeout=20, interval=0.2)
    assert _open("lyon", "soumise") not in samples
