"""CONTRACTS.md §1 guarantees, one scenario each, on the real broker and PostgreSQL."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from mobility_factories import (
    BREST,
    TOULON,
    RunningService,
    TopicReader,
    cancellation,
    hr_event,
    new_ids,
    snapshot,
)
from sqlalchemy import text

from atlas_events.cloudevents import CloudEvent, from_kafka, to_kafka
from atlas_events.consumer import DLQ_CONSUMER, MAX_REASON_CHARS, dlq_reason
from atlas_events.outbox import MAX_EVENT_BYTES
from atlas_events.schemas import catalog, hr, requests
from atlas_events.schemas import mobility as mob
from atlas_events.testing import wait_until
from atlas_mobility.stream.processor import RawRecord
from atlas_mobility.stream.workers import StreamWorker


@pytest.fixture(scope="module")
async def commands(mobility: RunningService) -> AsyncIterator[TopicReader]:
    reader = TopicReader(mobility.bootstrap, mobility.topics.commands)
    await reader.start()
    yield reader
    await reader.stop()


@pytest.fixture(scope="module")
async def dossier_events(mobility: RunningService) -> AsyncIterator[TopicReader]:
    reader = TopicReader(mobility.bootstrap, mobility.topics.dossiers)
    await reader.start()
    yield reader
    await reader.stop()


def kinds(dossier: dict) -> dict[str, dict]:
    return {c["kind"]: c for c in dossier["cases"]}


async def test_announced_opens_dossier_and_cases_at_destination(
    mobility: RunningService, commands: TopicReader, dossier_events: TopicReader
) -> None:
    mutation_id, agent_id = new_ids()
    report = date.today() + timedelta(days=200)
    data = snapshot(
        mutation_id,
        agent_id,
        report_date=report,
        children=[("c1", report - timedelta(days=9 * 365))],
    )
    await mobility.publish_hr(hr_event(data))

    dossier = await mobility.wait_dossier(mutation_id, cases=3)
    assert dossier["status"] == "ouvert"
    assert dossier["destination_atlas_id"] == TOULON
    assert dossier["origin_atlas_id"] == "ATLAS-56121-LORIENT"
    assert dossier["anticipation_days"] == 200
    cases = kinds(dossier)
    assert set(cases) == {"logement", "scolarite", "demenagement"}
    assert all(c["atlas_id"] == TOULON and c["status"] == "ouvert" for c in cases.values())
    logement = [
        (m["code"], date.fromisoformat(m["due_date"])) for m in cases["logement"]["milestones"]
    ]
    assert logement == [
        ("demande_logement", report - timedelta(days=150)),
        ("visite_logement", report - timedelta(days=90)),
        ("entree_dans_les_lieux", report - timedelta(days=7)),
    ]
    assert {m["child_ref"] for m in cases["scolarite"]["milestones"]} == {"c1"}
    assert cases["scolarite"]["details"]["children"][0]["age_on_report_date"] == 8

    # Each case asks the requests service to open a request at the destination space.
    opens = await commands.wait_for(3, subject_prefix=mutation_id, type=requests.OPEN_REQUEST)
    assert {(e.data["case_kind"], e.data["atlas_id"], e.data["channel"]) for e in opens} == {
        ("logement", TOULON, "anticipation"),
        ("scolarite", TOULON, "anticipation"),
        ("demenagement", TOULON, "anticipation"),
    }
    assert {e.data["case_id"] for e in opens} == {f"{mutation_id}:{k}" for k in cases}
    # The agent and the destination staff are told (notify reads dossier.opened), and the origin.
    opened = await dossier_events.wait_for(1, subject_prefix=mutation_id, type=mob.DOSSIER_OPENED)
    assert opened[0].data["destination_atlas_id"] == TOULON
    departure = await dossier_events.wait_for(
        1, subject_prefix=mutation_id, type=mob.DEPARTURE_ANNOUNCED
    )
    assert departure[0].data["origin_atlas_id"] == "ATLAS-56121-LORIENT"
    timeline = await mobility.timeline(mutation_id)
    assert timeline[0]["outcome"] == "applied"
    assert timeline[0]["revision"] == 1


async def test_duplicate_delivery_changes_nothing(
    mobility: RunningService, commands: TopicReader
) -> None:
    mutation_id, agent_id = new_ids()
    event = hr_event(snapshot(mutation_id, agent_id, move=False))
    await mobility.publish_hr(event)
    await mobility.publish_hr(event)  # the very same message again
    await mobility.publish_hr(hr_event(snapshot(mutation_id, agent_id, move=False)))  # same rev
    await wait_until(
        lambda: _outcomes(mobility, mutation_id, ["applied", "duplicate", "duplicate"]), timeout=30
    )
    dossier = await mobility.wait_dossier(mutation_id, cases=1)
    assert dossier["revision"] == 1
    await commands.wait_for(1, subject_prefix=mutation_id, type=requests.OPEN_REQUEST)
    await mobility.wait_dossier(mutation_id, cases=1)
    await commands.poll()
    assert len(commands.events(subject_prefix=mutation_id)) == 1


async def test_handler_facts_are_published_and_not_read_back(
    mobility: RunningService, commands: TopicReader
) -> None:
    """The HR stage applies the handlers itself and publishes each work item on the handler's
    topic, with its registry schema, as a fact: the same record posted there again (a replay, an
    integrator's mistake) opens no second case, command or timeline entry."""
    mutation_id, agent_id = new_ids()
    first = date.today() + timedelta(days=200)
    handler = TopicReader(mobility.bootstrap, mobility.topics.handler("logement"))
    await handler.start()
    try:
        await mobility.publish_hr(
            hr_event(snapshot(mutation_id, agent_id, report_date=first, move=False))
        )
        await mobility.wait_dossier(mutation_id, cases=1)

        async def opened_item() -> list | None:
            await handler.poll()
            return [r for r in handler.records if r.key == mutation_id.encode()] or None

        (item,) = await wait_until(opened_item, timeout=30, interval=0.05)
        fact = from_kafka(list(item.headers), item.value)
        assert fact.type == mob.LOGEMENT_CASE_OPENED
        published = mobility.topics.registry.validate(fact.type, fact.data)
        assert isinstance(published, mob.LogementCase)
        assert published.case_id == f"{mutation_id}:logement"
        assert published.milestones
        for _ in range(2):  # the same record posted again
            await mobility.publish_raw(
                mobility.topics.handler("logement"), item.key, item.value, list(item.headers)
            )
    finally:
        await handler.stop()
    # Same key, same partition: once revision 2 is applied, the redeliveries were handled.
    later = first + timedelta(days=30)
    await mobility.publish_hr(
        hr_event(
            snapshot(mutation_id, agent_id, revision=2, report_date=later, move=False),
            kind="amended",
        )
    )

    async def at_revision_2() -> list[dict] | None:
        entries = await mobility.timeline(mutation_id)
        return entries if any("replanifié" in e["summary"] for e in entries) else None

    entries = await wait_until(at_revision_2, timeout=30)
    logement = [
        (e["revision"], e["summary"]) for e in entries if e["summary"].startswith("logement")
    ]
    # Opened at revision 1, rescheduled at 2, nothing for the two redeliveries in between.
    assert [revision for revision, _ in logement] == [1, 2], logement
    assert logement[0][1].startswith("logement : dossier ouvert")
    dossier = await mobility.wait_dossier(mutation_id, cases=1)
    assert len(dossier["cases"]) == 1
    await commands.wait_for(1, subject_prefix=mutation_id, type=requests.OPEN_REQUEST)
    await commands.poll()
    case_commands = commands.events(subject_prefix=mutation_id)
    assert [e.type for e in case_commands] == [requests.OPEN_REQUEST]


async def hr_entry(mobility: RunningService, mutation_id: str, *, revision: int) -> dict:
    """The timeline entry of the HR event of that revision."""
    entries = await mobility.timeline(mutation_id)
    return next(e for e in entries if e["event_id"] and e["revision"] == revision)


async def _outcomes(mobility: RunningService, mutation_id: str, expected: list[str]) -> bool:
    if await mobility.dossier(mutation_id) is None:
        return False
    hr_entries = [e for e in await mobility.timeline(mutation_id) if e["event_id"]]
    return [e["outcome"] for e in hr_entries] == expected


async def test_stale_revision_is_recorded_and_ignored(
    mobility: RunningService, commands: TopicReader
) -> None:
    mutation_id, agent_id = new_ids()
    report = date.today() + timedelta(days=180)
    await mobility.publish_hr(
        hr_event(
            snapshot(mutation_id, agent_id, revision=2, report_date=report, move=False),
            kind="amended",
        )
    )
    await mobility.publish_hr(
        hr_event(snapshot(mutation_id, agent_id, revision=1, destination="29019", move=False))
    )
    await wait_until(lambda: _outcomes(mobility, mutation_id, ["applied", "stale"]), timeout=30)
    dossier = await mobility.wait_dossier(mutation_id, revision=2, cases=1)
    assert dossier["destination_atlas_id"] == TOULON
    assert dossier["report_date"] == report.isoformat()
    entries = await mobility.timeline(mutation_id)
    assert entries[0]["summary"].startswith("mutation annoncée")  # first revision seen opens it
    # The case is in the database before its command is relayed: wait for it, then read on.
    await commands.wait_for(1, subject_prefix=mutation_id, type=requests.OPEN_REQUEST)
    await commands.poll()
    assert [e.data["atlas_id"] for e in commands.events(subject_prefix=mutation_id)] == [TOULON]


async def test_report_date_change_reschedules_milestones(mobility: RunningService) -> None:
    mutation_id, agent_id = new_ids()
    first = date.today() + timedelta(days=200)
    later = first + timedelta(days=30)
    await mobility.publish_hr(
        hr_event(snapshot(mutation_id, agent_id, report_date=first, move=False))
    )
    await mobility.wait_dossier(mutation_id, cases=1)
    await mobility.publish_hr(
        hr_event(
            snapshot(mutation_id, agent_id, revision=2, report_date=later, move=False),
            kind="amended",
        )
    )

    async def rescheduled() -> dict | None:
        dossier = await mobility.dossier(mutation_id)
        case = kinds(dossier or {"cases": []}).get("logement")
        if case is None:
            return None
        dues = {m["code"]: date.fromisoformat(m["due_date"]) for m in case["milestones"]}
        return dossier if dues["demande_logement"] == later - timedelta(days=150) else None

    dossier = await wait_until(rescheduled, timeout=30)
    assert dossier["report_date"] == later.isoformat()
    assert len(dossier["cases"]) == 1
    amended = await hr_entry(mobility, mutation_id, revision=2)
    assert amended["changes"] == ["report_date"]
    assert amended["outcome"] == "applied"
    entries = await mobility.timeline(mutation_id)
    assert any("replanifié" in e["summary"] and e["revision"] == 2 for e in entries)


async def test_destination_change_moves_cases_and_requests(
    mobility: RunningService, commands: TopicReader
) -> None:
    mutation_id, agent_id = new_ids()
    await mobility.publish_hr(hr_event(snapshot(mutation_id, agent_id)))
    await mobility.wait_dossier(mutation_id, cases=2)
    await mobility.publish_hr(
        hr_event(snapshot(mutation_id, agent_id, revision=2, destination="29019"), kind="amended")
    )

    async def moved() -> dict | None:
        dossier = await mobility.dossier(mutation_id)
        if dossier is None or not all(c["atlas_id"] == BREST for c in dossier["cases"]):
            return None
        return dossier

    dossier = await wait_until(moved, timeout=30)
    assert dossier["destination_atlas_id"] == BREST
    assert len(dossier["cases"]) == 2
    assert all(c["status"] == "ouvert" for c in dossier["cases"])
    sent = await commands.wait_for(6, subject_prefix=mutation_id)
    closes = [e for e in sent if e.type == requests.CLOSE_REQUEST]
    assert {(e.data["case_id"].split(":")[-1], e.data["outcome"]) for e in closes} == {
        ("logement", "transferred"),
        ("demenagement", "transferred"),
    }
    opens_at = [e.data["atlas_id"] for e in sent if e.type == requests.OPEN_REQUEST]
    assert sorted(opens_at) == [BREST, BREST, TOULON, TOULON]
    # Per case, the close at the old space comes before the open at the new one.
    for kind in ("logement", "demenagement"):
        per_case = [e for e in sent if e.data["case_id"] == f"{mutation_id}:{kind}"]
        assert [e.type for e in per_case] == [
            requests.OPEN_REQUEST,
            requests.CLOSE_REQUEST,
            requests.OPEN_REQUEST,
        ]


async def test_child_added_opens_scolarite_case(mobility: RunningService) -> None:
    mutation_id, agent_id = new_ids()
    report = date(date.today().year + 1, 8, 28)
    await mobility.publish_hr(hr_event(snapshot(mutation_id, agent_id, report_date=report)))
    await mobility.wait_dossier(mutation_id, cases=2)
    child = date(report.year - 7, 2, 1)
    await mobility.publish_hr(
        hr_event(
            snapshot(
                mutation_id, agent_id, revision=2, report_date=report, children=[("k1", child)]
            ),
            kind="amended",
        )
    )
    dossier = await mobility.wait_dossier(mutation_id, revision=2, cases=3)
    scolarite = kinds(dossier)["scolarite"]
    assert scolarite["status"] == "ouvert"
    # A September start: spring enrolment milestones of that year, for that child.
    assert {(m["code"], m["child_ref"]) for m in scolarite["milestones"]} == {
        ("inscription_mairie", "k1"),
        ("admission_ecole", "k1"),
    }
    assert (await hr_entry(mobility, mutation_id, revision=2))["changes"] == ["household"]


async def test_needs_changed_closes_and_opens_cases(
    mobility: RunningService, commands: TopicReader
) -> None:
    mutation_id, agent_id = new_ids()
    await mobility.publish_hr(hr_event(snapshot(mutation_id, agent_id, housing=True, move=False)))
    await mobility.wait_dossier(mutation_id, cases=1)
    await mobility.publish_hr(
        hr_event(
            snapshot(mutation_id, agent_id, revision=2, housing=False, move=True), kind="amended"
        )
    )

    async def swapped() -> dict | None:
        dossier = await mobility.dossier(mutation_id)
        cases = kinds(dossier or {"cases": []})
        if cases.get("logement", {}).get("status") == "annule" and "demenagement" in cases:
            return dossier
        return None

    dossier = await wait_until(swapped, timeout=30)
    assert kinds(dossier)["demenagement"]["status"] == "ouvert"
    assert dossier["status"] == "ouvert"
    sent = await commands.wait_for(3, subject_prefix=mutation_id)
    assert [(e.type, e.data["case_id"].split(":")[-1]) for e in sent] == [
        (requests.OPEN_REQUEST, "logement"),
        (requests.CLOSE_REQUEST, "logement"),
        (requests.OPEN_REQUEST, "demenagement"),
    ] or sorted((e.type, e.data["case_id"]) for e in sent) == sorted(
        [
            (requests.OPEN_REQUEST, f"{mutation_id}:logement"),
            (requests.CLOSE_REQUEST, f"{mutation_id}:logement"),
            (requests.OPEN_REQUEST, f"{mutation_id}:demenagement"),
        ]
    )
    close = next(e for e in sent if e.type == requests.CLOSE_REQUEST)
    assert close.data["outcome"] == "cancelled"


async def test_cancellation_closes_everything(
    mobility: RunningService, commands: TopicReader, dossier_events: TopicReader
) -> None:
    mutation_id, agent_id = new_ids()
    await mobility.publish_hr(hr_event(snapshot(mutation_id, agent_id)))
    await mobility.wait_dossier(mutation_id, cases=2)
    await mobility.publish_hr(
        cancellation(mutation_id, agent_id, 2, "Affectation annulée par la DRH")
    )

    async def cancelled() -> dict | None:
        dossier = await mobility.dossier(mutation_id)
        if dossier and all(c["status"] == "annule" for c in dossier["cases"]):
            return dossier
        return None

    dossier = await wait_until(cancelled, timeout=30)
    assert dossier["status"] == "annule"
    assert dossier["cancel_reason"] == "Affectation annulée par la DRH"
    closes = await commands.wait_for(2, subject_prefix=mutation_id, type=requests.CLOSE_REQUEST)
    assert {e.data["outcome"] for e in closes} == {"cancelled"}
    event = await dossier_events.wait_for(1, subject_prefix=mutation_id, type=mob.DOSSIER_CANCELLED)
    assert event[0].data["reason"] == "Affectation annulée par la DRH"


async def test_unknown_commune_opens_dossier_a_orienter(mobility: RunningService) -> None:
    mutation_id, agent_id = new_ids()
    await mobility.publish_hr(hr_event(snapshot(mutation_id, agent_id, destination="98611")))
    dossier = await mobility.wait_dossier(mutation_id)
    assert dossier["status"] == "a_orienter"
    assert dossier["destination_atlas_id"] is None
    assert dossier["destination_zone"] == "com"
    assert dossier["cases"] == []
    # Once HR amends to a covered commune, the cases open there.
    await mobility.publish_hr(
        hr_event(snapshot(mutation_id, agent_id, revision=2, destination="83137"), kind="amended")
    )
    dossier = await mobility.wait_dossier(mutation_id, revision=2, cases=2)
    assert dossier["status"] == "ouvert"


async def test_commune_no_commune_has_opens_dossier_a_orienter_with_the_reason(
    mobility: RunningService,
) -> None:
    """An HR typo (99999) is a valid mutation whose commune is unknown: nothing is lost, the
    national cell gets it `a_orienter` with the reason on the timeline, as for an uncovered one."""
    mutation_id, agent_id = new_ids()
    await mobility.publish_hr(hr_event(snapshot(mutation_id, agent_id, destination="99999")))
    dossier = await mobility.wait_dossier(mutation_id)
    assert dossier["status"] == "a_orienter"
    assert dossier["destination_atlas_id"] is None
    assert dossier["cases"] == []
    (entry,) = [e for e in await mobility.timeline(mutation_id) if e["event_id"]]
    assert entry["outcome"] == "applied"
    assert "commune 99999 inconnue du référentiel des communes" in entry["summary"]
    await mobility.publish_hr(
        hr_event(snapshot(mutation_id, agent_id, revision=2, destination="83137"), kind="amended")
    )
    dossier = await mobility.wait_dossier(mutation_id, revision=2, cases=2)
    assert dossier["status"] == "ouvert"


async def dead_letter_of(dlq: TopicReader, event: CloudEvent) -> Any:
    """The DLQ record of `event`, once parked (other scenarios of the module park events too)."""

    async def parked() -> list[Any] | None:
        await dlq.poll()
        mine = [r for r in dlq.records if dict(r.headers).get("ce_id") == event.id.encode()]
        return mine or None

    [record] = await wait_until(parked, timeout=20)
    return record


async def test_malformed_event_goes_to_dlq_and_the_next_is_processed(
    mobility: RunningService,
) -> None:
    dlq = TopicReader(mobility.bootstrap, mobility.topics.hr + ".dlq")
    await dlq.start()
    try:
        bad_id, bad_agent = new_ids()
        invalid = snapshot(bad_id, bad_agent)
        invalid["report_date"] = "30/08/2027"
        await mobility.publish_hr(hr_event(invalid))
        await mobility.publish_raw(
            mobility.topics.hr, b"x", b"{not json", [("ce_specversion", b"1.0")]
        )
        mutation_id, agent_id = new_ids()
        await mobility.publish_hr(hr_event(snapshot(mutation_id, agent_id)))
        await mobility.wait_dossier(mutation_id, cases=2)

        async def parked() -> list | None:
            await dlq.poll()
            return dlq.records if len(dlq.records) >= 2 else None

        records = await wait_until(parked, timeout=20)
        reasons = [dlq_reason(list(r.headers)) or "" for r in records]
        assert any("report_date" in r and r.startswith("invalid data") for r in reasons), reasons
        assert any(r.startswith("invalid event") for r in reasons), reasons
        assert all(dict(r.headers)[DLQ_CONSUMER] == b"mobility.ingest" for r in records)
        assert await mobility.dossier(bad_id) is None
    finally:
        await dlq.stop()


async def test_one_batch_of_valid_duplicate_stale_and_malformed_events_applies_the_valid(
    mobility: RunningService,
) -> None:
    """One take of the HR stage, as faust hands it over: the valid events are applied in one
    transaction (every row they wrote has the same xmin), the duplicate and the stale revision
    are recorded and change nothing, the malformed ones are parked with their reason."""
    processor = next(
        c.processor for c in mobility.app.state.runtime.consumers if isinstance(c, StreamWorker)
    )
    ingest = next(spec for spec in processor.specs() if spec.name == "ingest")
    (a, a_agent), (b, b_agent), (c, c_agent) = new_ids(), new_ids(), new_ids()
    a1 = hr_event(snapshot(a, a_agent))
    later = date.today() + timedelta(days=250)
    a2 = hr_event(snapshot(a, a_agent, revision=2, report_date=later), kind="amended")
    c2 = hr_event(snapshot(c, c_agent, revision=2, housing=False))
    c1 = hr_event(snapshot(c, c_agent, revision=1, destination="29019"))
    broken = snapshot(*new_ids())
    broken["household"] = {"partner": "peut-être"}
    invalid = hr_event(broken)
    not_json = CloudEvent.create(hr.MUTATION_ANNOUNCED, "urn:atlas:rh:test", {})
    batch = [
        (a1, None),
        (hr_event(snapshot(b, b_agent, move=False)), None),
        (a1, None),  # the very same event again: a duplicate
        (invalid, None),
        (c2, None),
        (c1, None),  # a revision below the one just applied: stale
        (not_json, b"{not json"),
        (a2, None),  # amends what this batch opened
    ]
    records = []
    for offset, (event, value) in enumerate(batch):
        message = to_kafka(event, "k")
        records.append(
            RawRecord(mobility.topics.hr, 0, offset, b"k", value or message.value, message.headers)
        )
    dlq = TopicReader(mobility.bootstrap, mobility.topics.hr + ".dlq")
    await dlq.start()
    try:
        await processor.process(ingest, records)
        parked = [await dead_letter_of(dlq, e) for e in (invalid, not_json)]
    finally:
        await dlq.stop()
    reasons = [dlq_reason(list(r.headers)) or "" for r in parked]
    assert reasons[0].startswith("invalid data"), reasons
    assert "household.partner" in reasons[0]
    assert reasons[1].startswith("invalid event"), reasons
    assert await mobility.dossier(broken["mutation_id"]) is None

    dossier_a = await mobility.wait_dossier(a, revision=2, cases=2)
    assert dossier_a["report_date"] == later.isoformat()
    assert (await mobility.wait_dossier(b, cases=1))["revision"] == 1
    dossier_c = await mobility.wait_dossier(c, revision=2, cases=1)
    assert dossier_c["destination_atlas_id"] == TOULON  # the stale revision 1 said Brest
    assert await _outcomes(mobility, a, ["applied", "duplicate", "applied"])
    assert await _outcomes(mobility, c, ["applied", "stale"])
    async with mobility.app.state.runtime.db.transaction() as session:
        transactions = await session.scalar(
            text(
                "SELECT count(DISTINCT xmin::text) FROM (SELECT xmin FROM mobility_dossiers"
                " WHERE mutation_id = ANY(:ids) UNION ALL SELECT xmin FROM mobility_cases"
                " WHERE mutation_id = ANY(:ids)) AS written"
            ),
            {"ids": [a, b, c]},
        )
    assert transactions == 1


async def test_event_larger_than_kafka_takes_goes_to_dlq_and_the_next_is_processed(
    mobility: RunningService,
) -> None:
    """A valid announcement whose scolarité work item would not fit in a Kafka message (thousands
    of children) is dead-lettered with the reason, not written: an outbox row Kafka refuses
    would hold up every event after it."""
    dlq = TopicReader(mobility.bootstrap, mobility.topics.hr + ".dlq")
    await dlq.start()
    try:
        big_id, big_agent = new_ids()
        report = date(date.today().year + 1, 8, 28)
        born = date(report.year - 8, 3, 1)
        children = [(f"{i:064d}", born) for i in range(4000)]
        announced = hr_event(snapshot(big_id, big_agent, report_date=report, children=children))
        assert len(json.dumps(announced.data)) < MAX_EVENT_BYTES  # the HR event itself fits
        await mobility.publish_hr(announced)
        mutation_id, agent_id = new_ids()
        await mobility.publish_hr(hr_event(snapshot(mutation_id, agent_id)))
        await mobility.wait_dossier(mutation_id, cases=2)

        record = await dead_letter_of(dlq, announced)
        reason = dlq_reason(list(record.headers)) or ""
        assert reason.startswith(f"EventTooLarge: {mob.SCOLARITE_CASE_OPENED} would be"), reason
        assert dict(record.headers)[DLQ_CONSUMER] == b"mobility.ingest"
        assert await mobility.dossier(big_id) is None
    finally:
        await dlq.stop()


async def test_invalid_event_as_large_as_kafka_takes_reaches_the_dlq_whole(
    mobility: RunningService,
) -> None:
    """An invalid HR event just under Kafka's 1 MiB reaches the DLQ byte for byte, its reason
    bounded however many problems it has: with the DLQ headers it is larger than its own topic
    takes, so the DLQ takes more (a DLQ refusing it would hold up every event after it)."""
    dlq = TopicReader(mobility.bootstrap, mobility.topics.hr + ".dlq")
    await dlq.start()
    try:
        bad_id, bad_agent = new_ids()
        born = date(date.today().year - 8, 3, 1)

        def invalid(count: int) -> CloudEvent:
            data = snapshot(bad_id, bad_agent, children=[(f"{i:08d}", born) for i in range(count)])
            for child in data["household"]["children"]:
                child["birth_date"] = "not a date"  # one problem per child
            return hr_event(data)

        def size(event: CloudEvent) -> int:
            return len(to_kafka(event, key=bad_agent).value or b"")

        per_child = size(invalid(1001)) - size(invalid(1000))
        target = 1_046_000  # with the ce_* headers, just under the topic's 1 MiB
        huge = invalid(1000 + (target - size(invalid(1000))) // per_child)
        value = to_kafka(huge, key=bad_agent).value
        assert value is not None
        assert target - per_child < len(value) <= target
        await mobility.publish_hr(huge)
        mutation_id, agent_id = new_ids()
        await mobility.publish_hr(hr_event(snapshot(mutation_id, agent_id)))
        await mobility.wait_dossier(mutation_id, cases=2)

        record = await dead_letter_of(dlq, huge)
        assert record.value == value
        reason = dlq_reason(list(record.headers)) or ""
        assert reason.startswith("invalid data: household.children.0.birth_date"), reason[:200]
        assert reason.endswith(" more characters)"), reason[-200:]
        assert len(reason) < MAX_REASON_CHARS + 100
        assert await mobility.dossier(bad_id) is None
    finally:
        await dlq.stop()


async def test_request_status_flows_back_and_dossier_closes(
    mobility: RunningService, dossier_events: TopicReader
) -> None:
    mutation_id, agent_id = new_ids()
    await mobility.publish_hr(hr_event(snapshot(mutation_id, agent_id, move=False)))
    await mobility.wait_dossier(mutation_id, cases=1)
    case_id = f"{mutation_id}:logement"
    now = datetime.now(UTC)
    submitted = CloudEvent.create(
        requests.REQUEST_SUBMITTED,
        "urn:atlas:requests",
        requests.RequestSubmitted(
            request_id="req-1-" + mutation_id.lower(),
            atlas_id=TOULON,
            prestation_code="LOG-001",
            agent_id=agent_id,
            channel="anticipation",
            title="Logement",
            status="soumise",
            mutation_id=mutation_id,
            case_id=case_id,
            submitted_at=now,
        ),
    )
    done = CloudEvent.create(
        requests.REQUEST_STATUS_CHANGED,
        "urn:atlas:requests",
        requests.RequestStatusChanged(
            request_id="req-1-" + mutation_id.lower(),
            atlas_id=TOULON,
            agent_id=agent_id,
            previous_status="en_instruction",
            status="terminee",
            case_id=case_id,
            changed_at=now,
        ),
    )
    await mobility.publish(mobility.topics.requests, submitted, "req-1")
    await mobility.publish(mobility.topics.requests, done, "req-1")

    async def closed() -> dict | None:
        dossier = await mobility.dossier(mutation_id)
        return dossier if dossier and dossier["status"] == "clos" else None

    dossier = await wait_until(closed, timeout=30)
    (case,) = dossier["cases"]
    assert case["status"] == "termine"
    assert case["request_id"] == "req-1-" + mutation_id.lower()
    assert case["request_status"] == "terminee"
    await dossier_events.wait_for(1, subject_prefix=mutation_id, type=mob.DOSSIER_CLOSED)


async def test_catalog_snapshot_updates_the_local_replica(mobility: RunningService) -> None:
    # Brest's snapshot now covers Crozon (29042), which resolved to Brest only by default before;
    # a new space in the catalog becomes reachable at once.
    snapshot_event = CloudEvent.create(
        catalog.SPACE_SNAPSHOT,
        "urn:atlas:catalog",
        catalog.SpaceSnapshot(
            atlas_id="ATLAS-29046-DOUARNENEZ-TEST",
            name="Espace ATLAS de Douarnenez",
            commune_insee="29046",
            region="Bretagne",
            overseas=False,
            communes_covered=["29042"],
            crisis_mode=False,
            version=1,
            updated_at=datetime.now(UTC),
            zone="metro",
            departement="29",
        ),
    )
    await mobility.publish(mobility.topics.spaces, snapshot_event, "ATLAS-29046-DOUARNENEZ-TEST")
    mutation_id, agent_id = new_ids()

    async def resolved_there() -> dict | None:
        await mobility.publish_hr(
            hr_event(
                snapshot(mutation_id, agent_id, revision=resolved_there.rev, destination="29042")
            )
        )
        resolved_there.rev += 1
        dossier = await mobility.wait_dossier(mutation_id, revision=resolved_there.rev - 1)
        return dossier if dossier["destination_atlas_id"] == "ATLAS-29046-DOUARNENEZ-TEST" else None

    resolved_there.rev = 1  # type: ignore[attr-defined]
    await wait_until(resolved_there, timeout=30, interval=0.3)


async def test_past_milestones_are_urgent_and_reminded_once_each(
    mobility: RunningService, dossier_events: TopicReader
) -> None:
    mutation_id, agent_id = new_ids()
    # J-150 and J-90 are already past, J-7 (entrée dans les lieux) is today.
    report = date.today() + timedelta(days=7)
    await mobility.publish_hr(
        hr_event(snapshot(mutation_id, agent_id, report_date=report, move=False))
    )
    dossier = await mobility.wait_dossier(mutation_id, cases=1)
    milestones = {m["code"]: m for m in kinds(dossier)["logement"]["milestones"]}
    assert milestones["demande_logement"]["urgent"] is True
    assert milestones["demande_logement"]["status"] == "urgent"
    assert milestones["entree_dans_les_lieux"]["urgent"] is False
    assert milestones["entree_dans_les_lieux"]["status"] == "echu"
    await dossier_events.wait_for(3, subject_prefix=f"{mutation_id}:", type=mob.MILESTONE_DUE)
    await dossier_events.poll()
    reminders = dossier_events.events(subject_prefix=f"{mutation_id}:", type=mob.MILESTONE_DUE)
    # A step found already past gets the overdue reminder only, never "due" and "overdue" at once.
    assert sorted(
        (e.data["milestone"], e.data["reminder"], e.data["urgent"]) for e in reminders
    ) == [
        ("demande_logement", "overdue", True),
        ("entree_dans_les_lieux", "due", False),
        ("visite_logement", "overdue", True),
    ]


async def test_metrics_expose_anticipation_and_cases_by_status(mobility: RunningService) -> None:
    mutation_id, agent_id = new_ids()
    await mobility.publish_hr(hr_event(snapshot(mutation_id, agent_id)))
    await mobility.wait_dossier(mutation_id, cases=2)

    async def exposed() -> str | None:
        text = (await mobility.client.get("/metrics")).text
        wanted = (
            f'atlas_mobility_anticipation_days_count{{atlas_id="{TOULON}"}}',
            'atlas_mobility_anticipation_mean_days{atlas_id="all"}',
            'atlas_mobility_cases{kind="logement",status="ouvert"}',
        )
        return text if all(w in text for w in wanted) else None

    await wait_until(exposed, timeout=15)


async def test_handler_work_and_request_command_continue_the_hr_event_trace(
    mobility: RunningService, commands: TopicReader
) -> None:
    mutation_id, agent_id = new_ids()
    trace_id = secrets.token_hex(16)
    message = to_kafka(hr_event(snapshot(mutation_id, agent_id, children=[])), agent_id)
    headers = [(k, v) for k, v in message.headers if k != "traceparent"]
    headers.append(("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01".encode()))
    handler = TopicReader(mobility.bootstrap, mobility.topics.handler("logement"))
    await handler.start()
    try:
        await mobility.publish_raw(mobility.topics.hr, message.key, message.value, headers)

        def traced(reader: TopicReader, key: bytes) -> list[str]:
            return [
                dict(record.headers or ()).get("traceparent", b"").decode()
                for record in reader.records
                if record.key == key
            ]

        async def handler_item() -> list[str] | None:
            await handler.poll()
            return traced(handler, mutation_id.encode()) or None

        async def open_command() -> list[str] | None:
            # Commands travel batched; each carries its own mutation's trace.
            await commands.poll()
            return [
                e.data["traceparent"]
                for e in commands.events(subject_prefix=f"{mutation_id}:logement")
                if e.type == requests.OPEN_REQUEST
            ] or None

        items = await wait_until(handler_item, timeout=30, interval=0.05)
        opened = await wait_until(open_command, timeout=30, interval=0.05)
    finally:
        await handler.stop()
    # The handler fact and the command were issued while applying the HR event, in a batch of
    # many mutations: both carry this HR event's trace on, not the batch's.
    assert [t.split("-")[1] for t in items] == [trace_id]
    assert [t.split("-")[1] for t in opened] == [trace_id]
