"""HTTP API of the board: post, see matches, consent to share contacts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from atlas_events.errors import error_responses
from atlas_events.service import RuntimeDep, SessionDep
from atlas_requests.auth import CurrentPrincipal
from atlas_requests.board.schemas import ConsentIn, MatchPublic, PostCreate, PostPublic
from atlas_requests.board.service import BoardService, post_public
from atlas_requests.errors import BoardError, BoardNotFound

router = APIRouter(prefix="/v1/board", tags=["board"])


def board_service(session: SessionDep, runtime: RuntimeDep) -> BoardService:
    return BoardService(session, runtime.outbox)


Board = Annotated[BoardService, Depends(board_service)]


@router.post("/posts", status_code=status.HTTP_201_CREATED)
async def create_post(
    body: PostCreate, principal: CurrentPrincipal, board: Board
) -> dict[str, object]:
    """Post an offer or a need; the matches suggested at once are returned with it."""
    post, matches = await board.post(principal, body)
    await board.session.flush()
    return {
        "post": post_public(post, viewer=principal.sub),
        "matches": [await board.view(m, post) for m in matches],
    }


@router.get("/posts/{post_id}", responses=error_responses(BoardNotFound))
async def get_post(post_id: str, principal: CurrentPrincipal, board: Board) -> PostPublic:
    """One of your posts."""
    return post_public(await board.own_post(principal, post_id), viewer=principal.sub)


@router.get("/posts/{post_id}/matches", responses=error_responses(BoardNotFound))
async def post_matches(
    post_id: str, principal: CurrentPrincipal, board: Board
) -> list[MatchPublic]:
    """Matches of one of your posts, nearest first; contacts only where both consented."""
    return await board.matches_of(principal, post_id)


@router.get("/matches/{match_id}", responses=error_responses(BoardNotFound))
async def get_match(match_id: str, principal: CurrentPrincipal, board: Board) -> MatchPublic:
    """A match you are a side of."""
    match, mine = await board.match_for(principal, match_id)
    return await board.view(match, mine)


@router.post("/matches/{match_id}/consent", responses=error_responses(BoardNotFound, BoardError))
async def consent(
    match_id: str, body: ConsentIn, principal: CurrentPrincipal, board: Board
) -> MatchPublic:
    """Agree (or refuse) to share contacts with the other side; shared once both agreed."""
    return await board.consent(principal, match_id, body.consent)
