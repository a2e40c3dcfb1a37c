"""Admin changes on PostgreSQL: versions kept, optimistic concurrency, conflicts, roles, events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from catalog_factories import CatalogClient
from sqlalchemy import select

from atlas_catalog.db import event_tables
from atlas_events.auth import Role

NEW = {
    "code": "LOG-901",
    "title": "Aide au relogement après un sinistre",
    "summary": "Accompagnement pour trouver un logement provisoire après un incendie.",
    "keywords": ["Incendie", "sinistre", "relogement"],
    "domain": "logement",
    "provider": "bureau_logement",
    "audiences": ["militaire", "conjoint"],
    "channels": ["guichet", "telephone"],
    "documents": ["piece_identite"],
    "sla_days": 5,
    "essential": True,
}


async def events_for(catalog: CatalogClient, key: str) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of the outbox rows keyed by `key`, oldest first."""
    table = event_tables.outbox
    async with catalog.runtime.db.transaction() as session:
        rows = (
            await session.execute(
                select(table.c.event_type, table.c.value)
                .where(table.c.key == key.encode())
                .order_by(table.c.id)
            )
        ).all()
    return [(row.event_type, json.loads(row.value)) for row in rows]


async def test_create_update_withdraw_keeps_every_version(catalog: CatalogClient) -> None:
    created = await catalog.http.post("/v1/prestations", json=NEW, headers=catalog.admin)
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1
    assert created.json()["keywords"][0] == "incendie"
    assert "LOG-901" in await catalog.search("incendie relogement", limit=3)

    updated = await catalog.http.patch(
        "/v1/prestations/LOG-901",
        json={"version": 1, "title": "Relogement d'urgence après un sinistre", "sla_days": 3},
        headers=catalog.admin,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == 2
    assert updated.json()["sla_days"] == 3
    assert "LOG-901" in await catalog.search("relogement urgence", limit=3)

    stale = await catalog.http.patch(
        "/v1/prestations/LOG-901", json={"version": 1, "title": "Trop tard"}, headers=catalog.admin
    )
    assert stale.status_code == 409
    assert stale.json()["error"] == "VersionConflict"
    assert stale.json()["detail"]["current_version"] == 2

    withdrawn = await catalog.http.post(
        "/v1/prestations/LOG-901/withdraw",
        json={"version": 2, "reason": "Remplacée par LOG-003"},
        headers=catalog.admin,
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    assert withdrawn.json()["version"] == 3
    assert "LOG-901" not in await catalog.search("relogement urgence sinistre")
    # The very query answered at version 2: its kept page went with that revision's view.
    assert "LOG-901" not in await catalog.search("relogement urgence", limit=3)
    again = await catalog.http.post(
        "/v1/prestations/LOG-901/withdraw", json={"version": 3}, headers=catalog.admin
    )
    assert again.status_code == 409
    assert again.json()["error"] == "PrestationWithdrawnError"

    versions = await catalog.get("/v1/prestations/LOG-901/versions")
    assert [(v["version"], v["change"]) for v in versions] == [
        (1, "created"),
        (2, "updated"),
        (3, "withdrawn"),
    ]
    assert versions[0]["snapshot"]["title"] == NEW["title"]
    assert {v["changed_by"] for v in versions} == {"admin-1"}
    first = await catalog.get("/v1/prestations/LOG-901/versions/1")
    assert first["snapshot"]["sla_days"] == 5
    missing = await catalog.http.get("/v1/prestations/LOG-901/versions/9", headers=catalog.ops)
    assert missing.status_code == 404
    assert missing.json()["error"] == "PrestationVersionNotFound"

    events = await events_for(catalog, "LOG-901")
    assert [(t.rsplit(".", 2)[-2], d["version"]) for t, d in events] == [
        ("snapshot", 1),
        ("snapshot", 2),
        ("withdrawn", 3),
    ]
    assert events[1][1]["channels"] == ["counter", "phone"]
    assert events[1][1]["sla_days"] == 3
    assert events[1][1]["category"] == "logement"


async def test_duplicate_code_is_a_conflict(catalog: CatalogClient) -> None:
    body = {**NEW, "code": "ADM-001"}
    response = await catalog.http.post("/v1/prestations", json=body, headers=catalog.admin)
    assert response.status_code == 409
    assert response.json()["error"] == "DuplicatePrestation"
    assert "ADM-001" in response.json()["detail"]


async def test_concurrent_updates_one_wins(catalog: CatalogClient) -> None:
    current = await catalog.get("/v1/prestations/HAB-005")
    version = current["version"]
    responses = await asyncio.gather(
        *(
            catalog.http.patch(
                "/v1/prestations/HAB-005",
                json={"version": version, "summary": f"Résumé numéro {n}."},
                headers=catalog.admin,
            )
            for n in range(4)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409, 409, 409], [r.text for r in responses]
    versions = await catalog.get("/v1/prestations/HAB-005/versions")
    assert [v["version"] for v in versions] == list(range(1, version + 2))


async def test_noop_update_makes_no_version(catalog: CatalogClient) -> None:
    current = await catalog.get("/v1/prestations/FIS-002")
    same = await catalog.http.patch(
        "/v1/prestations/FIS-002",
        json={"version": current["version"], "title": current["title"]},
        headers=catalog.admin,
    )
    assert same.status_code == 200
    assert same.json()["version"] == current["version"]


async def test_bad_admin_input_is_named_and_changes_nothing(catalog: CatalogClient) -> None:
    before = await catalog.outbox_count()
    unknown = await catalog.http.post(
        "/v1/prestations",
        json={**NEW, "code": "LOG-902", "domain": "astrologie", "channels": ["pigeon"]},
        headers=catalog.admin,
    )
    assert unknown.status_code == 422
    assert {(p["field"], p["value"]) for p in unknown.json()["detail"]} == {
        ("domain", "astrologie"),
        ("channels", "pigeon"),
    }
    invalid = await catalog.http.post(
        "/v1/prestations", json={**NEW, "code": "not a code", "sla_days": 0}, headers=catalog.admin
    )
    assert invalid.status_code == 422
    assert {p["field"] for p in invalid.json()["detail"]} == {"code", "sla_days"}
    no_version = await catalog.http.patch(
        "/v1/prestations/LOG-001", json={"title": "Sans version"}, headers=catalog.admin
    )
    assert no_version.status_code == 422
    assert no_version.json()["detail"][0]["field"] == "version"
    bad_patch = await catalog.http.patch(
        "/v1/prestations/LOG-001", json={"version": 1, "provider": "nasa"}, headers=catalog.admin
    )
    assert bad_patch.status_code == 422
    assert bad_patch.json()["detail"][0]["value"] == "nasa"
    unknown_code = await catalog.http.patch(
        "/v1/prestations/LOG-999", json={"version": 1, "title": "X"}, headers=catalog.admin
    )
    assert unknown_code.status_code == 404
    assert await catalog.outbox_count() == before
    assert (await catalog.get("/v1/prestations/LOG-001"))["version"] == 1


async def test_only_admins_change_prestations(catalog: CatalogClient) -> None:
    for headers in (
        catalog.ops,
        catalog.agent,
        catalog.token("m", Role.MANAGER, atlas_id="ATLAS-83137-TOULON"),
    ):
        response = await catalog.http.post(
            "/v1/prestations", json={**NEW, "code": "LOG-903"}, headers=headers
        )
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "Forbidden"
    anonymous = await catalog.http.post("/v1/prestations", json={**NEW, "code": "LOG-903"})
    assert anonymous.status_code == 401
