"""The request lifecycle as an explicit state machine: who may move a request where."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    BROUILLON = "brouillon"
    SOUMISE = "soumise"
    EN_INSTRUCTION = "en_instruction"
    EN_ATTENTE_USAGER = "en_attente_usager"
    TERMINEE = "terminee"
    REFUSEE = "refusee"
    SANS_SUITE = "sans_suite"
    TRANSFEREE = "transferee"


class Actor(StrEnum):
    """Who moves the request: the person it is for (or filed it), the space's staff, a command."""

    REQUESTER = "requester"
    STAFF = "staff"
    SYSTEM = "system"


class Channel(StrEnum):
    GUICHET = "guichet"
    TELEPHONE = "telephone"
    EN_LIGNE = "en_ligne"
    ANTICIPATION = "anticipation"


USER_CHANNELS = (Channel.GUICHET, Channel.TELEPHONE, Channel.EN_LIGNE)
# The catalog's event contract names channels in English.
CHANNEL_ALIASES = {
    "counter": Channel.GUICHET,
    "phone": Channel.TELEPHONE,
    "online": Channel.EN_LIGNE,
}

S, A = Status, Actor
_R, _ST, _SY = A.REQUESTER, A.STAFF, A.SYSTEM
_CLOSE = {S.TERMINEE: {_ST, _SY}, S.REFUSEE: {_ST}, S.SANS_SUITE: {_ST, _SY}}
_REOPEN = {S.EN_INSTRUCTION: {_ST}}

TRANSITIONS: dict[Status, dict[Status, frozenset[Actor]]] = {
    status: {target: frozenset(actors) for target, actors in moves.items()}
    for status, moves in {
        S.BROUILLON: {S.SOUMISE: {_R, _ST}, S.SANS_SUITE: {_R, _ST}},
        S.SOUMISE: {
            S.EN_INSTRUCTION: {_ST},
            S.REFUSEE: {_ST},
            S.SANS_SUITE: {_R, _ST, _SY},
            S.TERMINEE: {_SY},
        },
        S.EN_INSTRUCTION: {S.EN_ATTENTE_USAGER: {_ST}, **_CLOSE},
        S.EN_ATTENTE_USAGER: {
            S.EN_INSTRUCTION: {_R, _ST},
            **_CLOSE,
            S.SANS_SUITE: {_R, _ST, _SY},
        },
        S.TERMINEE: _REOPEN,
        S.REFUSEE: _REOPEN,
        S.SANS_SUITE: _REOPEN,
        S.TRANSFEREE: {},
    }.items()
}

OPEN_STATUSES = frozenset({S.SOUMISE, S.EN_INSTRUCTION, S.EN_ATTENTE_USAGER})
CLOSED_STATUSES = frozenset({S.TERMINEE, S.REFUSEE, S.SANS_SUITE, S.TRANSFEREE})
TRANSFERABLE = OPEN_STATUSES
# The SLA clock runs in these statuses only: not in a draft, not while waiting for the user.
CLOCK_RUNNING = frozenset({S.SOUMISE, S.EN_INSTRUCTION})


def allowed_moves(status: Status, actor: Actor) -> list[str]:
    """The statuses `actor` may move a request in `status` to, sorted."""
    return sorted(t.value for t, actors in TRANSITIONS[status].items() if actor in actors)


def is_move(status: Status, target: Status) -> bool:
    """Whether the lifecycle has that move at all (for anyone)."""
    return target in TRANSITIONS[status]


def can_move(status: Status, target: Status, actor: Actor) -> bool:
    return actor in TRANSITIONS[status].get(target, frozenset())
