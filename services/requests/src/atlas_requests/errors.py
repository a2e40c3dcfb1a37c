"""Errors the requests service answers on purpose (rendered by the shared handler)."""

from typing import Any

from atlas_events.errors import AtlasError


class RequestsError(AtlasError):
    """Base of the requests service's errors."""


class RequestNotFound(RequestsError):
    """No such request, or not one the caller may see."""

    status_code = 404


class SpaceNotFound(RequestsError):
    """The catalog replica knows no such ATLAS space."""

    status_code = 422


class UnknownPrestation(RequestsError):
    """The catalog replica knows no such prestation (or it was withdrawn)."""

    status_code = 422


class InvalidTransition(RequestsError):
    """The request cannot move to that status from where it is; the allowed moves are listed."""

    status_code = 409

    def __init__(self, request_id: str, current: str, wanted: str, allowed: list[str]) -> None:
        super().__init__(
            f"a request in status {current} cannot move to {wanted}",
            detail={
                "message": f"a request in status {current} cannot move to {wanted}",
                "request_id": request_id,
                "status": current,
                "requested": wanted,
                "allowed": allowed,
            },
        )


class ChannelUnavailable(RequestsError):
    """The prestation is not offered through that channel now; the open channels are listed."""

    status_code = 409

    def __init__(self, message: str, *, channel: str, open_channels: list[str], **extra: Any):
        super().__init__(
            message,
            detail={
                "message": message,
                "channel": channel,
                "open_channels": open_channels,
                **extra,
            },
        )


class NotAllowed(RequestsError):
    """The caller's role may not do this on this request."""

    status_code = 403


class MessageTooLarge(RequestsError):
    """The message text or its attachment list is over the limit."""

    status_code = 413


class BadAssignee(RequestsError):
    """The assignee is not on the space's staff roster, or nobody is."""

    status_code = 422


class BoardError(RequestsError):
    """A board post or match cannot be used that way."""

    status_code = 409


class BoardNotFound(RequestsError):
    """No such board post or match visible to the caller."""

    status_code = 404


class SameSpace(RequestsError):
    """A transfer to the space the request is already in."""

    status_code = 409
