"""The search view: prestations, crisis state and index as of one catalog revision, cached.

Searching reads no database row: the view is rebuilt when this process commits a change, and
another process's change is noticed within `refresh_seconds` (one cheap revision read).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from atlas_catalog.errors import UnknownValues
from atlas_catalog.events import aware
from atlas_catalog.prestations.models import Prestation
from atlas_catalog.prestations.render import render_prestation
from atlas_catalog.search.index import SearchIndex
from atlas_catalog.spaces.models import AtlasSpace, CrisisState
from atlas_catalog.state import current_revision, get_state
from atlas_catalog.vocabulary import Vocabulary
from atlas_events.db import Database
from atlas_events.service import settle_heap

_CHANGED = "atlas_catalog_changed"
# Answered pages kept per view (so per revision: a change starts an empty cache), bounded in
# bytes; the oldest page goes first.
PAGE_CACHE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class SearchQuery:
    """A search request: text and filters (every tuple matches any of its values)."""

    q: str | None = None
    domains: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    space: str | None = None
    essential: bool | None = None
    limit: int = 20
    offset: int = 0


class PageCache:
    """Answered search pages by their request's query string, bounded in bytes; the oldest page
    goes first. A search's answer depends on its parameters and the catalog revision only (not
    on who asks), so a page kept with its revision's view can answer the same query again."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.size = 0
        self._pages: dict[bytes, bytes] = {}

    def __len__(self) -> int:
        return len(self._pages)

    def get(self, query: bytes) -> bytes | None:
        return self._pages.get(query)

    def put(self, query: bytes, page: bytes) -> None:
        if len(page) > self.budget:
            return
        self.size += len(page) - len(self._pages.pop(query, b""))
        self._pages[query] = page
        while self.size > self.budget:
            oldest = next(iter(self._pages))
            self.size -= len(self._pages.pop(oldest))


@dataclass(frozen=True)
class Entry:
    """One active prestation as search filters and renders it."""

    code: str
    domain: str
    provider: str
    audiences: frozenset[str]
    essential: bool
    # Rendered once per crisis mode (off, on), as JSON without its closing brace: a search only
    # appends the score.
    rendered: tuple[str, str]
    channels: tuple[frozenset[str], frozenset[str]]


@dataclass(frozen=True)
class CatalogView:
    """Everything a search needs, as of one revision."""

    revision: int
    entries: list[Entry]
    index: SearchIndex
    national: CrisisState
    spaces: dict[str, CrisisState]
    vocabulary: Vocabulary
    by_code: dict[str, int] = field(default_factory=dict)
    pages: PageCache = field(default_factory=lambda: PageCache(PAGE_CACHE_BYTES))

    def crisis_for(self, space: str | None) -> CrisisState:
        """Crisis mode where the search is made: the space's switch, else the national one."""
        if space is not None:
            own = self.spaces[space]
            if own.active:
                return own
        return self.national

    def check(self, query: SearchQuery) -> None:
        """Unknown filter values → 422 naming each of them."""
        vocabulary = self.vocabulary
        problems = [
            *vocabulary.unknown("domain", query.domains),
            *vocabulary.unknown("provider", query.providers),
            *vocabulary.unknown("audience", query.audiences),
            *vocabulary.unknown("channel", query.channels),
        ]
        if query.space is not None and query.space not in self.spaces:
            problems.append({"field": "space", "value": query.space, "allowed": "an atlas_id"})
        if problems:
            raise UnknownValues(problems)

    def search(self, query: SearchQuery) -> bytes:
        """A page of matching prestations as JSON, best first (by code without text)."""
        self.check(query)
        crisis = self.crisis_for(query.space)
        mode = 1 if crisis.active else 0
        text = (query.q or "").strip()
        ranked: Sequence[tuple[int, float | None]]
        if text:
            ranked = self.index.search(text)
        else:
            ranked = [(position, None) for position in range(len(self.entries))]
        domains, providers = set(query.domains), set(query.providers)
        audiences, channels = set(query.audiences), set(query.channels)
        hits: list[tuple[int, float | None]] = []
        for position, score in ranked:
            entry = self.entries[position]
            if domains and entry.domain not in domains:
                continue
            if providers and entry.provider not in providers:
                continue
            if audiences and audiences.isdisjoint(entry.audiences):
                continue
            if channels and channels.isdisjoint(entry.channels[mode]):
                continue
            if query.essential is not None and entry.essential != query.essential:
                continue
            hits.append((position, score))
        page = hits[query.offset : query.offset + query.limit]
        items = ",".join(
            f'{self.entries[p].rendered[mode]},"score":{_number(s)}}}' for p, s in page
        )
        head = {
            "query": text or None,
            "total": len(hits),
            "limit": query.limit,
            "offset": query.offset,
            "crisis": crisis.model_dump(mode="json"),
        }
        return f'{_json(head)[:-1]},"items":[{items}]}}'.encode()


