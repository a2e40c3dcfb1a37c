"""Reloading the reference data publishes only what changed (on PostgreSQL)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from catalog_factories import settings, started
from sqlalchemy import select

from atlas_catalog.config import DEFAULT_REFDATA_DIR
from atlas_catalog.db import event_tables
from atlas_catalog.reference.startup import load_reference_data

FILES = (
    "prestations.json",
    "spaces.json",
    "departement_coverage.json",
    "communes.json",
    "vocabularies.json",
)


def copy_refdata(target: Path) -> Path:
    target.mkdir(parents=True)
    for name in FILES:
        shutil.copy(DEFAULT_REFDATA_DIR / name, target / name)
    return target


def edit(path: Path, change: Callable[[list[dict[str, object]]], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


async def test_reload_publishes_only_what_changed(
    database_url: Callable[[], str], tmp_path: Path
) -> None:
    refdata = copy_refdata(tmp_path / "refdata")
    url = database_url()
    config = settings(url, tmp_path / "jwt.pem", refdata_dir=refdata)
    prestations = json.loads((refdata / "prestations.json").read_text(encoding="utf-8"))
    spaces = json.loads((refdata / "spaces.json").read_text(encoding="utf-8"))

    async with started(config) as catalog:
        first_load = await catalog.outbox_count()
        assert first_load == len(prestations) + len(spaces)
        report = await load_reference_data(catalog.runtime)
        assert report is not None
        assert report.events == 0
        assert report.communes_loaded == 0
        assert await catalog.outbox_count() == first_load

    # A restart on the same database publishes nothing either.
    async with started(config) as catalog:
        assert await catalog.outbox_count() == first_load

    def retitle(items: list[dict[str, object]]) -> None:
        items[0]["title"] = "Explication détaillée du bulletin de solde"
        del items[-1]  # dropped from the data: withdrawn

    def reopen(items: list[dict[str, object]]) -> None:
        items[1]["status"] = "reduced"

    edit(refdata / "prestations.json", retitle)
    edit(refdata / "spaces.json", reopen)
    async with started(config) as catalog:
        table = event_tables.outbox
        async with catalog.runtime.db.transaction() as session:
            rows = (
                await session.execute(
                    select(table.c.event_type, table.c.key, table.c.value)
                    .where(table.c.id > first_load)
                    .order_by(table.c.id)
                )
            ).all()
        published = {(row.key.decode(), row.event_type.rsplit(".", 2)[-2]) for row in rows}
        assert published == {
            (spaces[1]["atlas_id"], "snapshot"),
            (prestations[0]["code"], "snapshot"),
            (prestations[-1]["code"], "withdrawn"),
        }
        detail = await catalog.get(f"/v1/prestations/{prestations[0]['code']}")
        assert detail["version"] == 2
        assert detail["title"].startswith("Explication détaillée")
        space = await catalog.get(f"/v1/spaces/{spaces[1]['atlas_id']}")
        assert space["version"] == 2
        assert space["status"] == "reduced"
        assert prestations[0]["code"] in await catalog.search("explication détaillée", limit=1)


async def test_admin_changes_survive_an_unchanged_reload(
    database_url: Callable[[], str], tmp_path: Path
) -> None:
    config = settings(database_url(), tmp_path / "jwt.pem")
    async with started(config) as catalog:
        response = await catalog.http.patch(
            "/v1/prestations/LOI-001",
            json={"version": 1, "summary": "Séjours IGESA, résumé revu par l'administrateur."},
            headers=catalog.admin,
        )
        assert response.status_code == 200, response.text
        before = await catalog.outbox_count()
    async with started(config) as catalog:
        assert await catalog.outbox_count() == before
        detail = await catalog.get("/v1/prestations/LOI-001")
        assert detail["version"] == 2
        assert "administrateur" in detail["summary"]
