"""The HR simulator: contract-valid plans, reproducible by seed, in realistic proportions."""

from __future__ import annotations

import asyncio
import io
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import date

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from atlas_devstack.hrsim import (
    GARRISON_WEIGHTS,
    PlannedEvent,
    ProgressBar,
    generate_plan,
    load_garrisons,
    summer_season,
)
from atlas_events.cli import main as atlas_main
from atlas_events.cloudevents import from_kafka, to_kafka
from atlas_events.registry import REGISTRY
from atlas_events.schemas import hr

TODAY = date(2026, 11, 28)


def _overseas(event: PlannedEvent) -> bool:
    return str(event.data["destination"]["commune_insee"])[:2] in {"97", "98"}


@pytest.fixture(scope="module")
def big_plan() -> list[PlannedEvent]:
    return generate_plan(4000, seed=20270830, today=TODAY)


def test_every_event_is_valid_against_the_registry(big_plan: list[PlannedEvent]) -> None:
    types = Counter(event.type for event in big_plan)
    assert set(types) == {hr.MUTATION_ANNOUNCED, hr.MUTATION_AMENDED, hr.MUTATION_CANCELLED}
    for event in big_plan:
        assert REGISTRY.topic_for_event(event.type).name == "hr.mutations.v1"
        message = to_kafka(event.cloud_event(), key=event.key)
        decoded = from_kafka(message.headers, message.value)
        REGISTRY.validate(decoded.type, decoded.data)  # raises on any contract violation
        assert message.key == str(event.data["agent"]["agent_id"]).encode()
        assert decoded.source.startswith("urn:atlas:rh:")


def test_revisions_follow_their_announcement_and_increase(big_plan: list[PlannedEvent]) -> None:
    seen: dict[str, int] = {}
    agents: dict[str, str] = {}
    for event in big_plan:
        if event.type == hr.MUTATION_ANNOUNCED:
            assert event.mutation_id not in seen, "mutation ids are unique"
            assert event.revision == 1
        else:
            assert event.revision == seen[event.mutation_id] + 1, "later, and strictly increasing"
            assert agents[event.mutation_id] == event.key
        seen[event.mutation_id] = event.revision
        agents[event.mutation_id] = event.key
    cancelled = {e.mutation_id for e in big_plan if e.type == hr.MUTATION_CANCELLED}
    after_cancel = [
        e for e in big_plan if e.mutation_id in cancelled and e.revision > seen[e.mutation_id]
    ]
    assert after_cancel == []


def test_the_same_seed_gives_the_same_plan() -> None:
    first = generate_plan(200, seed=7, today=TODAY)
    again = generate_plan(200, seed=7, today=TODAY)
    other = generate_plan(200, seed=8, today=TODAY)
    assert [(e.type, e.key, e.data) for e in first] == [(e.type, e.key, e.data) for e in again]
    assert [e.data for e in first] != [e.data for e in other]


def test_proportions_are_roughly_those_asked(big_plan: list[PlannedEvent]) -> None:
    announced = [e for e in big_plan if e.type == hr.MUTATION_ANNOUNCED]
    n = len(announced)
    assert n == 4000
    amended = sum(1 for e in big_plan if e.type == hr.MUTATION_AMENDED)
    cancelled = sum(1 for e in big_plan if e.type == hr.MUTATION_CANCELLED)
    assert 0.06 < amended / n < 0.10
    assert 0.018 < cancelled / n < 0.042
    assert 0.09 < sum(map(_overseas, announced)) / n < 0.16
    mix = Counter(
        (bool(e.data["household"]["partner"]), len(e.data["household"]["children"]))
        for e in announced
    )
    assert 0.30 < mix[(False, 0)] / n < 0.50  # singles
    for children in (1, 2, 3):
        assert mix[(True, children)] / n > 0.05, f"couples with {children} children"
    assert max(count for _, count in mix) <= 3
    first_postings = sum(1 for e in announced if "origin" not in e.data)
    assert 0.07 < first_postings / n < 0.18


def test_report_dates_fall_in_the_coming_summer_season(big_plan: list[PlannedEvent]) -> None:
    start, end = summer_season(TODAY)
    assert (start, end) == (date(2027, 6, 15), date(2027, 9, 15))
    reports = [
        date.fromisoformat(e.data["report_date"])
        for e in big_plan
        if e.type == hr.MUTATION_ANNOUNCED
    ]
    assert min(reports) > TODAY
    in_season = sum(1 for d in reports if start <= d <= end) / len(reports)
    assert 0.85 < in_season < 0.95
    months = Counter(d.month for d in reports if start <= d <= end)
    assert months[7] + months[8] > months[6] + months[9], "July and August are the peak"


def test_children_have_ages_their_parent_can_have(big_plan: list[PlannedEvent]) -> None:
    for event in big_plan:
        if event.type != hr.MUTATION_ANNOUNCED:
            continue
        report = date.fromisoformat(event.data["report_date"])
        for child in event.data["household"]["children"]:
            age_days = (report - date.fromisoformat(child["birth_date"])).days
            assert 0 <= age_days < 20 * 366
    school_age = [
        e
        for e in big_plan
        if e.type == hr.MUTATION_ANNOUNCED
        and any(
            2 * 365
            < (date.fromisoformat(e.data["report_date"]) - date.fromisoformat(c["birth_date"])).days
            < 17 * 365
            for c in e.data["household"]["children"]
        )
    ]
    assert len(school_age) > 0.2 * 4000, "many families open a scolarite case"


