"""The embedded SQLite mode of `make run`: same data, search, admin and crisis behaviour."""

from __future__ import annotations

from pathlib import Path

from catalog_factories import settings, started


async def test_catalog_runs_on_sqlite(tmp_path: Path) -> None:
    config = settings(f"sqlite+aiosqlite:///{tmp_path}/catalog.db", tmp_path / "jwt.pem")
    async with started(config) as catalog:
        assert await catalog.search("demenagment", limit=3)
        assert "FAM-001" in await catalog.search("Crèche", limit=1)
        resolved = await catalog.get("/v1/spaces/resolve", commune_insee="97411")
        assert resolved["space"]["zone"] == "drom"

        updated = await catalog.http.patch(
            "/v1/prestations/SAN-010", json={"version": 1, "sla_days": 2}, headers=catalog.admin
        )
        assert updated.status_code == 200
        assert updated.json()["version"] == 2
        stale = await catalog.http.patch(
            "/v1/prestations/SAN-010", json={"version": 1, "sla_days": 3}, headers=catalog.admin
        )
        assert stale.status_code == 409

        crisis = await catalog.http.put("/v1/crisis", json={"active": True}, headers=catalog.ops)
        assert crisis.status_code == 200, crisis.text
        page = await catalog.get("/v1/prestations", q="masques")
        assert page["items"][0]["availability"]["state"] == "offered"
        count = await catalog.outbox_count()

    # Restarting on the same file loads nothing new and keeps the crisis switch.
    async with started(config) as catalog:
        assert await catalog.outbox_count() == count
        assert (await catalog.get("/v1/crisis"))["national"]["active"] is True
