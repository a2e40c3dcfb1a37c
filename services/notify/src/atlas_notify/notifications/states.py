"""The delivery state machine, after GOV.UK Notify: guarded, terminal states never change."""

from enum import StrEnum

from atlas_notify.errors import IllegalTransition


class Status(StrEnum):
    CREATED = "created"
    SENDING = "sending"
    DELIVERED = "delivered"
    TEMPORARY_FAILURE = "temporary_failure"
    PERMANENT_FAILURE = "permanent_failure"
    TECHNICAL_FAILURE = "technical_failure"
    SKIPPED = "skipped"


TERMINAL = frozenset(
    {
        Status.DELIVERED,
        Status.TEMPORARY_FAILURE,
        Status.PERMANENT_FAILURE,
        Status.TECHNICAL_FAILURE,
        Status.SKIPPED,
    }
)
FAILED = frozenset({Status.TEMPORARY_FAILURE, Status.PERMANENT_FAILURE, Status.TECHNICAL_FAILURE})

ALLOWED: dict[Status, frozenset[Status]] = {
    # A delivery that cannot even be attempted (no address, opted out, cancelled) is skipped;
    # one that breaks on our side before any send (a template that no longer renders) fails.
    Status.CREATED: frozenset({Status.SENDING, Status.SKIPPED, Status.TECHNICAL_FAILURE}),
    Status.SENDING: frozenset(
        {
            Status.DELIVERED,
            Status.TEMPORARY_FAILURE,
            Status.PERMANENT_FAILURE,
            Status.TECHNICAL_FAILURE,
        }
    ),
    **{status: frozenset() for status in TERMINAL},
}


def check_transition(current: Status | str, new: Status | str) -> None:
    """IllegalTransition unless `current` → `new` is an edge of the state machine."""
    current, new = Status(current), Status(new)
    if new not in ALLOWED[current]:
        if current in TERMINAL:
            raise IllegalTransition(f"{current} is terminal: it never changes (asked: {new})")
        raise IllegalTransition(f"{current} cannot become {new}")
