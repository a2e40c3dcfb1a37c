"""The spaces replica: applies catalog snapshots, seeds from reference files, resolves communes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import structlog
from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from atlas_events.db import Database
from atlas_events.schemas.catalog import SpaceSnapshot
from atlas_mobility.spaces.models import DepartementDefault, SpaceCommune, SpaceReplica

log = structlog.get_logger(__name__)


def departement_of(commune_insee: str) -> str:
    """The département code of an INSEE commune code (3 characters overseas)."""
    return commune_insee[:3] if commune_insee.startswith(("97", "98")) else commune_insee[:2]


def zone_of(commune_insee: str, *, overseas: bool | None = None) -> str:
    """metro, drom (971-976) or com (975, 977, 978, 98x), from the commune code."""
    if commune_insee.startswith("98") or commune_insee[:3] in ("975", "977", "978"):
        return "com"
    if commune_insee.startswith("97"):
        return "drom"
    return "com" if overseas else "metro"


@cache
def known_communes(refdata_dir: Path | None) -> frozenset[str] | None:
    """Official commune codes of the départements with a space, when the extract is available."""
    if refdata_dir is None or not (refdata_dir / "communes.json").is_file():
        return None
    data = json.loads((refdata_dir / "communes.json").read_text(encoding="utf-8"))
    return frozenset(c["code"] for c in data.get("communes", []))


class SpaceDirectory:
    """Reads and writes the replica in the caller's session."""

    def __init__(self, session: AsyncSession, refdata_dir: Path | None = None) -> None:
        self.session = session
        self.refdata_dir = refdata_dir

    async def get(self, atlas_id: str) -> SpaceReplica | None:
        return await self.session.get(SpaceReplica, atlas_id)

    async def resolve_many(self, communes: Iterable[str]) -> dict[str, SpaceReplica | None]:
        """The space receiving each commune's mutations: own commune or covered, else default."""
        wanted = set(communes)
        if not wanted:
            return {}
        direct = dict(
            (
                await self.session.execute(
                    select(col(SpaceCommune.commune_insee), col(SpaceCommune.atlas_id)).where(
                        col(SpaceCommune.commune_insee).in_(wanted)
                    )
                )
            ).all()
        )
        official = known_communes(self.refdata_dir)
        departements = {
            departement_of(c)
            for c in wanted
            if c not in direct and (official is None or c in official)
        }
        defaults = (
            dict(
                (
                    await self.session.execute(
                        select(
                            col(DepartementDefault.departement), col(DepartementDefault.atlas_id)
                        ).where(col(DepartementDefault.departement).in_(departements))
                    )
                ).all()
            )
            if departements
            else {}
        )
        chosen: dict[str, str | None] = {}
        for commune in wanted:
            atlas_id = direct.get(commune)
            if atlas_id is None and (official is None or commune in official):
                atlas_id = defaults.get(departement_of(commune))
            chosen[commune] = atlas_id
        ids = {a for a in chosen.values() if a is not None}
        spaces = {
            s.atlas_id: s
            for s in (
                await self.session.scalars(
                    select(SpaceReplica).where(col(SpaceReplica.atlas_id).in_(ids))
                )
            ).all()
        }
        return {c: (spaces.get(a) if a is not None else None) for c, a in chosen.items()}

    async def resolve(self, commune_insee: str) -> SpaceReplica | None:
        return (await self.resolve_many([commune_insee]))[commune_insee]

    async def apply_snapshot(self, snapshot: SpaceSnapshot) -> bool:
        """Take a catalog snapshot unless an equal or newer one is already held."""
        current = await self.session.get(SpaceReplica, snapshot.atlas_id, with_for_update=True)
        if (
            current is not None
            and current.source == "catalog"
            and current.version >= snapshot.version
        ):
            return False
        zone = snapshot.zone or zone_of(snapshot.commune_insee, overseas=snapshot.overseas)
        has_defaults = "default_for_departements" in snapshot.model_fields_set
        defaults = list(snapshot.default_for_departements) if has_defaults else None
        if current is None:
            current = SpaceReplica(
                atlas_id=snapshot.atlas_id,
                name=snapshot.name,
                commune_insee=snapshot.commune_insee,
                version=snapshot.version,
                source="catalog",
                updated_at=snapshot.updated_at,
            )
            self.session.add(current)
        current.name = snapshot.name
        current.commune_insee = snapshot.commune_insee
        current.departement = snapshot.departement or departement_of(snapshot.commune_insee)
        current.zone = zone
        current.overseas = snapshot.overseas
        current.status = snapshot.status or current.status
        current.communes_covered = list(snapshot.communes_covered)
        current.version = snapshot.version
        current.source = "catalog"
        current.updated_at = snapshot.updated_at
        if defaults is not None:
            current.default_for_departements = defaults
        await self.session.flush()
        await self._index(current)
        return True

    async def _index(self, space: SpaceReplica) -> None:
        """Rewrite the commune and département-default rows that point at `space`."""
        communes = sorted({space.commune_insee, *space.communes_covered})
        await self.session.execute(
            delete(SpaceCommune).where(
                or_(
                    col(SpaceCommune.atlas_id) == space.atlas_id,
                    col(SpaceCommune.commune_insee).in_(communes),
                )
            )
        )
        self.session.add_all(
            SpaceCommune(commune_insee=c, atlas_id=space.atlas_id) for c in communes
        )
        departements = [] if space.status == "closed" else space.default_for_departements
        await self.session.execute(
            delete(DepartementDefault).where(
                or_(
                    col(DepartementDefault.atlas_id) == space.atlas_id,
                    col(DepartementDefault.departement).in_(departements),
                )
            )
        )
        self.session.add_all(
            DepartementDefault(departement=d, atlas_id=space.atlas_id) for d in departements
        )
        await self.session.flush()


async def seed_from_refdata(db: Database, refdata_dir: Path | None) -> int:
    """Fill an empty replica from the catalog's reference files (until its topic is read)."""
    if refdata_dir is None:
        return 0
    spaces_path = refdata_dir / "spaces.json"
    coverage_path = refdata_dir / "departement_coverage.json"
    if not spaces_path.is_file():
        log.warning("spaces_seed_missing", path=str(spaces_path))
        return 0
    async with db.transaction() as session:
        if (await session.scalar(select(func.count()).select_from(SpaceReplica))) or 0:
            return 0
    spaces = json.loads(spaces_path.read_text(encoding="utf-8"))
    defaults: dict[str, str] = {}
    if coverage_path.is_file():
        defaults = json.loads(coverage_path.read_text(encoding="utf-8")).get("defaults", {})
    by_space: dict[str, list[str]] = {}
    for departement, atlas_id in defaults.items():
        by_space.setdefault(atlas_id, []).append(departement)
    now = datetime.now(UTC)
    try:
        async with db.transaction() as session:
            directory = SpaceDirectory(session)
            for raw in spaces:
                space = SpaceReplica(
                    atlas_id=raw["atlas_id"],
                    name=raw["name"],
                    commune_insee=raw["commune_insee"],
                    departement=raw.get("departement"),
                    zone=raw.get("zone"),
                    overseas=raw.get("zone") in ("drom", "com"),
                    status=raw.get("status"),
                    communes_covered=list(raw.get("covers", [])),
                    default_for_departements=sorted(by_space.get(raw["atlas_id"], [])),
                    version=0,
                    source="seed",
                    updated_at=now,
                )
                session.add(space)
                await session.flush()
                await directory._index(space)
    except IntegrityError:  # another process of the service seeded it first
        return 0
    log.info("spaces_seeded", spaces=len(spaces), path=str(refdata_dir))
    return len(spaces)