class ViewCache:
    """Holds the current view; rebuilds it when the revision moved."""

    def __init__(self, db: Database, vocabulary: Vocabulary, *, refresh_seconds: float) -> None:
        self.db = db
        self.vocabulary = vocabulary
        self.refresh_seconds = refresh_seconds
        self._view: CatalogView | None = None
        self._checked_at = -math.inf
        self._stale = True
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Make the next search look at the database (this process committed a change)."""
        self._stale = True

    def mark_changed(self, session: AsyncSession) -> None:
        """Invalidate when `session` commits (not before: a rollback must change nothing)."""
        pending: set[ViewCache] = session.sync_session.info.setdefault(_CHANGED, set())
        pending.add(self)

    def _fresh(self) -> bool:
        return (
            self._view is not None
            and not self._stale
            and time.monotonic() - self._checked_at < self.refresh_seconds
        )

    async def current(self) -> CatalogView:
        """The view as of the latest committed revision (at most `refresh_seconds` old)."""
        view = self._view
        if view is not None and (self._fresh() or (self._lock.locked() and not self._stale)):
            return view
        async with self._lock:
            if self._fresh():
                assert self._view is not None
                return self._view
            # Cleared before reading: a commit landing during the load marks it stale again.
            self._stale = False
            async with self.db.transaction() as session:
                revision = await current_revision(session)
                if self._view is None or self._view.revision != revision:
                    self._view = await self._load(session, revision)
                    settle_heap()  # the new index is long-lived: keep it out of GC passes
            self._checked_at = time.monotonic()
            return self._view

    async def _load(self, session: AsyncSession, revision: int) -> CatalogView:
        state = await get_state(session)
        prestations = (
            (
                await session.execute(
                    select(Prestation)
                    .where(Prestation.status == "active")  # type: ignore[arg-type]
                    .order_by(Prestation.code)
                )
            )
            .scalars()
            .all()
        )
        spaces = (
            await session.execute(
                select(
                    AtlasSpace.atlas_id,  # type: ignore[call-overload]
                    AtlasSpace.crisis_active,
                    AtlasSpace.crisis_reason,
                    AtlasSpace.crisis_changed_by,
                    AtlasSpace.crisis_changed_at,
                )
            )
        ).all()
        national = CrisisState(
            active=state.national_crisis,
            scope="national" if state.national_crisis else None,
            reason=state.national_crisis_reason,
            changed_by=state.national_crisis_changed_by,
            changed_at=_aware(state.national_crisis_changed_at),
        )
        crisis_by_space = {
            row.atlas_id: CrisisState(
                active=row.crisis_active,
                scope="space" if row.crisis_active else None,
                reason=row.crisis_reason,
                changed_by=row.crisis_changed_by,
                changed_at=_aware(row.crisis_changed_at),
            )
            for row in spaces
        }
        return await asyncio.to_thread(
            build_view, revision, list(prestations), national, crisis_by_space, self.vocabulary
        )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _number(score: float | None) -> str:
    return "null" if score is None else repr(score)


def _unscored(item: BaseModel) -> dict[str, Any]:
    return item.model_dump(mode="json", exclude={"score"})


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else aware(moment)


def build_view(
    revision: int,
    prestations: Sequence[Prestation],
    national: CrisisState,
    spaces: dict[str, CrisisState],
    vocabulary: Vocabulary,
) -> CatalogView:
    """Index and pre-render the active prestations."""
    entries: list[Entry] = []
    documents: list[tuple[str, dict[str, str]]] = []
    for p in prestations:
        off = render_prestation(p, vocabulary, crisis=False)
        on = render_prestation(p, vocabulary, crisis=True)
        entries.append(
            Entry(
                code=p.code,
                domain=p.domain,
                provider=p.provider,
                audiences=frozenset(p.audiences),
                essential=p.essential,
                rendered=(_json(_unscored(off))[:-1], _json(_unscored(on))[:-1]),
                channels=(
                    frozenset(off.availability.channels),
                    frozenset(on.availability.channels),
                ),
            )
        )
        documents.append(
            (
                p.code,
                {
                    "title": p.title,
                    "summary": p.summary,
                    "keywords": " ; ".join(p.keywords),
                    "labels": f"{off.domain_label} ; {off.provider_label}",
                },
            )
        )
    return CatalogView(
        revision=revision,
        entries=entries,
        index=SearchIndex(documents),
        national=national,
        spaces=spaces,
        vocabulary=vocabulary,
        by_code={e.code: i for i, e in enumerate(entries)},
    )


@event.listens_for(Session, "after_commit")
def _invalidate_after_commit(session: Session) -> None:
    for cache in session.info.pop(_CHANGED, ()):
        cache.invalidate()


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)
