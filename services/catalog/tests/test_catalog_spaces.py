"""Spaces on PostgreSQL: list, detail, and resolve for a commune of every covered département."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from catalog_factories import CatalogClient

REFDATA = Path(__file__).resolve().parents[1] / "refdata"


def _load(name: str) -> Any:
    return json.loads((REFDATA / name).read_text(encoding="utf-8"))


async def test_resolve_a_commune_of_every_covered_departement(catalog: CatalogClient) -> None:
    spaces = _load("spaces.json")
    defaults = _load("departement_coverage.json")["defaults"]
    own = {s["commune_insee"]: s["atlas_id"] for s in spaces}
    covered = {c: s["atlas_id"] for s in spaces for c in s["covers"]}
    by_departement: dict[str, list[str]] = defaultdict(list)
    for commune in _load("communes.json")["communes"]:
        by_departement[commune["departement"]].append(commune["code"])
    assert len(by_departement) >= 95  # every département with a space, overseas included
    for departement, codes in sorted(by_departement.items()):
        # A commune with neither a space nor a covers entry: the département's default answers.
        plain = next((c for c in codes if c not in own and c not in covered), None)
        if plain is not None:
            found = await catalog.get("/v1/spaces/resolve", commune_insee=plain)
            assert found["matched_by"] == "departement_default", (departement, found)
            assert found["space"]["atlas_id"] == defaults[departement], (departement, plain)
            assert departement in found["space"]["default_for_departements"]
    overseas = [d for d in by_departement if len(d) == 3]
    assert {"971", "972", "973", "974", "976", "987", "988"} <= set(overseas)


async def test_resolve_prefers_own_commune_then_covers(catalog: CatalogClient) -> None:
    spaces = _load("spaces.json")
    toulon = next(s for s in spaces if s["commune_insee"] == "83137")
    found = await catalog.get("/v1/spaces/resolve", commune_insee="83137")
    assert found["matched_by"] == "own_commune"
    assert found["space"]["atlas_id"] == toulon["atlas_id"]
    assert found["commune_name"] == "Toulon"
    with_covers = next(s for s in spaces if s["covers"])
    covered = with_covers["covers"][0]
    found = await catalog.get("/v1/spaces/resolve", commune_insee=covered)
    assert found["matched_by"] == "covers"
    assert found["space"]["atlas_id"] == with_covers["atlas_id"]
    corsica = await catalog.get("/v1/spaces/resolve", commune_insee="2a004")
    assert corsica["commune_insee"] == "2A004"
    assert corsica["space"]["departement"] == "2A"


async def test_resolve_refusals(catalog: CatalogClient) -> None:
    for bad in ("8313", "83 137", "ABCDE", "831377"):
        response = await catalog.http.get(
            "/v1/spaces/resolve", params={"commune_insee": bad}, headers=catalog.agent
        )
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"] in {"InvalidCommuneCode", "ValidationError"}
    # Well formed, but Saint-Barthélemy (977) has no space, and 83999 is no commune.
    for uncovered in ("97701", "83999"):
        response = await catalog.http.get(
            "/v1/spaces/resolve", params={"commune_insee": uncovered}, headers=catalog.agent
        )
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "NoCoveringSpace"
        assert uncovered in response.json()["detail"]
    missing = await catalog.http.get("/v1/spaces/resolve", headers=catalog.agent)
    assert missing.status_code == 422


async def test_list_and_filter_spaces(catalog: CatalogClient) -> None:
    everything = await catalog.get("/v1/spaces", limit=500)
    assert everything["total"] == len(_load("spaces.json"))
    zones = defaultdict(int)
    for space in everything["items"]:
        zones[space["zone"]] += 1
    assert zones["metro"] == 206
    assert zones["drom"] + zones["com"] >= 25

    var = await catalog.get("/v1/spaces", departement="83")
    assert var["total"] >= 1
    assert {s["departement"] for s in var["items"]} == {"83"}
    overseas = await catalog.get("/v1/spaces", zone="com", limit=500)
    assert overseas["total"] > 0
    assert {s["zone"] for s in overseas["items"]} == {"com"}
    bretagne = await catalog.get("/v1/spaces", region="Bretagne", limit=500)
    assert bretagne["total"] > 0
    assert {s["region"] for s in bretagne["items"]} == {"Bretagne"}
    closed = await catalog.get("/v1/spaces", status="closed", limit=500)
    assert all(s["status"] == "closed" for s in closed["items"])
    named = await catalog.get("/v1/spaces", q="toulon")
    assert [s["commune_insee"] for s in named["items"]] == ["83137"]

    unknown = await catalog.http.get(
        "/v1/spaces", params={"departement": "00", "region": "Atlantide"}, headers=catalog.agent
    )
    assert unknown.status_code == 422
    assert {(p["field"], p["value"]) for p in unknown.json()["detail"]} == {
        ("departement", "00"),
        ("region", "Atlantide"),
    }
    bad_zone = await catalog.http.get("/v1/spaces", params={"zone": "mars"}, headers=catalog.ops)
    assert bad_zone.status_code == 422
    assert bad_zone.json()["detail"][0]["field"] == "query.zone"


async def test_space_detail(catalog: CatalogClient) -> None:
    spaces = _load("spaces.json")
    first = spaces[0]
    detail = await catalog.get(f"/v1/spaces/{first['atlas_id']}", headers=catalog.agent)
    assert detail["name"] == first["name"]
    assert detail["covers"] == sorted(first["covers"])
    assert detail["opening_hours"] == first["opening_hours"]
    assert detail["crisis"] == {
        "active": False,
        "scope": None,
        "reason": None,
        "changed_by": None,
        "changed_at": None,
    }
    assert detail["status"] == first["status"]
    assert detail["version"] == 1
    missing = await catalog.http.get("/v1/spaces/ATLAS-NOWHERE", headers=catalog.agent)
    assert missing.status_code == 404
    assert missing.json()["error"] == "SpaceNotFound"
