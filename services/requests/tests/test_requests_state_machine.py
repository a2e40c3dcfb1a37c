"""The state machine's table: every pair of statuses, for every actor."""

from __future__ import annotations

import itertools

import pytest

from atlas_requests.requests.state import (
    CLOSED_STATUSES,
    Actor,
    Status,
    allowed_moves,
    can_move,
)

S = Status
EXPECTED: dict[tuple[Status, Status], set[Actor]] = {
    (S.BROUILLON, S.SOUMISE): {Actor.REQUESTER, Actor.STAFF},
    (S.BROUILLON, S.SANS_SUITE): {Actor.REQUESTER, Actor.STAFF},
    (S.SOUMISE, S.EN_INSTRUCTION): {Actor.STAFF},
    (S.SOUMISE, S.REFUSEE): {Actor.STAFF},
    (S.SOUMISE, S.SANS_SUITE): {Actor.REQUESTER, Actor.STAFF, Actor.SYSTEM},
    (S.SOUMISE, S.TERMINEE): {Actor.SYSTEM},
    (S.EN_INSTRUCTION, S.EN_ATTENTE_USAGER): {Actor.STAFF},
    (S.EN_INSTRUCTION, S.TERMINEE): {Actor.STAFF, Actor.SYSTEM},
    (S.EN_INSTRUCTION, S.REFUSEE): {Actor.STAFF},
    (S.EN_INSTRUCTION, S.SANS_SUITE): {Actor.STAFF, Actor.SYSTEM},
    (S.EN_ATTENTE_USAGER, S.EN_INSTRUCTION): {Actor.REQUESTER, Actor.STAFF},
    (S.EN_ATTENTE_USAGER, S.TERMINEE): {Actor.STAFF, Actor.SYSTEM},
    (S.EN_ATTENTE_USAGER, S.REFUSEE): {Actor.STAFF},
    (S.EN_ATTENTE_USAGER, S.SANS_SUITE): {Actor.REQUESTER, Actor.STAFF, Actor.SYSTEM},
    (S.TERMINEE, S.EN_INSTRUCTION): {Actor.STAFF},
    (S.REFUSEE, S.EN_INSTRUCTION): {Actor.STAFF},
    (S.SANS_SUITE, S.EN_INSTRUCTION): {Actor.STAFF},
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Status, Status)))
def test_each_move_for_each_actor(current: Status, target: Status) -> None:
    for actor in Actor:
        expected = actor in EXPECTED.get((current, target), set())
        assert can_move(current, target, actor) is expected, (current, target, actor)


def test_transferred_is_final_and_only_staff_reopen() -> None:
    for actor in Actor:
        assert allowed_moves(S.TRANSFEREE, actor) == []
    for closed in CLOSED_STATUSES - {S.TRANSFEREE}:
        assert allowed_moves(closed, Actor.STAFF) == ["en_instruction"]
        assert allowed_moves(closed, Actor.REQUESTER) == []
