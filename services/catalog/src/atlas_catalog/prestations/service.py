"""Admin changes to prestations: create, update, withdraw; every change is a kept version."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_catalog.errors import (
    DuplicatePrestation,
    PrestationNotFound,
    PrestationVersionNotFound,
    PrestationWithdrawnError,
    VersionConflict,
)
from atlas_catalog.events import publish_prestation, utcnow
from atlas_catalog.prestations.models import (
    Prestation,
    PrestationCreate,
    PrestationUpdate,
    PrestationVersion,
    PrestationWithdraw,
)
from atlas_catalog.prestations.repository import PrestationRepository
from atlas_catalog.search.service import ViewCache
from atlas_catalog.state import bump_revision
from atlas_catalog.vocabulary import Vocabulary
from atlas_events.outbox import Outbox

VOCABULARY_FIELDS = ("domain", "provider", "audiences", "channels", "documents")


class PrestationService:
    """Changes prestations in the caller's unit of work, with their events and versions."""

    def __init__(
        self, session: AsyncSession, outbox: Outbox, vocabulary: Vocabulary, views: ViewCache
    ) -> None:
        self.session = session
        self.outbox = outbox
        self.vocabulary = vocabulary
        self.views = views
        self.repository = PrestationRepository(session)
        # A bulk load bumps the search revision once at its end instead of per prestation.
        self.bump_each_change = True

    async def get(self, code: str) -> Prestation:
        prestation = await self.repository.get(code)
        if prestation is None:
            raise PrestationNotFound(f"no prestation has code {code!r}")
        return prestation

    async def versions(self, code: str) -> Sequence[PrestationVersion]:
        await self.get(code)
        return await self.repository.versions(code)

    async def version(self, code: str, version: int) -> PrestationVersion:
        await self.get(code)
        kept = await self.repository.version(code, version)
        if kept is None:
            raise PrestationVersionNotFound(f"prestation {code} has no version {version}")
        return kept

    def check_vocabulary(self, values: dict[str, object]) -> None:
        """Unknown domain, provider, audience, channel or document → 422 naming each."""
        to_check: dict[str, list[str]] = {}
        for name in VOCABULARY_FIELDS:
            value = values.get(name)
            if value is None:
                continue
            to_check[name] = [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]
        self.vocabulary.check(to_check)

    async def create(
        self,
        data: PrestationCreate,
        actor: str,
        *,
        origin: str = "admin",
        digest: str | None = None,
    ) -> Prestation:
        """A new prestation at version 1; 409 if the code exists (even withdrawn)."""
        self.check_vocabulary(data.model_dump())
        if await self.repository.get(data.code) is not None:
            raise DuplicatePrestation(f"a prestation with code {data.code} already exists")
        now = utcnow()
        prestation = Prestation(
            **data.model_dump(),
            version=1,
            status="active",
            origin=origin,
            refdata_digest=digest,
            created_at=now,
            updated_at=now,
            updated_by=actor,
        )
        self.repository.add(prestation, "created")
        try:
            await self.session.flush()
        except IntegrityError as exc:  # created concurrently by another request
            raise DuplicatePrestation(f"a prestation with code {data.code} already exists") from exc
        await self._changed(prestation)
        return prestation

    async def update(self, code: str, patch: PrestationUpdate, actor: str) -> Prestation:
        """The next version with the fields given; 409 if `patch.version` is not the current one."""
        prestation = await self._current(code, patch.version)
        changes = patch.model_dump(exclude_unset=True, exclude={"version"})
        changes = {k: v for k, v in changes.items() if v is not None}
        self.check_vocabulary(changes)
        if all(getattr(prestation, k) == v for k, v in changes.items()):
            return prestation  # nothing changes: no new version, no event
        for name, value in changes.items():
            setattr(prestation, name, value)
        return await self._next_version(prestation, actor, "updated")

    async def replace_from_refdata(
        self, prestation: Prestation, data: PrestationCreate, digest: str
    ) -> Prestation:
        """Apply a changed reference data entry as the next version (reactivating it if needed)."""
        self.check_vocabulary(data.model_dump())
        for name, value in data.model_dump(exclude={"code"}).items():
            setattr(prestation, name, value)
        prestation.status = "active"
        prestation.withdrawn_reason = None
        prestation.origin = "refdata"
        prestation.refdata_digest = digest
        return await self._next_version(prestation, "refdata", "updated")

    async def withdraw(self, code: str, body: PrestationWithdraw, actor: str) -> Prestation:
        """Withdraw the prestation (a last version); 409 if stale or already withdrawn."""
        prestation = await self._current(code, body.version)
        return await self.withdraw_current(prestation, body.reason, actor)

    async def withdraw_current(
        self, prestation: Prestation, reason: str | None, actor: str
    ) -> Prestation:
        prestation.status = "withdrawn"
        prestation.withdrawn_reason = reason
        return await self._next_version(prestation, actor, "withdrawn")

    async def _current(self, code: str, expected_version: int) -> Prestation:
        prestation = await self.repository.get(code, for_update=True)
        if prestation is None:
            raise PrestationNotFound(f"no prestation has code {code!r}")
        if prestation.status == "withdrawn":
            raise PrestationWithdrawnError(
                f"prestation {code} was withdrawn at version {prestation.version}"
            )
        if prestation.version != expected_version:
            raise VersionConflict(code, expected_version, prestation.version)
        return prestation

    async def _next_version(self, prestation: Prestation, actor: str, change: str) -> Prestation:
        prestation.version += 1
        prestation.updated_at = utcnow()
        prestation.updated_by = actor
        self.repository.add(prestation, change)
        try:
            await self.session.flush()
        except IntegrityError as exc:  # another writer took this version number first
            raise VersionConflict(prestation.code, prestation.version - 1, None) from exc
        await self._changed(prestation)
        return prestation

    async def _changed(self, prestation: Prestation) -> None:
        await publish_prestation(self.session, self.outbox, prestation, self.vocabulary)
        if self.bump_each_change:
            await bump_revision(self.session)
        self.views.mark_changed(self.session)
