"""Crisis rules from the replicated catalog, and mobility's commands on the real broker."""

from __future__ import annotations

import uuid
from typing import Any

from requests_factories import (
    RequestsApp,
    case_commands,
    close_command,
    open_command,
    prestation_event,
    produce_raw,
    space_event,
)
from sqlalchemy import select

from atlas_events.consumer import dlq_reason
from atlas_events.testing import read_topic, topic_size, wait_until
from atlas_requests.catalog.models import CatalogPrestation, CatalogSpace

AGENT = "2019200001"


async def _space_crisis(rq: RequestsApp, atlas_id: str) -> bool:
    async with rq.runtime.db.transaction() as session:
        space = await session.get(CatalogSpace, atlas_id)
        return bool(space and space.crisis_mode)


async def test_crisis_closes_the_counter_and_names_the_open_channels(rq: RequestsApp) -> None:
    staff = rq.staff("lyon")
    # Before the crisis, the counter takes LOG-003 and a crisis-only prestation is inactive.
    await rq.file(
        staff, atlas_id="lyon", agent_id=AGENT, channel="guichet", prestation_code="LOG-003"
    )
    inactive = await rq.file(
        staff, atlas_id="lyon", agent_id=AGENT, channel="telephone", prestation_code="CRI-010",
        expect=409,
    )  # fmt: skip
    assert inactive["detail"]["open_channels"] == []

    await rq.produce(rq.settings.spaces_topic, space_event("lyon", version=2, crisis=True))
    await wait_until(lambda: _space_crisis(rq, "lyon"))

    # A non-essential prestation loses the counter only (catalog shows the same rule).
    refused = await rq.file(
        staff, atlas_id="lyon", agent_id=AGENT, channel="guichet", prestation_code="ADM-003",
        expect=409,
    )  # fmt: skip
    assert refused["error"] == "ChannelUnavailable"
    assert refused["detail"]["open_channels"] == ["telephone"]
    assert refused["detail"]["crisis_mode"] is True
    by_phone = await rq.file(
        staff, atlas_id="lyon", agent_id=AGENT, channel="telephone", prestation_code="ADM-003"
    )
    assert by_phone["status"] == "soumise"
    # An essential prestation keeps the counter; crisis-only ones start.
    at_counter = await rq.file(
        staff, atlas_id="lyon", agent_id=AGENT, channel="guichet", prestation_code="LOG-003"
    )
    assert at_counter["status"] == "soumise"
    await rq.file(rq.agent(AGENT), atlas_id="lyon", prestation_code="CRI-010")
    # Other spaces are not in crisis.
    await rq.file(rq.staff("toulon"), agent_id=AGENT, channel="guichet", prestation_code="LOG-003")


async def test_replica_keeps_the_latest_version_and_withdrawals(rq: RequestsApp) -> None:
    topic = rq.settings.prestations_topic
    await rq.produce(topic, prestation_event("ZZZ-001", version=2, title="Version deux"))
    await rq.produce(topic, prestation_event("ZZZ-001", version=1, title="Version une"))
    await rq.produce(topic, prestation_event("ZZZ-002", version=1))

    async def titles() -> dict[str, str] | None:
        async with rq.runtime.db.transaction() as session:
            rows = (await session.execute(select(CatalogPrestation))).scalars().all()
        got = {r.code: r.title for r in rows}
        return got if "ZZZ-002" in got else None

    assert (await wait_until(titles))["ZZZ-001"] == "Version deux"  # the stale version lost


async def test_same_open_command_twice_opens_one_request(rq: RequestsApp) -> None:
    case = f"TERRE-{uuid.uuid4().hex[:8]}:logement"
    first, second = open_command(case), open_command(case)  # two events, one case
    await rq.produce(rq.settings.commands_topic, first, second, first, key=case)

    async def one() -> bool:
        return len(await rq.requests_for_case(case)) == 1

    await wait_until(one)
    [request] = await rq.requests_for_case(case)
    assert request.channel == "anticipation"
    assert request.status == "soumise"
    assert request.filed_by_role == "system"
    assert request.prestation_code == "LOG-001"
    # A later command of the same case is applied after the duplicates: still one request.
    await rq.produce(rq.settings.commands_topic, close_command(case, "completed"), key=case)

    async def closed() -> bool:
        rows = await rq.requests_for_case(case)
        return len(rows) == 1 and rows[0].status == "terminee"

    await wait_until(closed)
    events = await rq.events_for(request.id, 2)
    assert [e.data["status"] for e in events] == ["soumise", "terminee"]


async def test_unknown_prestation_in_a_command_uses_the_case_default(rq: RequestsApp) -> None:
    case = f"TERRE-{uuid.uuid4().hex[:8]}:demenagement"
    command = open_command(case, prestation_code="DEM-404", case_kind="demenagement")
    await rq.produce(rq.settings.commands_topic, command, key=case)
    [request] = await wait_until(lambda: rq.requests_for_case(case))
    assert request.prestation_code == "MOB-002"
    assert request.requested_prestation_code == "DEM-404"
    assert request.prestation_unverified is False
    assert request.sla_target_days == 20
    body = await rq.call("GET", f"/v1/requests/{request.id}", rq.staff("toulon"))
    assert body["requested_prestation_code"] == "DEM-404"