def test_destinations_are_weighted_by_garrison_size(big_plan: list[PlannedEvent]) -> None:
    garrisons = {g.commune_insee: g for g in load_garrisons()}
    assert len(garrisons) > 200
    assert all(g.weight > 0 for g in garrisons.values())
    assert set(GARRISON_WEIGHTS) <= set(garrisons)
    destinations = Counter(
        e.data["destination"]["commune_insee"] for e in big_plan if e.type == hr.MUTATION_ANNOUNCED
    )
    toulon, brest = destinations["83137"], destinations["29019"]
    small = destinations["01004"]  # Ambérieu-en-Bugey: a default-sized garrison
    assert toulon > brest > 5 * max(small, 1)
    assert len(destinations) > 150, "the plan spreads over most spaces"


def test_progress_bar_writes_plain_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    bar = ProgressBar(20, stream)
    for _ in range(20):
        bar.advance()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert 5 <= len(lines) <= 12
    assert lines[-1].startswith("[" + "#" * 30 + "] 20/20 100%")


def test_atlas_hr_says_so_when_the_devstack_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "atlas_devstack.hrsim", None)  # makes the import fail
    assert atlas_main(["hr", "publish", "--count", "3"]) == 2
    assert "needs the atlas_devstack package" in capsys.readouterr().err


@pytest.mark.timeout(60)
async def test_atlas_hr_publish_sends_the_plan_to_the_broker(
    kafka_bootstrap: str, unique_topic: Callable[..., Awaitable[str]]
) -> None:
    topic = await unique_topic(3)
    expected = generate_plan(30, seed=11, amend_ratio=0.2, cancel_ratio=0.1)
    command = [sys.executable, "-m", "atlas_events.cli", "hr", "publish", "--count", "30"]
    options = ["--seed", "11", "--amend-ratio", "0.2", "--cancel-ratio", "0.1"]
    process = await asyncio.create_subprocess_exec(
        *command,
        *options,
        *["--bootstrap", kafka_bootstrap, "--topic", topic],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, raw_err = await asyncio.wait_for(process.communicate(), timeout=50)
    stderr = raw_err.decode()
    assert process.returncode == 0, stderr
    assert f"/{len(expected)} 100%" in stderr
    assert f"published {len(expected)} events" in stderr

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[ConsumerRecord[bytes, bytes]] = []
    try:
        while len(received) < len(expected):
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, f"only {len(received)} of {len(expected)} events arrived"
            received += [record for records in batch.values() for record in records]
    finally:
        await consumer.stop()
    by_mutation: dict[str, list[int]] = {}
    for record in sorted(received, key=lambda r: (r.partition, r.offset)):
        event = from_kafka(record.headers, record.value)
        REGISTRY.validate(event.type, event.data)
        assert dict(record.headers)["content-type"] == b"application/json"
        assert record.key == event.data["agent"]["agent_id"].encode()
        by_mutation.setdefault(event.data["mutation_id"], []).append(event.data["revision"])
    # One agent's events share a partition, so every mutation's revisions arrive in order.
    assert all(revs == sorted(revs) for revs in by_mutation.values())
    assert sorted(by_mutation) == sorted({e.mutation_id for e in expected})


def test_a_mission_plan_is_realistic_valid_and_seeded() -> None:
    from atlas_devstack.hrsim import generate_missions
    from atlas_events.schemas import missions as ms

    today = date(2027, 1, 10)
    plan = generate_missions(300, seed=5, today=today)
    assert [e.data for e in plan] == [e.data for e in generate_missions(300, seed=5, today=today)]
    types = Counter(e.type for e in plan)
    assert types[ms.MISSION_ANNOUNCED] == 300
    assert all(
        types[t] > 0 for t in (ms.MISSION_AMENDED, ms.MISSION_CANCELLED, ms.MISSION_RETURNED)
    )
    kinds = Counter(e.data["kind"] for e in plan if e.type == ms.MISSION_ANNOUNCED)
    assert set(kinds) == {"opex", "mission_interieure", "embarquement", "other"}
    assert kinds.most_common(1)[0][0] == "opex"
    revisions: dict[str, list[int]] = {}
    for event in plan:
        assert REGISTRY.topic_for_event(event.type).name == "hr.missions.v1"
        REGISTRY.validate(event.type, event.data)
        revisions.setdefault(event.data["mission_id"], []).append(event.data["revision"])
    assert all(r == list(range(1, len(r) + 1)) for r in revisions.values())
    # Returns come only for missions whose (planned) return is past.
    for event in plan:
        if event.type == ms.MISSION_RETURNED:
            assert date.fromisoformat(event.data["return_date"]) <= date(2027, 1, 10)


@pytest.mark.timeout(60)
async def test_atlas_hr_publish_missions_sends_them_with_a_progress_bar(
    kafka_bootstrap: str, unique_topic: Callable[..., Awaitable[str]]
) -> None:
    topic = await unique_topic(3)
    command = [sys.executable, "-m", "atlas_events.cli", "hr", "publish", "--missions", "25"]
    process = await asyncio.create_subprocess_exec(
        *command,
        *["--seed", "7", "--bootstrap", kafka_bootstrap, "--topic", topic],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, raw_err = await asyncio.wait_for(process.communicate(), timeout=50)
    stderr = raw_err.decode()
    assert process.returncode == 0, stderr
    assert "missions (seed 7): 25 missions" in stderr
    assert " 100%" in stderr
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
    finally:
        await consumer.stop()
    events = [from_kafka(r.headers, r.value) for rs in batch.values() for r in rs]
    assert sum(1 for e in events if e.type == "fr.defense.rh.mission.announced.v1") == 25
