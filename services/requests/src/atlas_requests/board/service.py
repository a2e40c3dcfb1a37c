"""Posting on the board, matching by subject and proximity, consent before contacts are shared."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.auth import Principal
from atlas_events.cloudevents import CloudEvent
from atlas_events.outbox import Outbox
from atlas_events.schemas import notify
from atlas_requests.board.models import BoardMatch, BoardPost
from atlas_requests.board.schemas import MatchPublic, PostCreate, PostPublic
from atlas_requests.errors import BoardError, BoardNotFound
from atlas_requests.requests.service import SOURCE, utcnow
from atlas_requests.sla.calendar import departement_of

P = BoardPost.__table__.c  # type: ignore[attr-defined]
M = BoardMatch.__table__.c  # type: ignore[attr-defined]
MAX_MATCHES = 20


class BoardService:
    def __init__(
        self, session: AsyncSession, outbox: Outbox, now: Callable[[], datetime] = utcnow
    ) -> None:
        self.session = session
        self.outbox = outbox
        self.now = now

    async def _notify(self, recipient: str, template: str, match: BoardMatch, key: str) -> None:
        command = notify.SendNotification(
            notification_id=f"board:{match.id}:{key}:{recipient}"[:100],
            recipient=notify.Recipient(kind="agent", id=recipient[:64]),
            template=template,
            params={"proximity": match.proximity},
            channels=["in_app"],
            reference=match.id,
            requested_by="requests",
            requested_at=self.now(),
        )
        event = CloudEvent.create(notify.SEND_NOTIFICATION, SOURCE, command)
        await self.outbox.add(self.session, event, key=command.notification_id)

    async def post(
        self, principal: Principal, body: PostCreate
    ) -> tuple[BoardPost, list[BoardMatch]]:
        """Post and suggest matches: same subject, same commune first, then département."""
        post = BoardPost(
            id=str(uuid.uuid4()),
            kind=body.kind,
            author=principal.sub,
            subject=body.subject,
            level=body.level,
            commune_insee=body.commune_insee,
            departement=departement_of(body.commune_insee),
            description=body.description,
            contact=body.contact,
            created_at=self.now(),
        )
        self.session.add(post)
        other_kind = "need" if body.kind == "offer" else "offer"
        query = (
            select(BoardPost)
            .where(
                P.kind == other_kind,
                P.subject == post.subject,
                P.departement == post.departement,
                P.status == "open",
                P.author != post.author,
            )
            .order_by(P.created_at)
        )
        candidates = [
            c
            for c in (await self.session.execute(query)).scalars()
            if post.level is None or c.level is None or c.level == post.level
        ]
        candidates.sort(key=lambda c: (c.commune_insee != post.commune_insee, c.created_at))
        matches: list[BoardMatch] = []
        for other in candidates[:MAX_MATCHES]:
            offer, need = (post, other) if post.kind == "offer" else (other, post)
            match = BoardMatch(
                id=str(uuid.uuid4()),
                offer_id=offer.id,
                need_id=need.id,
                proximity="commune" if other.commune_insee == post.commune_insee else "departement",
                created_at=self.now(),
            )
            self.session.add(match)
            matches.append(match)
            for author in (offer.author, need.author):
                await self._notify(author, "requests.board_match_suggested", match, "suggested")
        return post, matches

    async def _post(self, post_id: str) -> BoardPost | None:
        return await self.session.get(BoardPost, post_id)

    async def own_post(self, principal: Principal, post_id: str) -> BoardPost:
        post = await self._post(post_id)
        if post is None or (post.author != principal.sub and not principal.is_ops):
            raise BoardNotFound(f"board post {post_id} not found")
        return post

    async def matches_of(self, principal: Principal, post_id: str) -> list[MatchPublic]:
        post = await self.own_post(principal, post_id)
        query = select(BoardMatch).where(or_(M.offer_id == post.id, M.need_id == post.id))
        rows = (await self.session.execute(query.order_by(M.created_at))).scalars()
        result = [await self.view(match, post) for match in rows]
        result.sort(key=lambda m: m.proximity != "commune")
        return result

    async def _sides(self, match: BoardMatch) -> tuple[BoardPost, BoardPost]:
        offer, need = await self._post(match.offer_id), await self._post(match.need_id)
        assert offer is not None
        assert need is not None
        return offer, need

    async def match_for(self, principal: Principal, match_id: str) -> tuple[BoardMatch, BoardPost]:
        """The match and the caller's own side of it (404 if they are on neither side)."""
        match = await self.session.get(BoardMatch, match_id, with_for_update=True)
        if match is not None:
            offer, need = await self._sides(match)
            for mine in (offer, need):
                if mine.author == principal.sub:
                    return match, mine
        raise BoardNotFound(f"board match {match_id} not found")

    async def consent(self, principal: Principal, match_id: str, consent: bool) -> MatchPublic:
        """Record one side's answer; when both said yes, contacts are shared and both told."""
        match, mine = await self.match_for(principal, match_id)
        if match.status != "suggested":
            raise BoardError(f"board match {match_id} is already {match.status}")
        if mine.id == match.offer_id:
            match.offer_consent = consent
        else:
            match.need_consent = consent
        offer, need = await self._sides(match)
        if not consent:
            match.status = "declined"
        elif match.offer_consent and match.need_consent:
            match.status = "contact_shared"
            match.shared_at = self.now()
            for author in (offer.author, need.author):
                await self._notify(author, "requests.board_contact_shared", match, "shared")
        return await self.view(match, mine)

    async def view(self, match: BoardMatch, mine: BoardPost) -> MatchPublic:
        offer, need = await self._sides(match)
        other = need if mine.id == offer.id else offer
        mine_is_offer = mine.id == offer.id
        shared = match.status == "contact_shared"
        return MatchPublic(
            match_id=match.id,
            proximity=match.proximity,
            status=match.status,
            my_post_id=mine.id,
            other_post=post_public(other, viewer=mine.author),
            my_consent=match.offer_consent if mine_is_offer else match.need_consent,
            other_consent=match.need_consent if mine_is_offer else match.offer_consent,
            other_contact=other.contact if shared else None,
            created_at=match.created_at,
        )


def post_public(post: BoardPost, *, viewer: str) -> PostPublic:
    mine = post.author == viewer
    return PostPublic(
        post_id=post.id,
        kind=post.kind,
        subject=post.subject,
        level=post.level,
        commune_insee=post.commune_insee,
        departement=post.departement,
        description=post.description,
        status=post.status,
        created_at=post.created_at,
        mine=mine,
        contact=post.contact if mine else None,
    )
