"""Load the committed reference data into the database; publish snapshots only of what changed.

Idempotent: each prestation and space keeps the digest of the reference entry it was last loaded
from, so an unchanged entry is skipped (and an admin's later change to it is kept), a changed
entry becomes a new version, and a prestation dropped from the data is withdrawn. The communes
list (35 000 rows) is reloaded only when its file's digest changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import delete, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_catalog.events import publish_space, space_snapshot, utcnow
from atlas_catalog.prestations.models import PrestationCreate
from atlas_catalog.prestations.repository import PrestationRepository
from atlas_catalog.prestations.service import PrestationService
from atlas_catalog.search.service import ViewCache
from atlas_catalog.spaces.models import AtlasSpace, Commune, Departement, SpaceCommune
from atlas_catalog.spaces.repository import SpaceRepository
from atlas_catalog.state import RefdataFile, bump_revision, get_state
from atlas_catalog.vocabulary import Vocabulary
from atlas_events.outbox import Outbox

log = structlog.get_logger(__name__)

PRESTATIONS_FILE = "prestations.json"
SPACES_FILE = "spaces.json"
COVERAGE_FILE = "departement_coverage.json"
COMMUNES_FILE = "communes.json"
REFDATA_ACTOR = "refdata"
WITHDRAWN_FROM_REFDATA = "Retirée des données de référence"
_LOCK_KEY = 0x41544C4153  # "ATLAS": one loader at a time across the API and worker processes
_SPACE_FIELDS = (
    "name",
    "commune_insee",
    "commune_name",
    "departement",
    "region",
    "zone",
    "contact",
    "opening_hours",
)


@dataclass
class LoadReport:
    """What a load changed (all zero on a reload of unchanged data)."""

    prestations_created: int = 0
    prestations_updated: int = 0
    prestations_withdrawn: int = 0
    spaces_created: int = 0
    spaces_updated: int = 0
    communes_loaded: int = 0
    changed: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        return (
            self.prestations_created
            + self.prestations_updated
            + self.prestations_withdrawn
            + self.spaces_created
            + self.spaces_updated
        )


def digest(value: Any) -> str:
    """A stable digest of a JSON value (key order does not matter)."""
    encoded = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


class ReferenceLoader:
    """Applies the reference data directory to the database in the caller's unit of work."""

    def __init__(
        self,
        session: AsyncSession,
        outbox: Outbox,
        vocabulary: Vocabulary,
        views: ViewCache,
        refdata_dir: Path,
    ) -> None:
        self.session = session
        self.outbox = outbox
        self.vocabulary = vocabulary
        self.views = views
        self.dir = refdata_dir
        self.report = LoadReport()

    async def load(self) -> LoadReport:
        """Communes and départements, then spaces, then prestations; returns what changed."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        await self._load_communes()
        coverage = self._read(COVERAGE_FILE)["defaults"]
        await self._apply_defaults(coverage)
        await self._load_spaces(self._read(SPACES_FILE), coverage)
        await self._load_prestations(self._read(PRESTATIONS_FILE))
        if self.report.events:
            await bump_revision(self.session)
            self.views.mark_changed(self.session)
        return self.report

    def _read(self, name: str) -> Any:
        return json.loads((self.dir / name).read_text(encoding="utf-8"))

    # ---- communes and départements ------------------------------------------------------------

    async def _load_communes(self) -> None:
        raw = (self.dir / COMMUNES_FILE).read_bytes()
        file_digest = hashlib.sha256(raw).hexdigest()
        known = await self.session.get(RefdataFile, COMMUNES_FILE)
        if known is not None and known.digest == file_digest:
            return
        data = json.loads(raw)
        regions: Mapping[str, str] = data["regions"]
        existing_defaults = {d.code: d.default_atlas_id for d in await self._departements()}
        await self.session.execute(delete(Commune))
        await self.session.execute(delete(Departement))
        departements = [
            {
                "code": code,
                "name": info["name"],
                "region": regions.get(info["region"], info["region"]),
                "zone": info["zone"],
                "default_atlas_id": existing_defaults.get(code),
            }
            for code, info in data["departements"].items()
        ]
        await self.session.execute(insert(Departement), departements)
        communes = [
            {"code": c["code"], "name": c["name"], "departement": c["departement"]}
            for c in data["communes"]
        ]
        for start in range(0, len(communes), 5000):
            await self.session.execute(insert(Commune), communes[start : start + 5000])
        now = utcnow()
        if known is None:
            self.session.add(RefdataFile(name=COMMUNES_FILE, digest=file_digest, loaded_at=now))
        else:
            known.digest, known.loaded_at = file_digest, now
        self.report.communes_loaded = len(communes)

    async def _departements(self) -> list[Departement]:
        return list(await SpaceRepository(self.session).departements())

    async def _apply_defaults(self, coverage: Mapping[str, str]) -> None:
        for departement in await self._departements():
            wanted = coverage.get(departement.code)
            if departement.default_atlas_id != wanted:
                departement.default_atlas_id = wanted
                self.session.add(departement)
        await self.session.flush()

    # ---- spaces -------------------------------------------------------------------------------

    async def _load_spaces(
        self, entries: list[dict[str, Any]], coverage: Mapping[str, str]
    ) -> None:
        repository = SpaceRepository(self.session)
        existing = {s.atlas_id: s for s in await repository.all()}
        default_for: dict[str, list[str]] = {}
        for departement, atlas_id in coverage.items():
            default_for.setdefault(atlas_id, []).append(departement)
        changed: list[tuple[AtlasSpace, list[str]]] = []
        now = utcnow()
        for entry in entries:
            atlas_id = entry["atlas_id"]
            covers = sorted(entry["covers"])
            entry_digest = digest({**entry, "default_for": sorted(default_for.get(atlas_id, []))})
            space = existing.get(atlas_id)
            if space is not None and space.refdata_digest == entry_digest:
                continue
            values = {name: entry[name] for name in _SPACE_FIELDS}
            if space is None:
                space = AtlasSpace(
                    atlas_id=atlas_id,
                    base_status=entry["status"],
                    version=1,
                    refdata_digest=entry_digest,
                    updated_at=now,
                    **values,
                )
                self.report.spaces_created += 1
            else:
                for name, value in values.items():
                    setattr(space, name, value)
                space.base_status = entry["status"]
                space.version += 1
                space.refdata_digest = entry_digest
                space.updated_at = now
                self.report.spaces_updated += 1
            self.session.add(space)
            changed.append((space, covers))
        if not changed:
            return
        ids = [space.atlas_id for space, _ in changed]
        await self.session.execute(delete(SpaceCommune).where(SpaceCommune.atlas_id.in_(ids)))  # type: ignore[attr-defined]
        await self.session.flush()
        rows = [
            {"commune_insee": c, "atlas_id": s.atlas_id} for s, covers in changed for c in covers
        ]
        if rows:
            await self.session.execute(insert(SpaceCommune), rows)
        state = await get_state(self.session)
        for space, covers in changed:
            snapshot = space_snapshot(
                space,
                covers=covers,
                default_for=default_for.get(space.atlas_id, []),
                national_crisis=state.national_crisis,
            )
            await publish_space(self.session, self.outbox, snapshot)
            self.report.changed.append(space.atlas_id)

    # ---- prestations --------------------------------------------------------------------------

    async def _load_prestations(self, entries: list[dict[str, Any]]) -> None:
        service = PrestationService(self.session, self.outbox, self.vocabulary, self.views)
        service.bump_each_change = False
        existing = {p.code: p for p in await PrestationRepository(self.session).all()}
        in_file: set[str] = set()
        for entry in entries:
            code = entry["code"]
            in_file.add(code)
            entry_digest = digest(entry)
            prestation = existing.get(code)
            if prestation is not None and prestation.refdata_digest == entry_digest:
                continue
            data = PrestationCreate.model_validate(entry)
            if prestation is None:
                await service.create(data, REFDATA_ACTOR, origin="refdata", digest=entry_digest)
                self.report.prestations_created += 1
            else:
                await service.replace_from_refdata(prestation, data, entry_digest)
                self.report.prestations_updated += 1
            self.report.changed.append(code)
        for code, prestation in existing.items():
            if code in in_file or prestation.origin != "refdata" or prestation.status != "active":
                continue
            await service.withdraw_current(prestation, WITHDRAWN_FROM_REFDATA, REFDATA_ACTOR)
            self.report.prestations_withdrawn += 1
            self.report.changed.append(code)


def report_fields(report: LoadReport) -> dict[str, Any]:
    """The report as log fields (the changed list is cut short)."""
    fields = asdict(report)
    fields["changed"] = report.changed[:20]
    return fields
