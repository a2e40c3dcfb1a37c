"""Crisis mode round trips on PostgreSQL and the real broker: events, search, space status."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from catalog_factories import CatalogClient, collect_events, end_offsets, live_settings, started

from atlas_catalog.prestations.availability import availability
from atlas_events.auth import Role
from atlas_events.cloudevents import CloudEvent
from atlas_events.schemas import catalog as schema
from atlas_events.testing import wait_until

# This module's own topics: its switches (a national one reaches every space) must not reach the
# services of the end-to-end tests, which read the shared broker's unprefixed topics.
PREFIX = f"t{secrets.token_hex(4)}."
SPACES_TOPIC = f"{PREFIX}catalog.spaces.v1"
TOULON = "ATLAS-83137-TOULON"


@pytest.fixture
async def live(
    database_url: Callable[[], str], kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[CatalogClient]:
    """The catalog with its outbox relay running against the real broker."""
    config = await live_settings(database_url(), tmp_path / "jwt.pem", kafka_bootstrap, PREFIX)
    async with started(config) as catalog:
        # The reference data's snapshots reach the broker first.
        await wait_until(lambda: _none_left(catalog), timeout=60)
        yield catalog


async def _none_left(catalog: CatalogClient) -> bool:
    return await catalog.unpublished() == 0


def crisis_events(token: str) -> Callable[[CloudEvent], bool]:
    def wanted(event: CloudEvent) -> bool:
        data = event.data if isinstance(event.data, dict) else {}
        return event.type == schema.SPACE_CRISIS_MODE_CHANGED and data.get("crisis_reason") == token

    return wanted


async def test_space_crisis_round_trip(live: CatalogClient, kafka_bootstrap: str) -> None:
    manager = live.token("manager-toulon", Role.MANAGER, atlas_id=TOULON)
    on, off = f"Inondation {uuid.uuid4().hex[:6]}", f"Décrue {uuid.uuid4().hex[:6]}"

    start = await end_offsets(kafka_bootstrap, SPACES_TOPIC)
    response = await live.http.put(
        f"/v1/spaces/{TOULON}/crisis", json={"active": True, "reason": on}, headers=manager
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "crisis"
    assert response.json()["crisis"]["scope"] == "space"
    [(key, event)] = await collect_events(kafka_bootstrap, start, crisis_events(on), count=1)
    assert key == TOULON.encode()
    assert event.data["crisis_mode"] is True
    assert event.data["status"] == "crisis"
    assert event.data["changed_by"] == "manager-toulon"
    assert event.data["version"] == 2

    # Search at Toulon shows crisis mode; elsewhere nothing changed.
    here = await live.get("/v1/prestations", q="trop-perçu", space=TOULON)
    assert here["crisis"]["active"] is True
    item = next(i for i in here["items"] if i["code"] == "ADM-003")  # non-essential, on site
    assert item["availability"]["state"] == "reduced"
    assert item["availability"]["suspended_channels"] == ["guichet"]
    masks = await live.get("/v1/prestations", q="masques", space=TOULON)
    assert masks["items"][0]["availability"]["state"] == "offered"  # crisis-only, now enabled
    elsewhere = await live.get("/v1/prestations", q="masques")
    assert elsewhere["crisis"]["active"] is False
    assert elsewhere["items"][0]["availability"]["state"] == "inactive"
    on_site_here = await live.get("/v1/prestations", channel="guichet", space=TOULON, limit=100)
    on_site = await live.get("/v1/prestations", channel="guichet", limit=100)
    assert on_site_here["total"] < on_site["total"]
    in_crisis = await live.get("/v1/spaces", crisis="true")
    assert [s["atlas_id"] for s in in_crisis["items"]] == [TOULON]

    start = await end_offsets(kafka_bootstrap, SPACES_TOPIC)
    response = await live.http.put(
        f"/v1/spaces/{TOULON}/crisis", json={"active": False, "reason": off}, headers=manager
    )
    assert response.status_code == 200
    assert response.json()["status"] == "open"
    [(_, event)] = await collect_events(kafka_bootstrap, start, crisis_events(off), count=1)
    assert event.data["crisis_mode"] is False
    assert event.data["status"] == "open"
    restored = await live.get("/v1/prestations", q="trop-perçu", space=TOULON)
    item = next(i for i in restored["items"] if i["code"] == "ADM-003")
    assert item["availability"]["state"] == "offered"


async def test_national_crisis_round_trip(live: CatalogClient, kafka_bootstrap: str) -> None:
    spaces = (await live.get("/v1/spaces", limit=500))["total"]
    on, off = f"Confinement {uuid.uuid4().hex[:6]}", f"Fin {uuid.uuid4().hex[:6]}"

    start = await end_offsets(kafka_bootstrap, SPACES_TOPIC)
    response = await live.http.put(
        "/v1/crisis", json={"active": True, "reason": on}, headers=live.ops
    )
    assert response.status_code == 200, response.text
    assert response.json()["national"]["active"] is True
    events = await collect_events(kafka_bootstrap, start, crisis_events(on), count=spaces)
    assert len({key for key, _ in events}) == spaces
    assert all(e.data["crisis_mode"] and e.data["crisis_scope"] == "national" for _, e in events)

    page = await live.get("/v1/prestations", q="masques")
    assert page["crisis"]["scope"] == "national"
    assert page["items"][0]["availability"]["state"] == "offered"
    assert (await live.get(f"/v1/spaces/{TOULON}"))["status"] == "crisis"
    assert (await live.get("/v1/crisis"))["national"]["reason"] == on

    start = await end_offsets(kafka_bootstrap, SPACES_TOPIC)
    response = await live.http.put(
        "/v1/crisis", json={"active": False, "reason": off}, headers=live.ops
    )
    assert response.status_code == 200
    events = await collect_events(kafka_bootstrap, start, crisis_events(off), count=spaces)
    assert not any(e.data["crisis_mode"] for _, e in events)
    assert (await live.get(f"/v1/spaces/{TOULON}"))["status"] == "open"
    page = await live.get("/v1/prestations", q="masques")
    assert page["items"][0]["availability"]["state"] == "inactive"


async def test_crisis_switch_permissions_and_bad_input(live: CatalogClient) -> None:
    other_manager = live.token("m2", Role.MANAGER, atlas_id="ATLAS-29019-BREST")
    refused = await live.http.put(
        f"/v1/spaces/{TOULON}/crisis", json={"active": True}, headers=other_manager
    )
    assert refused.status_code == 403
    assert "ATLAS-29019-BREST" in refused.json()["detail"]
    staff = live.token("s", Role.STAFF, atlas_id=TOULON)
    refused = await live.http.put(
        f"/v1/spaces/{TOULON}/crisis", json={"active": True}, headers=staff
    )
    assert refused.status_code == 403
    national = await live.http.put("/v1/crisis", json={"active": True}, headers=other_manager)
    assert national.status_code == 403
    unknown = await live.http.put(
        "/v1/spaces/ATLAS-NOWHERE/crisis", json={"active": True}, headers=live.ops
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "SpaceNotFound"
    malformed = await live.http.put("/v1/crisis", json={"active": "peut-être"}, headers=live.ops)
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["field"] == "active"
    before = await live.outbox_count()
    same = await live.http.put("/v1/crisis", json={"active": False}, headers=live.ops)
    assert same.status_code == 200
    assert await live.outbox_count() == before


def test_availability_rules() -> None:
    channels = ["guichet", "telephone"]
    assert (
        availability(channels, essential=False, crisis_only=False, crisis=False).state == "offered"
    )
    reduced = availability(channels, essential=False, crisis_only=False, crisis=True)
    assert (reduced.state, reduced.channels) == ("reduced", ["telephone"])
    gone = availability(["guichet"], essential=False, crisis_only=False, crisis=True)
    assert (gone.state, gone.available) == ("suspended", False)
    assert availability(channels, essential=True, crisis_only=False, crisis=True).state == "offered"
    assert (
        availability(channels, essential=True, crisis_only=True, crisis=False).state == "inactive"
    )
    assert availability(channels, essential=True, crisis_only=True, crisis=True).available