async def test_open_command_at_another_space_transfers_the_case_request(rq: RequestsApp) -> None:
    case = f"TERRE-{uuid.uuid4().hex[:8]}:scolarite"
    cmd = open_command(case, prestation_code="FAM-006", case_kind="scolarite")
    await rq.produce(rq.settings.commands_topic, cmd, key=case)
    await wait_until(lambda: rq.requests_for_case(case))
    moved = open_command(case, atlas_id="brest", prestation_code="FAM-006", case_kind="scolarite")
    await rq.produce(rq.settings.commands_topic, moved, key=case)

    async def two() -> list[object] | None:
        rows = await rq.requests_for_case(case)
        return rows if len(rows) == 2 else None

    rows = sorted(await wait_until(two), key=lambda r: r.created_at)  # type: ignore[attr-defined]
    old, new = rows
    assert old.status == "transferee"
    assert old.transferred_to == new.id
    assert new.atlas_id == "brest"
    assert new.transferred_from == old.id


async def test_invalid_command_goes_to_the_dlq_with_its_reason(rq: RequestsApp) -> None:
    case = f"TERRE-{uuid.uuid4().hex[:8]}:logement"
    bad = open_command(case, agent_id="not-an-agent")
    await rq.produce(rq.settings.commands_topic, bad, key=case)
    await produce_raw(rq.bootstrap, rq.settings.commands_topic, b"{nope", [("ce_id", b"x")])
    # Partitions differ (keys differ), so the DLQ's order is not the produce order.
    dead = await read_topic(rq.bootstrap, f"{rq.settings.commands_topic}.dlq", count=2)
    reasons = sorted(dlq_reason(record.headers) or "" for record in dead)
    assert reasons[0].startswith("invalid data"), reasons
    assert "agent_id" in reasons[0]
    assert reasons[1].startswith("invalid event"), reasons
    assert await rq.requests_for_case(case) == []


async def test_a_command_batch_is_applied_in_order_under_the_ids_it_gives(
    rq: RequestsApp,
) -> None:
    """A batch opens its cases' requests under the ids mobility gave them (so a case knows its
    request at once), closes in order after the open of the same batch, and the same batch
    delivered again opens nothing new."""
    mutation = f"TERRE-{uuid.uuid4().hex[:8]}"
    logement, demenagement = f"{mutation}:logement", f"{mutation}:demenagement"
    given = str(uuid.uuid4())
    batch = case_commands(
        open_command(logement, request_id=given),
        open_command(demenagement, prestation_code="MOB-002", case_kind="demenagement"),
        close_command(demenagement, "cancelled", reason="besoin retiré"),
    )
    await rq.produce(rq.settings.commands_topic, batch, batch, key="hr:0")

    async def applied() -> bool:
        rows = await rq.requests_for_case(demenagement)
        return (
            len(await rq.requests_for_case(logement)) == 1
            and bool(rows)
            and (rows[0].status == "sans_suite")
        )

    await wait_until(applied)
    [housing] = await rq.requests_for_case(logement)
    assert housing.id == given
    assert housing.status == "soumise"
    [moving] = await rq.requests_for_case(demenagement)
    assert moving.status == "sans_suite"  # closed after its open, in the same batch
    events = await rq.events_for(given, 1)
    assert events[0].data["request_id"] == given
    assert events[0].data["case_id"] == logement


async def test_a_command_batch_with_a_bad_command_goes_whole_to_the_dlq(rq: RequestsApp) -> None:
    """A batch is one message: one invalid command parks it whole, with the reason naming the
    command, and writes none of it; the next batch is applied."""
    first, second = (f"TERRE-{uuid.uuid4().hex[:8]}:logement" for _ in range(2))
    bad = case_commands(open_command(first), open_command(second, agent_id="not-an-agent"))
    good = case_commands(open_command(first))
    await rq.produce(rq.settings.commands_topic, bad, good, key="hr:1")
    dlq = f"{rq.settings.commands_topic}.dlq"

    async def dead_letter() -> Any:
        size = await topic_size(rq.bootstrap, dlq)  # other tests of the module park theirs too
        records = await read_topic(rq.bootstrap, dlq, count=size) if size else []
        mine = [r for r in records if dict(r.headers).get("ce_id") == bad.id.encode()]
        return mine[0] if mine else None

    dead = await wait_until(dead_letter, timeout=20)
    reason = dlq_reason(dead.headers) or ""
    assert reason.startswith("invalid data"), reason
    assert "commands.1" in reason
    assert "agent_id" in reason
    [request] = await wait_until(lambda: rq.requests_for_case(first))
    assert request.status == "soumise"
    assert await rq.requests_for_case(second) == []
