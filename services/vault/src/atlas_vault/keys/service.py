"""Rotate the KEK, rewrap data keys to the newest version, retire old versions.

Rewrap touches only wrapped keys: no blob is read or written, no data key is stored.
"""

from __future__ import annotations

from pydantic import BaseModel

from atlas_events.db import Database
from atlas_vault.context import VaultContext
from atlas_vault.crypto.kms import KmsError, WrappedKey, wrap_context
from atlas_vault.documents.repository import DocumentRepository
from atlas_vault.errors import KeyRetirementRefused, KmsUnavailable
from atlas_vault.journal.service import Actor, append


class KeyStatus(BaseModel):
    kek_id: str
    current_version: int
    documents_on_older_versions: int


class RewrapReport(BaseModel):
    kek_id: str
    current_version: int
    rewrapped: int


async def status(db: Database, ctx: VaultContext) -> KeyStatus:
    version = await _current(ctx)
    async with db.transaction() as session:
        older = await DocumentRepository(session).count_wrapped_below(ctx.kms.kek_id, version)
    return KeyStatus(
        kek_id=ctx.kms.kek_id, current_version=version, documents_on_older_versions=older
    )


async def _current(ctx: VaultContext) -> int:
    try:
        return await ctx.kms.current_version()
    except KmsError as exc:
        raise KmsUnavailable(str(exc)) from exc


async def rotate(db: Database, ctx: VaultContext, actor: Actor) -> KeyStatus:
    """Add a KEK version; new deposits use it at once, older keys until rewrapped."""
    try:
        version = await ctx.kms.rotate()
    except KmsError as exc:
        raise KmsUnavailable(str(exc)) from exc
    async with db.transaction() as session:
        await append(
            session, actor, "kek_rotated", detail={"kek_id": ctx.kms.kek_id, "version": version}
        )
    return await status(db, ctx)


async def rewrap(db: Database, ctx: VaultContext, actor: Actor, batch: int = 100) -> RewrapReport:
    """Move every wrapped data key to the current KEK version, batch by batch."""
    version = await _current(ctx)
    kek_id = ctx.kms.kek_id
    done, after = 0, ""
    while True:
        async with db.transaction() as session:
            repo = DocumentRepository(session)
            candidates = await repo.wrapped_below(kek_id, version, after=after, limit=batch)
            if not candidates:
                break
            for candidate in candidates:
                after = candidate.id
                # Locked and re-read: a document destroyed meanwhile must not get a key back.
                document = await repo.get(candidate.id, for_update=True)
                if document is None or document.wrapped_key is None:
                    continue
                assert document.kek_id is not None
                assert document.kek_version is not None
                try:
                    fresh = await ctx.kms.rewrap(
                        WrappedKey(document.kek_id, document.kek_version, document.wrapped_key),
                        wrap_context(document.id, document.version),
                    )
                except KmsError as exc:
                    raise KmsUnavailable(f"rewrap of {document.id} failed: {exc}") from exc
                document.wrapped_key, document.kek_version = fresh.ciphertext, fresh.version
                session.add(document)
                done += 1
    async with db.transaction() as session:
        await append(
            session,
            actor,
            "kek_rewrapped",
            detail={"kek_id": kek_id, "version": version, "rewrapped": done},
        )
    return RewrapReport(kek_id=kek_id, current_version=version, rewrapped=done)


async def retire(db: Database, ctx: VaultContext, actor: Actor, below: int) -> KeyStatus:
    """Forbid unwrapping with versions older than `below`, once no document depends on them."""
    async with db.transaction() as session:
        waiting = await DocumentRepository(session).count_wrapped_below(ctx.kms.kek_id, below)
    if waiting:
        raise KeyRetirementRefused(
            f"{waiting} documents are still wrapped under versions below {below}: rewrap first"
        )
    try:
        await ctx.kms.retire_below(below)
    except KmsError as exc:
        raise KeyRetirementRefused(str(exc)) from exc
    async with db.transaction() as session:
        await append(
            session, actor, "kek_retired", detail={"kek_id": ctx.kms.kek_id, "below": below}
        )
    return await status(db, ctx)
